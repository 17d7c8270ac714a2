// The layer-contract harness and the layer gradient check (see layer_harness.h).
#include "support/layer_harness.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "normnet/layers.h"
#include "normnet/model.h"
#include "normnet/ops.h"

namespace normnet::testing {
namespace {

Shape with_unknown_batch(Shape s) {
  if (!s.empty()) s[0] = kUnknownDim;
  return s;
}

std::vector<Tensor> with_masks(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) {
  std::vector<Tensor> out;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    Tensor t = xs[i].detach();
    t.set_mask(i < masks.size() ? masks[i] : Tensor());
    out.push_back(t);
  }
  return out;
}

std::vector<Tensor> symbolic_like(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) {
  std::vector<Tensor> out;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    Tensor t = Tensor::symbolic(with_unknown_batch(xs[i].shape()), xs[i].dtype());
    if (i < masks.size() && masks[i].defined()) {
      t.set_mask(Tensor::symbolic(with_unknown_batch(masks[i].shape()), masks[i].dtype()));
    }
    out.push_back(t);
  }
  return out;
}

::testing::AssertionResult check_masks(const LayerCase& c, const Tensor& out, const char* how) {
  if (c.masks.empty() && !c.output_has_mask) return ::testing::AssertionSuccess();
  const Tensor m = out.mask();
  if (m.defined() != c.output_has_mask) {
    return ::testing::AssertionFailure() << c.label << ": " << how << " output mask is "
                                         << (m.defined() ? "present" : "absent") << ", expected "
                                         << (c.output_has_mask ? "present" : "absent");
  }
  if (!m.defined() || m.is_symbolic() || !c.expected_output_mask.defined()) return ::testing::AssertionSuccess();
  const double diff = max_abs_diff(m.to(DType::kFloat64), c.expected_output_mask.to(DType::kFloat64));
  if (!(diff == 0.0)) {
    return ::testing::AssertionFailure() << c.label << ": output mask " << m << " differs from the expected "
                                         << c.expected_output_mask;
  }
  return ::testing::AssertionSuccess();
}

// The layer in a model of Inputs shaped like the case's inputs, saved with Model::save and read
// back with load_model, must predict bit for bit (skipped for an unregistered Lambda, which
// cannot be saved, and for inputs with an empty extent, which Input refuses).
::testing::AssertionResult check_save_load(const LayerCase& c, const LayerRef& layer) {
  if (layer->class_name() == "Lambda" && !layer->get_config().value("registered", false)) {
    return ::testing::AssertionSuccess();
  }
  std::vector<Tensor> ins;
  for (const Tensor& x : c.inputs) {
    if (x.dim() == 0) return ::testing::AssertionSuccess();
    const Shape s(x.shape().begin() + 1, x.shape().end());
    if (std::any_of(s.begin(), s.end(), [](int64_t d) { return d < 1; })) return ::testing::AssertionSuccess();
    ins.push_back(Input(s, x.dtype()));
  }
  const std::string path =
      (std::filesystem::temp_directory_path() / ("normnet_harness_" + std::to_string(::getpid()) + ".safetensors")).string();
  try {
    Model model(ins, layer(ins));
    model.save(path);
    Model loaded = load_model(path);
    std::filesystem::remove(path);
    if (!c.deterministic) return ::testing::AssertionSuccess();
    const std::vector<Tensor> want = model.predict(c.inputs), got = loaded.predict(c.inputs);
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double d = max_abs_diff(want[i].to(DType::kFloat64), got[i].to(DType::kFloat64));
      if (!(d == 0.0)) {
        return ::testing::AssertionFailure() << c.label << ": after save/load_model, output " << i << " differs by " << d;
      }
    }
  } catch (const std::exception& e) {
    std::filesystem::remove(path);
    return ::testing::AssertionFailure() << c.label << ": save/load_model round trip failed: " << e.what();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult copy_weights(const Layer& from, Layer& to) {
  const std::vector<Tensor> src = from.weights();
  std::vector<Tensor> dst = to.weights();
  if (src.size() != dst.size()) {
    return ::testing::AssertionFailure() << "copy_weights: " << src.size() << " weights vs " << dst.size();
  }
  for (std::size_t i = 0; i < src.size(); ++i) {
    if (src[i].shape() != dst[i].shape() || src[i].dtype() != dst[i].dtype()) {
      return ::testing::AssertionFailure() << "copy_weights: weight " << i << " is " << shape_to_string(src[i].shape())
                                           << " vs " << shape_to_string(dst[i].shape());
    }
    const std::size_t bytes = static_cast<std::size_t>(src[i].numel()) * dtype_size(src[i].dtype());
    if (src[i].dtype() == DType::kFloat32) std::memcpy(dst[i].data<float>(), src[i].data<float>(), bytes);
    else if (src[i].dtype() == DType::kFloat64) std::memcpy(dst[i].data<double>(), src[i].data<double>(), bytes);
    else std::memcpy(dst[i].data<int64_t>(), src[i].data<int64_t>(), bytes);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult check_layer_contract(const LayerCase& c) {
  // 1. symbolic shapes = real shapes
  LayerRef layer = c.make();
  const std::vector<Tensor> sym_out = layer(symbolic_like(c.inputs, c.masks));
  const std::vector<Tensor> out = layer(with_masks(c.inputs, c.masks));
  if (sym_out.size() != out.size()) {
    return ::testing::AssertionFailure() << c.label << ": " << sym_out.size() << " symbolic outputs vs " << out.size();
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (sym_out[i].shape() != with_unknown_batch(out[i].shape()) || sym_out[i].dtype() != out[i].dtype()) {
      return ::testing::AssertionFailure() << c.label << ": output " << i << " is " << dtype_name(out[i].dtype())
                                           << " " << shape_to_string(out[i].shape()) << " but the symbolic call gave "
                                           << dtype_name(sym_out[i].dtype()) << " "
                                           << shape_to_string(sym_out[i].shape());
    }
  }
  // 3. masks, eager and symbolic
  if (auto r = check_masks(c, out[0], "eager"); !r) return r;
  if (auto r = check_masks(c, sym_out[0], "symbolic"); !r) return r;

  // 2. config round trip
  const Config saved = {{"class_name", layer->class_name()}, {"config", layer->get_config()}};
  const Config reparsed = Config::parse(saved.dump());
  if (reparsed != saved) return ::testing::AssertionFailure() << c.label << ": config changed in a JSON round trip";
  std::shared_ptr<Layer> rebuilt = layers::from_config(reparsed);
  if (rebuilt->class_name() != layer->class_name()) {
    return ::testing::AssertionFailure() << c.label << ": from_config made a " << rebuilt->class_name();
  }
  if (rebuilt->get_config() != saved["config"]) {
    return ::testing::AssertionFailure() << c.label << ": config after from_config\n  " << rebuilt->get_config().dump()
                                         << "\ndiffers from\n  " << saved["config"].dump();
  }
  (void)(*rebuilt)(with_masks(c.inputs, c.masks));  // builds it
  if (auto r = copy_weights(*layer, *rebuilt); !r) return ::testing::AssertionFailure() << c.label << ": " << r.message();
  if (c.deterministic) {
    const std::vector<Tensor> copy_out = (*rebuilt)(with_masks(c.inputs, c.masks));
    const std::vector<Tensor> orig_out = layer(with_masks(c.inputs, c.masks));
    for (std::size_t i = 0; i < orig_out.size(); ++i) {
      const double d = max_abs_diff(orig_out[i].to(DType::kFloat64), copy_out[i].to(DType::kFloat64));
      if (!(d == 0.0)) {
        return ::testing::AssertionFailure() << c.label << ": the rebuilt layer's output " << i
                                             << " differs by " << d << " with the same weights";
      }
    }
  }

  // 5. save/load_model round trip
  if (auto r = check_save_load(c, layer); !r) return r;

  // 4. gradients reach every trainable weight
  const std::vector<Tensor> trainable = layer->trainable_weights();
  if (!trainable.empty()) {
    for (Tensor w : trainable) w.zero_grad();
    Tensor total;
    for (const Tensor& o : layer(with_masks(c.inputs, c.masks), /*training=*/true)) {
      Tensor s = ops::sum(ops::cast(o, DType::kFloat64) * ops::cast(o, DType::kFloat64));
      total = total.defined() ? total + s : s;
    }
    total.backward();
    for (std::size_t i = 0; i < trainable.size(); ++i) {
      if (!trainable[i].grad().defined()) {
        return ::testing::AssertionFailure() << c.label << ": trainable weight " << i << " received no gradient";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult gradcheck_layer(Layer& layer, const std::vector<Tensor>& inputs,
                                           const std::vector<Tensor*>& weight_fields, const GradCheckOptions& opts,
                                           const std::vector<Tensor>& masks, bool training) {
  const std::size_t n_in = inputs.size();
  (void)layer(with_masks(inputs, masks), training);  // builds
  std::vector<Tensor> originals;
  std::vector<Tensor> all = inputs;
  for (Tensor* field : weight_fields) {
    originals.push_back(*field);
    all.push_back(field->detach().clone());
  }
  GradFn f = [&](const std::vector<Tensor>& in) {
    for (std::size_t i = 0; i < weight_fields.size(); ++i) *weight_fields[i] = in[n_in + i];
    std::vector<Tensor> xs(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n_in));
    for (std::size_t i = 0; i < xs.size() && i < masks.size(); ++i) xs[i].set_mask(masks[i]);
    return layer(xs, training)[0];
  };
  ::testing::AssertionResult result = gradcheck(f, all, opts);
  for (std::size_t i = 0; i < weight_fields.size(); ++i) *weight_fields[i] = originals[i];
  return result;
}

}  // namespace normnet::testing

// L2Normalization / UnitNormalization: ops::l2_normalize as a layer, with a learnable scale
// (scalar or per channel) and mask support. Shapes: N batch, T steps, C channels (last axis).
#include "normnet/layers/normalization.h"

#include <algorithm>

#include "layers/layer_util.h"
#include "normnet/ops/elementwise.h"

namespace normnet::layers {

using detail::str;
using detail::who;

L2NormalizationLayer::L2NormalizationLayer(std::string class_name) : Layer(std::move(class_name)) {
  set_supports_masking(true);
}

void L2NormalizationLayer::build(const std::vector<Shape>& input_shapes) {
  const Shape& in = input_shapes[0];
  if (in.empty()) throw ShapeError(str(who(*this), ": expected an input with a batch axis, got shape ", in));
  if (options.is_all_axes() && in.size() < 2) {
    throw ShapeError(str(who(*this), ": all_axes normalizes each sample over its non-batch axes; ",
                         "expected an input of rank >= 2, got shape ", in));
  }
  if (!options.is_all_axes() && !options.is_whole_tensor()) {
    const auto rank = static_cast<int64_t>(in.size());
    std::vector<int64_t> seen;
    for (int a : options.axes()) {
      if (a < -rank || a >= rank) throw ValueError(str(who(*this), ": axis ", a, " out of range for input shape ", in));
      const int64_t k = a < 0 ? a + rank : a;
      if (std::find(seen.begin(), seen.end(), k) != seen.end()) {
        throw ValueError(str(who(*this), ": axis ", a, " repeats axis ", k, " of input shape ", in));
      }
      seen.push_back(k);
    }
  }
  if (learnable_scale) {
    if (per_channel && in.back() == kUnknownDim) {
      throw ShapeError(str(who(*this), ": a per-channel scale needs a known last axis, got shape ", in));
    }
    const Shape shape = per_channel ? Shape{in.back()} : Shape{};
    scale = add_weight("scale", shape, initializers::Constant(scale_init), true, scale_regularizer, dtype);
  }
}

// y = m · s ⊙ l2_normalize(m · x)   (m = 1 without a mask; s = 1 without a scale)
// ⇒ dx = m · l2_normalize'(m·x)ᵀ (m · s ⊙ dy), ds_c = Σ_{n,t} m · l2_normalize(m·x)_c · dy_c,
// all from autograd: each factor's backward is exact, so unequal per-channel scales come out
// right (issue 3 notes Caffe-SSD's Normalize backward does not; test_normalization checks ours
// against finite differences with distinct scales).
// The computation runs in x's floating dtype (a float64 input stays float64, a float32 scale is
// cast to it): normalization is where precision matters most, and it has no weights to match.
Tensor L2NormalizationLayer::call(const Tensor& x, const CallArgs& args) {
  if (!is_floating(x.dtype())) {
    fail(str("expected a floating input, got ", dtype_name(x.dtype()), " of shape ", x.shape()));
  }
  Tensor v = x;
  const Tensor m = args.mask.defined() ? detail::mask_multiplier(*this, v, args.mask) : Tensor();
  if (m.defined()) v = v * m;
  Tensor y = ops::l2_normalize(v, options);
  if (scale.defined()) y = y * ops::cast(scale, y.dtype());
  if (m.defined()) y = y * m;
  return y;
}

Config L2NormalizationLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["dtype"] = dtype_name(dtype);
  const std::vector<int>& axes = options.axes();
  c["axis"] = axes.size() == 1 ? Config(axes[0]) : Config(axes);
  c["all_axes"] = options.is_all_axes();
  c["whole_tensor"] = options.is_whole_tensor();
  c["epsilon"] = options.get_epsilon();
  c["mode"] = epsilon_mode_name(options.get_mode());
  c["learnable_scale"] = learnable_scale;
  c["scale_init"] = scale_init;
  c["per_channel"] = per_channel;
  c["scale_regularizer"] = detail::to_config(scale_regularizer);
  return c;
}

namespace {
template <class Builder>
std::shared_ptr<Layer> rebuild(Builder b, const Config& config) {
  if (config.contains("axis")) {
    const Config& axis = config["axis"];
    b.axis(detail::ints_from(axis, "config 'axis'"));
  }
  if (config.value("all_axes", false)) b.all_axes();
  if (config.value("whole_tensor", false)) b.whole_tensor();
  b.epsilon(config.value("epsilon", 1e-12)).mode(config.value("mode", std::string("exact")));
  if (config.value("learnable_scale", false)) {
    b.learnable_scale(config.value("scale_init", 1.0), config.value("per_channel", true));
  }
  b.scale_regularizer(detail::regularizer_from(config, "scale_regularizer")).dtype(detail::dtype_from(config));
  detail::apply_base_config(*b, config);
  return b.ptr();
}
}  // namespace

std::shared_ptr<Layer> L2NormalizationLayer::from_config(const std::string& class_name, const Config& config) {
  if (class_name == "UnitNormalization") return rebuild(UnitNormalization(), config);
  return rebuild(L2Normalization(), config);
}

// ---- the handles ----

template <class Self>
Self& L2NormalizationBuilder<Self>::axis(std::vector<int> axes) {
  if (axes.empty()) throw ValueError(str(who(*this->ptr_), ": axis list must not be empty"));
  for (std::size_t i = 0; i < axes.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (axes[i] == axes[j]) throw ValueError(str(who(*this->ptr_), ": axis ", axes[i], " is listed twice"));
    }
  }
  this->ptr_->options.axis(std::move(axes));
  return this->self();
}

template <class Self>
Self& L2NormalizationBuilder<Self>::all_axes() {
  this->ptr_->options.all_axes();
  return this->self();
}

template <class Self>
Self& L2NormalizationBuilder<Self>::whole_tensor() {
  this->ptr_->options.whole_tensor();
  return this->self();
}

template <class Self>
Self& L2NormalizationBuilder<Self>::epsilon(double epsilon) {
  if (!(epsilon >= 0.0)) throw ValueError(str(who(*this->ptr_), ": epsilon must be >= 0, got ", epsilon));
  this->ptr_->options.epsilon(epsilon);
  return this->self();
}

template <class Self>
Self& L2NormalizationBuilder<Self>::mode(EpsilonMode mode) {
  this->ptr_->options.mode(mode);
  return this->self();
}

template <class Self>
Self& L2NormalizationBuilder<Self>::mode(const std::string& name) {
  try {
    return mode(epsilon_mode_from_name(name));
  } catch (const ValueError& e) {
    throw ValueError(str(who(*this->ptr_), ": ", e.what()));
  }
}

template <class Self>
Self& L2NormalizationBuilder<Self>::learnable_scale(double init, bool per_channel) {
  this->ptr_->learnable_scale = true;
  this->ptr_->scale_init = init;
  this->ptr_->per_channel = per_channel;
  return this->self();
}

template <class Self>
Self& L2NormalizationBuilder<Self>::scale_regularizer(Regularizer reg) {
  this->ptr_->scale_regularizer = std::move(reg);
  return this->self();
}

template <class Self>
Self& L2NormalizationBuilder<Self>::dtype(DType dtype) {
  if (!is_floating(dtype)) {
    throw ValueError(str(who(*this->ptr_), ": dtype must be float32 or float64, got ", dtype_name(dtype)));
  }
  this->ptr_->dtype = dtype;
  return this->self();
}

template class L2NormalizationBuilder<L2Normalization>;
template class L2NormalizationBuilder<UnitNormalization>;

L2Normalization::L2Normalization()
    : L2NormalizationBuilder(std::make_shared<L2NormalizationLayer>("L2Normalization")) {}

UnitNormalization::UnitNormalization()
    : L2NormalizationBuilder(std::make_shared<L2NormalizationLayer>("UnitNormalization")) {}

}  // namespace normnet::layers

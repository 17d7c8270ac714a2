// Concatenate and Add: multi-input layers (call_multi) with Keras's shape checks and mask rules.
#include "normnet/layers/merge.h"

#include "layers/layer_util.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/reduce.h"
#include "normnet/ops/shape_ops.h"

namespace normnet::layers {

using detail::str;
using detail::who;

namespace {

std::string shapes_string(const std::vector<Shape>& shapes) {
  std::string s;
  for (std::size_t i = 0; i < shapes.size(); ++i) s += (i ? ", " : "") + shape_to_string(shapes[i]);
  return s;
}

std::vector<Shape> shapes_of(const std::vector<Tensor>& xs) {
  std::vector<Shape> shapes;
  for (const Tensor& x : xs) shapes.push_back(x.shape());
  return shapes;
}

void check_count(const Layer& layer, std::size_t n) {
  if (n == 0) throw ValueError(str(who(layer), ": expected at least 1 input tensor, got none"));
}

bool all_undefined(const std::vector<Tensor>& masks) {
  for (const Tensor& m : masks) if (m.defined()) return false;
  return true;
}

}  // namespace

// ---- Concatenate ----

ConcatenateLayer::ConcatenateLayer(int axis) : Layer("Concatenate"), axis(axis) { set_supports_masking(true); }

void ConcatenateLayer::build(const std::vector<Shape>& shapes) {
  check_count(*this, shapes.size());
  const auto rank = static_cast<int64_t>(shapes[0].size());
  bool fits = rank > 0 && axis >= -rank && axis < rank;
  const int64_t k = axis < 0 ? axis + rank : axis;
  for (const Shape& s : shapes) {
    fits = fits && static_cast<int64_t>(s.size()) == rank;
    for (int64_t i = 0; fits && i < rank; ++i) fits = i == k || detail::dims_compatible(s[i], shapes[0][i]);
  }
  if (!fits) {
    throw ShapeError(str(who(*this), ": inputs must have the same rank and match on every axis except the ",
                         "concatenation axis ", axis, ", got shapes ", shapes_string(shapes)));
  }
}

std::vector<Tensor> ConcatenateLayer::call_multi(const std::vector<Tensor>& xs, const CallArgs&) {
  build(shapes_of(xs));  // cheap; checks eager calls with new shapes as clearly as the first call
  return {ops::concat(xs, axis)};
}

// tf.keras's rule: a missing mask counts as all ones, masks one axis short get a trailing axis of
// 1, the parts are joined along the concatenation axis, and the result is AND-ed over the last
// axis: [N, T] step masks stay [N, T] for a feature join and become [N, T1 + T2] for a time join.
std::vector<Tensor> ConcatenateLayer::compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) {
  if (masks.empty() || all_undefined(masks)) return {};
  const int rank = static_cast<int>(xs[0].dim());
  const int k = axis < 0 ? axis + rank : axis;
  std::vector<Tensor> parts;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    Tensor m = i < masks.size() && masks[i].defined()
                   ? ops::cast(masks[i], DType::kFloat32)
                   : detail::ones_mask(Shape(s.begin(), s.end() - 1), xs[i].is_symbolic());
    if (m.dim() + 1 == xs[i].dim()) m = ops::unsqueeze(m, -1);
    parts.push_back(m);
  }
  Tensor joined = ops::concat(parts, k);
  // all(m, axis=-1) = 1 − max(1 − m, axis=-1) for 0/1 values
  return {1.0 - ops::max(1.0 - joined, {-1})};
}

Config ConcatenateLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["axis"] = axis;
  return c;
}

std::shared_ptr<Layer> ConcatenateLayer::from_config(const Config& config) {
  const bool has_axis = config.contains("axis") && !config["axis"].is_null();
  auto layer = std::make_shared<ConcatenateLayer>(has_axis ? detail::int32_from(config["axis"], "Concatenate config 'axis'") : -1);
  detail::apply_base_config(*layer, config);
  return layer;
}

Concatenate::Concatenate(int axis) : LayerBuilder(std::make_shared<ConcatenateLayer>(axis)) {}

// ---- Add ----

AddLayer::AddLayer() : Layer("Add") { set_supports_masking(true); }

void AddLayer::build(const std::vector<Shape>& shapes) {
  check_count(*this, shapes.size());
  // NumPy broadcasting, aligned on the right; an unknown extent fits anything.
  std::size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  for (std::size_t back = 1; back <= rank; ++back) {
    int64_t extent = 1;
    for (const Shape& s : shapes) {
      if (s.size() < back) continue;
      const int64_t d = s[s.size() - back];
      if (d == 1 || d == kUnknownDim || d == extent) continue;
      if (extent != 1 && extent != kUnknownDim) {
        throw ShapeError(str(who(*this), ": inputs must have the same shape (or shapes that broadcast), got shapes ",
                             shapes_string(shapes)));
      }
      extent = d;
    }
  }
}

std::vector<Tensor> AddLayer::call_multi(const std::vector<Tensor>& xs, const CallArgs&) {
  build(shapes_of(xs));
  Tensor sum = xs[0];
  for (std::size_t i = 1; i < xs.size(); ++i) sum = sum + xs[i];
  return {sum};
}

std::vector<Tensor> AddLayer::compute_mask(const std::vector<Tensor>&, const std::vector<Tensor>& masks) {
  Tensor m = detail::mask_and(masks);
  if (!m.defined()) return {};
  return {m};
}

Config AddLayer::get_config() const { return detail::base_config(*this, Layer::get_config()); }

std::shared_ptr<Layer> AddLayer::from_config(const Config& config) {
  auto layer = std::make_shared<AddLayer>();
  detail::apply_base_config(*layer, config);
  return layer;
}

Add::Add() : LayerBuilder(std::make_shared<AddLayer>()) {}

}  // namespace normnet::layers

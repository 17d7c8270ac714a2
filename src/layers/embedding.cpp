// Embedding (with mask_zero), Masking and the mask-aware GlobalAveragePooling1D.
// Shapes: N batch, T time steps, C features; masks are float32 0/1 [N, T] (layers/embedding.h).
#include "normnet/layers/embedding.h"

#include <cmath>

#include "layers/layer_util.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/nn.h"
#include "normnet/ops/reduce.h"

namespace normnet::layers {

using detail::str;
using detail::who;

// ---- Embedding ----

EmbeddingLayer::EmbeddingLayer(int64_t input_dim, int64_t output_dim)
    : Layer("Embedding"), input_dim(input_dim), output_dim(output_dim) {
  if (input_dim <= 0 || output_dim <= 0) {
    throw ValueError(str(who(*this), ": input_dim and output_dim must be positive, got input_dim ", input_dim,
                         " and output_dim ", output_dim));
  }
}

void EmbeddingLayer::build(const std::vector<Shape>&) {
  embeddings = add_weight("embeddings", {input_dim, output_dim}, embeddings_initializer, true,
                          embeddings_regularizer, dtype);
}

Tensor EmbeddingLayer::call(const Tensor& x, const CallArgs&) {
  const Tensor indices = x.dtype() == DType::kInt64 ? x : ops::cast(x, DType::kInt64);
  try {
    return ops::embedding(embeddings, indices);
  } catch (const ValueError& e) {
    throw ValueError(str(who(*this), ": ", e.what(), " (input_dim is ", input_dim, ")"));
  }
}

std::vector<Tensor> EmbeddingLayer::compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>&) {
  if (!mask_zero) return {};
  // indices != 0  ⇔  sign(|indices|) = 1 (the mask is data, never differentiated).
  return {ops::sign(ops::abs(ops::cast(xs[0], DType::kFloat32)))};
}

Config EmbeddingLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["dtype"] = dtype_name(dtype);
  c["input_dim"] = input_dim;
  c["output_dim"] = output_dim;
  c["mask_zero"] = mask_zero;
  c["embeddings_initializer"] = detail::to_config(embeddings_initializer);
  c["embeddings_regularizer"] = detail::to_config(embeddings_regularizer);
  return c;
}

std::shared_ptr<Layer> EmbeddingLayer::from_config(const Config& config) {
  Embedding e(detail::int_from(config.at("input_dim"), "Embedding config 'input_dim'", INT64_MIN, INT64_MAX),
              detail::int_from(config.at("output_dim"), "Embedding config 'output_dim'", INT64_MIN, INT64_MAX));
  e.mask_zero(config.value("mask_zero", false))
      .embeddings_initializer(detail::initializer_from(config, "embeddings_initializer",
                                                       initializers::RandomUniform(-0.05, 0.05)))
      .embeddings_regularizer(detail::regularizer_from(config, "embeddings_regularizer"))
      .dtype(detail::dtype_from(config));
  detail::apply_base_config(*e, config);
  return e.ptr();
}

Embedding::Embedding(int64_t input_dim, int64_t output_dim)
    : LayerBuilder(std::make_shared<EmbeddingLayer>(input_dim, output_dim)) {}

Embedding& Embedding::mask_zero(bool mask_zero) {
  ptr_->mask_zero = mask_zero;
  return *this;
}
Embedding& Embedding::embeddings_initializer(Initializer init) {
  ptr_->embeddings_initializer = std::move(init);
  return *this;
}
Embedding& Embedding::embeddings_regularizer(Regularizer reg) {
  ptr_->embeddings_regularizer = std::move(reg);
  return *this;
}
Embedding& Embedding::dtype(DType dtype) {
  if (!is_floating(dtype)) throw ValueError(str(who(*ptr_), ": dtype must be float32 or float64, got ", dtype_name(dtype)));
  ptr_->dtype = dtype;
  return *this;
}

// ---- Masking ----

MaskingLayer::MaskingLayer(double mask_value) : Layer("Masking"), mask_value(mask_value) {
  set_supports_masking(true);
}

// y = x·m[..., None], m = any(x ≠ mask_value) over the last axis  ⇒  dx = dy·m
Tensor MaskingLayer::call(const Tensor& x, const CallArgs&) {
  if (x.dim() < 2) fail(str("expected an input of rank >= 2 [batch, ..., features], got shape ", x.shape()));
  return x * detail::mask_multiplier(*this, x, detail::any_not_equal_last_axis(x, mask_value));
}

std::vector<Tensor> MaskingLayer::compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>&) {
  return {detail::any_not_equal_last_axis(xs[0], mask_value)};
}

Config MaskingLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["mask_value"] = mask_value;
  return c;
}

std::shared_ptr<Layer> MaskingLayer::from_config(const Config& config) {
  auto layer = std::make_shared<MaskingLayer>(config.value("mask_value", 0.0));
  detail::apply_base_config(*layer, config);
  return layer;
}

Masking::Masking(double mask_value) : LayerBuilder(std::make_shared<MaskingLayer>(mask_value)) {}

// ---- GlobalAveragePooling1D ----

GlobalAveragePooling1DLayer::GlobalAveragePooling1DLayer() : Layer("GlobalAveragePooling1D") {
  set_supports_masking(true);
}

// y = Σ_t m_t·x_t / max(Σ_t m_t, 1)  ⇒  dx_t = m_t·dy / max(Σ m, 1): masked steps get zero gradient
Tensor GlobalAveragePooling1DLayer::call(const Tensor& x, const CallArgs& args) {
  if (x.dim() != 3) fail(str("expected an input of rank 3 [batch, steps, features], got shape ", x.shape()));
  if (!args.mask.defined()) return ops::mean(x, {1}, keepdims);
  const Tensor m = detail::mask_multiplier(*this, x, args.mask);  // [N, T, 1]
  const Tensor count = ops::clip(ops::sum(m, {1}, keepdims), 1.0, INFINITY);
  return ops::sum(x * m, {1}, keepdims) / count;
}

std::vector<Tensor> GlobalAveragePooling1DLayer::compute_mask(const std::vector<Tensor>&, const std::vector<Tensor>&) {
  return {};  // the time axis is gone, and with it the mask
}

Config GlobalAveragePooling1DLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["data_format"] = "channels_last";
  c["keepdims"] = keepdims;
  return c;
}

std::shared_ptr<Layer> GlobalAveragePooling1DLayer::from_config(const Config& config) {
  auto layer = std::make_shared<GlobalAveragePooling1DLayer>();
  layer->keepdims = config.value("keepdims", false);
  detail::apply_base_config(*layer, config);
  return layer;
}

GlobalAveragePooling1D::GlobalAveragePooling1D() : LayerBuilder(std::make_shared<GlobalAveragePooling1DLayer>()) {}

GlobalAveragePooling1D& GlobalAveragePooling1D::keepdims(bool keepdims) {
  ptr_->keepdims = keepdims;
  return *this;
}

}  // namespace normnet::layers

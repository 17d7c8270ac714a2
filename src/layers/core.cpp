// Core layers: Dense, Activation, Flatten, Reshape, Dropout. Each validates its options when
// constructed, creates weights in build() and composes ops in call().
#include "normnet/layers/core.h"

#include "layers/layer_util.h"
#include "normnet/activations.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/linalg.h"
#include "normnet/ops/nn.h"
#include "normnet/ops/shape_ops.h"

namespace normnet::layers {

using detail::str;
using detail::who;

// ---- Dense ----

DenseLayer::DenseLayer(int64_t units) : Layer("Dense"), units(units) {
  if (units <= 0) throw ValueError(str(who(*this), ": units must be positive, got ", units));
  set_supports_masking(true);
}

void DenseLayer::build(const std::vector<Shape>& input_shapes) {
  const Shape& in = input_shapes[0];
  if (in.size() < 2 || in.back() == kUnknownDim) {
    fail(str("expected an input of rank >= 2 with a known last axis [batch, ..., features], got shape ", in));
  }
  kernel = add_weight("kernel", {in.back(), units}, kernel_initializer, true, kernel_regularizer, dtype);
  if (use_bias) bias = add_weight("bias", {units}, bias_initializer, true, bias_regularizer, dtype);
}

Tensor DenseLayer::call(const Tensor& x, const CallArgs&) {
  if (x.dim() < 2 || x.size(-1) != kernel.size(0)) {
    fail(str("expected input last axis ", kernel.size(0), ", got shape ", x.shape()));
  }
  return activations::apply(activation, ops::linear(detail::autocast(x, dtype), kernel, bias));
}

Config DenseLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["dtype"] = dtype_name(dtype);
  c["units"] = units;
  c["activation"] = activation;
  c["use_bias"] = use_bias;
  c["kernel_initializer"] = detail::to_config(kernel_initializer);
  c["bias_initializer"] = detail::to_config(bias_initializer);
  c["kernel_regularizer"] = detail::to_config(kernel_regularizer);
  c["bias_regularizer"] = detail::to_config(bias_regularizer);
  return c;
}

std::shared_ptr<Layer> DenseLayer::from_config(const Config& config) {
  Dense d(detail::int_from(config.at("units"), "Dense config 'units'", INT64_MIN, INT64_MAX));
  d.activation(config.value("activation", std::string("linear")))
      .use_bias(config.value("use_bias", true))
      .kernel_initializer(detail::initializer_from(config, "kernel_initializer", initializers::GlorotUniform()))
      .bias_initializer(detail::initializer_from(config, "bias_initializer", initializers::Zeros()))
      .kernel_regularizer(detail::regularizer_from(config, "kernel_regularizer"))
      .bias_regularizer(detail::regularizer_from(config, "bias_regularizer"))
      .dtype(detail::dtype_from(config));
  detail::apply_base_config(*d, config);
  return d.ptr();
}

Dense::Dense(int64_t units) : LayerBuilder(std::make_shared<DenseLayer>(units)) {}

Dense& Dense::activation(const std::string& name) {
  activations::validate(name, who(*ptr_));
  ptr_->activation = name;
  return *this;
}
Dense& Dense::use_bias(bool use_bias) {
  ptr_->use_bias = use_bias;
  return *this;
}
Dense& Dense::kernel_initializer(Initializer init) {
  ptr_->kernel_initializer = std::move(init);
  return *this;
}
Dense& Dense::bias_initializer(Initializer init) {
  ptr_->bias_initializer = std::move(init);
  return *this;
}
Dense& Dense::kernel_regularizer(Regularizer reg) {
  ptr_->kernel_regularizer = std::move(reg);
  return *this;
}
Dense& Dense::bias_regularizer(Regularizer reg) {
  ptr_->bias_regularizer = std::move(reg);
  return *this;
}
Dense& Dense::dtype(DType dtype) {
  if (!is_floating(dtype)) throw ValueError(str(who(*ptr_), ": dtype must be float32 or float64, got ", dtype_name(dtype)));
  ptr_->dtype = dtype;
  return *this;
}

// ---- Activation ----

ActivationLayer::ActivationLayer(std::string activation) : Layer("Activation"), activation(std::move(activation)) {
  activations::validate(this->activation, who(*this));
  set_supports_masking(true);
}

Tensor ActivationLayer::call(const Tensor& x, const CallArgs&) { return activations::apply(activation, x); }

Config ActivationLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["activation"] = activation;
  return c;
}

std::shared_ptr<Layer> ActivationLayer::from_config(const Config& config) {
  auto layer = std::make_shared<ActivationLayer>(config.at("activation").get<std::string>());
  detail::apply_base_config(*layer, config);
  return layer;
}

Activation::Activation(const std::string& name) : LayerBuilder(std::make_shared<ActivationLayer>(name)) {}

// ---- Flatten ----

FlattenLayer::FlattenLayer() : Layer("Flatten") {}

Tensor FlattenLayer::call(const Tensor& x, const CallArgs&) {
  if (x.dim() == 0) fail(str("expected an input with a batch axis, got shape ", x.shape()));
  if (x.dim() == 1) return ops::unsqueeze(x, 1);
  return ops::flatten(x);
}

Config FlattenLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["data_format"] = "channels_last";
  return c;
}

std::shared_ptr<Layer> FlattenLayer::from_config(const Config& config) {
  auto layer = std::make_shared<FlattenLayer>();
  detail::apply_base_config(*layer, config);
  return layer;
}

Flatten::Flatten() : LayerBuilder(std::make_shared<FlattenLayer>()) {}

// ---- Reshape ----

ReshapeLayer::ReshapeLayer(Shape target) : Layer("Reshape"), target_shape(std::move(target)) {
  int inferred = 0;
  for (int64_t d : target_shape) {
    if (d == -1) ++inferred;
    else if (d <= 0) inferred = 2;  // reported below
  }
  if (inferred > 1) {
    throw ValueError(str(who(*this), ": target_shape must hold positive extents and at most one -1, got ",
                         shape_to_string(target_shape)));
  }
}

void ReshapeLayer::build(const std::vector<Shape>& input_shapes) {
  const Shape& in = input_shapes[0];
  const int64_t n = in.empty() ? -1 : shape_numel(Shape(in.begin() + 1, in.end()));  // elements per sample
  int64_t known = 1;  // product of the target's given extents
  for (int64_t d : target_shape) known *= d == -1 ? 1 : d;
  resolved_ = target_shape;
  bool fits = n >= 0 && n % known == 0;
  for (int64_t& d : resolved_) {
    if (d == -1) d = n / known;
  }
  fits = fits && shape_numel(resolved_) == n;
  if (!fits) {
    fail(str("cannot reshape input of shape ", in, " to target shape ", shape_to_string(target_shape),
             ": the number of elements per sample (", n, ") must stay the same"));
  }
}

Tensor ReshapeLayer::call(const Tensor& x, const CallArgs&) {
  Shape shape{x.dim() > 0 ? x.shape()[0] : 0};
  shape.insert(shape.end(), resolved_.begin(), resolved_.end());
  if (x.dim() == 0 || shape_numel(Shape(x.shape().begin() + 1, x.shape().end())) != shape_numel(resolved_)) {
    fail(str("cannot reshape input of shape ", x.shape(), " to target shape ", shape_to_string(target_shape),
             " (built for ", shape_to_string(resolved_), ")"));
  }
  return ops::reshape(x, shape);
}

Config ReshapeLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["target_shape"] = target_shape;
  return c;
}

std::shared_ptr<Layer> ReshapeLayer::from_config(const Config& config) {
  auto layer = std::make_shared<ReshapeLayer>(config.at("target_shape").get<Shape>());
  detail::apply_base_config(*layer, config);
  return layer;
}

Reshape::Reshape(Shape target_shape) : LayerBuilder(std::make_shared<ReshapeLayer>(std::move(target_shape))) {}

// ---- Dropout ----

DropoutLayer::DropoutLayer(double rate) : Layer("Dropout"), rate(rate) {
  if (!(rate >= 0.0 && rate < 1.0)) throw ValueError(str(who(*this), ": rate must be in [0, 1), got ", rate));
  set_supports_masking(true);
}

Tensor DropoutLayer::call(const Tensor& x, const CallArgs& args) {
  if (!args.training || rate == 0.0 || x.is_symbolic()) return x;
  // With .seed(s): a per-layer Weyl sequence s + k·⌊2⁶⁴/φ⌋ over the training calls k, so every
  // call draws a new pattern and two layers with the same seed draw the same ones.
  const uint64_t s = seed ? *seed + 0x9E3779B97F4A7C15ULL * ++calls_ : next_seed();
  return ops::dropout(x, rate, true, s);
}

Config DropoutLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["rate"] = rate;
  c["seed"] = seed ? Config(*seed) : Config(nullptr);
  c["noise_shape"] = nullptr;
  return c;
}

std::shared_ptr<Layer> DropoutLayer::from_config(const Config& config) {
  auto layer = std::make_shared<DropoutLayer>(config.at("rate").get<double>());
  if (config.contains("seed") && config["seed"].is_number_integer()) layer->seed = config["seed"].get<uint64_t>();
  detail::apply_base_config(*layer, config);
  return layer;
}

Dropout::Dropout(double rate) : LayerBuilder(std::make_shared<DropoutLayer>(rate)) {}

Dropout& Dropout::seed(uint64_t seed) {
  ptr_->seed = seed;
  return *this;
}

}  // namespace normnet::layers

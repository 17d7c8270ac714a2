// Conv2D, MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D over NHWC images.
// Shapes: N batch, H/W height/width, C (Cin) input channels, F filters.
#include "normnet/layers/conv.h"

#include "layers/layer_util.h"
#include "normnet/activations.h"
#include "normnet/ops/reduce.h"

namespace normnet::layers {

using detail::str;
using detail::who;

namespace {

std::string pair_string(std::array<int, 2> p) { return str("[", p[0], ", ", p[1], "]"); }

void check_positive_pair(const Layer& layer, const char* what, std::array<int, 2> p) {
  if (p[0] < 1 || p[1] < 1) throw ValueError(str(who(layer), ": ", what, " must be positive, got ", pair_string(p)));
}

std::array<int, 2> pair_from(const Config& c, const char* key, std::array<int, 2> fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  return detail::int_pair_from(c[key], str("config '", key, "'"));
}

// With "valid" padding a window larger than the image has no output position.
void check_window_fits(const Layer& layer, const Shape& in, std::array<int, 2> window, ops::Padding padding,
                       const char* what) {
  if (padding != ops::Padding::kValid) return;
  const bool too_small = (in[1] != kUnknownDim && in[1] < window[0]) || (in[2] != kUnknownDim && in[2] < window[1]);
  if (too_small) {
    throw ShapeError(str(who(layer), ": ", what, " ", pair_string(window), " with \"valid\" padding does not fit ",
                         "input shape ", in, " (use padding \"same\" or a larger input)"));
  }
}

void check_image(const Layer& layer, const Shape& in) {
  if (in.size() != 4) {
    throw ShapeError(str(who(layer), ": expected an input of rank 4 [batch, height, width, channels], got shape ", in));
  }
}

}  // namespace

// ---- Conv2D ----

Conv2DLayer::Conv2DLayer(int64_t filters, std::array<int, 2> kernel_size)
    : Layer("Conv2D"), filters(filters), kernel_size(kernel_size) {
  if (filters <= 0) throw ValueError(str(who(*this), ": filters must be positive, got ", filters));
  check_positive_pair(*this, "kernel_size", kernel_size);
}

void Conv2DLayer::build(const std::vector<Shape>& input_shapes) {
  const Shape& in = input_shapes[0];
  check_image(*this, in);
  check_window_fits(*this, in, kernel_size, padding, "kernel_size");
  kernel = add_weight("kernel", {kernel_size[0], kernel_size[1], in[3], filters}, kernel_initializer, true,
                      kernel_regularizer, dtype);
  if (use_bias) bias = add_weight("bias", {filters}, bias_initializer, true, bias_regularizer, dtype);
}

Tensor Conv2DLayer::call(const Tensor& x, const CallArgs&) {
  if (x.dim() != 4 || x.size(3) != kernel.size(2)) {
    fail(str("expected input [batch, height, width, ", kernel.size(2), "] (channels last), got shape ", x.shape()));
  }
  check_window_fits(*this, x.shape(), kernel_size, padding, "kernel_size");
  if (activation == "relu") return ops::conv2d_relu(detail::autocast(x, dtype), kernel, bias, strides, padding);
  Tensor y = ops::conv2d(detail::autocast(x, dtype), kernel, bias, strides, padding);
  return activations::apply(activation, y);
}

Config Conv2DLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["dtype"] = dtype_name(dtype);
  c["filters"] = filters;
  c["kernel_size"] = kernel_size;
  c["strides"] = strides;
  c["padding"] = detail::padding_name(padding);
  c["data_format"] = "channels_last";
  c["dilation_rate"] = std::array<int, 2>{1, 1};
  c["activation"] = activation;
  c["use_bias"] = use_bias;
  c["kernel_initializer"] = detail::to_config(kernel_initializer);
  c["bias_initializer"] = detail::to_config(bias_initializer);
  c["kernel_regularizer"] = detail::to_config(kernel_regularizer);
  c["bias_regularizer"] = detail::to_config(bias_regularizer);
  return c;
}

std::shared_ptr<Layer> Conv2DLayer::from_config(const Config& config) {
  Conv2D conv(detail::int_from(config.at("filters"), "Conv2D config 'filters'", INT64_MIN, INT64_MAX),
              detail::int_pair_from(config.at("kernel_size"), "Conv2D config 'kernel_size'"));
  conv.strides(pair_from(config, "strides", {1, 1}))
      .padding(config.value("padding", std::string("valid")))
      .activation(config.value("activation", std::string("linear")))
      .use_bias(config.value("use_bias", true))
      .kernel_initializer(detail::initializer_from(config, "kernel_initializer", initializers::GlorotUniform()))
      .bias_initializer(detail::initializer_from(config, "bias_initializer", initializers::Zeros()))
      .kernel_regularizer(detail::regularizer_from(config, "kernel_regularizer"))
      .bias_regularizer(detail::regularizer_from(config, "bias_regularizer"))
      .dtype(detail::dtype_from(config));
  detail::apply_base_config(*conv, config);
  return conv.ptr();
}

Conv2D::Conv2D(int64_t filters, std::array<int, 2> kernel_size)
    : LayerBuilder(std::make_shared<Conv2DLayer>(filters, kernel_size)) {}

Conv2D& Conv2D::strides(std::array<int, 2> strides) {
  check_positive_pair(*ptr_, "strides", strides);
  ptr_->strides = strides;
  return *this;
}
Conv2D& Conv2D::padding(const std::string& padding) {
  ptr_->padding = detail::padding_from_name(padding, who(*ptr_));
  return *this;
}
Conv2D& Conv2D::activation(const std::string& name) {
  activations::validate(name, who(*ptr_));
  ptr_->activation = name;
  return *this;
}
Conv2D& Conv2D::use_bias(bool use_bias) {
  ptr_->use_bias = use_bias;
  return *this;
}
Conv2D& Conv2D::kernel_initializer(Initializer init) {
  ptr_->kernel_initializer = std::move(init);
  return *this;
}
Conv2D& Conv2D::bias_initializer(Initializer init) {
  ptr_->bias_initializer = std::move(init);
  return *this;
}
Conv2D& Conv2D::kernel_regularizer(Regularizer reg) {
  ptr_->kernel_regularizer = std::move(reg);
  return *this;
}
Conv2D& Conv2D::bias_regularizer(Regularizer reg) {
  ptr_->bias_regularizer = std::move(reg);
  return *this;
}
Conv2D& Conv2D::dtype(DType dtype) {
  if (!is_floating(dtype)) throw ValueError(str(who(*ptr_), ": dtype must be float32 or float64, got ", dtype_name(dtype)));
  ptr_->dtype = dtype;
  return *this;
}

// ---- MaxPooling2D / AveragePooling2D ----

Pooling2DLayer::Pooling2DLayer(Kind kind, std::array<int, 2> pool_size)
    : Layer(kind == Kind::kMax ? "MaxPooling2D" : "AveragePooling2D"), kind(kind), pool_size(pool_size) {
  check_positive_pair(*this, "pool_size", pool_size);
}

std::array<int, 2> Pooling2DLayer::effective_strides() const { return strides[0] == 0 ? pool_size : strides; }

void Pooling2DLayer::build(const std::vector<Shape>& input_shapes) {
  check_image(*this, input_shapes[0]);
  check_window_fits(*this, input_shapes[0], pool_size, padding, "pool_size");
}

Tensor Pooling2DLayer::call(const Tensor& x, const CallArgs&) {
  check_image(*this, x.shape());
  check_window_fits(*this, x.shape(), pool_size, padding, "pool_size");
  if (kind == Kind::kMax) return ops::max_pool2d(x, pool_size, effective_strides(), padding);
  return ops::avg_pool2d(x, pool_size, effective_strides(), padding);
}

Config Pooling2DLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["pool_size"] = pool_size;
  c["strides"] = effective_strides();
  c["padding"] = detail::padding_name(padding);
  c["data_format"] = "channels_last";
  return c;
}

std::shared_ptr<Layer> Pooling2DLayer::from_config(Kind kind, const Config& config) {
  auto layer = std::make_shared<Pooling2DLayer>(kind, pair_from(config, "pool_size", {2, 2}));
  layer->strides = pair_from(config, "strides", {0, 0});
  check_positive_pair(*layer, "strides", layer->effective_strides());
  layer->padding = detail::padding_from_name(config.value("padding", std::string("valid")), who(*layer));
  detail::apply_base_config(*layer, config);
  return layer;
}

template <class Self>
Self& Pooling2DBuilder<Self>::strides(std::array<int, 2> strides) {
  check_positive_pair(*this->ptr_, "strides", strides);
  this->ptr_->strides = strides;
  return this->self();
}

template <class Self>
Self& Pooling2DBuilder<Self>::padding(const std::string& padding) {
  this->ptr_->padding = detail::padding_from_name(padding, who(*this->ptr_));
  return this->self();
}

template class Pooling2DBuilder<MaxPooling2D>;
template class Pooling2DBuilder<AveragePooling2D>;

MaxPooling2D::MaxPooling2D(std::array<int, 2> pool_size)
    : Pooling2DBuilder(std::make_shared<Pooling2DLayer>(Pooling2DLayer::Kind::kMax, pool_size)) {}

AveragePooling2D::AveragePooling2D(std::array<int, 2> pool_size)
    : Pooling2DBuilder(std::make_shared<Pooling2DLayer>(Pooling2DLayer::Kind::kAverage, pool_size)) {}

// ---- GlobalAveragePooling2D ----

GlobalAveragePooling2DLayer::GlobalAveragePooling2DLayer() : Layer("GlobalAveragePooling2D") {}

Tensor GlobalAveragePooling2DLayer::call(const Tensor& x, const CallArgs&) {
  check_image(*this, x.shape());
  return ops::mean(x, {1, 2}, keepdims);
}

Config GlobalAveragePooling2DLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["data_format"] = "channels_last";
  c["keepdims"] = keepdims;
  return c;
}

std::shared_ptr<Layer> GlobalAveragePooling2DLayer::from_config(const Config& config) {
  auto layer = std::make_shared<GlobalAveragePooling2DLayer>();
  layer->keepdims = config.value("keepdims", false);
  detail::apply_base_config(*layer, config);
  return layer;
}

GlobalAveragePooling2D::GlobalAveragePooling2D()
    : LayerBuilder(std::make_shared<GlobalAveragePooling2DLayer>()) {}

GlobalAveragePooling2D& GlobalAveragePooling2D::keepdims(bool keepdims) {
  ptr_->keepdims = keepdims;
  return *this;
}

}  // namespace normnet::layers

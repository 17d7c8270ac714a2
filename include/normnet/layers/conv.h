// Convolution and pooling layers over NHWC images (channels_last, as Keras's default).
//
//   auto h = layers::Conv2D(32, {3, 3}).padding("same").activation("relu")(image);   // [N, H, W, 32]
//   h = layers::MaxPooling2D({2, 2})(h);                                              // [N, H/2, W/2, 32]
//   auto v = layers::GlobalAveragePooling2D()(h);                                     // [N, 32]
#pragma once

#include <array>
#include <string>

#include "normnet/layer.h"
#include "normnet/ops/conv.h"

namespace normnet::layers {

// y = activation(conv2d(x, kernel) + bias), x [N, H, W, Cin], kernel [kh, kw, Cin, filters]
// (Keras's layout), bias [filters]. Keras's defaults: strides 1, "valid" padding, glorot_uniform
// kernel, zero bias. Parameters: kh·kw·Cin·filters + filters (Conv2D(1→32, 3×3) = 320).
class Conv2DLayer : public Layer {
 public:
  Conv2DLayer(int64_t filters, std::array<int, 2> kernel_size);
  void build(const std::vector<Shape>& input_shapes) override;
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  int64_t filters;
  std::array<int, 2> kernel_size;
  std::array<int, 2> strides{1, 1};
  ops::Padding padding = ops::Padding::kValid;
  std::string activation = "linear";
  bool use_bias = true;
  Initializer kernel_initializer = initializers::GlorotUniform();
  Initializer bias_initializer = initializers::Zeros();
  Regularizer kernel_regularizer;
  Regularizer bias_regularizer;
  DType dtype = DType::kFloat32;
  Tensor kernel, bias;  // set by build()
};

class Conv2D : public LayerBuilder<Conv2D, Conv2DLayer> {
 public:
  Conv2D(int64_t filters, std::array<int, 2> kernel_size);
  Conv2D& strides(std::array<int, 2> strides);
  // "valid" (no padding) or "same" (TensorFlow's: output extent ceil(H/stride)).
  Conv2D& padding(const std::string& padding);
  Conv2D& activation(const std::string& name);
  Conv2D& use_bias(bool use_bias);
  Conv2D& kernel_initializer(Initializer init);
  Conv2D& bias_initializer(Initializer init);
  Conv2D& kernel_regularizer(Regularizer reg);
  Conv2D& bias_regularizer(Regularizer reg);
  Conv2D& dtype(DType dtype);
};

// Max or average over pool_size windows of x [N, H, W, C]; strides default to the pool size
// (Keras's strides=None). Average pooling with "same" padding divides by the real elements.
class Pooling2DLayer : public Layer {
 public:
  enum class Kind { kMax, kAverage };
  Pooling2DLayer(Kind kind, std::array<int, 2> pool_size);
  void build(const std::vector<Shape>& input_shapes) override;
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(Kind kind, const Config& config);

  Kind kind;
  std::array<int, 2> pool_size;
  std::array<int, 2> strides{0, 0};  // {0, 0}: the pool size
  ops::Padding padding = ops::Padding::kValid;

  [[nodiscard]] std::array<int, 2> effective_strides() const;
};

template <class Self>
class Pooling2DBuilder : public LayerBuilder<Self, Pooling2DLayer> {
 public:
  using LayerBuilder<Self, Pooling2DLayer>::LayerBuilder;
  Self& strides(std::array<int, 2> strides);
  Self& padding(const std::string& padding);
};

class MaxPooling2D : public Pooling2DBuilder<MaxPooling2D> {
 public:
  explicit MaxPooling2D(std::array<int, 2> pool_size = {2, 2});
};

class AveragePooling2D : public Pooling2DBuilder<AveragePooling2D> {
 public:
  explicit AveragePooling2D(std::array<int, 2> pool_size = {2, 2});
};

// Mean over H and W: [N, H, W, C] -> [N, C] (or [N, 1, 1, C] with keepdims). Drops masks.
class GlobalAveragePooling2DLayer : public Layer {
 public:
  GlobalAveragePooling2DLayer();
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  bool keepdims = false;
};

class GlobalAveragePooling2D : public LayerBuilder<GlobalAveragePooling2D, GlobalAveragePooling2DLayer> {
 public:
  GlobalAveragePooling2D();
  GlobalAveragePooling2D& keepdims(bool keepdims);
};

extern template class Pooling2DBuilder<MaxPooling2D>;
extern template class Pooling2DBuilder<AveragePooling2D>;

}  // namespace normnet::layers

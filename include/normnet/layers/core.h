// Core layers: Dense, Activation, Flatten, Reshape, Dropout (Lambda is in layers/lambda.h).
//
//   auto h = layers::Dense(64).activation("relu").kernel_regularizer(regularizers::L2(1e-4))(x);
//   auto y = layers::Dropout(0.5)(layers::Flatten()(h), /*training=*/true);
//
// Weighted layers create float32 weights unless given `.dtype(DType::kFloat64)` (Keras's `dtype`
// argument); floating inputs are cast to the layer's dtype, as Keras autocasts.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "normnet/layer.h"

namespace normnet::layers {

// y = activation(x·kernel + bias), kernel [in, units], bias [units] (Keras's Dense; acts on the
// last axis of inputs of any rank). Passes masks through.
class DenseLayer : public Layer {
 public:
  explicit DenseLayer(int64_t units);
  void build(const std::vector<Shape>& input_shapes) override;
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  int64_t units;
  std::string activation = "linear";
  bool use_bias = true;
  Initializer kernel_initializer = initializers::GlorotUniform();
  Initializer bias_initializer = initializers::Zeros();
  Regularizer kernel_regularizer;
  Regularizer bias_regularizer;
  DType dtype = DType::kFloat32;  // of the weights (and of the computation)
  Tensor kernel, bias;  // set by build()
};

class Dense : public LayerBuilder<Dense, DenseLayer> {
 public:
  explicit Dense(int64_t units);
  Dense& activation(const std::string& name);
  Dense& use_bias(bool use_bias);
  Dense& kernel_initializer(Initializer init);
  Dense& bias_initializer(Initializer init);
  Dense& kernel_regularizer(Regularizer reg);
  Dense& bias_regularizer(Regularizer reg);
  Dense& dtype(DType dtype);
};

// y = activation(x) by Keras name ("relu", "softmax", ...). Passes masks through.
class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(std::string activation);
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  std::string activation;
};

class Activation : public LayerBuilder<Activation, ActivationLayer> {
 public:
  explicit Activation(const std::string& name);
};

// [N, d1, d2, ...] -> [N, d1·d2·...]; a 1-d input [N] becomes [N, 1] (as Keras). Drops masks.
class FlattenLayer : public Layer {
 public:
  FlattenLayer();
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);
};

class Flatten : public LayerBuilder<Flatten, FlattenLayer> {
 public:
  Flatten();
};

// [N, ...] -> [N, ...target_shape]; target_shape excludes the batch axis and may hold one -1
// (inferred). Validated when built: the element counts must agree. Drops masks.
class ReshapeLayer : public Layer {
 public:
  explicit ReshapeLayer(Shape target_shape);
  void build(const std::vector<Shape>& input_shapes) override;
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  Shape target_shape;

 private:
  Shape resolved_;  // target_shape with the -1 filled in (set by build)
};

class Reshape : public LayerBuilder<Reshape, ReshapeLayer> {
 public:
  explicit Reshape(Shape target_shape);
};

// Inverted dropout in training (zero with probability `rate`, survivors scaled by 1/(1-rate));
// identity in inference. Each training call draws a fresh seed from normnet::next_seed(), or,
// after .seed(s), from a per-layer stream started at s. Passes masks through.
class DropoutLayer : public Layer {
 public:
  explicit DropoutLayer(double rate);
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  double rate;
  std::optional<uint64_t> seed;

 private:
  uint64_t calls_ = 0;  // training calls so far (advances the per-layer seed stream)
};

class Dropout : public LayerBuilder<Dropout, DropoutLayer> {
 public:
  explicit Dropout(double rate);
  Dropout& seed(uint64_t seed);
};

}  // namespace normnet::layers

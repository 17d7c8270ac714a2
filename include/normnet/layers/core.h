// Core layers: Dense, Activation, Flatten, Reshape, Dropout, Lambda.
#pragma once

#include <functional>
#include <string>

#include "normnet/layer.h"

namespace normnet::layers {

// y = activation(x·kernel + bias), kernel [in, units], bias [units] (Keras's Dense; acts on the
// last axis of inputs of any rank).
class DenseLayer : public Layer {
 public:
  explicit DenseLayer(int64_t units);
  void build(const std::vector<Shape>& input_shapes) override;
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;

  int64_t units;
  std::string activation = "linear";
  bool use_bias = true;
  Initializer kernel_initializer = initializers::GlorotUniform();
  Initializer bias_initializer = initializers::Zeros();
  Regularizer kernel_regularizer;
  Regularizer bias_regularizer;
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
};

}  // namespace normnet::layers

// The layer behind normnet::Input: holds the input's shape and dtype; never called.
#pragma once

#include "normnet/layer.h"

namespace normnet {

class InputLayer : public Layer {
 public:
  InputLayer(Shape shape, DType dtype);
  std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] const Shape& input_shape() const { return shape_; }  // with the batch axis
  [[nodiscard]] DType input_dtype() const { return dtype_; }

 private:
  Shape shape_;
  DType dtype_;
};

}  // namespace normnet

// Merge layers: Concatenate(axis) and Add, called on a vector of tensors.
//
//   auto both = layers::Concatenate()(std::vector<Tensor>{a, b});   // [N, Ca + Cb]
//   auto sum = layers::Add()(std::vector<Tensor>{a, b});            // a + b
//
// Masks (Keras's rules): Add's output mask is the AND of its inputs' masks; Concatenate's is the
// inputs' masks (ones for an input without one) joined along the axis, then AND-ed over the
// last axis when the join is along the feature axis.
#pragma once

#include "normnet/layer.h"

namespace normnet::layers {

// Joins the inputs along `axis` (negative counts from the end); every other extent must match.
class ConcatenateLayer : public Layer {
 public:
  explicit ConcatenateLayer(int axis = -1);
  void build(const std::vector<Shape>& input_shapes) override;
  std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, const CallArgs& args) override;
  std::vector<Tensor> compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  const int axis;
};

class Concatenate : public LayerBuilder<Concatenate, ConcatenateLayer> {
 public:
  explicit Concatenate(int axis = -1);
};

// Elementwise sum of the inputs (NumPy broadcasting between their shapes, as Keras allows).
class AddLayer : public Layer {
 public:
  AddLayer();
  void build(const std::vector<Shape>& input_shapes) override;
  std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, const CallArgs& args) override;
  std::vector<Tensor> compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);
};

class Add : public LayerBuilder<Add, AddLayer> {
 public:
  Add();
};

}  // namespace normnet::layers

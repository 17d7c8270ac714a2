// ActivityRegularization: an identity layer that adds l1·Σ|x| + l2·Σx² (divided by the batch
// size, as every activity penalty: normnet/regularizers.h) to the model's losses.
//
//   auto h = layers::ActivityRegularization(0.0, 1e-4)(features);   // model.losses() gets the term
#pragma once

#include "normnet/layer.h"

namespace normnet::layers {

class ActivityRegularizationLayer : public Layer {
 public:
  // Keras's defaults: l1 = l2 = 0. Both must be >= 0.
  explicit ActivityRegularizationLayer(double l1 = 0.0, double l2 = 0.0);
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  const double l1;
  const double l2;
};

class ActivityRegularization : public LayerBuilder<ActivityRegularization, ActivityRegularizationLayer> {
 public:
  explicit ActivityRegularization(double l1 = 0.0, double l2 = 0.0);
};

}  // namespace normnet::layers

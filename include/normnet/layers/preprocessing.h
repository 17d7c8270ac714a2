// Preprocessing layers: Rescaling (Keras's layers.Rescaling), the bridge from image bytes to
// floats inside the model, so a data set can stay uint8 in memory (1 byte a pixel, not 4).
//
//   auto in = normnet::Input({28, 28, 1}, DType::kUInt8);
//   auto x = layers::Rescaling(1.0 / 255)(in);          // float32 in [0, 1]
//   auto y = layers::Dense(10)(layers::Flatten()(x));
#pragma once

#include "normnet/layer.h"

namespace normnet::layers {

// y = x·scale + offset. float32 and float64 inputs keep their dtype (and their gradient);
// integer inputs (uint8, int64) become float32, as Keras computes in its float32 policy. No
// weights; passes masks through. scale and offset must be finite.
class RescalingLayer : public Layer {
 public:
  explicit RescalingLayer(double scale, double offset = 0.0);
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  const double scale;
  const double offset;
};

class Rescaling : public LayerBuilder<Rescaling, RescalingLayer> {
 public:
  explicit Rescaling(double scale, double offset = 0.0);
};

}  // namespace normnet::layers

// Rescaling: y = x·scale + offset, composed from ops (cast, mul, add), so its gradient for
// floating inputs needs no code of its own.
#include "normnet/layers/preprocessing.h"

#include <cmath>

#include "layers/layer_util.h"
#include "normnet/ops/elementwise.h"

namespace normnet::layers {

using detail::str;
using detail::who;

RescalingLayer::RescalingLayer(double scale, double offset) : Layer("Rescaling"), scale(scale), offset(offset) {
  if (!std::isfinite(scale) || !std::isfinite(offset)) {
    throw ValueError(str(who(*this), ": scale and offset must be finite, got scale = ", scale, " and offset = ", offset));
  }
  set_supports_masking(true);
}

// Keras casts the input to the layer's compute dtype (float32) before x·scale + offset; here a
// float64 input stays float64 (gradient checks run in float64), anything else becomes float32.
// scale and offset are rounded to that dtype first, as Keras casts them.
Tensor RescalingLayer::call(const Tensor& x, const CallArgs&) {
  const Tensor xf = is_floating(x.dtype()) ? x : ops::cast(x, DType::kFloat32);
  const Tensor y = ops::mul(xf, scale);
  return offset == 0.0 ? y : ops::add(y, offset);
}

Config RescalingLayer::get_config() const {
  Config c = Layer::get_config();
  c["scale"] = scale;
  c["offset"] = offset;
  return c;
}

std::shared_ptr<Layer> RescalingLayer::from_config(const Config& config) {
  if (!config.contains("scale") || !config["scale"].is_number()) {
    throw ValueError(str("Rescaling config: \"scale\" must be a number, got ",
                         config.contains("scale") ? config["scale"].dump() : std::string("nothing")));
  }
  const Config offset = config.value("offset", Config(0.0));
  if (!offset.is_number()) throw ValueError(str("Rescaling config: \"offset\" must be a number, got ", offset.dump()));
  auto layer = std::make_shared<RescalingLayer>(config["scale"].get<double>(), offset.get<double>());
  detail::apply_base_config(*layer, config);
  return layer;
}

Rescaling::Rescaling(double scale, double offset) : LayerBuilder(std::make_shared<RescalingLayer>(scale, offset)) {}

}  // namespace normnet::layers

// ActivityRegularization: identity in the forward pass; the base Layer applies the L1L2
// activity regularizer set here after call() and divides it by the batch size.
#include "normnet/layers/regularization.h"

#include "layers/layer_util.h"

namespace normnet::layers {

using detail::str;
using detail::who;

ActivityRegularizationLayer::ActivityRegularizationLayer(double l1, double l2)
    : Layer("ActivityRegularization"), l1(l1), l2(l2) {
  if (!(l1 >= 0.0) || !(l2 >= 0.0)) {
    throw ValueError(str(who(*this), ": l1 and l2 must be >= 0, got l1 = ", l1, " and l2 = ", l2));
  }
  set_activity_regularizer(regularizers::L1L2(l1, l2));
  set_supports_masking(true);
}

Tensor ActivityRegularizationLayer::call(const Tensor& x, const CallArgs&) { return x; }

Config ActivityRegularizationLayer::get_config() const {
  Config c = Layer::get_config();  // the regularizer is implied by l1 and l2
  c["l1"] = l1;
  c["l2"] = l2;
  return c;
}

std::shared_ptr<Layer> ActivityRegularizationLayer::from_config(const Config& config) {
  auto layer = std::make_shared<ActivityRegularizationLayer>(config.value("l1", 0.0), config.value("l2", 0.0));
  if (config.contains("name") && config["name"].is_string()) layer->set_name(config["name"].get<std::string>());
  if (config.contains("trainable") && config["trainable"].is_boolean()) layer->set_trainable(config["trainable"].get<bool>());
  return layer;
}

ActivityRegularization::ActivityRegularization(double l1, double l2)
    : LayerBuilder(std::make_shared<ActivityRegularizationLayer>(l1, l2)) {}

}  // namespace normnet::layers

// Lambda: a layer from a function of tensors, the registry of named Lambda functions, and the
// one-time warning when a mask is dropped.
#include "normnet/layers/lambda.h"

#include <iostream>
#include <map>
#include <mutex>

#include "layers/layer_util.h"

namespace normnet::layers {

using detail::str;
using detail::who;

namespace {

struct LambdaRegistry {
  std::mutex mutex;
  std::map<std::string, LambdaFunction> functions;
};

LambdaRegistry& lambda_registry() {
  static LambdaRegistry registry;
  return registry;
}

LambdaFunction registered_function(const std::string& name) {
  LambdaRegistry& r = lambda_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.functions.find(name);
  if (it == r.functions.end()) {
    throw ValueError(str("Lambda: no function is registered under the name '", name,
                         "' (register it with layers::register_lambda(\"", name, "\", fn))"));
  }
  return it->second;
}

}  // namespace

void detail::register_lambda_function(const std::string& name, LambdaFunction function) {
  if (name.empty()) throw ValueError("layers::register_lambda: the name must not be empty");
  if (!function.fn) throw ValueError(str("layers::register_lambda: the function registered as '", name, "' is empty"));
  LambdaRegistry& r = lambda_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.functions[name] = std::move(function);
}

LambdaLayer::LambdaLayer(LambdaFunction function, std::string registered_name)
    : Layer("Lambda"), function_(std::move(function)), registered_name_(std::move(registered_name)) {
  if (!function_.fn) throw ValueError(str(who(*this), ": the function is empty"));
}

std::vector<Tensor> LambdaLayer::call_multi(const std::vector<Tensor>& xs, const CallArgs&) {
  if (function_.single_input && xs.size() != 1) {
    fail(str("its function takes one tensor, got ", xs.size(), " inputs (use a function of std::vector<Tensor>)"));
  }
  std::vector<Tensor> outs = function_.fn(xs);
  for (std::size_t i = 0; i < outs.size(); ++i) {
    if (!outs[i].defined()) fail(str("its function returned an undefined tensor as output ", i));
  }
  return outs;
}

std::vector<Tensor> LambdaLayer::compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) {
  if (function_.mask_fn) return function_.mask_fn(xs, masks);
  bool any = false;
  for (const Tensor& m : masks) any = any || m.defined();
  if (any && !warned_dropped_mask_) {
    warned_dropped_mask_ = true;
    std::cerr << "normnet: warning: " << who(*this)
              << " received a mask but has no mask function, so the mask is dropped here and later layers "
                 "will not ignore masked steps; give it one with .mask_fn(...) (Keras drops it silently: "
                 "tensorflow#28143)\n";
  }
  return {};
}

Config LambdaLayer::get_config() const {
  Config c = detail::base_config(*this, Layer::get_config());
  c["function"] = registered() ? Config(registered_name_) : Config(nullptr);
  c["registered"] = registered();
  return c;
}

std::shared_ptr<Layer> LambdaLayer::from_config(const Config& config) {
  const std::string name = config.value("name", std::string("lambda"));
  if (!config.contains("function") || !config["function"].is_string()) {
    throw ValueError(str("Lambda '", name, "': its function was not registered under a name, so it cannot be ",
                         "rebuilt from a config (register it with layers::register_lambda and build the layer ",
                         "with Lambda::from_registry)"));
  }
  auto layer = Lambda::from_registry(config["function"].get<std::string>()).ptr();
  detail::apply_base_config(*layer, config);
  return layer;
}

Lambda::Lambda(LambdaFunction function) : LayerBuilder(std::make_shared<LambdaLayer>(std::move(function))) {}

Lambda Lambda::from_registry(const std::string& name) {
  return Lambda(std::make_shared<LambdaLayer>(registered_function(name), name));
}

}  // namespace normnet::layers

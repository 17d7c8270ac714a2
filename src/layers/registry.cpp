// The layer registry: class_name -> factory from config, with every built-in layer registered.
#include <map>
#include <mutex>

#include "layers/layer_util.h"
#include "normnet/layers.h"

namespace normnet::layers {

using detail::str;

namespace {

std::map<std::string, LayerFactory> builtin_factories() {
  std::map<std::string, LayerFactory> f;
  f["Dense"] = DenseLayer::from_config;
  f["Activation"] = ActivationLayer::from_config;
  f["Flatten"] = FlattenLayer::from_config;
  f["Reshape"] = ReshapeLayer::from_config;
  f["Dropout"] = DropoutLayer::from_config;
  f["Lambda"] = LambdaLayer::from_config;
  f["Conv2D"] = Conv2DLayer::from_config;
  f["MaxPooling2D"] = [](const Config& c) { return Pooling2DLayer::from_config(Pooling2DLayer::Kind::kMax, c); };
  f["AveragePooling2D"] = [](const Config& c) { return Pooling2DLayer::from_config(Pooling2DLayer::Kind::kAverage, c); };
  f["GlobalAveragePooling2D"] = GlobalAveragePooling2DLayer::from_config;
  f["Embedding"] = EmbeddingLayer::from_config;
  f["Masking"] = MaskingLayer::from_config;
  f["GlobalAveragePooling1D"] = GlobalAveragePooling1DLayer::from_config;
  f["L2Normalization"] = [](const Config& c) { return L2NormalizationLayer::from_config("L2Normalization", c); };
  f["UnitNormalization"] = [](const Config& c) { return L2NormalizationLayer::from_config("UnitNormalization", c); };
  f["ActivityRegularization"] = ActivityRegularizationLayer::from_config;
  f["Concatenate"] = ConcatenateLayer::from_config;
  f["Add"] = AddLayer::from_config;
  f["Rescaling"] = RescalingLayer::from_config;
  return f;
}

struct ClassRegistry {
  std::mutex mutex;
  std::map<std::string, LayerFactory> factories = builtin_factories();
};

// Built on first use: no static-initialization order to get wrong, and nothing for the linker to
// drop from a static library.
ClassRegistry& class_registry() {
  static ClassRegistry registry;
  return registry;
}

}  // namespace

void register_class(const std::string& class_name, LayerFactory factory) {
  if (class_name.empty()) throw ValueError("layers::register_class: the class name must not be empty");
  if (!factory) throw ValueError(str("layers::register_class: the factory of '", class_name, "' is empty"));
  ClassRegistry& r = class_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[class_name] = std::move(factory);
}

bool is_registered_class(const std::string& class_name) {
  ClassRegistry& r = class_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.factories.count(class_name) > 0;
}

std::vector<std::string> registered_classes() {
  ClassRegistry& r = class_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

namespace {
// The layer's name for messages: the "name" field when it is a string, else what it holds
// (never throws, whatever the config: these messages report bad configs).
std::string name_for_errors(const Config& config) {
  if (!config.is_object() || !config.contains("name")) return "?";
  const Config& name = config["name"];
  return name.is_string() ? name.get<std::string>() : name.dump();
}
}  // namespace

std::shared_ptr<Layer> from_config(const Config& class_and_config) {
  if (!class_and_config.is_object() || !class_and_config.contains("class_name") ||
      !class_and_config["class_name"].is_string()) {
    throw ValueError(str("layers::from_config: expected {\"class_name\": ..., \"config\": {...}}, got ",
                         class_and_config.dump()));
  }
  const std::string class_name = class_and_config["class_name"].get<std::string>();
  const Config config = class_and_config.value("config", Config::object());
  LayerFactory factory;
  {
    ClassRegistry& r = class_registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(class_name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    throw ValueError(str("layers::from_config: unknown layer class '", class_name, "' (layer '",
                         name_for_errors(config), "'); register custom layers with ",
                         "layers::register_class(\"", class_name, "\", factory)"));
  }
  try {
    return factory(config);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(str("layers::from_config: bad config for ", class_name, " '", name_for_errors(config),
                         "': ", e.what()));
  }
}

}  // namespace normnet::layers

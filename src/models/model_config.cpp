// Model configs both ways: Sequential's Keras-style get_config, and rebuilding Functional and
// Sequential models (nested ones included) from a config or from JSON text.
#include <cstdint>
#include <map>

#include "io/json_text.h"
#include "models/input_layer.h"
#include "normnet/layers.h"
#include "normnet/model.h"

namespace normnet {
namespace {

using detail::str;

constexpr int kMaxModelNesting = 64;

Config entry_of(const Layer& layer) {
  return Config{{"class_name", layer.class_name()}, {"config", layer.get_config()}};
}

}  // namespace

Config SequentialModel::get_config() const {
  Config config = Layer::get_config();
  Config layers = Config::array();
  if (has_graph()) {
    const Tensor& input = graph_inputs().at(0);
    layers.push_back(entry_of(*input.impl()->origin->node->layer));
  }
  for (const auto& layer : stack_) layers.push_back(entry_of(*layer));
  config["layers"] = layers;
  return config;
}

namespace {

[[noreturn]] void bad(const std::string& model, const std::string& what) {
  throw ValueError(str("model_from_config: model '", model, "': ", what));
}

std::string text_of(const Config& c) {
  std::string s = c.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 120 ? s.substr(0, 117) + "..." : s;
}

const Config& field(const Config& obj, const char* key, const std::string& model) {
  if (!obj.is_object() || !obj.contains(key)) bad(model, str("missing \"", key, "\""));
  return obj[key];
}

std::string name_in(const Config& config, const std::string& fallback) {
  return config.is_object() && config.contains("name") && config["name"].is_string()
             ? config["name"].get<std::string>()
             : fallback;
}

Model build_model(const Config& class_and_config, int depth);

// An Input from an InputLayer config: {"batch_input_shape": [null, d1, ...], "dtype", "name"}
// ("batch_shape", Keras 3's key, is read too).
Tensor input_from(const Config& config, const std::string& model) {
  const std::string name = name_in(config, "input");
  const bool keras3 =
      config.is_object() && !config.contains("batch_input_shape") && config.contains("batch_shape");
  const Config& shape = field(config, keras3 ? "batch_shape" : "batch_input_shape", model);
  if (!shape.is_array() || shape.empty())
    bad(model, str("InputLayer '", name, "': batch_input_shape must be [null, ...], got ", text_of(shape)));
  Shape dims;
  for (std::size_t i = 1; i < shape.size(); ++i) {
    // An unsigned value above 2^63 - 1 would wrap to a negative int64_t: refused with the rest.
    const Config& extent = shape[i];
    const bool fits = extent.is_number_integer() &&
                      !(extent.is_number_unsigned() && extent.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX));
    if (!fits || extent.get<int64_t>() < 1) {
      bad(model, str("InputLayer '", name, "': extents after the batch axis must be integers >= 1, got ",
                     text_of(shape)));
    }
    dims.push_back(extent.get<int64_t>());
  }
  const std::string dtype = config.value("dtype", std::string("float32"));
  DType dt;
  if (dtype == "float32")
    dt = DType::kFloat32;
  else if (dtype == "float64")
    dt = DType::kFloat64;
  else if (dtype == "int64")
    dt = DType::kInt64;
  else if (dtype == "uint8")
    dt = DType::kUInt8;
  else
    bad(model, str("InputLayer '", name, "': unknown dtype '", dtype, "'"));
  return Input(dims, dt, name);
}

std::shared_ptr<Layer> layer_from(const Config& entry, const std::string& model, int depth) {
  if (!entry.is_object() || !entry.contains("class_name") || !entry["class_name"].is_string()) {
    bad(model, str("a layer entry needs \"class_name\" and \"config\", got ", text_of(entry)));
  }
  const std::string cls = entry["class_name"].get<std::string>();
  if (cls == "Functional" || cls == "Model" || cls == "Sequential")
    return build_model(entry, depth + 1).ptr();
  return layers::from_config(
      Config{{"class_name", cls}, {"config", entry.value("config", Config::object())}});
}

// A reference [layer name, node index, tensor index] (Keras also allows a 4th element, kwargs).
struct Ref {
  std::string layer;
  std::size_t node = 0, tensor = 0;
};

// A JSON index: parsed text gives unsigned numbers, an in-memory get_config() signed ones.
bool is_index(const Config& c) { return c.is_number_integer() && c.get<int64_t>() >= 0; }

Ref ref_from(const Config& c, const std::string& model) {
  if (!c.is_array() || c.size() < 3 || !c[0].is_string() || !is_index(c[1]) || !is_index(c[2])) {
    bad(model, str("a tensor reference must be [layer name, node index, tensor index], got ", text_of(c)));
  }
  return Ref{c[0].get<std::string>(), c[1].get<std::size_t>(), c[2].get<std::size_t>()};
}

// The state of rebuilding one functional graph: each layer with the inbound nodes still to call,
// and the tensors made so far by (layer name, node, output index).
class GraphBuilder {
 public:
  explicit GraphBuilder(std::string model) : model_(std::move(model)) {}

  // Creates the layer of one "layers" entry (an InputLayer makes its Input tensor at once).
  void add_entry(const Config& entry, int depth) {
    const std::string name =
        name_in(entry, name_in(entry.is_object() ? entry.value("config", Config()) : Config(), ""));
    if (name.empty()) bad(model_, str("a layer entry has no name: ", text_of(entry)));
    if (outputs_.count(name)) bad(model_, str("two layers are named '", name, "'"));
    outputs_[name];
    if (entry.is_object() && entry.value("class_name", std::string()) == "InputLayer") {
      outputs_[name].push_back({input_from(field(entry, "config", model_), model_)});
      return;
    }
    Pending p{name, layer_from(entry, model_, depth), {}, 0};
    if (p.layer->name() != name) p.layer->set_name(name);
    const Config inbound = entry.value("inbound_nodes", Config::array());
    if (!inbound.is_array()) bad(model_, str("layer '", name, "': inbound_nodes must be an array"));
    for (const Config& node : inbound) {
      if (!node.is_array())
        bad(model_, str("layer '", name, "': an inbound node must be an array of references"));
      std::vector<Ref> refs;
      for (const Config& r : node) refs.push_back(ref_from(r, model_));
      p.nodes.push_back(std::move(refs));
    }
    pending_.push_back(std::move(p));
  }

  // Calls each layer on its inbound nodes in the order they become ready (a shared layer's later
  // node may wait for layers listed after it), as Keras's functional_from_config does.
  void call_layers() {
    for (bool progress = true; progress;) {
      progress = false;
      for (Pending& p : pending_) {
        while (p.next < p.nodes.size()) {
          std::vector<Tensor> ins;
          for (const Ref& r : p.nodes[p.next]) {
            if (const Tensor* t = find(r)) ins.push_back(*t);
          }
          if (ins.size() != p.nodes[p.next].size()) break;
          if (ins.empty()) bad(model_, str("layer '", p.name, "': an inbound node has no inputs"));
          outputs_[p.name].push_back((*p.layer)(ins));
          ++p.next;
          progress = true;
        }
      }
    }
    for (const Pending& p : pending_) {
      if (p.next < p.nodes.size()) {
        bad(model_,
            str("layer '", p.name, "': inbound node ", p.next, " refers to a tensor no layer produces"));
      }
    }
  }

  // The tensor a reference names; ValueError saying `what` refers to it when it does not exist.
  const Tensor& tensor(const Config& reference, const std::string& what) const {
    const Ref ref = ref_from(reference, model_);
    const Tensor* t = find(ref);
    if (!t) {
      bad(model_, str(what, " refers to node ", ref.node, " tensor ", ref.tensor, " of '", ref.layer,
                      "', which does not exist"));
    }
    return *t;
  }

 private:
  struct Pending {
    std::string name;
    std::shared_ptr<Layer> layer;
    std::vector<std::vector<Ref>> nodes;
    std::size_t next = 0;
  };
  const Tensor* find(const Ref& r) const {
    auto it = outputs_.find(r.layer);
    if (it == outputs_.end() || r.node >= it->second.size() || r.tensor >= it->second[r.node].size())
      return nullptr;
    return &it->second[r.node][r.tensor];
  }
  std::string model_;
  std::vector<Pending> pending_;
  std::map<std::string, std::vector<std::vector<Tensor>>> outputs_;
};

const Config& array_field(const Config& config, const char* key, const std::string& model) {
  const Config& list = field(config, key, model);
  if (!list.is_array()) bad(model, str("\"", key, "\" must be an array"));
  return list;
}

// Rebuilds a Functional config: its layers, their calls, inputs, outputs and model-level losses.
Model functional_from(const Config& config, int depth) {
  const std::string model = name_in(config, "?");
  GraphBuilder graph(model);
  for (const Config& entry : array_field(config, "layers", model)) graph.add_entry(entry, depth);
  graph.call_layers();
  std::vector<Tensor> inputs, outputs;
  for (const Config& r : array_field(config, "input_layers", model))
    inputs.push_back(graph.tensor(r, "input_layers"));
  for (const Config& r : array_field(config, "output_layers", model))
    outputs.push_back(graph.tensor(r, "output_layers"));
  Model m(inputs, outputs);
  if (model != "?") m.name(model);
  const Config losses = config.value("graph_losses", Config::array());
  if (!losses.is_array()) bad(model, "\"graph_losses\" must be an array");
  for (const Config& entry : losses) {
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string()) {
      bad(model, str("a graph loss must be [name, tensor reference], got ", text_of(entry)));
    }
    const std::string name = entry[0].get<std::string>();
    m.add_loss(graph.tensor(entry[1], "graph loss '" + name + "'"), name);
  }
  return m;
}

Model sequential_from(const Config& config, int depth) {
  const std::string model = name_in(config, "?");
  const Config& layer_list = array_field(config, "layers", model);
  Sequential s;
  if (model != "?") s.name(model);
  for (std::size_t i = 0; i < layer_list.size(); ++i) {
    const Config& entry = layer_list[i];
    if (entry.is_object() && entry.value("class_name", std::string()) == "InputLayer") {
      if (i != 0) bad(model, "an InputLayer can only come first in a Sequential");
      s.add(input_from(field(entry, "config", model), model));
    } else {
      s.add(LayerRef(layer_from(entry, model, depth)));
    }
  }
  return s;
}

Model build_model(const Config& class_and_config, int depth) {
  if (depth > kMaxModelNesting)
    throw ValueError(str("model_from_config: models nested deeper than ", kMaxModelNesting, " levels"));
  if (!class_and_config.is_object() || !class_and_config.contains("class_name") ||
      !class_and_config["class_name"].is_string()) {
    throw ValueError(
        str("model_from_config: expected {\"class_name\": \"Functional\" or \"Sequential\", \"config\": "
            "{...}}, got ",
            text_of(class_and_config)));
  }
  const std::string cls = class_and_config["class_name"].get<std::string>();
  const Config config = class_and_config.value("config", Config::object());
  if (!config.is_object())
    throw ValueError(str("model_from_config: the config of a ", cls, " must be an object"));
  if (cls != "Sequential" && cls != "Functional" && cls != "Model") {
    throw ValueError(str("model_from_config: class '", cls, "' is not a model (Functional or Sequential)"));
  }
  Model m = cls == "Sequential" ? sequential_from(config, depth) : functional_from(config, depth);
  // Only a frozen model is applied: set_trainable(true) would unfreeze the layers frozen inside it.
  if (config.contains("trainable") && config["trainable"].is_boolean() && !config["trainable"].get<bool>()) {
    m->set_trainable(false);
  }
  return m;
}

}  // namespace

Model model_from_config(const Config& class_and_config) {
  try {
    return build_model(class_and_config, 0);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(str("model_from_config: malformed config: ", e.what()));
  }
}

Model model_from_json(const std::string& json_text) {
  Config config;
  if (std::string problem = io::parse_json_bounded(json_text, io::kMaxJsonDepth, config); !problem.empty()) {
    throw ValueError(str("model_from_json: ", problem));
  }
  return model_from_config(config);
}

}  // namespace normnet

// Model persistence: save / save_weights / load_weights / load_model / saved_metadata, weight
// paths, compile options and optimizer state in a checkpoint, and ModelCheckpoint's save hook.
#include <cstring>
#include <new>
#include <set>

#include "core/allocator.h"
#include "io/json_text.h"
#include "io/safetensors.h"
#include "normnet/layers/lambda.h"
#include "normnet/model.h"
#include "training/training_state.h"

namespace normnet {
namespace {

using detail::str;

constexpr const char* kFormatVersion = "1";
constexpr const char* kVersionKey = "normnet.format_version";
constexpr const char* kConfigKey = "normnet.config";
constexpr const char* kCompileKey = "normnet.compile";
constexpr const char* kOptimizerKey = "normnet.optimizer";
constexpr const char* kOptimizerPrefix = "optimizer/";

// ---- weight paths ----

// Weights by path: "<layer>/<weight>" for the model's own layers, "<model>/<layer>/<weight>"
// inside a nested model; sublayers of a non-model layer are numbered ("<layer>/0/<weight>")
// because their auto-made names differ between processes. A shared weight is listed once.
void collect_paths(const Layer& layer, const std::string& path, std::set<const Layer*>& seen_layers,
                   std::set<const void*>& seen_weights, std::vector<NamedWeight>& out) {
  if (!seen_layers.insert(&layer).second) return;
  const std::vector<std::shared_ptr<Layer>> subs = layer.sublayers();
  std::set<const void*> sub_weights;
  for (const auto& sub : subs) {
    for (const Tensor& w : sub->weights()) sub_weights.insert(w.impl().get());
  }
  const std::string own_prefix = layer.name() + "/";
  for (const NamedWeight& nw : layer.named_weights()) {
    const void* key = nw.value.impl().get();
    if (sub_weights.count(key) || !seen_weights.insert(key).second) continue;
    const bool prefixed = nw.name.rfind(own_prefix, 0) == 0;
    out.push_back(
        NamedWeight{path + (prefixed ? nw.name.substr(own_prefix.size()) : nw.name), nw.value, nw.trainable});
  }
  const bool is_model = dynamic_cast<const FunctionalModel*>(&layer) != nullptr;
  for (std::size_t i = 0; i < subs.size(); ++i) {
    const std::string part = is_model ? subs[i]->name() : std::to_string(i);
    collect_paths(*subs[i], path + part + "/", seen_layers, seen_weights, out);
  }
}

std::vector<NamedWeight> weight_paths(const FunctionalModel& model) {
  std::vector<NamedWeight> out;
  std::set<const Layer*> seen_layers;
  std::set<const void*> seen_weights;
  collect_paths(model, "", seen_layers, seen_weights, out);
  return out;
}

// ---- what a full save needs ----

void check_lambdas_registered(const Layer& layer, std::set<const Layer*>& seen) {
  if (!seen.insert(&layer).second) return;
  if (const auto* lambda = dynamic_cast<const layers::LambdaLayer*>(&layer);
      lambda && !lambda->registered()) {
    throw Error(str("Model::save: Lambda layer '", layer.name(), "' runs a function that was not registered ",
                    "under a name, so the saved model could not rebuild it; register it with ",
                    "layers::register_lambda(\"name\", fn) and build the layer with ",
                    "layers::Lambda::from_registry(\"name\"), or save only the weights with save_weights()"));
  }
  for (const auto& sub : layer.sublayers()) check_lambdas_registered(*sub, seen);
}

// Losses (by config), loss weights and metric names per output; null when something cannot be
// written (a custom loss function or a model_loss).
Config compile_config(const detail::TrainingState& s) {
  if (s.model_loss) return nullptr;
  Config losses = Config::array(), weights = Config::array(), metrics = Config::array();
  const bool several = s.outputs.size() > 1;
  for (const detail::OutputSpec& out : s.outputs) {
    if (out.loss && out.loss.get_config().is_null()) return nullptr;
    losses.push_back(out.loss ? out.loss.get_config() : Config(nullptr));
    weights.push_back(out.weight);
    Config names = Config::array();
    for (const auto& metric : out.metrics) {
      std::string name = metric->name();
      if (several && name.rfind(out.name + "_", 0) == 0) name = name.substr(out.name.size() + 1);
      names.push_back(name);
    }
    metrics.push_back(names);
  }
  return Config{{"losses", losses}, {"loss_weights", weights}, {"metrics", metrics}};
}

bool is_optimizer_entry(const std::string& name) { return name.rfind(kOptimizerPrefix, 0) == 0; }

// JSON text of a config; ValueError (not a JSON library error) for names that are not UTF-8.
std::string json_text(const Config& config, const std::string& path) {
  try {
    return config.dump();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(str("Model::save: ", path, ": a layer name or option is not valid UTF-8: ", e.what()));
  }
}

void write_model(const FunctionalModel& m, const std::string& path, bool with_architecture,
                 const SaveOptions& o) {
  std::map<std::string, std::string> meta = o.metadata_;
  meta[kVersionKey] = kFormatVersion;
  const std::vector<NamedWeight> weights = weight_paths(m);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedWeight& w : weights) {
    if (is_optimizer_entry(w.name)) {
      throw ValueError(str("Model::save: ", path, ": weight '", w.name,
                           "' would be read back as optimizer state (", "names starting with \"",
                           kOptimizerPrefix, "\" are reserved); rename the layer"));
    }
    tensors.emplace_back(w.name, w.value);
  }
  if (with_architecture) {
    std::set<const Layer*> seen;
    check_lambdas_registered(m, seen);
    meta[kConfigKey] = json_text(Config{{"class_name", m.class_name()}, {"config", m.get_config()}}, path);
    if (o.include_optimizer_ && m.training_state && m.training_state->optimizer) {
      const Optimizer& opt = *m.training_state->optimizer;
      meta[kOptimizerKey] = json_text(opt.get_config(), path);
      if (Config compile = compile_config(*m.training_state); !compile.is_null()) {
        meta[kCompileKey] = json_text(compile, path);
      }
      for (const auto& [key, value] : opt.state(weights)) tensors.emplace_back(kOptimizerPrefix + key, value);
    }
  }
  io::write_safetensors(path, tensors, meta);
}

// ---- loading ----

std::string describe(const Tensor& t) { return str(dtype_name(t.dtype()), " ", t.shape()); }

void* raw(Tensor& t) {
  switch (t.dtype()) {
    case DType::kFloat32:
      return t.data<float>();
    case DType::kFloat64:
      return t.data<double>();
    case DType::kInt64:
      return t.data<int64_t>();
    case DType::kUInt8:
      return t.data<uint8_t>();
  }
  return nullptr;
}

// The file tensor each model weight takes (model path -> file name): by path when every path is
// in the file; otherwise by position when the file's weights, in the order written, have the
// model's dtypes and shapes one for one (a model built again in code gets new automatic layer
// names, "dense_7" for "dense_3", as Keras 2's load_weights matches by topological order).
std::map<std::string, std::string> match_weights(const std::vector<NamedWeight>& weights,
                                                 const io::SafetensorsContents& file) {
  std::map<std::string, std::string> by_name;
  bool all_named = true;
  for (const NamedWeight& w : weights) {
    by_name[w.name] = w.name;
    all_named = all_named && file.tensors.count(w.name);
  }
  if (all_named) return by_name;
  std::vector<std::string> written;
  for (const std::string& name : file.order) {
    if (!is_optimizer_entry(name)) written.push_back(name);
  }
  if (written.size() != weights.size()) return by_name;
  std::map<std::string, std::string> by_position;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const Tensor& t = file.tensors.at(written[i]);
    if (t.dtype() != weights[i].value.dtype() || t.shape() != weights[i].value.shape()) return by_name;
    by_position[weights[i].name] = written[i];
  }
  return by_position;
}

// Copies the file's tensors into the model's weights after checking every name, dtype and
// shape first, so a failure leaves the model unchanged. ValueError listing the problems.
// Returns the match (model path -> file name).
std::map<std::string, std::string> assign_weights(const std::vector<NamedWeight>& weights,
                                                  const io::SafetensorsContents& file,
                                                  const std::string& path) {
  const std::map<std::string, std::string> match = match_weights(weights, file);
  std::vector<std::string> problems;
  std::set<std::string> used;
  for (const NamedWeight& w : weights) {
    const std::string& name = match.at(w.name);
    used.insert(name);
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      problems.push_back(str("weight '", w.name, "' (", describe(w.value), ") is missing from the file"));
    } else if (it->second.dtype() != w.value.dtype() || it->second.shape() != w.value.shape()) {
      problems.push_back(str("weight '", w.name, "' is ", describe(it->second), " in the file but ",
                             describe(w.value), " in the model"));
    }
  }
  for (const auto& [name, t] : file.tensors) {
    if (is_optimizer_entry(name) || used.count(name)) continue;
    problems.push_back(
        str("the file has weight '", name, "' (", describe(t), "), which the model does not have",
            weights.empty() ? " (the model has no weights yet: build it by calling it or giving it an Input)"
                            : ""));
  }
  if (!problems.empty()) {
    std::string list;
    for (std::size_t i = 0; i < problems.size() && i < 8; ++i) list += "\n  " + problems[i];
    if (problems.size() > 8) list += str("\n  ... and ", problems.size() - 8, " more");
    throw ValueError(
        str(path, ": the weights do not match the model (", problems.size(), " problem(s)):", list));
  }
  for (const NamedWeight& w : weights) {
    Tensor dst = w.value;
    Tensor src = file.tensors.at(match.at(w.name));
    if (dst.numel() > 0)
      std::memcpy(raw(dst), raw(src), static_cast<std::size_t>(dst.numel()) * dtype_size(dst.dtype()));
  }
  return match;
}

// The "optimizer/<file weight name>/<slot>" tensors as Optimizer::load_state expects them:
// "<model weight path>/<slot>", through the weight match.
std::map<std::string, Tensor> optimizer_state_of(const io::SafetensorsContents& file,
                                                 const std::map<std::string, std::string>& match) {
  std::map<std::string, std::string> to_model;
  for (const auto& [model_path, file_name] : match) to_model[file_name] = model_path;
  std::map<std::string, Tensor> state;
  const std::size_t n = std::strlen(kOptimizerPrefix);
  for (const auto& [name, t] : file.tensors) {
    if (!is_optimizer_entry(name)) continue;
    std::string key = name.substr(n);
    const std::size_t slash = key.rfind('/');
    if (slash != std::string::npos) {
      auto it = to_model.find(key.substr(0, slash));
      if (it != to_model.end()) key = it->second + key.substr(slash);
    }
    state[key] = t;
  }
  return state;
}

Config json_entry(const std::map<std::string, std::string>& meta, const char* key, const std::string& file) {
  auto it = meta.find(key);
  if (it == meta.end()) return nullptr;
  Config out;
  if (std::string problem = io::parse_json_bounded(it->second, io::kMaxJsonDepth, out); !problem.empty()) {
    throw IoError(str(file, ": metadata \"", key, "\": ", problem));
  }
  return out;
}

void check_version(const std::map<std::string, std::string>& meta, const std::string& file) {
  auto it = meta.find(kVersionKey);
  if (it != meta.end() && it->second != kFormatVersion) {
    throw IoError(
        str(file, ": format version \"", it->second, "\" (this normnet reads version ", kFormatVersion, ")"));
  }
}

// Compiles `model` as it was saved and restores its optimizer's state.
void restore_training(Model& model, const Config& optimizer, const Config& compile,
                      const io::SafetensorsContents& file, const std::map<std::string, std::string>& match) {
  CompileOptions options;
  options.optimizer(optimizers::from_config(optimizer));
  std::vector<Loss> losses;
  for (const Config& l : compile.at("losses"))
    losses.push_back(l.is_null() ? Loss() : losses::from_config(l));
  options.losses(losses).loss_weights(compile.at("loss_weights").get<std::vector<double>>());
  options.metrics(compile.at("metrics").get<std::vector<std::vector<std::string>>>());
  model.compile(options);
  const std::map<std::string, Tensor> state = optimizer_state_of(file, match);
  if (!state.empty()) model.optimizer()->load_state(state, weight_paths(*model));
}

// The model of an untrusted config, built under an allocation budget: a legitimate file holds
// every weight, and building allocates each one a few times (initializer temporaries), so a
// config asking for much more than the file's weights is refused before memory runs out.
Model rebuild(const Config& config, const io::SafetensorsContents& file) {
  std::size_t weight_bytes = 0;
  for (const auto& [name, t] : file.tensors)
    weight_bytes += static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
  detail::AllocationBudget budget(8 * weight_bytes + (std::size_t{64} << 20));
  return model_from_config(config);
}

}  // namespace

void Model::save(const std::string& path, const SaveOptions& options) const {
  write_model(*ptr_, path, true, options);
}

void Model::save_weights(const std::string& path) const { write_model(*ptr_, path, false, SaveOptions()); }

void Model::load_weights(const std::string& path) {
  const io::SafetensorsContents file = io::read_safetensors(path);
  check_version(file.metadata, path);
  const std::vector<NamedWeight> weights = weight_paths(*ptr_);
  const Config saved_optimizer = json_entry(file.metadata, kOptimizerKey, path);
  const bool same_optimizer = optimizer() && saved_optimizer.is_object() &&
                              saved_optimizer.value("class_name", std::string()) ==
                                  optimizer()->get_config().value("class_name", std::string());
  const std::map<std::string, std::string> match = assign_weights(weights, file, path);
  if (!same_optimizer) return;
  const std::map<std::string, Tensor> state = optimizer_state_of(file, match);
  if (state.empty()) return;
  try {
    optimizer()->load_state(state, weights);
  } catch (const Error& e) {
    throw ValueError(str(path, ": the weights were loaded, but not the optimizer state: ", e.what()));
  }
}

Model load_model(const std::string& path) {
  const io::SafetensorsContents file = io::read_safetensors(path);
  check_version(file.metadata, path);
  const Config config = json_entry(file.metadata, kConfigKey, path);
  if (config.is_null()) {
    throw IoError(str(path, ": no model architecture (metadata \"", kConfigKey,
                      "\"); a file from save_weights() ",
                      "holds weights only: build the model in code and call model.load_weights(path)"));
  }
  try {
    Model model = rebuild(config, file);
    std::map<std::string, std::string> match;
    try {
      match = assign_weights(weight_paths(*model), file, path);
    } catch (const ValueError& e) {
      throw IoError(e.what());  // names the file already
    }
    const Config optimizer = json_entry(file.metadata, kOptimizerKey, path);
    const Config compile = json_entry(file.metadata, kCompileKey, path);
    if (optimizer.is_object() && compile.is_object())
      restore_training(model, optimizer, compile, file, match);
    return model;
  } catch (const IoError&) {
    throw;
  } catch (const Error& e) {
    throw IoError(str(path, ": cannot rebuild the saved model: ", e.what()));
  } catch (const nlohmann::json::exception& e) {
    throw IoError(str(path, ": malformed metadata: ", e.what()));
  } catch (const std::bad_alloc&) {
    throw IoError(str(path,
                      ": the saved architecture asks for far more memory than its weights in the file "
                      "(or than is available)"));
  }
}

std::map<std::string, std::string> saved_metadata(const std::string& path) {
  return io::read_safetensors(path).metadata;
}

namespace detail {
// ModelCheckpoint's save (declared in training/training_state.h).
void save_checkpoint_hook(Model& model, const std::string& path, bool weights_only, int epochs_done) {
  SaveOptions options;
  options.metadata("normnet.epoch", std::to_string(epochs_done));
  write_model(*model.ptr(), path, !weights_only, options);
}
}  // namespace detail

}  // namespace normnet

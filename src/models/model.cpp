// Functional models: tracing the layer graph from outputs back to Inputs, running it on real or
// symbolic tensors, nesting, and the Model handle.
#include "normnet/model.h"

#include <algorithm>
#include <map>
#include <set>

#include "models/input_layer.h"
#include "models/layer_fusion.h"

namespace normnet {
namespace {

using detail::GraphNode;
using detail::str;

const GraphNode* node_of(const Tensor& t) {
  return t.defined() && t.impl()->origin ? t.impl()->origin->node.get() : nullptr;
}

bool is_input_layer(const Layer& layer) { return dynamic_cast<const InputLayer*>(&layer) != nullptr; }

}  // namespace

FunctionalModel::FunctionalModel(std::string class_name, const std::string& name_prefix)
    : Layer(std::move(class_name), name_prefix) {}

FunctionalModel::FunctionalModel(std::vector<Tensor> inputs, std::vector<Tensor> outputs, std::string class_name)
    : Layer(std::move(class_name), "model") {
  set_graph(std::move(inputs), std::move(outputs));
}

void FunctionalModel::set_graph(std::vector<Tensor> inputs, std::vector<Tensor> outputs) {
  if (inputs.empty()) throw ValueError(str("Model '", name(), "': needs at least one input"));
  if (outputs.empty()) throw ValueError(str("Model '", name(), "': needs at least one output"));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const GraphNode* node = node_of(inputs[i]);
    if (!node || !is_input_layer(*node->layer)) {
      throw ValueError(str("Model '", name(), "': input ", i, " (shape ",
                           inputs[i].defined() ? shape_to_string(inputs[i].shape()) : "undefined",
                           ") must be a tensor made by normnet::Input()",
                           node ? str(", not the output of layer '", node->layer->name(), "'") : std::string()));
    }
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined() || !outputs[i].is_symbolic()) {
      throw ValueError(str("Model '", name(), "': output ", i, " must be a symbolic tensor built from the inputs"));
    }
  }
  inputs_ = std::move(inputs);
  outputs_ = std::move(outputs);
  trace();
  built_ = true;
}

// Post-order DFS from the outputs (and graph losses) to the Inputs, iterative and in argument
// order, so the order of steps and layers is deterministic.
void FunctionalModel::trace() {
  std::vector<Tensor> roots = outputs_;
  for (const auto& [loss_name, loss] : graph_losses_) roots.push_back(loss);
  std::set<const GraphNode*> model_inputs;
  for (const Tensor& t : inputs_) model_inputs.insert(node_of(t));

  steps_.clear();
  std::set<const GraphNode*> visited;
  std::vector<std::pair<std::shared_ptr<GraphNode>, std::size_t>> stack;
  auto push = [&](const Tensor& t) {
    const GraphNode* node = node_of(t);
    if (!node) {
      if (t.is_symbolic()) {
        throw ValueError(str("Model '", name(), "': a symbolic tensor of shape ", t.shape(),
                             " was not produced by a layer; wrap raw ops in layers::Lambda"));
      }
      return;  // a constant tensor
    }
    if (visited.count(node)) return;
    if (is_input_layer(*node->layer) && !model_inputs.count(node)) {
      throw ValueError(str("Model '", name(), "': the outputs depend on Input '", node->layer->name(), "' ",
                           t.shape(), ", which is not among the model's inputs"));
    }
    visited.insert(node);
    stack.emplace_back(t.impl()->origin->node, 0);
  };
  for (const Tensor& root : roots) {
    push(root);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->inputs.size()) {
        push(node->inputs[next++]);
        continue;
      }
      Step step{node, {}};
      for (const auto& weak : node->outputs) {
        auto impl = weak.lock();
        if (!impl) throw Error(str("Model '", name(), "': an intermediate tensor of layer '", node->layer->name(), "' no longer exists"));
        step.outputs.emplace_back(impl);
      }
      steps_.push_back(std::move(step));
      stack.pop_back();
    }
  }
  plan_fusion();
  // Layers: the Inputs first (in the model's input order), then in graph order.
  layers_.clear();
  for (const Tensor& t : inputs_) layers_.push_back(node_of(t)->layer);
  for (const Step& step : steps_) {
    if (std::find(layers_.begin(), layers_.end(), step.node->layer) == layers_.end()) layers_.push_back(step.node->layer);
  }
  std::set<std::string> names;
  for (const auto& layer : layers_) {
    if (!names.insert(layer->name()).second) {
      throw ValueError(str("Model '", name(), "': the layer name '", layer->name(),
                           "' is used by two layers; all layer names in a model must be unique"));
    }
  }
}

// Pairs a Conv2D(relu) step with the MaxPooling2D step that alone reads its output (not a model
// output nor a graph loss either), so that call_multi runs them as one op.
void FunctionalModel::plan_fusion() {
  std::map<const detail::TensorImpl*, int> readers;
  std::map<const detail::TensorImpl*, int> producer;
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    for (const Tensor& t : steps_[s].node->inputs) ++readers[t.impl().get()];
    for (const Tensor& t : steps_[s].outputs) producer[t.impl().get()] = static_cast<int>(s);
  }
  for (const Tensor& t : outputs_) ++readers[t.impl().get()];
  for (const auto& [loss_name, loss] : graph_losses_) ++readers[loss.impl().get()];
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    Step& pool = steps_[s];
    if (pool.node->inputs.size() != 1) continue;
    const detail::TensorImpl* between = pool.node->inputs[0].impl().get();
    const auto from = producer.find(between);
    if (from == producer.end() || readers[between] != 1) continue;
    Step& conv = steps_[static_cast<std::size_t>(from->second)];
    if (!detail::conv_relu_max_pool_fusible(*conv.node, *pool.node)) continue;
    conv.runs_in_later_step = true;
    pool.fused_from = from->second;
  }
}

void FunctionalModel::add_graph_loss(const Tensor& loss, const std::string& loss_name) {
  if (!loss.defined() || !loss.is_symbolic()) {
    throw ValueError(str("Model '", name(), "': add_loss needs a symbolic tensor of this model's graph"));
  }
  if (shape_numel(loss.shape()) != 1 && !(loss.dim() == 0)) {
    throw ShapeError(str("Model '", name(), "': add_loss expects a scalar, got shape ", loss.shape()));
  }
  graph_losses_.emplace_back(loss_name, loss);
  try {
    trace();
  } catch (...) {
    graph_losses_.pop_back();
    trace();
    throw;
  }
}

std::vector<Tensor> FunctionalModel::call_multi(const std::vector<Tensor>& xs, const CallArgs& args) {
  if (xs.size() != inputs_.size()) {
    fail(str("expected ", inputs_.size(), " input(s), got ", xs.size()));
  }
  std::map<const detail::TensorImpl*, Tensor> values;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& want = inputs_[i].shape();
    const Shape& got = xs[i].shape();
    bool ok = want.size() == got.size();
    for (std::size_t d = 1; ok && d < want.size(); ++d) ok = want[d] == got[d] || got[d] == kUnknownDim;
    if (!ok) {
      fail(str("input ", i, " ('", node_of(inputs_[i])->layer->name(), "') expects shape ", want, ", got ", got));
    }
    if (xs[i].dtype() != inputs_[i].dtype()) {
      fail(str("input ", i, " ('", node_of(inputs_[i])->layer->name(), "') expects ", dtype_name(inputs_[i].dtype()), ", got ",
               dtype_name(xs[i].dtype()), " of shape ", got));
    }
    values[inputs_[i].impl().get()] = xs[i];
  }
  auto value_of = [&](const Tensor& t) -> Tensor {
    auto it = values.find(t.impl().get());
    if (it != values.end()) return it->second;
    return t;  // a constant captured in the graph
  };
  auto run = [&](const Step& step) {
    std::vector<Tensor> ins;
    for (const Tensor& t : step.node->inputs) ins.push_back(value_of(t));
    std::vector<Tensor> outs = step.node->layer->forward(ins, args.training);
    if (outs.size() != step.outputs.size()) {
      fail(str("layer '", step.node->layer->name(), "' returned ", outs.size(), " outputs, the graph has ",
               step.outputs.size()));
    }
    for (std::size_t k = 0; k < outs.size(); ++k) values[step.outputs[k].impl().get()] = outs[k];
  };
  for (const Step& step : steps_) {
    if (is_input_layer(*step.node->layer) || step.runs_in_later_step) continue;
    if (step.fused_from >= 0) {
      const Step& first = steps_[static_cast<std::size_t>(step.fused_from)];
      const Tensor fused = detail::run_conv_relu_max_pool(*first.node->layer, *step.node->layer,
                                                          value_of(first.node->inputs[0]));
      if (fused.defined()) {
        values[step.outputs[0].impl().get()] = fused;
        continue;
      }
      run(first);  // this input does not qualify: the two layers one after the other
    }
    run(step);
  }
  for (const auto& [loss_name, loss] : graph_losses_) add_loss(value_of(loss), loss_name);
  std::vector<Tensor> result;
  for (const Tensor& t : outputs_) result.push_back(value_of(t));
  return result;
}

// Output masks were set by the inner layers; keep them as they are.
std::vector<Tensor> FunctionalModel::compute_mask(const std::vector<Tensor>&, const std::vector<Tensor>&) { return {}; }

std::vector<std::shared_ptr<Layer>> FunctionalModel::sublayers() const {
  std::vector<std::shared_ptr<Layer>> subs = layers_;
  for (const auto& t : Layer::sublayers()) subs.push_back(t);
  return subs;
}

Config FunctionalModel::get_config() const {
  // Keras's functional config: layers with their inbound nodes, input and output layers.
  // Node indices count this model's calls of a layer (Keras's model-relative numbering), so a
  // layer also called in another model reads back: its inbound_nodes below list the same calls.
  std::map<const GraphNode*, std::size_t> node_index;
  std::map<const Layer*, std::size_t> calls;
  for (const Step& step : steps_) node_index[step.node.get()] = calls[step.node->layer.get()]++;
  Config layers = Config::array();
  auto ref = [&](const Tensor& t) {
    const auto& origin = t.impl()->origin;
    return Config::array({origin->node->layer->name(), node_index.at(origin->node.get()), origin->index});
  };
  for (const auto& layer : layers_) {
    Config inbound = Config::array();
    for (const Step& step : steps_) {
      if (step.node->layer != layer || is_input_layer(*layer)) continue;
      Config args = Config::array();
      for (const Tensor& t : step.node->inputs) {
        if (t.impl()->origin) args.push_back(ref(t));
      }
      inbound.push_back(args);
    }
    layers.push_back(Config{{"class_name", layer->class_name()}, {"config", layer->get_config()},
                            {"name", layer->name()}, {"inbound_nodes", inbound}});
  }
  Config ins = Config::array(), outs = Config::array();
  for (const Tensor& t : inputs_) ins.push_back(ref(t));
  for (const Tensor& t : outputs_) outs.push_back(ref(t));
  Config config = Layer::get_config();
  config["layers"] = layers;
  config["input_layers"] = ins;
  config["output_layers"] = outs;
  // Model-level add_loss terms, as [name, reference] (tf.keras 2 kept these only in the graph).
  if (!graph_losses_.empty()) {
    Config losses = Config::array();
    for (const auto& [loss_name, loss] : graph_losses_) losses.push_back(Config::array({loss_name, ref(loss)}));
    config["graph_losses"] = losses;
  }
  return config;
}

// ---- the Model handle ----

Model::Model(std::vector<Tensor> inputs, std::vector<Tensor> outputs)
    : LayerHandle<FunctionalModel>(std::make_shared<FunctionalModel>(std::move(inputs), std::move(outputs))) {}

Model& Model::name(const std::string& name) {
  ptr_->set_name(name);
  return *this;
}

std::vector<LayerRef> Model::layers() const {
  std::vector<LayerRef> out;
  for (const auto& layer : ptr_->layers()) out.emplace_back(layer);
  return out;
}

LayerRef Model::get_layer(const std::string& name) const {
  for (const auto& layer : ptr_->layers()) {
    if (layer->name() == name) return LayerRef(layer);
  }
  std::string known;
  for (const auto& layer : ptr_->layers()) known += (known.empty() ? "" : ", ") + layer->name();
  throw ValueError(str("Model '", ptr_->name(), "': no layer named '", name, "' (layers: ", known, ")"));
}

LayerRef Model::get_layer(std::size_t index) const {
  const auto& layers = ptr_->layers();
  if (index >= layers.size()) {
    throw ValueError(str("Model '", ptr_->name(), "': layer index ", index, " out of range (", layers.size(), " layers)"));
  }
  return LayerRef(layers[index]);
}

void Model::add_loss(const Tensor& symbolic_loss, const std::string& name) { ptr_->add_graph_loss(symbolic_loss, name); }

// ---- Sequential ----

SequentialModel::SequentialModel() : FunctionalModel("Sequential", "sequential") {}

void SequentialModel::add_input(const Tensor& input) {
  if (!stack_.empty() || input_.defined()) {
    throw ValueError(str("Sequential '", name(), "': an Input can only be added first"));
  }
  input_ = input;
  rebuild_graph();
}

void SequentialModel::add(const LayerRef& layer) {
  if (!layer.ptr()) throw ValueError(str("Sequential '", name(), "': cannot add an empty layer handle"));
  if (std::find(stack_.begin(), stack_.end(), layer.ptr()) != stack_.end()) {
    throw ValueError(str("Sequential '", name(), "': layer '", layer.name(), "' is already in the model"));
  }
  stack_.push_back(layer.ptr());
  try {
    if (input_.defined()) rebuild_graph();
    else layers_ = stack_;
  } catch (...) {
    stack_.pop_back();
    if (input_.defined()) rebuild_graph();
    throw;
  }
}

void SequentialModel::rebuild_graph() {
  Tensor t = input_;
  for (const auto& layer : stack_) {
    std::vector<Tensor> outs = (*layer)(std::vector<Tensor>{t});
    if (outs.size() != 1) {
      throw ValueError(str("Sequential '", name(), "': layer '", layer->name(), "' has ", outs.size(),
                           " outputs; Sequential needs one output per layer (use the functional API)"));
    }
    t = outs[0];
  }
  set_graph({input_}, {t});
  has_graph_ = true;
  layers_ = stack_;  // Keras's Sequential.layers leaves out the InputLayer
}

void SequentialModel::ensure_graph(const Shape& shape, DType dtype) {
  if (has_graph_) return;
  if (shape.empty()) throw ShapeError(str("Sequential '", name(), "': input needs a batch axis, got shape []"));
  input_ = Input(Shape(shape.begin() + 1, shape.end()), dtype);
  rebuild_graph();
}

std::vector<Tensor> SequentialModel::call_multi(const std::vector<Tensor>& xs, const CallArgs& args) {
  if (xs.size() != 1) fail(str("expected 1 input, got ", xs.size()));
  if (stack_.empty()) fail("has no layers; add some with add()");
  if (!has_graph_) ensure_graph(xs[0].shape(), xs[0].dtype());
  return FunctionalModel::call_multi(xs, args);
}

Sequential::Sequential() : Model(std::make_shared<SequentialModel>()) {
  seq_ = std::static_pointer_cast<SequentialModel>(ptr_);
}

Sequential::Sequential(const std::vector<LayerRef>& layers) : Sequential() {
  for (const auto& layer : layers) add(layer);
}

Sequential& Sequential::add(const LayerRef& layer) {
  seq_->add(layer);
  return *this;
}

Sequential& Sequential::add(const Tensor& input) {
  seq_->add_input(input);
  return *this;
}

Sequential& Sequential::name(const std::string& name) {
  ptr_->set_name(name);
  return *this;
}

}  // namespace normnet

// Models: the functional API (Input, Model(inputs, outputs)) and Sequential. A model is a
// layer, so models nest (an autoencoder from an encoder and a decoder).
//
//   auto in = normnet::Input({784});
//   auto h = layers::Dense(64).activation("relu")(in);
//   auto out = layers::Dense(10)(h);
//   normnet::Model model({in}, {out});
//   model.summary();
//   Tensor y = model(x);                          // eager call on real data
//   normnet::Model features({in}, {model.get_layer("dense").output()});
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "normnet/layer.h"
#include "normnet/training.h"

namespace normnet {

namespace detail {
struct TrainingState;  // compile()'s optimizer, losses and metrics (src/training/)
}

// A symbolic input of shape [None, ...shape] (shape without the batch axis).
[[nodiscard]] Tensor Input(Shape shape, DType dtype = DType::kFloat32);
// The same with a layer name ("input_1" by default).
[[nodiscard]] Tensor Input(Shape shape, DType dtype, const std::string& name);

// The layer behind a model handle: runs its layers as a graph.
class FunctionalModel : public Layer {
 public:
  FunctionalModel(std::vector<Tensor> inputs, std::vector<Tensor> outputs, std::string class_name = "Functional");
  std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, const CallArgs& args) override;
  std::vector<Tensor> compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] std::vector<std::shared_ptr<Layer>> sublayers() const override;

  [[nodiscard]] const std::vector<Tensor>& graph_inputs() const { return inputs_; }
  [[nodiscard]] const std::vector<Tensor>& graph_outputs() const { return outputs_; }
  // Layers in graph order, InputLayers included (as Keras's model.layers).
  [[nodiscard]] const std::vector<std::shared_ptr<Layer>>& layers() const { return layers_; }
  // Adds a loss computed from symbolic tensors of this graph on every forward pass.
  void add_graph_loss(const Tensor& symbolic_loss, const std::string& name);

  // Set by compile(); read by fit/evaluate.
  std::shared_ptr<detail::TrainingState> training_state;
  // A callback sets this to end fit() after the current batch or epoch.
  bool stop_training = false;

 protected:
  // For Sequential: a model whose graph is set later.
  FunctionalModel(std::string class_name, const std::string& name_prefix);
  void set_graph(std::vector<Tensor> inputs, std::vector<Tensor> outputs);

 protected:
  std::vector<std::shared_ptr<Layer>> layers_;

 private:
  struct Step {
    std::shared_ptr<detail::GraphNode> node;
    std::vector<Tensor> outputs;  // the node's symbolic outputs, held so the graph stays alive
    // Layer fusion (src/models/layer_fusion.h): this step runs inside a later one, or runs the
    // earlier step `fused_from` together with its own layer as one op.
    bool runs_in_later_step = false;
    int fused_from = -1;
  };
  void trace();
  void plan_fusion();
  std::vector<Tensor> inputs_;
  std::vector<Tensor> outputs_;
  std::vector<Step> steps_;
  std::vector<std::pair<std::string, Tensor>> graph_losses_;
};

// What Model::save writes besides the architecture and the weights.
class SaveOptions {
 public:
  // The compile options and the optimizer's state (slots, iteration count), when compiled.
  SaveOptions& include_optimizer(bool include) {
    include_optimizer_ = include;
    return *this;
  }
  // An extra __metadata__ entry (string to string), e.g. {"normnet.epoch", "3"} in checkpoints.
  SaveOptions& metadata(const std::string& key, const std::string& value) {
    metadata_[key] = value;
    return *this;
  }
  bool include_optimizer_ = true;
  std::map<std::string, std::string> metadata_;
};

// The handle users hold. Copies share the model.
class Model : public LayerHandle<FunctionalModel> {
 public:
  Model(std::vector<Tensor> inputs, std::vector<Tensor> outputs);
  explicit Model(std::shared_ptr<FunctionalModel> model) : LayerHandle<FunctionalModel>(std::move(model)) {}

  using LayerHandle<FunctionalModel>::name;
  Model& name(const std::string& name);

  [[nodiscard]] LayerRef get_layer(const std::string& name) const;
  [[nodiscard]] LayerRef get_layer(std::size_t index) const;
  [[nodiscard]] std::vector<LayerRef> layers() const;
  [[nodiscard]] const std::vector<Tensor>& inputs() const { return ptr_->graph_inputs(); }
  [[nodiscard]] const std::vector<Tensor>& outputs() const { return ptr_->graph_outputs(); }
  [[nodiscard]] std::vector<NamedLoss> named_losses() const { return ptr_->named_losses(); }
  [[nodiscard]] std::vector<Tensor> non_trainable_weights() const { return ptr_->non_trainable_weights(); }

  // Adds a loss term: a symbolic tensor of this model's graph (re-evaluated on every forward,
  // like tf.keras 2's model.add_loss; Keras 3 dropped this) or a function of nothing.
  void add_loss(const Tensor& symbolic_loss, const std::string& name = "add_loss");

  // Keras's table: layer (type), output shape, params, "Connected to" for non-sequential graphs,
  // totals. `expand_nested` also lists the layers of nested models, indented.
  void summary(std::ostream& out, bool expand_nested = false) const;
  void summary(bool expand_nested = false) const;
  [[nodiscard]] std::string summary_string(bool expand_nested = false) const;

  // ---- training (compile: src/training/compile.cpp; the rest: src/training/fit.cpp) ----
  void compile(const CompileOptions& options);
  // x and y hold one tensor per input / per output; the first axis is the sample axis.
  History fit(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const FitOptions& options = {});
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  // "loss", each regularization term, metrics (averaged over the samples, in inference mode).
  std::map<std::string, double> evaluate(const std::vector<Tensor>& x, const std::vector<Tensor>& y,
                                         int64_t batch_size = 32, int verbose = 0);
  std::map<std::string, double> evaluate(const Tensor& x, const Tensor& y, int64_t batch_size = 32, int verbose = 0);
  // Outputs for all samples, in batches, without autograd, in inference mode.
  [[nodiscard]] std::vector<Tensor> predict(const std::vector<Tensor>& x, int64_t batch_size = 32) const;
  [[nodiscard]] Tensor predict(const Tensor& x, int64_t batch_size = 32) const;
  // One optimizer step on one batch; returns the logs of that batch.
  std::map<std::string, double> train_on_batch(const std::vector<Tensor>& x, const std::vector<Tensor>& y);
  std::map<std::string, double> train_on_batch(const Tensor& x, const Tensor& y);
  std::map<std::string, double> test_on_batch(const std::vector<Tensor>& x, const std::vector<Tensor>& y);
  std::map<std::string, double> test_on_batch(const Tensor& x, const Tensor& y);
  // The optimizer given to compile() (null before).
  [[nodiscard]] std::shared_ptr<Optimizer> optimizer() const;
  [[nodiscard]] bool stop_training() const { return ptr_->stop_training; }
  void set_stop_training(bool stop) { ptr_->stop_training = stop; }

  // ---- persistence (src/models/saving.cpp) ----
  // One .safetensors file: every weight, the architecture (Keras-style JSON config, nested models
  // included) and, when `options.include_optimizer` and the model is compiled, the compile options
  // and the optimizer's state. Written to a temporary file in the same directory, fsync'd, then
  // renamed: a crash leaves the old file or the new one. Error naming the layer for an
  // unregistered Lambda.
  void save(const std::string& path, const SaveOptions& options = {}) const;
  // Weights only (any model; unregistered Lambdas allowed), by weight path ("dense/kernel").
  void save_weights(const std::string& path) const;
  // Loads weights saved by save() or save_weights() into this (built) model, by weight path, or
  // by position when the paths differ but dtypes and shapes match one for one (a model built again
  // in code has new automatic layer names). ValueError naming the file and every missing,
  // unexpected or mismatched weight; nothing is changed then. When this model is compiled with an
  // optimizer of the class saved in the file, the optimizer's state is restored too.
  void load_weights(const std::string& path);
};

// Rebuilds a model saved by Model::save: the architecture from its config, then the weights, so
// predictions are identical bit for bit; compiled again with its optimizer state when saved so.
// Error (with the file name and what is wrong) for a missing, truncated, corrupt or hostile file.
[[nodiscard]] Model load_model(const std::string& path);
// The metadata map of a saved file ("normnet.epoch", "normnet.format_version", ...).
[[nodiscard]] std::map<std::string, std::string> saved_metadata(const std::string& path);

// A new model (fresh weights) from a Keras-style config: {"class_name": "Functional" | "Sequential",
// "config": {...}} as model.get_config() wrapped with its class name, nested models included.
// Layers are rebuilt by layers::from_config (custom classes and Lambda functions must be
// registered). Throws ValueError saying what is wrong; configs nested deeper than 64 levels are
// refused.
[[nodiscard]] Model model_from_config(const Config& class_and_config);
// The same from JSON text; the nesting depth is checked before parsing, so any text is safe to
// pass (the entry point for fuzzing the config reader).
[[nodiscard]] Model model_from_json(const std::string& json_text);

// A plain stack of layers. Its graph is built once the input shape is known: from an Input
// given first (add(Input({784})) or the constructor), or at the first call.
class SequentialModel : public FunctionalModel {
 public:
  SequentialModel();
  void add(const LayerRef& layer);
  void add_input(const Tensor& input);
  std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, const CallArgs& args) override;
  // Keras's Sequential config: {"name", "trainable", "layers": [InputLayer (once the input is
  // known), then each layer's {"class_name", "config"}]} (src/models/model_config.cpp).
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] const std::vector<std::shared_ptr<Layer>>& stack() const { return stack_; }
  [[nodiscard]] bool has_graph() const { return has_graph_; }
  void ensure_graph(const Shape& input_shape_with_batch, DType dtype);

 private:
  void rebuild_graph();
  std::vector<std::shared_ptr<Layer>> stack_;
  Tensor input_;
  bool has_graph_ = false;
};

class Sequential : public Model {
 public:
  Sequential();
  explicit Sequential(const std::vector<LayerRef>& layers);
  // Adds a layer on top; an Input tensor given first fixes the input shape.
  Sequential& add(const LayerRef& layer);
  Sequential& add(const Tensor& input);
  using Model::name;
  Sequential& name(const std::string& name);

 private:
  std::shared_ptr<SequentialModel> seq_;
};

}  // namespace normnet

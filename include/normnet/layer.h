// normnet::Layer: the Keras layer contract in C++.
//
// A layer validates and stores its options when constructed, creates its weights in build()
// the first time it is called (when the input shape is known), computes in call(), and
// describes itself in get_config(). Calling a layer on a symbolic tensor (from normnet::Input)
// adds it to a graph; calling it on a real tensor runs it at once.
//
//   class Scale : public normnet::Layer {
//    public:
//     Scale() : Layer("Scale") {}
//     void build(const std::vector<Shape>& shapes) override {
//       gamma_ = add_weight("gamma", {shapes[0].back()}, initializers::Ones());
//     }
//     Tensor call(const Tensor& x, const CallArgs&) override { return x * gamma_; }
//    private:
//     Tensor gamma_;
//   };
//   auto scale = normnet::make_layer<Scale>();
//   Tensor y = scale(x);
//
// Layers live in shared ownership: built-in layers are handles (layers::Dense), custom ones are
// made with make_layer<T>(...). Copies of a handle are the same layer (same weights).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "normnet/config.h"
#include "normnet/initializers.h"
#include "normnet/regularizers.h"
#include "normnet/tensor.h"

namespace normnet {

class Layer;

// Per-call arguments of Layer::call.
struct CallArgs {
  bool training = false;
  // Masks of the inputs (undefined where an input has none); `mask` is masks[0] for one input.
  Tensor mask;
  std::vector<Tensor> masks;
};

// A named scalar loss term (regularization or add_loss) of the most recent forward pass.
struct NamedLoss {
  std::string name;  // "dense_1/activity_regularizer", "dense/kernel_regularizer", "scale/add_loss"
  Tensor value;
};

// A weight with its owner-qualified name ("dense_1/kernel").
struct NamedWeight {
  std::string name;
  Tensor value;
  bool trainable = true;
};

namespace detail {
// One call of a layer on symbolic tensors: the edge of the functional graph.
struct GraphNode {
  std::shared_ptr<Layer> layer;
  std::vector<Tensor> inputs;  // symbolic (or constant) tensors the layer was called on
  std::vector<std::weak_ptr<TensorImpl>> outputs;
};
struct GraphOrigin {
  std::shared_ptr<GraphNode> node;
  int index = 0;  // which output of the node
};
// While alive, forward passes on this thread neither clear nor record loss terms (Model::predict
// needs none), so several threads can predict with one model at once.
class NoLossRecording {
 public:
  NoLossRecording();
  ~NoLossRecording();
  NoLossRecording(const NoLossRecording&) = delete;
  NoLossRecording& operator=(const NoLossRecording&) = delete;

 private:
  bool previous_;
};
}  // namespace detail

class Layer : public std::enable_shared_from_this<Layer> {
 public:
  // `class_name` is Keras's ("Dense"); the default name is its snake_case form made unique
  // in this process ("dense", "dense_1", ...).
  explicit Layer(std::string class_name);
  // The same with another default-name prefix (Keras names a Functional model "model").
  Layer(std::string class_name, const std::string& name_prefix);
  virtual ~Layer();
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  // ---- what subclasses override ----
  // Creates weights once the input shapes are known (batch extent may be kUnknownDim).
  virtual void build(const std::vector<Shape>& input_shapes);
  // One input, one output (most layers). Must accept symbolic tensors (use ops only).
  virtual Tensor call(const Tensor& x, const CallArgs& args);
  // Several inputs or outputs; the default forwards a single input to call().
  virtual std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, const CallArgs& args);
  // The output masks; the default passes the first input's mask through when
  // supports_masking(), and drops masks otherwise.
  virtual std::vector<Tensor> compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks);
  // Keras-style config: {"name", "trainable", "dtype", ...options}. Subclasses extend the base's.
  [[nodiscard]] virtual Config get_config() const;
  // Layers owned by this one (a model's layers, a custom layer's tracked parts).
  [[nodiscard]] virtual std::vector<std::shared_ptr<Layer>> sublayers() const;

  // ---- calling ----
  // On symbolic tensors: records a graph node and returns symbolic outputs. On real tensors:
  // builds if needed, runs, applies the activity regularizer, computes output masks.
  Tensor operator()(const Tensor& x, bool training = false);
  std::vector<Tensor> operator()(const std::vector<Tensor>& xs, bool training = false);
  // The same without graph recording (used by models to run their graph).
  std::vector<Tensor> forward(const std::vector<Tensor>& xs, bool training);

  // ---- weights ----
  // Creates a weight (a leaf tensor that requires grad when trainable). Called from build().
  Tensor add_weight(const std::string& name, Shape shape, const Initializer& initializer = {},
                    bool trainable = true, const Regularizer& regularizer = {}, DType dtype = DType::kFloat32);
  // Own weights first, then sublayers', in creation order.
  [[nodiscard]] std::vector<NamedWeight> named_weights() const;
  [[nodiscard]] std::vector<Tensor> weights() const;
  [[nodiscard]] std::vector<Tensor> trainable_weights() const;
  [[nodiscard]] std::vector<Tensor> non_trainable_weights() const;
  [[nodiscard]] int64_t count_params() const;

  // ---- losses ----
  // Adds a scalar loss term during call() (ignored for symbolic tensors).
  void add_loss(const Tensor& loss, const std::string& name = "add_loss");
  // Every regularization and add_loss term of the most recent forward pass, this layer's and
  // its sublayers'; weight penalties are computed from the current weights.
  [[nodiscard]] std::vector<Tensor> losses() const;
  [[nodiscard]] std::vector<NamedLoss> named_losses() const;
  void set_activity_regularizer(Regularizer regularizer) { activity_regularizer_ = std::move(regularizer); }
  [[nodiscard]] const Regularizer& activity_regularizer() const { return activity_regularizer_; }

  // ---- identity and state ----
  [[nodiscard]] const std::string& name() const { return name_; }
  void set_name(const std::string& name);
  [[nodiscard]] const std::string& class_name() const { return class_name_; }
  [[nodiscard]] bool built() const { return built_; }
  [[nodiscard]] bool trainable() const { return trainable_; }
  // Freezes or unfreezes every weight of the layer and its sublayers (as Keras's layer.trainable).
  void set_trainable(bool trainable);
  [[nodiscard]] bool supports_masking() const { return supports_masking_; }

  // ---- functional graph ----
  // Symbolic input / output of the first call on symbolic tensors (Keras's layer.output);
  // throws Error if the layer was never called on symbolic tensors or has several.
  [[nodiscard]] Tensor input() const;
  [[nodiscard]] Tensor output() const;
  [[nodiscard]] std::vector<Tensor> inputs_of_node(std::size_t node) const;
  [[nodiscard]] std::vector<Tensor> outputs_of_node(std::size_t node) const;
  [[nodiscard]] std::size_t inbound_node_count() const;

 protected:
  void set_supports_masking(bool supports) { supports_masking_ = supports; }
  // Registers a layer used inside this one, so its weights and losses count as ours.
  template <class L>
  std::shared_ptr<L> track(std::shared_ptr<L> layer) {
    tracked_.push_back(layer);
    return layer;
  }
  // Throws ShapeError "<Class> '<name>': <message>".
  [[noreturn]] void fail(const std::string& message) const;

 private:
  friend class FunctionalModel;
  friend Tensor Input(Shape shape, DType dtype, const std::string& name);
  void collect_losses(std::vector<NamedLoss>& out, std::vector<const Layer*>& seen) const;
  void collect_weights(std::vector<NamedWeight>& out, std::vector<const Layer*>& seen, bool parent_trainable) const;
  void clear_call_losses();
  std::string class_name_;
  std::string name_;
  bool built_ = false;
  bool trainable_ = true;
  bool supports_masking_ = false;
  struct Weight {
    std::string name;
    Tensor value;
    bool trainable;
    Regularizer regularizer;
  };
  std::vector<Weight> weights_;
  std::vector<NamedLoss> call_losses_;
  Regularizer activity_regularizer_;
  std::vector<std::shared_ptr<Layer>> tracked_;
  std::vector<std::weak_ptr<detail::GraphNode>> inbound_nodes_;
};

// Shared handle to a layer of type L; what layers::Dense(...) and make_layer<T>() return.
template <class L>
class LayerHandle {
 public:
  explicit LayerHandle(std::shared_ptr<L> layer) : ptr_(std::move(layer)) {}
  template <class U, class = std::enable_if_t<std::is_base_of_v<L, U>>>
  LayerHandle(const LayerHandle<U>& other) : ptr_(other.ptr()) {}  // NOLINT: upcast

  Tensor operator()(const Tensor& x, bool training = false) const { return (*ptr_)(x, training); }
  std::vector<Tensor> operator()(const std::vector<Tensor>& xs, bool training = false) const {
    return (*ptr_)(xs, training);
  }
  L* operator->() const { return ptr_.get(); }
  L& operator*() const { return *ptr_; }
  [[nodiscard]] const std::shared_ptr<L>& ptr() const { return ptr_; }

  // The most used Layer methods, reachable with a dot.
  [[nodiscard]] const std::string& name() const { return ptr_->name(); }
  [[nodiscard]] Tensor output() const { return ptr_->output(); }
  [[nodiscard]] Tensor input() const { return ptr_->input(); }
  [[nodiscard]] int64_t count_params() const { return ptr_->count_params(); }
  [[nodiscard]] std::vector<Tensor> weights() const { return ptr_->weights(); }
  [[nodiscard]] std::vector<Tensor> trainable_weights() const { return ptr_->trainable_weights(); }
  [[nodiscard]] std::vector<Tensor> losses() const { return ptr_->losses(); }
  [[nodiscard]] Config get_config() const { return ptr_->get_config(); }

 protected:
  std::shared_ptr<L> ptr_;
};

using LayerRef = LayerHandle<Layer>;

// Creates a custom layer in shared ownership: auto l2 = make_layer<L2Layer>(args...);
template <class L, class... Args>
LayerHandle<L> make_layer(Args&&... args) {
  return LayerHandle<L>(std::make_shared<L>(std::forward<Args>(args)...));
}

}  // namespace normnet

namespace normnet {

// Base of the built-in layer handles: the setters every layer has, returning the handle so
// options chain (layers::Dense(64).activation("relu").name("hidden")).
template <class Self, class L>
class LayerBuilder : public LayerHandle<L> {
 public:
  using LayerHandle<L>::LayerHandle;
  using LayerHandle<L>::name;
  Self& name(const std::string& name) {
    this->ptr_->set_name(name);
    return self();
  }
  Self& activity_regularizer(Regularizer regularizer) {
    this->ptr_->set_activity_regularizer(std::move(regularizer));
    return self();
  }
  Self& trainable(bool trainable) {
    this->ptr_->set_trainable(trainable);
    return self();
  }

 protected:
  Self& self() { return static_cast<Self&>(*this); }
};

}  // namespace normnet

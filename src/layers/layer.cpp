// The Layer base: naming, lazy build, eager and symbolic calls, weights, losses, masks, graph
// nodes. Subclasses supply build/call/compute_mask/get_config.
#include "normnet/layer.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <regex>

#include "normnet/autograd.h"

namespace normnet {
namespace {

using detail::str;

// Keras's generic_utils.to_snake_case: "Conv2D" -> "conv2d", "MaxPooling2D" -> "max_pooling2d".
std::string to_snake_case(const std::string& name) {
  std::string s = std::regex_replace(name, std::regex("(.)([A-Z][a-z]+)"), "$1_$2");
  s = std::regex_replace(s, std::regex("([a-z])([A-Z])"), "$1_$2");
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// "dense", "dense_1", "dense_2", ... unique in this process (Keras's backend.unique_object_name).
std::string unique_name(const std::string& prefix) {
  static std::mutex mutex;
  static std::map<std::string, int> counts;
  std::lock_guard<std::mutex> lock(mutex);
  int& n = counts[prefix];
  const std::string name = n == 0 ? prefix : str(prefix, "_", n);
  ++n;
  return name;
}

// Nesting depth of Layer::forward on this thread: the outermost call resets loss terms.
thread_local int t_forward_depth = 0;

// False under detail::NoLossRecording: loss terms are neither cleared nor recorded.
thread_local bool t_record_losses = true;

struct DepthGuard {
  DepthGuard() { ++t_forward_depth; }
  ~DepthGuard() { --t_forward_depth; }
};

std::vector<Shape> shapes_of(const std::vector<Tensor>& xs) {
  std::vector<Shape> shapes;
  for (const Tensor& x : xs) shapes.push_back(x.shape());
  return shapes;
}

}  // namespace

detail::NoLossRecording::NoLossRecording() : previous_(t_record_losses) { t_record_losses = false; }
detail::NoLossRecording::~NoLossRecording() { t_record_losses = previous_; }

Layer::Layer(std::string class_name) : Layer(class_name, to_snake_case(class_name)) {}

Layer::Layer(std::string class_name, const std::string& name_prefix)
    : class_name_(std::move(class_name)), name_(unique_name(name_prefix)) {}

Layer::~Layer() = default;

void Layer::build(const std::vector<Shape>&) {}

Tensor Layer::call(const Tensor&, const CallArgs&) {
  throw Error(str(class_name_, " '", name_, "': call() is not implemented (override call or call_multi)"));
}

std::vector<Tensor> Layer::call_multi(const std::vector<Tensor>& xs, const CallArgs& args) {
  if (xs.size() != 1) {
    fail(str("expected 1 input, got ", xs.size(), " (override call_multi for several inputs)"));
  }
  return {call(xs[0], args)};
}

std::vector<Tensor> Layer::compute_mask(const std::vector<Tensor>&, const std::vector<Tensor>& masks) {
  if (!supports_masking_ || masks.empty()) return {};
  return {masks[0]};
}

Config Layer::get_config() const {
  return Config{{"name", name_}, {"trainable", trainable_}, {"dtype", "float32"}};
}

std::vector<std::shared_ptr<Layer>> Layer::sublayers() const { return tracked_; }

void Layer::fail(const std::string& message) const {
  throw ShapeError(str(class_name_, " '", name_, "': ", message));
}

void Layer::set_name(const std::string& name) {
  if (name.empty()) throw ValueError(str(class_name_, ": a layer name must not be empty"));
  name_ = name;
}

// ---- calling ----

std::vector<Tensor> Layer::forward(const std::vector<Tensor>& xs, bool training) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined()) fail(str("input ", i, " is an undefined tensor"));
  }
  const bool symbolic = std::any_of(xs.begin(), xs.end(), [](const Tensor& t) { return t.is_symbolic(); });
  if (t_forward_depth == 0 && !symbolic && t_record_losses) clear_call_losses();
  DepthGuard depth;
  if (!built_) {
    build(shapes_of(xs));
    built_ = true;
  }
  CallArgs args;
  args.training = training;
  for (const Tensor& x : xs) args.masks.push_back(x.mask());
  if (!args.masks.empty()) args.mask = args.masks[0];
  std::vector<Tensor> outs = call_multi(xs, args);
  if (activity_regularizer_ && !symbolic && t_record_losses) {
    // Keras divides an activity penalty by the batch size (keras-team/keras#22018).
    for (const Tensor& out : outs) {
      const double batch = out.dim() > 0 ? static_cast<double>(out.shape()[0]) : 1.0;
      add_loss(activity_regularizer_(out) / batch, "activity_regularizer");
    }
  }
  const std::vector<Tensor> out_masks = compute_mask(xs, args.masks);
  for (std::size_t i = 0; i < out_masks.size() && i < outs.size(); ++i) {
    if (out_masks[i].defined()) outs[i].set_mask(out_masks[i]);
  }
  return outs;
}

std::vector<Tensor> Layer::operator()(const std::vector<Tensor>& xs, bool training) {
  const bool symbolic = std::any_of(xs.begin(), xs.end(), [](const Tensor& t) { return t.defined() && t.is_symbolic(); });
  if (!symbolic) return forward(xs, training);
  std::shared_ptr<Layer> self;
  try {
    self = shared_from_this();
  } catch (const std::bad_weak_ptr&) {
    throw Error(str(class_name_, " '", name_, "': a layer used on symbolic tensors must be owned by a handle; ",
                    "create it with normnet::make_layer<T>(...)"));
  }
  std::vector<Tensor> outs = forward(xs, training);
  auto node = std::make_shared<detail::GraphNode>();
  node->layer = self;
  node->inputs = xs;
  std::vector<Tensor> wrapped;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    Tensor t = Tensor::symbolic(outs[i].shape(), outs[i].dtype());
    t.impl()->mask = outs[i].impl()->mask;
    t.impl()->origin = std::make_shared<detail::GraphOrigin>(detail::GraphOrigin{node, static_cast<int>(i)});
    node->outputs.push_back(t.impl());
    wrapped.push_back(t);
  }
  inbound_nodes_.push_back(node);
  return wrapped;
}

Tensor Layer::operator()(const Tensor& x, bool training) {
  std::vector<Tensor> outs = (*this)(std::vector<Tensor>{x}, training);
  if (outs.size() != 1) fail(str("returned ", outs.size(), " outputs; call it with a vector of tensors"));
  return outs[0];
}

// ---- weights ----

Tensor Layer::add_weight(const std::string& name, Shape shape, const Initializer& initializer, bool trainable,
                         const Regularizer& regularizer, DType dtype) {
  for (const Weight& w : weights_) {
    if (w.name == name) fail(str("a weight named '", name, "' already exists"));
  }
  const Initializer& init = initializer ? initializer : initializers::GlorotUniform();
  Tensor value = init(shape, dtype, next_seed());
  if (value.shape() != shape || value.dtype() != dtype) {
    fail(str("the initializer of weight '", name, "' returned ", dtype_name(value.dtype()), " ", value.shape(),
             ", expected ", dtype_name(dtype), " ", shape));
  }
  value = value.detach();
  if (trainable && trainable_) value.set_requires_grad(true);
  weights_.push_back(Weight{name, value, trainable, regularizer});
  return value;
}

void Layer::collect_weights(std::vector<NamedWeight>& out, std::vector<const Layer*>& seen, bool parent_trainable) const {
  if (std::find(seen.begin(), seen.end(), this) != seen.end()) return;
  seen.push_back(this);
  const bool layer_trainable = parent_trainable && trainable_;
  for (const Weight& w : weights_) out.push_back(NamedWeight{name_ + "/" + w.name, w.value, w.trainable && layer_trainable});
  for (const auto& sub : sublayers()) sub->collect_weights(out, seen, layer_trainable);
}

std::vector<NamedWeight> Layer::named_weights() const {
  std::vector<NamedWeight> out;
  std::vector<const Layer*> seen;
  collect_weights(out, seen, true);
  return out;
}

std::vector<Tensor> Layer::weights() const {
  std::vector<Tensor> out;
  for (const NamedWeight& w : named_weights()) out.push_back(w.value);
  return out;
}

std::vector<Tensor> Layer::trainable_weights() const {
  std::vector<Tensor> out;
  for (const NamedWeight& w : named_weights()) if (w.trainable) out.push_back(w.value);
  return out;
}

std::vector<Tensor> Layer::non_trainable_weights() const {
  std::vector<Tensor> out;
  for (const NamedWeight& w : named_weights()) if (!w.trainable) out.push_back(w.value);
  return out;
}

int64_t Layer::count_params() const {
  int64_t n = 0;
  for (const NamedWeight& w : named_weights()) n += w.value.numel();
  return n;
}

void Layer::set_trainable(bool trainable) {
  trainable_ = trainable;
  for (Weight& w : weights_) {
    if (w.value.defined()) w.value.impl()->requires_grad = trainable && w.trainable;
  }
  for (const auto& sub : sublayers()) sub->set_trainable(trainable);
}

// ---- losses ----

void Layer::add_loss(const Tensor& loss, const std::string& name) {
  if (!loss.defined() || loss.is_symbolic() || !t_record_losses) return;
  if (loss.numel() != 1) {
    fail(str("add_loss expects a scalar, got shape ", loss.shape(), " (reduce it with ops::sum or ops::mean)"));
  }
  call_losses_.push_back(NamedLoss{name_ + "/" + name, loss.dim() == 0 ? loss : Tensor(loss)});
}

void Layer::clear_call_losses() {
  call_losses_.clear();
  for (const auto& sub : sublayers()) sub->clear_call_losses();
}

void Layer::collect_losses(std::vector<NamedLoss>& out, std::vector<const Layer*>& seen) const {
  if (std::find(seen.begin(), seen.end(), this) != seen.end()) return;
  seen.push_back(this);
  for (const NamedLoss& l : call_losses_) out.push_back(l);
  for (const Weight& w : weights_) {
    if (w.regularizer) out.push_back(NamedLoss{name_ + "/" + w.name + "_regularizer", w.regularizer(w.value)});
  }
  for (const auto& sub : sublayers()) sub->collect_losses(out, seen);
}

std::vector<NamedLoss> Layer::named_losses() const {
  std::vector<NamedLoss> out;
  std::vector<const Layer*> seen;
  collect_losses(out, seen);
  return out;
}

std::vector<Tensor> Layer::losses() const {
  std::vector<Tensor> out;
  for (const NamedLoss& l : named_losses()) out.push_back(l.value);
  return out;
}

// ---- functional graph ----

std::size_t Layer::inbound_node_count() const {
  return static_cast<std::size_t>(std::count_if(inbound_nodes_.begin(), inbound_nodes_.end(),
                                                [](const auto& n) { return !n.expired(); }));
}

namespace {
std::shared_ptr<detail::GraphNode> alive_node(const std::vector<std::weak_ptr<detail::GraphNode>>& nodes, std::size_t k) {
  std::size_t seen = 0;
  for (const auto& weak : nodes) {
    if (auto node = weak.lock()) {
      if (seen++ == k) return node;
    }
  }
  return nullptr;
}
}  // namespace

std::vector<Tensor> Layer::inputs_of_node(std::size_t k) const {
  auto node = alive_node(inbound_nodes_, k);
  if (!node) throw Error(str(class_name_, " '", name_, "': has no graph node ", k, " (it was never called on symbolic tensors)"));
  return node->inputs;
}

std::vector<Tensor> Layer::outputs_of_node(std::size_t k) const {
  auto node = alive_node(inbound_nodes_, k);
  if (!node) throw Error(str(class_name_, " '", name_, "': has no graph node ", k, " (it was never called on symbolic tensors)"));
  std::vector<Tensor> outs;
  for (const auto& weak : node->outputs) {
    auto impl = weak.lock();
    if (!impl) throw Error(str(class_name_, " '", name_, "': the output of graph node ", k, " no longer exists"));
    outs.emplace_back(impl);
  }
  return outs;
}

Tensor Layer::input() const {
  auto ins = inputs_of_node(0);
  if (ins.size() != 1) throw Error(str(class_name_, " '", name_, "': has ", ins.size(), " inputs; use inputs_of_node(0)"));
  return ins[0];
}

Tensor Layer::output() const {
  auto outs = outputs_of_node(0);
  if (outs.size() != 1) throw Error(str(class_name_, " '", name_, "': has ", outs.size(), " outputs; use outputs_of_node(0)"));
  return outs[0];
}

}  // namespace normnet

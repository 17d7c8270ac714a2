// Reverse-mode sweep: topological order built iteratively in input order (deterministic), seed
// the root's gradient, run each node's backward once in reverse order, accumulate into leaves.
#include <cstring>

#include "autograd/node.h"
#include "core/allocator.h"
#include "kernels/cpu/parallel.h"
#include "normnet/autograd.h"
#include "normnet/threading.h"

namespace normnet {
namespace detail {
namespace {

template <class T>
void add_loop(T* dst, const T* src, int64_t n) {
  kernels::cpu::parallel_for_simd(n, n > 65536 ? get_num_threads() : 1, [=](int64_t i) { dst[i] += src[i]; });
}

// Post-order over recorded producers, children visited in argument order.
std::vector<TensorImpl*> topological_order(TensorImpl* root) {
  std::vector<TensorImpl*> order;
  std::unordered_map<const TensorImpl*, bool> visited;
  std::vector<std::pair<TensorImpl*, std::size_t>> stack;
  if (!root->grad_fn) return order;
  stack.emplace_back(root, 0);
  visited[root] = true;
  while (!stack.empty()) {
    auto& [impl, next] = stack.back();
    const auto& inputs = impl->grad_fn->inputs;
    if (next < inputs.size()) {
      TensorImpl* child = inputs[next++].impl().get();
      if (child && child->grad_fn && !visited[child]) {
        visited[child] = true;
        stack.emplace_back(child, 0);
      }
      continue;
    }
    order.push_back(impl);
    stack.pop_back();
  }
  return order;
}

}  // namespace

Node::~Node() {
  std::vector<Tensor> pending = std::move(inputs);
  while (!pending.empty()) {
    Tensor t = std::move(pending.back());
    pending.pop_back();
    // Only a tensor we alone hold, whose producer only it holds, would recurse when released:
    // take that producer's inputs first, so its destruction is shallow.
    const auto& impl = t.impl();
    if (impl && impl.use_count() == 1 && impl->grad_fn && impl->grad_fn.use_count() == 1) {
      for (Tensor& input : impl->grad_fn->inputs) pending.push_back(std::move(input));
      impl->grad_fn->inputs.clear();
    }
  }
}

void accumulate_into(Tensor& dst, const Tensor& src) {
  if (dst.shape() != src.shape() || dst.dtype() != src.dtype()) {
    throw Error(str("autograd: cannot accumulate a ", dtype_name(src.dtype()), " gradient of shape ",
                    src.shape(), " into one of ", dtype_name(dst.dtype()), " ", dst.shape()));
  }
  if (dst.dtype() == DType::kFloat32) add_loop(dst.data<float>(), src.data<float>(), dst.numel());
  else if (dst.dtype() == DType::kFloat64) add_loop(dst.data<double>(), src.data<double>(), dst.numel());
  else throw Error("autograd: int64 tensors have no gradient");
}

bool GradSink::wants(std::size_t i) const {
  return i < node_.inputs.size() && node_.inputs[i].defined() && node_.inputs[i].requires_grad() &&
         is_floating(node_.inputs[i].dtype());
}

GradEntry& GradSink::entry(std::size_t i) { return grads_[node_.inputs[i].impl().get()]; }

void GradSink::add(std::size_t i, const Tensor& g) {
  if (!wants(i)) return;
  const Tensor& input = node_.inputs[i];
  if (g.shape() != input.shape() || g.dtype() != input.dtype()) {
    throw Error(str(node_.op, " backward: gradient for input ", i, " has ", dtype_name(g.dtype()), " shape ",
                    g.shape(), " but the input is ", dtype_name(input.dtype()), " ", input.shape()));
  }
  GradEntry& e = entry(i);
  if (!e.grad.defined()) {
    e.grad = g;
    e.owned = false;
    return;
  }
  if (!e.owned) {
    e.grad = e.grad.clone();
    e.owned = true;
  }
  accumulate_into(e.grad, g);
}

Tensor GradSink::buffer(std::size_t i) {
  bool overwrite = false;
  Tensor g = buffer(i, overwrite);
  if (overwrite)
    std::memset(g.impl()->storage->data(), 0, static_cast<std::size_t>(g.numel()) * dtype_size(g.dtype()));
  return g;
}

Tensor GradSink::buffer(std::size_t i, bool& overwrite) {
  const Tensor& input = node_.inputs[i];
  GradEntry& e = entry(i);
  overwrite = !e.grad.defined();
  if (overwrite) {
    e.grad = Tensor::empty(input.shape(), input.dtype());
    e.owned = true;
  } else if (!e.owned) {
    e.grad = e.grad.clone();
    e.owned = true;
  }
  return e.grad;
}

}  // namespace detail

using detail::str;

bool Tensor::requires_grad() const { return impl_ && (impl_->requires_grad || impl_->grad_fn); }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  check_defined("set_requires_grad");
  if (requires_grad && !is_floating(impl_->dtype)) {
    throw ValueError(str("Tensor::set_requires_grad: only floating tensors can require grad, got ",
                         dtype_name(impl_->dtype), " of shape ", impl_->shape));
  }
  if (!requires_grad && impl_->grad_fn) {
    throw ValueError("Tensor::set_requires_grad(false): the tensor is the result of a recorded op; use detach()");
  }
  impl_->requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  check_defined("grad");
  return impl_->grad ? Tensor(impl_->grad) : Tensor();
}

void Tensor::zero_grad() {
  check_defined("zero_grad");
  impl_->grad.reset();
}

void Tensor::set_grad(const Tensor& grad) {
  check_defined("set_grad");
  if (grad.defined() && (grad.shape() != impl_->shape || grad.dtype() != impl_->dtype)) {
    throw ShapeError(str("Tensor::set_grad: gradient ", dtype_name(grad.dtype()), " ", grad.shape(),
                         " does not match tensor ", dtype_name(impl_->dtype), " ", impl_->shape));
  }
  impl_->grad = grad.impl();
}

void Tensor::backward() const {
  check_defined("backward");
  if (numel() != 1) {
    throw ValueError(str("Tensor::backward: needs a one-element tensor (a loss), got shape ", shape(),
                         "; pass an explicit gradient for other shapes"));
  }
  backward(Tensor::ones(shape(), dtype()));
}

void Tensor::backward(const Tensor& grad) const {
  using namespace detail;
  check_defined("backward");
  if (is_symbolic()) throw ValueError(str("Tensor::backward: the tensor of shape ", shape(), " is symbolic"));
  if (!requires_grad()) {
    throw ValueError(str("Tensor::backward: the tensor of shape ", shape(),
                         " does not require grad (no input was marked set_requires_grad, or grad was off)"));
  }
  if (grad.shape() != shape() || grad.dtype() != dtype()) {
    throw ShapeError(str("Tensor::backward: gradient ", dtype_name(grad.dtype()), " ", grad.shape(),
                         " does not match tensor ", dtype_name(dtype()), " ", shape()));
  }
  NoGradGuard no_grad;  // backward closures compute with ops; nothing of it is recorded
  GradMap grads;
  grads[impl_.get()] = GradEntry{grad, false};
  std::vector<TensorImpl*> leaves;
  if (!impl_->grad_fn) leaves.push_back(impl_.get());
  const std::vector<TensorImpl*> order = topological_order(impl_.get());
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl* impl = *it;
    auto found = grads.find(impl);
    if (found == grads.end() || !found->second.grad.defined()) continue;
    const Tensor dy = found->second.grad;
    grads.erase(found);  // an intermediate gradient is freed as soon as it is used
    const Node& node = *impl->grad_fn;
    for (const Tensor& input : node.inputs) {
      if (input.defined() && input.impl()->requires_grad && !input.impl()->grad_fn) {
        leaves.push_back(input.impl().get());
      }
    }
    GradSink sink(node, grads);
    node.backward(dy, sink);
  }
  for (TensorImpl* leaf : leaves) {
    auto found = grads.find(leaf);
    if (found == grads.end()) continue;  // already accumulated (a leaf reached twice)
    GradEntry entry = std::move(found->second);
    grads.erase(found);
    if (leaf->grad) {
      Tensor existing(leaf->grad);
      accumulate_into(existing, entry.grad);
    } else {
      leaf->grad = (entry.owned ? entry.grad : entry.grad.clone()).impl();
    }
  }
}

}  // namespace normnet

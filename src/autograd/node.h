// The tape's node: the op that produced a tensor, its inputs, and its backward closure.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "normnet/tensor.h"

namespace normnet::detail {

class GradSink;
// Receives the gradient of the op's output (dy) and adds each input's gradient into `sink`.
using BackwardFn = std::function<void(const Tensor& dy, GradSink& sink)>;

struct Node {
  std::string op;              // for error messages: "ops::matmul"
  std::vector<Tensor> inputs;  // in argument order; sink indices refer to these
  BackwardFn backward;
  // Releases a chain of nodes iteratively: a graph of a million ops must not need a million
  // stack frames to die (PyTorch's deleteNode does the same).
  ~Node();
};

// Gradient accumulators of one backward sweep, keyed by tensor.
struct GradEntry {
  Tensor grad;
  bool owned = false;  // false while `grad` may alias a tensor someone else holds
};
using GradMap = std::unordered_map<const TensorImpl*, GradEntry>;

// What a backward closure sees of the inputs' gradients. Every method adds; nothing overwrites.
class GradSink {
 public:
  GradSink(const Node& node, GradMap& grads) : node_(node), grads_(grads) {}
  // True when input i needs a gradient (a leaf marked requires_grad or a recorded result).
  [[nodiscard]] bool wants(std::size_t i) const;
  // Adds g (exactly input i's shape and dtype) into input i's gradient.
  void add(std::size_t i, const Tensor& g);
  // Input i's gradient buffer, zero-filled on first use, for kernels that add into it.
  [[nodiscard]] Tensor buffer(std::size_t i);
  // The same without the zero fill, for kernels that can either write or add: `overwrite` is set
  // when the buffer is new (its contents undefined: the kernel must write every element) and
  // cleared when it holds an earlier gradient (the kernel adds).
  [[nodiscard]] Tensor buffer(std::size_t i, bool& overwrite);

 private:
  GradEntry& entry(std::size_t i);
  const Node& node_;
  GradMap& grads_;
};

// Adds src into dst elementwise (same shape and floating dtype); no autograd.
void accumulate_into(Tensor& dst, const Tensor& src);

}  // namespace normnet::detail

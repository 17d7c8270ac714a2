// Reductions over all elements or over an axis list (negative axes count from the end).
#pragma once

#include <vector>

#include "normnet/tensor.h"

namespace normnet::ops {

// Sum of all elements: a scalar (shape []).
[[nodiscard]] Tensor sum(const Tensor& x);
// Sum over `axes`; keepdims keeps them as extent 1. An empty axis list reduces nothing.
[[nodiscard]] Tensor sum(const Tensor& x, std::vector<int> axes, bool keepdims = false);
[[nodiscard]] Tensor mean(const Tensor& x);
[[nodiscard]] Tensor mean(const Tensor& x, std::vector<int> axes, bool keepdims = false);
// Maximum; the gradient goes to the first maximal element of each reduced group.
[[nodiscard]] Tensor max(const Tensor& x);
[[nodiscard]] Tensor max(const Tensor& x, std::vector<int> axes, bool keepdims = false);
// Index of the maximum along one axis (int64, not differentiable).
[[nodiscard]] Tensor argmax(const Tensor& x, int axis = -1);

}  // namespace normnet::ops

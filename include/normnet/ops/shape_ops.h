// Ops that move or select elements: reshape, transpose/permute, concat, slice.
#pragma once

#include <vector>

#include "normnet/tensor.h"

namespace normnet::ops {

// Same elements, new shape. One extent may be -1 (inferred). Shares storage with x.
// On a symbolic tensor with an unknown batch, the batch axis must be kept: reshape(x, {-1, 784}).
[[nodiscard]] Tensor reshape(const Tensor& x, Shape shape);
// Flattens every axis after the first: [N, a, b, ...] -> [N, a*b*...].
[[nodiscard]] Tensor flatten(const Tensor& x);
// Reorders axes: out.shape[i] = x.shape[perm[i]].
[[nodiscard]] Tensor permute(const Tensor& x, std::vector<int> perm);
// Swaps two axes (default: the last two).
[[nodiscard]] Tensor transpose(const Tensor& x, int axis0 = -2, int axis1 = -1);
// Joins tensors along `axis`; all other extents must match.
[[nodiscard]] Tensor concat(const std::vector<Tensor>& xs, int axis = -1);
// Elements start <= i < stop along `axis` (negative start/stop count from the end, clamped).
[[nodiscard]] Tensor slice(const Tensor& x, int axis, int64_t start, int64_t stop);
// Inserts / removes an axis of extent 1.
[[nodiscard]] Tensor unsqueeze(const Tensor& x, int axis);
[[nodiscard]] Tensor squeeze(const Tensor& x, int axis);

}  // namespace normnet::ops

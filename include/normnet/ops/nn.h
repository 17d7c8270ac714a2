// Neural-network ops: softmax family, dropout, embedding lookup, fused softmax cross-entropy.
#pragma once

#include <cstdint>

#include "normnet/tensor.h"

namespace normnet::ops {

// exp(x - max) / Σ exp(x - max) along `axis` (numerically stable).
[[nodiscard]] Tensor softmax(const Tensor& x, int axis = -1);
[[nodiscard]] Tensor log_softmax(const Tensor& x, int axis = -1);

// Inverted dropout: in training, zeroes each element with probability `rate` and scales the
// survivors by 1/(1-rate); identity when !training or rate == 0. Deterministic given `seed`.
[[nodiscard]] Tensor dropout(const Tensor& x, double rate, bool training, uint64_t seed);

// Rows of `table` [V, D] picked by int64 `indices` of any shape: result indices.shape + [D].
// Throws ValueError for an index outside [0, V). Differentiable in `table`.
[[nodiscard]] Tensor embedding(const Tensor& table, const Tensor& indices);

// Mean over the batch of -log softmax(logits)[label]: logits [N, C], labels int64 [N].
// Fused and stable; gradient (softmax - onehot)/N. Throws ValueError for a label outside [0, C).
[[nodiscard]] Tensor sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels);

}  // namespace normnet::ops

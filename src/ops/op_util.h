// What every op file uses: argument checks, broadcasting rules, symbolic results, recording the
// backward closure on the tape, and un-broadcasting (sum_to).
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "normnet/autograd.h"
#include "normnet/tensor.h"

namespace normnet::ops::detail {

using normnet::detail::BackwardFn;
using normnet::detail::GradSink;
using normnet::detail::str;

// Throws Error naming `op` and `arg` when t is undefined.
void check_defined(const Tensor& t, const char* op, const char* arg = "input");
// The one check that keeps storage dtypes out of arithmetic: throws TypeError naming `op`, `arg`
// and the shape when t is uint8, and says how to convert it (ops::cast, layers::Rescaling).
// Every op that computes with values calls it (directly or through check_floating); ops that
// only move bytes (reshape, slice, concat, permute, cast) do not.
void check_arithmetic(const Tensor& t, const char* op, const char* arg = "input");
// Throws TypeError for uint8 (check_arithmetic), ValueError for any other non-float dtype.
void check_floating(const Tensor& t, const char* op, const char* arg = "input");
// Throws ValueError unless a and b have the same dtype.
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);

// True when some input has a shape but no values.
[[nodiscard]] bool any_symbolic(std::initializer_list<Tensor> inputs);
// Result of an op: symbolic (shape only) when `symbolic`, else freshly allocated (uninitialized).
[[nodiscard]] Tensor make_result(Shape shape, DType dtype, bool symbolic);

// NumPy broadcasting of two shapes, aligned on the right. An unknown extent (-1) broadcasts with
// 1 or another unknown to unknown, and with n to n. Throws ShapeError:
//   "ops::add: shapes [2, 3] and [4] cannot be broadcast (axis -1: 3 vs 4)".
[[nodiscard]] Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// When grad mode is on and some input requires grad, makes `out` the result of a recorded op
// whose backward is `backward`. Inputs are kept alive by the tape; backward closures should
// capture the values they need as `detach()`ed tensors (never `out` itself: that is a cycle).
void record(Tensor& out, const char* op, std::vector<Tensor> inputs, BackwardFn backward);
// True when record() would record for these inputs.
[[nodiscard]] bool should_record(std::initializer_list<Tensor> inputs);

// True when t's values are reachable through this handle alone (one TensorImpl, one owner of
// its storage): a backward closure may then overwrite the incoming gradient instead of
// allocating a new one, as nobody else can see it.
[[nodiscard]] bool held_only_here(const Tensor& t);

// Sums g over the axes that broadcasting expanded, so the result has `shape` (the inverse of
// broadcasting a tensor of `shape` up to g.shape()). Differentiable.
[[nodiscard]] Tensor sum_to(const Tensor& g, const Shape& shape);

// Row-major strides of a contiguous shape.
[[nodiscard]] std::vector<int64_t> contiguous_strides(const Shape& shape);

}  // namespace normnet::ops::detail

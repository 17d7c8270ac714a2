// Movement ops: permute/transpose, concat and slice. Each op: shape rule (symbolic inputs stop
// there), forward through kernels/cpu/movement, and its backward right after.
#include <algorithm>
#include <string>
#include <type_traits>

#include "kernels/cpu/movement.h"
#include "normnet/ops/shape_ops.h"
#include "ops/op_util.h"

namespace normnet::ops {
namespace {

using detail::GradSink;
using detail::str;
namespace cpu = kernels::cpu;

// "[1, 0, 2]", for messages about permutations.
std::string ints_to_string(const std::vector<int>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

// Calls fn(T{}) with T the element type of `dtype`. These ops only move elements, so they take
// the uint8 storage dtype too.
template <class Fn>
void dispatch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: fn(float{}); break;
    case DType::kFloat64: fn(double{}); break;
    case DType::kInt64: fn(int64_t{}); break;
    case DType::kUInt8: fn(uint8_t{}); break;
  }
}

// Product of shape[first, last).
int64_t extent_product(const Shape& shape, std::size_t first, std::size_t last) {
  int64_t p = 1;
  for (std::size_t a = first; a < last; ++a) p *= shape[a];
  return p;
}

// Maps perm's entries into [0, rank) and checks that every axis appears exactly once.
std::vector<int> checked_permutation(const Shape& shape, std::vector<int> perm) {
  const std::size_t rank = shape.size();
  if (perm.size() != rank) {
    throw ValueError(str("ops::permute: perm ", ints_to_string(perm), " has ", perm.size(),
                         " entries but the input of shape ", shape, " has rank ", rank));
  }
  std::vector<bool> seen(rank, false);
  const std::vector<int> given = perm;
  for (int& p : perm) {
    const auto r = static_cast<int>(rank);
    const int axis = p < 0 ? p + r : p;
    if (axis < 0 || axis >= r || seen[static_cast<std::size_t>(axis)]) {
      throw ValueError(str("ops::permute: perm ", ints_to_string(given),
                           " is not a permutation of the axes of shape ", shape));
    }
    seen[static_cast<std::size_t>(axis)] = true;
    p = axis;
  }
  return perm;
}

}  // namespace

// y = permute(x, perm): y[i_0, ..., i_{r-1}] = x[j] with j_{perm[k]} = i_k.
// Every element moves once ⇒ dx = permute(dy, perm⁻¹), with perm⁻¹[perm[k]] = k.
Tensor permute(const Tensor& x, std::vector<int> perm) {
  detail::check_defined(x, "ops::permute");
  perm = checked_permutation(x.shape(), std::move(perm));
  const int rank = static_cast<int>(perm.size());
  Shape out_shape(perm.size());
  for (std::size_t k = 0; k < perm.size(); ++k) out_shape[k] = x.shape()[static_cast<std::size_t>(perm[k])];
  Tensor y = detail::make_result(out_shape, x.dtype(), x.is_symbolic());
  if (x.is_symbolic()) return y;

  std::vector<int64_t> plan_shape(perm.size()), plan_strides(perm.size());
  const int plan_rank = cpu::permute_plan(rank, x.shape().data(), perm.data(), plan_shape.data(), plan_strides.data());
  dispatch(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::permute_forward(x.data<T>(), y.data<T>(), plan_rank, plan_shape.data(), plan_strides.data());
  });

  if (detail::should_record({x})) {
    std::vector<int> inverse(perm.size());
    for (int k = 0; k < rank; ++k) inverse[static_cast<std::size_t>(perm[static_cast<std::size_t>(k)])] = k;
    detail::record(y, "ops::permute", {x}, [inverse](const Tensor& dy, GradSink& sink) {
      sink.add(0, permute(dy, inverse));
    });
  }
  return y;
}

// Composed from permute, so it needs no backward of its own.
Tensor transpose(const Tensor& x, int axis0, int axis1) {
  detail::check_defined(x, "ops::transpose");
  const std::size_t rank = x.shape().size();
  const int a0 = normalize_axis(axis0, rank, "ops::transpose", x.shape());
  const int a1 = normalize_axis(axis1, rank, "ops::transpose", x.shape());
  std::vector<int> perm(rank);
  for (std::size_t k = 0; k < rank; ++k) perm[k] = static_cast<int>(k);
  std::swap(perm[static_cast<std::size_t>(a0)], perm[static_cast<std::size_t>(a1)]);
  return permute(x, std::move(perm));
}

namespace {
// The shape of concat(xs, a): extents along `a` add up, all others must match; an unknown extent
// (symbolic batch) matches any extent and makes a sum unknown.
Shape concat_shape(const std::vector<Tensor>& xs, int a) {
  const Shape& first = xs[0].shape();
  const std::size_t rank = first.size();
  Shape out_shape = first;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& shape = xs[i].shape();
    if (xs[i].dtype() != xs[0].dtype()) {
      throw ValueError(str("ops::concat: tensor ", i, " is ", dtype_name(xs[i].dtype()), " of shape ", shape,
                           " but tensor 0 is ", dtype_name(xs[0].dtype()), " of shape ", first));
    }
    if (shape.size() != rank) {
      throw ShapeError(str("ops::concat: tensor ", i, " has shape ", shape, " (rank ", shape.size(),
                           ") but tensor 0 has shape ", first, " (rank ", rank, ")"));
    }
    for (std::size_t d = 0; d < rank; ++d) {
      if (static_cast<int>(d) == a) continue;
      if (shape[d] != out_shape[d] && shape[d] != kUnknownDim && out_shape[d] != kUnknownDim) {
        throw ShapeError(str("ops::concat: tensor ", i, " has shape ", shape, " but tensor 0 has shape ", first,
                             "; all extents except axis ", a, " must match"));
      }
      if (out_shape[d] == kUnknownDim) out_shape[d] = shape[d];
    }
    if (i > 0) {
      const bool unknown = out_shape[a] == kUnknownDim || shape[a] == kUnknownDim;
      out_shape[a] = unknown ? kUnknownDim : out_shape[a] + shape[a];
    }
  }
  return out_shape;
}
}  // namespace

// y = [x_0 | x_1 | ... ] along `axis`: x_i occupies [offset_i, offset_i + extent_i) there
// ⇒ dx_i = slice(dy, axis, offset_i, offset_i + extent_i).
Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("ops::concat: needs at least one tensor, got none");
  bool symbolic = false;
  for (const Tensor& x : xs) {
    detail::check_defined(x, "ops::concat", "a tensor of the list");
    symbolic = symbolic || x.is_symbolic();
  }
  const std::size_t rank = xs[0].shape().size();
  const int a = normalize_axis(axis, rank, "ops::concat", xs[0].shape());
  const Shape out_shape = concat_shape(xs, a);
  Tensor y = detail::make_result(out_shape, xs[0].dtype(), symbolic);
  if (symbolic) return y;

  const int64_t outer = extent_product(out_shape, 0, static_cast<std::size_t>(a));
  const int64_t inner = extent_product(out_shape, static_cast<std::size_t>(a) + 1, rank);
  const int64_t y_row = out_shape[static_cast<std::size_t>(a)] * inner;
  std::vector<int64_t> offsets;  // where each input starts along the axis
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    offsets.push_back(offset);
    const int64_t x_row = x.shape()[static_cast<std::size_t>(a)] * inner;
    dispatch(x.dtype(), [&](auto zero) {
      using T = decltype(zero);
      cpu::concat_forward(x.data<T>(), y.data<T>(), outer, x_row, y_row, offset * inner);
    });
    offset += x.shape()[static_cast<std::size_t>(a)];
  }

  detail::record(y, "ops::concat", xs, [a, offsets](const Tensor& dy, GradSink& sink) {
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      if (!sink.wants(i)) continue;
      const int64_t stop = i + 1 < offsets.size() ? offsets[i + 1] : dy.shape()[static_cast<std::size_t>(a)];
      sink.add(i, slice(dy, a, offsets[i], stop));
    }
  });
  return y;
}

// y = x[start:stop] along `axis` ⇒ dx = dy at [start, stop) and 0 elsewhere; the kernel adds dy
// straight into dx's zero-initialized gradient buffer.
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t stop) {
  detail::check_defined(x, "ops::slice");
  const Shape& shape = x.shape();
  const std::size_t rank = shape.size();
  const auto a = static_cast<std::size_t>(normalize_axis(axis, rank, "ops::slice", shape));
  const int64_t extent = shape[a];
  Shape out_shape = shape;
  int64_t begin = 0, length = 0;
  if (extent != kUnknownDim) {
    // Python's rule: negative bounds count from the end, then both are clamped to [0, extent].
    begin = std::clamp<int64_t>(start < 0 ? start + extent : start, 0, extent);
    const int64_t end = std::clamp<int64_t>(stop < 0 ? stop + extent : stop, 0, extent);
    length = std::max<int64_t>(end - begin, 0);
    out_shape[a] = length;
  }
  Tensor y = detail::make_result(out_shape, x.dtype(), x.is_symbolic());
  if (x.is_symbolic()) return y;

  const int64_t outer = extent_product(shape, 0, a);
  const int64_t inner = extent_product(shape, a + 1, rank);
  const int64_t x_row = extent * inner, y_row = length * inner, offset = begin * inner;
  dispatch(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::slice_forward(x.data<T>(), y.data<T>(), outer, x_row, y_row, offset);
  });

  if (detail::should_record({x})) {
    detail::record(y, "ops::slice", {x}, [outer, x_row, y_row, offset](const Tensor& dy, GradSink& sink) {
      if (!sink.wants(0)) return;
      Tensor dx = sink.buffer(0);
      dispatch(dx.dtype(), [&](auto zero) {
        using T = decltype(zero);
        if constexpr (!std::is_same_v<T, uint8_t>) {  // uint8 carries no gradient (never recorded)
          cpu::slice_backward(dy.data<T>(), dx.data<T>(), outer, x_row, y_row, offset);
        }
      });
    });
  }
  return y;
}

}  // namespace normnet::ops

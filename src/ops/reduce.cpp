// Reductions: sum, mean, max over axis lists, and argmax. A sorted axis list is split into runs
// of adjacent axes; each run is one [outer, R, inner] kernel call.
#include "kernels/cpu/reduce.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/reduce.h"
#include "normnet/ops/shape_ops.h"
#include "ops/op_util.h"

#include <algorithm>

namespace normnet::ops {
namespace {

using namespace detail;

// Sorted, de-duplicated, non-negative axes; throws for out-of-range or repeated axes.
std::vector<int> normalize_axes(const std::vector<int>& axes, const Shape& shape, const char* op) {
  std::vector<int> out;
  for (int a : axes) out.push_back(normalize_axis(a, shape.size(), op, shape));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end()) {
    throw ValueError(str(op, ": repeated axis in the axis list for shape ", shape));
  }
  return out;
}

Shape reduced_shape(const Shape& shape, const std::vector<int>& axes, bool keepdims) {
  Shape out;
  for (std::size_t a = 0; a < shape.size(); ++a) {
    const bool reduced = std::find(axes.begin(), axes.end(), static_cast<int>(a)) != axes.end();
    if (!reduced) out.push_back(shape[a]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

struct Run {
  int first, last;  // inclusive axis range
};

std::vector<Run> runs_of(const std::vector<int>& axes) {
  std::vector<Run> runs;
  for (int a : axes) {
    if (!runs.empty() && runs.back().last + 1 == a) runs.back().last = a;
    else runs.push_back({a, a});
  }
  return runs;
}

// (outer, R, inner) of reducing axes [first, last] of `shape`.
void split(const Shape& shape, Run run, int64_t& outer, int64_t& reduce, int64_t& inner) {
  outer = reduce = inner = 1;
  for (int a = 0; a < static_cast<int>(shape.size()); ++a) {
    if (a < run.first) outer *= shape[a];
    else if (a <= run.last) reduce *= shape[a];
    else inner *= shape[a];
  }
}

template <class T>
Tensor sum_values(const Tensor& x, const std::vector<int>& axes) {
  Tensor cur = x;
  Shape shape = x.shape();
  const auto runs = runs_of(axes);
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {  // last run first keeps axis numbers valid
    int64_t outer, reduce, inner;
    split(shape, *it, outer, reduce, inner);
    for (int a = it->first; a <= it->last; ++a) shape[static_cast<std::size_t>(a)] = 1;
    Tensor next = Tensor::empty(shape, x.dtype());
    kernels::cpu::sum_forward(cur.data<T>(), next.data<T>(), outer, reduce, inner);
    cur = next;
  }
  return cur;  // keepdims shape
}

Tensor sum_impl(const Tensor& x, std::vector<int> axes_in, bool keepdims, const char* op) {
  check_arithmetic(x, op);
  const std::vector<int> axes = normalize_axes(axes_in, x.shape(), op);
  const Shape out_shape = reduced_shape(x.shape(), axes, keepdims);
  if (x.is_symbolic()) return make_result(out_shape, x.dtype(), true);
  if (axes.empty()) return x;
  Tensor kept;
  switch (x.dtype()) {
    case DType::kFloat32: kept = sum_values<float>(x, axes); break;
    case DType::kFloat64: kept = sum_values<double>(x, axes); break;
    case DType::kInt64: kept = sum_values<int64_t>(x, axes); break;
    case DType::kUInt8: break;  // rejected by check_arithmetic
  }
  Tensor out = Tensor(kept.impl());
  out.impl()->shape = out_shape;  // same elements, keepdims or not
  // y = Σ_axes x  ⇒  dx = broadcast(dy with the reduced axes kept as 1) to x.shape
  if (should_record({x})) {
    record(out, op, {x}, [sx = x.shape(), kept_shape = reduced_shape(x.shape(), axes, true)](const Tensor& dy, GradSink& sink) {
      sink.add(0, broadcast_to(reshape(dy, kept_shape), sx));
    });
  }
  return out;
}

std::vector<int> all_axes(const Tensor& x) {
  std::vector<int> axes(static_cast<std::size_t>(x.dim()));
  for (std::size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int>(i);
  return axes;
}

// Max over one run of adjacent axes (keepdims), recorded with its own argmax.
template <class T>
Tensor max_run(const Tensor& x, Run run) {
  int64_t outer, reduce, inner;
  split(x.shape(), run, outer, reduce, inner);
  Shape shape = x.shape();
  for (int a = run.first; a <= run.last; ++a) shape[static_cast<std::size_t>(a)] = 1;
  Tensor out = Tensor::empty(shape, x.dtype());
  Tensor argmax = Tensor::empty({outer * inner}, DType::kInt64);
  kernels::cpu::max_forward(x.data<T>(), out.data<T>(), argmax.data<int64_t>(), outer, reduce, inner);
  // y = max_r x  ⇒  dx[argmax] += dy (the first maximal element takes the whole gradient)
  if (should_record({x})) {
    record(out, "ops::max", {x}, [argmax, outer, reduce, inner](const Tensor& dy, GradSink& sink) {
      Tensor dx = sink.buffer(0);
      kernels::cpu::max_backward(dy.data<T>(), argmax.data<int64_t>(), dx.data<T>(), outer, reduce, inner);
    });
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) {
  check_defined(x, "ops::sum");
  return sum_impl(x, all_axes(x), false, "ops::sum");
}
Tensor sum(const Tensor& x, std::vector<int> axes, bool keepdims) { return sum_impl(x, std::move(axes), keepdims, "ops::sum"); }

Tensor mean(const Tensor& x) {
  check_defined(x, "ops::mean");
  return mean(x, all_axes(x), false);
}

Tensor mean(const Tensor& x, std::vector<int> axes, bool keepdims) {
  check_floating(x, "ops::mean");
  Tensor total = sum_impl(x, axes, keepdims, "ops::mean");
  if (x.is_symbolic()) return total;
  int64_t count = 1;
  for (int a : normalize_axes(axes, x.shape(), "ops::mean")) count *= x.shape()[static_cast<std::size_t>(a)];
  return mul(total, 1.0 / static_cast<double>(count));
}

Tensor max(const Tensor& x) {
  check_defined(x, "ops::max");
  return max(x, all_axes(x), false);
}

Tensor max(const Tensor& x, std::vector<int> axes_in, bool keepdims) {
  check_arithmetic(x, "ops::max");
  const std::vector<int> axes = normalize_axes(axes_in, x.shape(), "ops::max");
  const Shape out_shape = reduced_shape(x.shape(), axes, keepdims);
  if (x.is_symbolic()) return make_result(out_shape, x.dtype(), true);
  for (int a : axes) {
    if (x.shape()[static_cast<std::size_t>(a)] == 0) {
      throw ValueError(str("ops::max: cannot reduce the empty axis ", a, " of shape ", x.shape()));
    }
  }
  Tensor cur = x;
  const auto runs = runs_of(axes);
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    switch (x.dtype()) {
      case DType::kFloat32: cur = max_run<float>(cur, *it); break;
      case DType::kFloat64: cur = max_run<double>(cur, *it); break;
      case DType::kInt64: cur = max_run<int64_t>(cur, *it); break;
      case DType::kUInt8: break;  // rejected by check_arithmetic
    }
  }
  return keepdims ? cur : reshape(cur, out_shape);
}

Tensor argmax(const Tensor& x, int axis) {
  check_arithmetic(x, "ops::argmax");
  const int a = normalize_axis(axis, x.shape().size(), "ops::argmax", x.shape());
  const Shape out_shape = reduced_shape(x.shape(), {a}, false);
  if (x.is_symbolic()) return make_result(out_shape, DType::kInt64, true);
  if (x.shape()[static_cast<std::size_t>(a)] == 0) {
    throw ValueError(str("ops::argmax: cannot reduce the empty axis ", a, " of shape ", x.shape()));
  }
  int64_t outer, reduce, inner;
  split(x.shape(), {a, a}, outer, reduce, inner);
  Tensor values = Tensor::empty({outer * inner}, x.dtype());
  Tensor out = Tensor::empty(out_shape, DType::kInt64);
  switch (x.dtype()) {
    case DType::kFloat32: kernels::cpu::max_forward(x.data<float>(), values.data<float>(), out.data<int64_t>(), outer, reduce, inner); break;
    case DType::kFloat64: kernels::cpu::max_forward(x.data<double>(), values.data<double>(), out.data<int64_t>(), outer, reduce, inner); break;
    case DType::kInt64: kernels::cpu::max_forward(x.data<int64_t>(), values.data<int64_t>(), out.data<int64_t>(), outer, reduce, inner); break;
    case DType::kUInt8: break;  // rejected by check_arithmetic
  }
  return out;
}

}  // namespace normnet::ops

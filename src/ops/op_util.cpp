// Shared op plumbing: checks, broadcasting, recording on the tape.
#include "ops/op_util.h"

#include "normnet/ops/reduce.h"
#include "normnet/ops/shape_ops.h"

namespace normnet::ops::detail {

void check_defined(const Tensor& t, const char* op, const char* arg) {
  if (!t.defined()) throw Error(str(op, ": ", arg, " is an undefined tensor"));
}

void check_arithmetic(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  if (t.dtype() == DType::kUInt8) {
    throw TypeError(str(op, ": ", arg, " is uint8 of shape ", t.shape(),
                        "; uint8 is a storage dtype that arithmetic does not accept. Convert it first: ",
                        "ops::cast(x, DType::kFloat32), or a layers::Rescaling(1.0 / 255) layer after a uint8 Input"));
  }
}

void check_floating(const Tensor& t, const char* op, const char* arg) {
  check_arithmetic(t, op, arg);
  if (!is_floating(t.dtype())) {
    throw ValueError(str(op, ": ", arg, " must be float32 or float64, got ", dtype_name(t.dtype()),
                         " of shape ", t.shape()));
  }
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype()) {
    throw ValueError(str(op, ": dtypes differ: ", dtype_name(a.dtype()), " ", a.shape(), " and ",
                         dtype_name(b.dtype()), " ", b.shape()));
  }
}

bool any_symbolic(std::initializer_list<Tensor> inputs) {
  for (const Tensor& t : inputs) if (t.defined() && t.is_symbolic()) return true;
  return false;
}

Tensor make_result(Shape shape, DType dtype, bool symbolic) {
  return symbolic ? Tensor::symbolic(std::move(shape), dtype) : Tensor::empty(std::move(shape), dtype);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t k = 0; k < rank; ++k) {
    const int64_t da = k < a.size() ? a[a.size() - 1 - k] : 1;
    const int64_t db = k < b.size() ? b[b.size() - 1 - k] : 1;
    int64_t d;
    if (da == db) d = da;
    else if (da == 1) d = db;
    else if (db == 1) d = da;
    else if (da == kUnknownDim) d = db;
    else if (db == kUnknownDim) d = da;
    else {
      throw ShapeError(str(op, ": shapes ", a, " and ", b, " cannot be broadcast (axis -", k + 1, ": ",
                           da, " vs ", db, ")"));
    }
    out[rank - 1 - k] = d;
  }
  return out;
}

bool should_record(std::initializer_list<Tensor> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && !t.is_symbolic() && t.requires_grad() && is_floating(t.dtype())) return true;
  }
  return false;
}

bool held_only_here(const Tensor& t) {
  return t.defined() && t.impl().use_count() == 1 && t.impl()->storage && t.impl()->storage.use_count() == 1;
}

void record(Tensor& out, const char* op, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!grad_enabled() || out.is_symbolic()) return;
  bool any = false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad() && is_floating(t.dtype())) any = true;
  }
  if (!any) return;
  auto node = std::make_shared<normnet::detail::Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl()->grad_fn = std::move(node);
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const std::size_t rank = g.shape().size();
  if (shape.size() > rank) {
    throw ShapeError(str("sum_to: cannot reduce shape ", g.shape(), " to the larger rank ", shape));
  }
  std::vector<int> axes;
  const std::size_t lead = rank - shape.size();
  for (std::size_t a = 0; a < rank; ++a) {
    if (a < lead || (shape[a - lead] == 1 && g.shape()[a] != 1)) axes.push_back(static_cast<int>(a));
  }
  Tensor summed = axes.empty() ? g : ops::sum(g, axes, /*keepdims=*/true);
  return ops::reshape(summed, shape);
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

}  // namespace normnet::ops::detail

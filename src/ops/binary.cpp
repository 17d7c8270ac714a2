// Broadcasting binary ops (add, sub, mul, div, maximum, minimum, pow), broadcast_to, and the
// Tensor arithmetic operators. Gradients are un-broadcast with sum_to, in one place.
#include <cmath>

#include "kernels/cpu/binary.h"
#include "normnet/ops/elementwise.h"
#include "ops/op_util.h"

namespace normnet::ops {
namespace {

using kernels::cpu::BinaryOp;
using namespace detail;

// Strides of `shape` as seen through the broadcast `out` shape (0 on broadcast axes).
std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  const std::vector<int64_t> own = contiguous_strides(shape);
  const std::size_t lead = out.size() - shape.size();
  for (std::size_t i = 0; i < shape.size(); ++i) {
    strides[lead + i] = (shape[i] == 1 && out[lead + i] != 1) ? 0 : own[i];
  }
  return strides;
}

// Runs the kernel for a and b (same dtype) broadcast to `out_shape`, without autograd.
Tensor compute(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const auto as = broadcast_strides(a.shape(), out_shape);
  const auto bs = broadcast_strides(b.shape(), out_shape);
  const int rank = static_cast<int>(out_shape.size());
  switch (a.dtype()) {
    case DType::kFloat32:
      kernels::cpu::binary_forward(op, a.data<float>(), as.data(), b.data<float>(), bs.data(), out.data<float>(),
                                   out_shape.data(), rank);
      break;
    case DType::kFloat64:
      kernels::cpu::binary_forward(op, a.data<double>(), as.data(), b.data<double>(), bs.data(),
                                   out.data<double>(), out_shape.data(), rank);
      break;
    case DType::kInt64:
      kernels::cpu::binary_forward(op, a.data<int64_t>(), as.data(), b.data<int64_t>(), bs.data(),
                                   out.data<int64_t>(), out_shape.data(), rank);
      break;
    case DType::kUInt8: break;  // rejected by check_binary
  }
  return out;
}

// Shape rule shared by every binary op; returns the broadcast shape.
Shape check_binary(const Tensor& a, const Tensor& b, const char* op) {
  check_arithmetic(a, op, "first operand");
  check_arithmetic(b, op, "second operand");
  check_same_dtype(a, b, op);
  return broadcast_shapes(a.shape(), b.shape(), op);
}

Tensor binary(BinaryOp kind, const char* name, const Tensor& a, const Tensor& b, BackwardFn (*make_backward)(const Tensor&, const Tensor&, const Tensor&)) {
  const Shape shape = check_binary(a, b, name);
  if (any_symbolic({a, b})) return make_result(shape, a.dtype(), true);
  Tensor out = compute(kind, a, b, shape);
  if (should_record({a, b})) record(out, name, {a, b}, make_backward(a.detach(), b.detach(), out.detach()));
  return out;
}

// y = a + b  ⇒  da = sum_to(dy), db = sum_to(dy)
BackwardFn add_backward(const Tensor& a, const Tensor& b, const Tensor&) {
  return [sa = a.shape(), sb = b.shape()](const Tensor& dy, GradSink& sink) {
    if (sink.wants(0)) sink.add(0, sum_to(dy, sa));
    if (sink.wants(1)) sink.add(1, sum_to(dy, sb));
  };
}

// y = a − b  ⇒  da = sum_to(dy), db = −sum_to(dy)
BackwardFn sub_backward(const Tensor& a, const Tensor& b, const Tensor&) {
  return [sa = a.shape(), sb = b.shape()](const Tensor& dy, GradSink& sink) {
    if (sink.wants(0)) sink.add(0, sum_to(dy, sa));
    if (sink.wants(1)) sink.add(1, neg(sum_to(dy, sb)));
  };
}

// y = a·b  ⇒  da = sum_to(dy·b), db = sum_to(dy·a)
BackwardFn mul_backward(const Tensor& a, const Tensor& b, const Tensor&) {
  return [a, b](const Tensor& dy, GradSink& sink) {
    if (sink.wants(0)) sink.add(0, sum_to(mul(dy, b), a.shape()));
    if (sink.wants(1)) sink.add(1, sum_to(mul(dy, a), b.shape()));
  };
}

// y = a/b  ⇒  da = sum_to(dy/b), db = −sum_to(dy·a/b²) = −sum_to(dy·y/b)
BackwardFn div_backward(const Tensor& a, const Tensor& b, const Tensor& y) {
  return [sa = a.shape(), b, y](const Tensor& dy, GradSink& sink) {
    const Tensor dy_over_b = div(dy, b);
    if (sink.wants(0)) sink.add(0, sum_to(dy_over_b, sa));
    if (sink.wants(1)) sink.add(1, neg(sum_to(mul(dy_over_b, y), b.shape())));
  };
}

// y = max(a, b)  ⇒  da = sum_to(dy·[a ≥ b]), db = sum_to(dy·[a < b]); ties go to a.
BackwardFn maximum_backward(const Tensor& a, const Tensor& b, const Tensor&) {
  return [a, b](const Tensor& dy, GradSink& sink) {
    const Tensor take_a = compute(BinaryOp::kGreaterEqual, a, b, dy.shape());
    if (sink.wants(0)) sink.add(0, sum_to(mul(dy, take_a), a.shape()));
    if (sink.wants(1)) sink.add(1, sum_to(sub(dy, mul(dy, take_a)), b.shape()));
  };
}

// y = min(a, b)  ⇒  da = sum_to(dy·[a ≤ b]), db = sum_to(dy·[a > b]); ties go to a.
BackwardFn minimum_backward(const Tensor& a, const Tensor& b, const Tensor&) {
  return [a, b](const Tensor& dy, GradSink& sink) {
    const Tensor take_a = compute(BinaryOp::kLessEqual, a, b, dy.shape());
    if (sink.wants(0)) sink.add(0, sum_to(mul(dy, take_a), a.shape()));
    if (sink.wants(1)) sink.add(1, sum_to(sub(dy, mul(dy, take_a)), b.shape()));
  };
}

// y = a^b  ⇒  da = sum_to(dy·b·a^(b−1)), db = sum_to(dy·y·ln a). ln a is taken only where
// a > 0; elsewhere db's term is 0 (a^b is real there only for integer b, where it is locally
// constant in b along the integers — the convention PyTorch uses for a = 0).
BackwardFn pow_backward(const Tensor& a, const Tensor& b, const Tensor& y) {
  return [a, b, y](const Tensor& dy, GradSink& sink) {
    if (sink.wants(0)) {
      const Tensor a_pow = compute(BinaryOp::kPow, a, sub(b, Tensor::ones({}, b.dtype())), dy.shape());
      sink.add(0, sum_to(mul(dy, mul(b, a_pow)), a.shape()));
    }
    if (sink.wants(1)) {
      // mask = [a > 0] = 1 − [a ≤ 0]; ln a is evaluated at max(a, tiny) and masked.
      const Tensor zero = Tensor::zeros({}, a.dtype());
      const Tensor mask = sub(Tensor::ones({}, a.dtype()), compute(BinaryOp::kLessEqual, a, zero, a.shape()));
      const Tensor ln = mul(log(maximum(a, Tensor::full({}, 1e-300, a.dtype()))), mask);
      sink.add(1, sum_to(mul(dy, mul(y, ln)), b.shape()));
    }
  };
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::kAdd, "ops::add", a, b, add_backward); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::kSub, "ops::sub", a, b, sub_backward); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::kMul, "ops::mul", a, b, mul_backward); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::kDiv, "ops::div", a, b, div_backward); }
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::kMaximum, "ops::maximum", a, b, maximum_backward);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::kMinimum, "ops::minimum", a, b, minimum_backward);
}
Tensor pow(const Tensor& x, const Tensor& p) { return binary(BinaryOp::kPow, "ops::pow", x, p, pow_backward); }

Tensor add(const Tensor& a, double b) {
  check_defined(a, "ops::add", "first operand");
  return add(a, Tensor::full({}, b, a.dtype()));
}
Tensor mul(const Tensor& a, double b) {
  check_defined(a, "ops::mul", "first operand");
  return mul(a, Tensor::full({}, b, a.dtype()));
}

// y = broadcast(x)  ⇒  dx = sum_to(dy, x.shape)
Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  check_arithmetic(x, "ops::broadcast_to");
  const Shape out_shape = broadcast_shapes(x.shape(), shape, "ops::broadcast_to");
  if (out_shape != shape) {
    throw ShapeError(str("ops::broadcast_to: shape ", x.shape(), " cannot be broadcast to ", shape));
  }
  if (x.is_symbolic()) return make_result(shape, x.dtype(), true);
  if (x.shape() == shape) return x;
  Tensor out = Tensor::empty(shape, x.dtype());
  const auto xs = broadcast_strides(x.shape(), shape);
  const int rank = static_cast<int>(shape.size());
  switch (x.dtype()) {
    case DType::kFloat32: kernels::cpu::broadcast_copy(x.data<float>(), xs.data(), out.data<float>(), shape.data(), rank); break;
    case DType::kFloat64: kernels::cpu::broadcast_copy(x.data<double>(), xs.data(), out.data<double>(), shape.data(), rank); break;
    case DType::kInt64: kernels::cpu::broadcast_copy(x.data<int64_t>(), xs.data(), out.data<int64_t>(), shape.data(), rank); break;
    case DType::kUInt8: break;  // rejected by check_arithmetic
  }
  if (should_record({x})) {
    record(out, "ops::broadcast_to", {x}, [sx = x.shape()](const Tensor& dy, GradSink& sink) {
      sink.add(0, sum_to(dy, sx));
    });
  }
  return out;
}

}  // namespace normnet::ops

namespace normnet {

namespace {
Tensor scalar_like(const Tensor& t, double v, const char* op) {
  ops::detail::check_defined(t, op, "tensor operand");
  return Tensor::full({}, v, t.dtype());
}
}  // namespace

Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
Tensor operator-(const Tensor& a) { return ops::neg(a); }
Tensor operator+(const Tensor& a, double b) { return ops::add(a, scalar_like(a, b, "operator+")); }
Tensor operator-(const Tensor& a, double b) { return ops::sub(a, scalar_like(a, b, "operator-")); }
Tensor operator*(const Tensor& a, double b) { return ops::mul(a, scalar_like(a, b, "operator*")); }
Tensor operator/(const Tensor& a, double b) { return ops::div(a, scalar_like(a, b, "operator/")); }
Tensor operator+(double a, const Tensor& b) { return ops::add(scalar_like(b, a, "operator+"), b); }
Tensor operator-(double a, const Tensor& b) { return ops::sub(scalar_like(b, a, "operator-"), b); }
Tensor operator*(double a, const Tensor& b) { return ops::mul(scalar_like(b, a, "operator*"), b); }
Tensor operator/(double a, const Tensor& b) { return ops::div(scalar_like(b, a, "operator/"), b); }

}  // namespace normnet

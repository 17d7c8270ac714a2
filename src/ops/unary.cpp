// Unary elementwise ops: y has x's shape and dtype (symbolic when x is); each op's forward call
// is followed by its backward closure, with the derivative written above it.
#include <cmath>

#include "kernels/cpu/unary.h"
#include "normnet/ops/elementwise.h"
#include "ops/op_util.h"

namespace normnet::ops {
namespace {

namespace cpu = normnet::kernels::cpu;
using detail::GradSink;

// Calls fn(T{}) with T the element type of a floating dtype.
template <class Fn>
void with_floating(DType dtype, const Fn& fn) {
  if (dtype == DType::kFloat32) fn(float{});
  else fn(double{});
}

// The shape rule and forward shared by every unary op: checks x, makes y (symbolic when x is)
// and fills it with forward(x values, y values, n).
template <class Forward>
Tensor unary_forward(const Tensor& x, const char* op, const Forward& forward) {
  detail::check_floating(x, op);
  Tensor y = detail::make_result(x.shape(), x.dtype(), x.is_symbolic());
  if (y.is_symbolic()) return y;
  with_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    forward(x.data<T>(), y.data<T>(), x.numel());
  });
  return y;
}

// Records y's backward: backward(saved values, dy, dx, n) adds into x's zero-initialized gradient
// buffer. `saved` is x or y (held detached: capturing y itself would be a reference cycle), or
// undefined when the derivative needs neither (then the kernel gets nullptr).
template <class Backward>
void record_unary(Tensor& y, const Tensor& x, const char* op, const Tensor& saved, const Backward& backward) {
  if (!detail::should_record({x})) return;
  Tensor kept = saved.defined() ? saved.detach() : Tensor();
  detail::record(y, op, {x}, [kept, backward](const Tensor& dy, GradSink& sink) {
    if (!sink.wants(0)) return;
    Tensor dx = sink.buffer(0);
    with_floating(dx.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* s = kept.defined() ? kept.data<T>() : nullptr;
      backward(s, dy.data<T>(), dx.data<T>(), dx.numel());
    });
  });
}

}  // namespace

// y = −x  ⇒  dx = −dy
Tensor neg(const Tensor& x) {
  Tensor y = unary_forward(x, "ops::neg", [](const auto* px, auto* py, int64_t n) { cpu::neg_forward(px, py, n); });
  record_unary(y, x, "ops::neg", Tensor(),
               [](const auto*, const auto* dy, auto* dx, int64_t n) { cpu::neg_backward(dy, dx, n); });
  return y;
}

// y = eˣ  ⇒  dx = dy·y
Tensor exp(const Tensor& x) {
  Tensor y = unary_forward(x, "ops::exp", [](const auto* px, auto* py, int64_t n) { cpu::exp_forward(px, py, n); });
  record_unary(y, x, "ops::exp", y,
               [](const auto* py, const auto* dy, auto* dx, int64_t n) { cpu::exp_backward(py, dy, dx, n); });
  return y;
}

// y = ln x  ⇒  dx = dy/x; at x = 0: y = −inf, dx = dy/0 (±inf, IEEE)
Tensor log(const Tensor& x) {
  Tensor y = unary_forward(x, "ops::log", [](const auto* px, auto* py, int64_t n) { cpu::log_forward(px, py, n); });
  record_unary(y, x, "ops::log", x,
               [](const auto* px, const auto* dy, auto* dx, int64_t n) { cpu::log_backward(px, dy, dx, n); });
  return y;
}

// y = √x  ⇒  dx = dy/(2y); at x = 0: dx = dy/0 = ±inf (IEEE; PyTorch and TensorFlow agree)
Tensor sqrt(const Tensor& x) {
  Tensor y = unary_forward(x, "ops::sqrt", [](const auto* px, auto* py, int64_t n) { cpu::sqrt_forward(px, py, n); });
  record_unary(y, x, "ops::sqrt", y,
               [](const auto* py, const auto* dy, auto* dx, int64_t n) { cpu::sqrt_backward(py, dy, dx, n); });
  return y;
}

// y = x²  ⇒  dx = 2x·dy
Tensor square(const Tensor& x) {
  Tensor y =
      unary_forward(x, "ops::square", [](const auto* px, auto* py, int64_t n) { cpu::square_forward(px, py, n); });
  record_unary(y, x, "ops::square", x,
               [](const auto* px, const auto* dy, auto* dx, int64_t n) { cpu::square_backward(px, dy, dx, n); });
  return y;
}

// y = |x|  ⇒  dx = sign(x)·dy; at x = 0: 0
Tensor abs(const Tensor& x) {
  Tensor y = unary_forward(x, "ops::abs", [](const auto* px, auto* py, int64_t n) { cpu::abs_forward(px, py, n); });
  record_unary(y, x, "ops::abs", x,
               [](const auto* px, const auto* dy, auto* dx, int64_t n) { cpu::abs_backward(px, dy, dx, n); });
  return y;
}

// y = sign(x)  ⇒  dx = 0 (piecewise constant). Recorded all the same, so that x.grad() becomes
// zeros rather than staying undefined, as in PyTorch.
Tensor sign(const Tensor& x) {
  Tensor y = unary_forward(x, "ops::sign", [](const auto* px, auto* py, int64_t n) { cpu::sign_forward(px, py, n); });
  record_unary(y, x, "ops::sign", Tensor(), [](const auto*, const auto*, auto*, int64_t) {});
  return y;
}

// y = xᵖ  ⇒  dx = dy·p·xᵖ⁻¹; p = 0 gives dx = 0; x = 0 with p < 1 gives ±inf (IEEE)
Tensor pow(const Tensor& x, double p) {
  Tensor y = unary_forward(x, "ops::pow",
                           [p](const auto* px, auto* py, int64_t n) { cpu::pow_forward(px, p, py, n); });
  record_unary(y, x, "ops::pow", x,
               [p](const auto* px, const auto* dy, auto* dx, int64_t n) { cpu::pow_backward(px, p, dy, dx, n); });
  return y;
}

// y = max(x, 0)  ⇒  dx = dy·[x > 0]; at x = 0: 0
// The gradient is written into a new tensor that the sink adds (it takes it as is when x has no
// gradient yet): one pass over the activations instead of a zero fill, a read and a write, which
// on the Fashion-MNIST CNN are its two largest tensors (docs/benchmarks.md).
Tensor relu(const Tensor& x) {
  Tensor y = unary_forward(x, "ops::relu", [](const auto* px, auto* py, int64_t n) { cpu::relu_forward(px, py, n); });
  if (!detail::should_record({x})) return y;
  detail::record(y, "ops::relu", {x}, [kept = y.detach()](const Tensor& dy, GradSink& sink) {
    if (!sink.wants(0)) return;
    Tensor dx = Tensor::empty(kept.shape(), kept.dtype());
    with_floating(dx.dtype(), [&](auto zero) {
      using T = decltype(zero);
      cpu::relu_backward_write(kept.data<T>(), dy.data<T>(), dx.data<T>(), dx.numel());
    });
    sink.add(0, dx);
  });
  return y;
}

// y = 1/(1 + e⁻ˣ)  ⇒  dx = dy·y·(1 − y)
Tensor sigmoid(const Tensor& x) {
  Tensor y =
      unary_forward(x, "ops::sigmoid", [](const auto* px, auto* py, int64_t n) { cpu::sigmoid_forward(px, py, n); });
  record_unary(y, x, "ops::sigmoid", y,
               [](const auto* py, const auto* dy, auto* dx, int64_t n) { cpu::sigmoid_backward(py, dy, dx, n); });
  return y;
}

// y = tanh x  ⇒  dx = dy·(1 − y²)
Tensor tanh(const Tensor& x) {
  Tensor y = unary_forward(x, "ops::tanh", [](const auto* px, auto* py, int64_t n) { cpu::tanh_forward(px, py, n); });
  record_unary(y, x, "ops::tanh", y,
               [](const auto* py, const auto* dy, auto* dx, int64_t n) { cpu::tanh_backward(py, dy, dx, n); });
  return y;
}

// y = min(max(x, lo), hi)  ⇒  dx = dy·[lo ≤ x ≤ hi] (the bounds pass the gradient)
Tensor clip(const Tensor& x, double lo, double hi) {
  if (!(lo <= hi)) {
    detail::check_defined(x, "ops::clip");
    throw ValueError(detail::str("ops::clip: expected lo <= hi, got lo = ", lo, " and hi = ", hi,
                                 " (input shape ", x.shape(), ")"));
  }
  Tensor y = unary_forward(x, "ops::clip",
                           [=](const auto* px, auto* py, int64_t n) { cpu::clip_forward(px, lo, hi, py, n); });
  record_unary(y, x, "ops::clip", x, [=](const auto* px, const auto* dy, auto* dx, int64_t n) {
    cpu::clip_backward(px, lo, hi, dy, dx, n);
  });
  return y;
}

}  // namespace normnet::ops

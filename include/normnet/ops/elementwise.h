// Elementwise ops with NumPy broadcasting. All accept symbolic tensors (shape only) and are
// differentiable in their floating inputs.
#pragma once

#include "normnet/tensor.h"

namespace normnet::ops {

// a + b, a - b, a * b, a / b with broadcasting; both operands must share a dtype.
[[nodiscard]] Tensor add(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor sub(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor mul(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor div(const Tensor& a, const Tensor& b);
// Elementwise max/min; the gradient goes to a where a >= b (maximum) / a <= b (minimum).
[[nodiscard]] Tensor maximum(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor minimum(const Tensor& a, const Tensor& b);

[[nodiscard]] Tensor neg(const Tensor& x);
[[nodiscard]] Tensor exp(const Tensor& x);
// Natural log; log(0) = -inf as IEEE says.
[[nodiscard]] Tensor log(const Tensor& x);
[[nodiscard]] Tensor sqrt(const Tensor& x);
[[nodiscard]] Tensor square(const Tensor& x);
// |x|; the gradient at 0 is 0 (the subgradient PyTorch and TensorFlow use).
[[nodiscard]] Tensor abs(const Tensor& x);
// Sign of x (-1, 0, 1); not differentiable (gradient 0).
[[nodiscard]] Tensor sign(const Tensor& x);
// x^p for a scalar exponent, and elementwise x^p with broadcasting.
[[nodiscard]] Tensor pow(const Tensor& x, double p);
[[nodiscard]] Tensor pow(const Tensor& x, const Tensor& p);
// max(x, 0); the gradient at 0 is 0.
[[nodiscard]] Tensor relu(const Tensor& x);
[[nodiscard]] Tensor sigmoid(const Tensor& x);
[[nodiscard]] Tensor tanh(const Tensor& x);
// min(max(x, lo), hi); gradient 1 inside [lo, hi], 0 outside.
[[nodiscard]] Tensor clip(const Tensor& x, double lo, double hi);
// Scalar forms.
[[nodiscard]] Tensor add(const Tensor& a, double b);
[[nodiscard]] Tensor mul(const Tensor& a, double b);

// Materializes x broadcast to `shape` (NumPy rules; x's shape must broadcast to exactly it).
[[nodiscard]] Tensor broadcast_to(const Tensor& x, const Shape& shape);

// Converts to another dtype; differentiable between float32 and float64. To uint8: rounds toward
// zero and saturates to [0, 255], NaN gives 0 (300 → 255, −3 → 0, 254.99 → 254); from uint8: exact.
[[nodiscard]] Tensor cast(const Tensor& x, DType dtype);

}  // namespace normnet::ops

// Matrix multiplication (oneDNN for float32; a reference loop for float64).
#pragma once

#include "normnet/tensor.h"

namespace normnet::ops {

// a [..., M, K] x b [K, N] or [..., K, N] -> [..., M, N]. Batch axes of a 3-d or higher `a`
// broadcast against b's. Throws ShapeError on an inner-dimension mismatch:
//   "ops::matmul: shapes [32, 784] and [128, 10] do not match on the inner dimension (784 vs 128)"
[[nodiscard]] Tensor matmul(const Tensor& a, const Tensor& b);

// x [..., K] · kernel [K, N] + bias [N] in one primitive (Dense's forward). bias may be undefined.
[[nodiscard]] Tensor linear(const Tensor& x, const Tensor& kernel, const Tensor& bias);

}  // namespace normnet::ops

// Our own float32 matrix product for AVX-512 (Goto/BLIS style: packed panels of a and b, a
// register-blocked microkernel). matmul_forward routes the shapes where it beats oneDNN here.
#pragma once

#include "kernels/cpu/matmul.h"

namespace normnet::kernels::cpu {

// Whether this build holds the AVX-512 kernel (compiled with __AVX512F__). When false,
// sgemm_forward must not be called: matmul_forward keeps every product on oneDNN.
[[nodiscard]] bool sgemm_available();

// c [M, N] = op(a) [M, K] · op(b) [K, N] + bias [N] (bias may be null); overwrites c.
// Requires matmul_batch_count(d) == 1 (batch axes, if any, all of extent 1), K ≥ 1, and
// sgemm_available(). Each element sums its K products in blocks of kSgemmKc, in K order, on
// top of the bias: the result depends only on the shapes and values, not on the thread count
// or on earlier calls. Allocates only when a call needs larger packing buffers than any before.
//   sgemm_forward(a, b, bias, c, d);  // d.m = 1024, d.k = 1024, d.n = 1024
void sgemm_forward(const float* a, const float* b, const float* bias, float* c, const MatmulDims& d);

}  // namespace normnet::kernels::cpu

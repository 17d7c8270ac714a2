// A packed float32 matrix product for AVX2 with FMA (Goto / BLIS blocking): panels of op(b) and
// op(a) are copied into the order the 6×16 register tile reads them, so the inner loop streams
// both from L1 and L2. matmul.cpp routes large products here in builds without AVX-512, where
// oneDNN 2.6's AVX2 `gemm:jit` reaches about 72 % of a core's FMA peak (docs/benchmarks.md).
//
// Every element of c is one chain of fused multiply-adds in k order, started from the bias (or
// 0): blocking and threads only decide who computes it, so results depend on the shapes and
// values alone, not on the thread count or the block sizes.
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// The block of k whose products are summed apart (see above).
inline constexpr int64_t kMatmulPackedBlockK = 256;

// Whether this build has the packed kernel (compiled for AVX2 with FMA).
[[nodiscard]] bool matmul_packed_supported();

// How the threads share a product: units of rows of c (for M ≥ 256, a panel of op(b) packed by
// all threads together), or the columns of c (for a shorter M, each thread packing its own
// micro-panels of op(b)); kAuto picks by M. The bits are the same either way.
enum class MatmulPackedSplit { kAuto, kRows, kColumns };

// c [M, N] = op(a) · op(b) + bias (bias [N] may be null), c contiguous (overwritten).
// a is stored [M, K], or [K, M] when transpose_a; b is stored [K, N], or [N, K] when transpose_b.
// Requires matmul_packed_supported(); M, K, N ≥ 1.
void matmul_packed_forward(const float* a, const float* b, const float* bias, float* c, int64_t m, int64_t k,
                           int64_t n, bool transpose_a, bool transpose_b,
                           MatmulPackedSplit split = MatmulPackedSplit::kAuto);

}  // namespace normnet::kernels::cpu

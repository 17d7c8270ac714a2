// Matrix products c = op(a)·op(b) (+ bias) with broadcast batch axes: oneDNN for float32, a
// naive reference loop for float64 (oneDNN has no f64 on CPU) and as the float32 twin in tests.
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// Shape letters: M rows of the result, K the inner (summed) extent, N columns of the result.
inline constexpr int kMaxMatmulBatchRank = 8;

// One product: c [batch..., M, N] = op(a) [a_batch..., M, K] · op(b) [b_batch..., K, N] + bias [N].
// Batch axes are right-aligned to `batch_rank`; each a_batch[i], b_batch[i] is 1 (broadcast) or the
// result's extent max(a_batch[i], b_batch[i]). a and b are contiguous; c is written contiguous.
struct MatmulDims {
  int batch_rank = 0;
  int64_t a_batch[kMaxMatmulBatchRank] = {};
  int64_t b_batch[kMaxMatmulBatchRank] = {};
  int64_t m = 0;
  int64_t k = 0;
  int64_t n = 0;
  bool transpose_a = false;  // a is stored [a_batch..., K, M] and read as its transpose
  bool transpose_b = false;  // b is stored [b_batch..., N, K] and read as its transpose
};

// Number of result matrices (product of the broadcast batch extents).
[[nodiscard]] int64_t matmul_batch_count(const MatmulDims& d);

// c = op(a)·op(b) + bias (bias may be null). Overwrites c. float32 runs a cached oneDNN matmul
// primitive (falling back to the reference loop, and counting it, if oneDNN raises an error),
// except a single row times an untransposed b (a Dense layer at batch 1), which runs our own
// cache-aware row-times-matrix loop, and a tall product with a transposed a (M ≥ 4·K, N ≥ 64,
// M·K ≥ 2^18, no batch: a Dense layer's weight gradient), whose a is transposed into a buffer
// (kept per thread) before oneDNN runs, and a large product, which runs the packed AVX2 kernel
// (matmul_packed.h) in builds without AVX-512 (matmul_forward_runs_packed) and oneDNN's own
// sgemm in AVX-512 builds (matmul_forward_runs_sgemm); float64 runs
// the reference loop. Results depend only on the shapes and values, not on the thread count or on
// earlier calls.
void matmul_forward(const float* a, const float* b, const float* bias, float* c, const MatmulDims& d);
void matmul_forward(const double* a, const double* b, const double* bias, double* c, const MatmulDims& d);

// Whether matmul_forward runs `d` (float32) on the packed AVX2 kernel: builds without AVX-512, no
// batch axes once a's batch is folded into its rows, M ≥ 256 and N ≥ 64 or 128 ≤ M < 256 and
// N ≥ 1024, 32 ≤ K ≤ 4·max(M, N) and M·K·N ≥ 2^22.
[[nodiscard]] bool matmul_forward_runs_packed(const MatmulDims& d);
// Whether matmul_forward runs `d` (float32) on oneDNN's dnnl_sgemm: AVX-512 builds, the same
// shapes as matmul_forward_runs_packed (there 86–87 % of the FMA peak at 1024³ on Zen 5, against
// 73–80 % for the matmul primitive's brg:avx512_core kernel).
[[nodiscard]] bool matmul_forward_runs_sgemm(const MatmulDims& d);

// Whether the library was compiled for AVX-512 (NORMNET_NATIVE on an AVX-512 machine), where large
// products run oneDNN's sgemm instead of the packed AVX2 kernel. Code compiled with other flags (the tests)
// asks here rather than testing __AVX512F__ itself.
[[nodiscard]] bool matmul_built_for_avx512();

// The naive twin: one dot product per element, accumulated in double.
template <class T>
void matmul_reference(const T* a, const T* b, const T* bias, T* c, const MatmulDims& d);

// dbias[N] = Σ_rows dy[rows, N] (overwrites dbias): the bias gradient of linear and conv2d.
template <class T>
void bias_backward(const T* dy, T* dbias, int64_t rows, int64_t n);

}  // namespace normnet::kernels::cpu

// Matrix products: a cached oneDNN matmul primitive for float32, our own row-times-matrix loop
// for a single float32 row (Dense at batch 1), for large products our packed AVX2 kernel or, in
// AVX-512 builds, oneDNN's sgemm; naive loops for float64.
#include "kernels/cpu/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/dnnl_context.h"
#include "kernels/cpu/matmul_packed.h"
#include "kernels/cpu/movement.h"
#include "kernels/cpu/parallel.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

using dims_t = dnnl::memory::dims;

bool all_ones(const int64_t* extents, int rank) {
  for (int i = 0; i < rank; ++i) if (extents[i] != 1) return false;
  return true;
}

// When b has no batch (all extents 1) and a is not transposed, a's batch rows are just more rows
// of one larger product: [B, M, K]·[K, N] = [B·M, K]·[K, N], which oneDNN runs faster.
MatmulDims fold_batch(const MatmulDims& d) {
  MatmulDims f = d;
  if (all_ones(d.b_batch, d.batch_rank) && (!d.transpose_a || all_ones(d.a_batch, d.batch_rank))) {
    for (int i = 0; i < d.batch_rank; ++i) f.m *= d.a_batch[i];
    f.batch_rank = 0;
  }
  return f;
}

// Strides of a stored [batch..., rows, cols] operand read as [batch..., R, C] (transposed or not).
dims_t operand_strides(const int64_t* batch, int rank, int64_t r, int64_t c, bool transposed) {
  dims_t strides(rank + 2);
  strides[rank] = transposed ? 1 : c;
  strides[rank + 1] = transposed ? r : 1;
  int64_t step = r * c;
  for (int i = rank - 1; i >= 0; --i) {
    strides[i] = step;
    step *= batch[i];
  }
  return strides;
}

dims_t operand_dims(const int64_t* batch, int rank, int64_t r, int64_t c) {
  dims_t dims(batch, batch + rank);
  dims.push_back(r);
  dims.push_back(c);
  return dims;
}

void fill_bias(float* c, const float* bias, int64_t rows, int64_t n) {
  for (int64_t i = 0; i < rows; ++i) {
    if (bias) std::memcpy(c + i * n, bias, sizeof(float) * n);
    else std::memset(c + i * n, 0, sizeof(float) * n);
  }
}

void matmul_dnnl(const float* a, const float* b, const float* bias, float* c, const MatmulDims& d) {
  const int rank = d.batch_rank;
  int64_t c_batch[kMaxMatmulBatchRank];
  for (int i = 0; i < rank; ++i) c_batch[i] = std::max(d.a_batch[i], d.b_batch[i]);
  const dims_t a_dims = operand_dims(d.a_batch, rank, d.m, d.k);
  const dims_t b_dims = operand_dims(d.b_batch, rank, d.k, d.n);
  const dims_t c_dims = operand_dims(c_batch, rank, d.m, d.n);
  const auto a_md = dnnl_plain_desc(a_dims, operand_strides(d.a_batch, rank, d.m, d.k, d.transpose_a));
  const auto b_md = dnnl_plain_desc(b_dims, operand_strides(d.b_batch, rank, d.k, d.n, d.transpose_b));
  const auto c_md = dnnl_plain_desc(c_dims, operand_strides(c_batch, rank, d.m, d.n, false));
  dims_t bias_dims(rank + 2, 1);
  bias_dims.back() = d.n;
  const auto bias_md = bias ? dnnl_plain_desc(bias_dims, operand_strides(bias_dims.data(), rank, 1, d.n, false))
                            : dnnl::memory::desc();

  DnnlKey key{kDnnlMatmul, rank, d.m, d.k, d.n, d.transpose_a, d.transpose_b, bias != nullptr};
  key.insert(key.end(), d.a_batch, d.a_batch + rank);
  key.insert(key.end(), d.b_batch, d.b_batch + rank);
  const DnnlPrimitive& p = dnnl_cached_primitive(std::move(key), [&](const dnnl::primitive_attr& attr) {
    const dnnl::matmul::desc desc = bias ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md)
                                         : dnnl::matmul::desc(a_md, b_md, c_md);
    return dnnl::matmul::primitive_desc(desc, attr, dnnl_engine());
  });
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl_wrap(a_md, a)}, {DNNL_ARG_WEIGHTS, dnnl_wrap(b_md, b)}, {DNNL_ARG_DST, dnnl_wrap(c_md, c)}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl_wrap(bias_md, bias);
  dnnl_execute(p, args);
}

// ---- one row times a matrix: c[N] = a[K]·b[K, N] + bias (a Dense layer at batch 1) ----
// Two flops per element of b, each element read once: the product is bound by how fast b streams
// in. oneDNN walks b front to back on every call, so a b slightly larger than the L2 caches (the
// CNN's Dense 9216→128 is 4.7 MB against 2 × 2 MB of L2 on the Intel VM, 2 × 1 MB on Zen 5)
// misses on all of it every call. Here b is cut into chunks of rows; each thread owns a fixed run
// of chunks and walks it forwards on one call and backwards on the next, so a call starts on the
// rows the previous one left in its core's L2.
// Each chunk writes its own partial sums, added in chunk order at the end: the result does not
// depend on the direction of the walk or on the thread count.

constexpr int64_t kGemvMaxChunkRows = 256;
// How far ahead (in bytes of b's rows) gemv_block prefetches b into L1. b streams from L3 (it is
// larger than the L2 caches) and the hardware prefetcher alone left the loop waiting: Dense
// 9216→128 at batch 1 took 0.79–0.80 of the time with 12 KB (24 rows) ahead on Zen 5
// (docs/benchmarks.md, step 37).
constexpr int64_t kGemvPrefetchBytes = 12 * 1024;
constexpr int64_t kGemvMaxPartials = int64_t{1} << 20;  // chunks × N floats (4 MB) at most
constexpr int64_t kGemvParallelMin = int64_t{1} << 16;  // K·N below this: one thread (fork/join costs more)

// Rows per chunk: 256, fewer for a short K (at least 16 chunks while chunks keep ≥ 16 rows), so
// that threads have chunks to share. Depends on K only, so the sums do too.
int64_t gemv_chunk_rows(int64_t k) {
  const int64_t rows = (k + 15) / 16;
  return std::clamp<int64_t>((rows + 15) / 16 * 16, 16, kGemvMaxChunkRows);
}

bool use_gemv(const MatmulDims& d) {
  if (matmul_batch_count(d) != 1 || d.m != 1 || d.transpose_b) return false;  // a [1, K] or [K, 1]: the same bytes
  const int64_t chunks = (d.k + gemv_chunk_rows(d.k) - 1) / gemv_chunk_rows(d.k);
  return chunks * d.n <= kGemvMaxPartials;
}

// out[0, W) = Σ_{k0 ≤ k < k1} a[k] · b[k, 0..W) for a block of W columns of b (row stride ldb).
template <int64_t W>
void gemv_block(const float* a, const float* b, int64_t ldb, int64_t k0, int64_t k1, float* out) {
  float acc[W] = {};  // W / 16 AVX-512 registers
  const int64_t row_bytes = ldb * static_cast<int64_t>(sizeof(float));
  const auto ahead =
      static_cast<std::uintptr_t>(std::max<int64_t>(1, kGemvPrefetchBytes / row_bytes) * row_bytes);
  for (int64_t k = k0; k < k1; ++k) {
    const float ak = a[k];
    const float* row = b + k * ldb;
    // One prefetch per 64-byte line of this block's columns, `ahead` bytes on (a prefetch never
    // faults: past b's end it only costs a load slot; the address is formed as an integer).
    const std::uintptr_t next = reinterpret_cast<std::uintptr_t>(row) + ahead;
    for (int64_t j = 0; j < W; j += 16) {
      __builtin_prefetch(reinterpret_cast<const void*>(next + static_cast<std::uintptr_t>(j) * sizeof(float)),
                         0, 3);
    }
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) acc[j] += ak * row[j];
  }
  std::memcpy(out, acc, sizeof(acc));
}

// partial[0, N) = Σ_{k0 ≤ k < k1} a[k] · b[k, 0..N)
void gemv_chunk(const float* a, const float* b, int64_t k0, int64_t k1, int64_t n, float* partial) {
  int64_t j = 0;
  for (; j + 128 <= n; j += 128) gemv_block<128>(a, b + j, n, k0, k1, partial + j);
  for (; j + 64 <= n; j += 64) gemv_block<64>(a, b + j, n, k0, k1, partial + j);
  for (; j + 16 <= n; j += 16) gemv_block<16>(a, b + j, n, k0, k1, partial + j);
  if (j == n) return;
  float acc[16] = {};
  const int64_t w = n - j;
  for (int64_t k = k0; k < k1; ++k) {
    const float ak = a[k];
    const float* row = b + k * n + j;
    for (int64_t c = 0; c < w; ++c) acc[c] += ak * row[c];
  }
  std::memcpy(partial + j, acc, sizeof(float) * static_cast<std::size_t>(w));
}

// Whether this call walks its chunks backwards: alternates per b (by address, in a small table;
// two matrices sharing a slot only cost speed) and per calling thread.
bool walk_backwards(const float* b) {
  constexpr std::size_t kSlots = 61;
  thread_local bool backwards[kSlots] = {};
  bool& slot = backwards[(reinterpret_cast<std::uintptr_t>(b) >> 6) % kSlots];
  slot = !slot;
  return slot;
}

float* gemv_partials(std::size_t count) {
  thread_local std::vector<float> partials;
  if (partials.size() < count) partials.resize(count);
  return partials.data();
}

void gemv_forward(const float* a, const float* b, const float* bias, float* c, int64_t k, int64_t n) {
  const int64_t rows = gemv_chunk_rows(k);
  const int64_t chunks = (k + rows - 1) / rows;
  float* partial = gemv_partials(static_cast<std::size_t>(chunks * n));
  const bool backwards = walk_backwards(b);
  const int threads = k * n >= kGemvParallelMin ? static_cast<int>(std::min<int64_t>(get_num_threads(), chunks)) : 1;
  // Thread t of nt walks chunks [chunks·t/nt, chunks·(t+1)/nt); one thread walks them all without
  // entering an OpenMP region (kernels/cpu/parallel.h: a region costs more than a small product).
  const auto walk = [&](int64_t t, int64_t nt) {
    const int64_t begin = chunks * t / nt, end = chunks * (t + 1) / nt;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t chunk = backwards ? begin + end - 1 - i : i;
      gemv_chunk(a, b, chunk * rows, std::min(k, (chunk + 1) * rows), n, partial + chunk * n);
    }
  };
  if (threads == 1) {
    walk(0, 1);
  } else {
#pragma omp parallel num_threads(threads)
    walk(omp_get_thread_num(), omp_get_num_threads());
  }
  if (bias) std::memcpy(c, bias, sizeof(float) * static_cast<std::size_t>(n));
  else std::memset(c, 0, sizeof(float) * static_cast<std::size_t>(n));
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const float* p = partial + chunk * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) c[j] += p[j];
  }
}

}  // namespace

// ---- a tall product with a transposed a: transposed into a buffer first ----
// oneDNN 2.6's gemm:jit reads a transposed a of a tall, short-K product at a fraction of its speed
// on the same values stored untransposed: the Dense layer's weight gradient dW = xᵀ·dy
// (M, K, N) = (9216, 128, 128) took 6.0–6.4 ms against 2.6–3.5 ms from a copy of xᵀ (AVX2 VM,
// 2 threads). Such an a is transposed first (permute's cache-sized tiles, a small fraction of the
// product's time: M·K moves against M·K·N multiply-adds) into a buffer kept for the next call.
bool transposes_a_first(const MatmulDims& d) {
  return d.transpose_a && d.batch_rank == 0 && d.m >= 4 * d.k && d.n >= 64 && d.m * d.k >= (int64_t{1} << 18);
}

void matmul_transposed_a_first(const float* a, const float* b, const float* bias, float* c,
                               const MatmulDims& d) {
  thread_local std::vector<float> at;
  at.resize(static_cast<std::size_t>(d.m * d.k));
  const int64_t shape[2] = {d.m, d.k}, strides[2] = {1, d.m};  // a is stored [K, M]
  permute_forward(a, at.data(), 2, shape, strides);
  MatmulDims plain = d;
  plain.transpose_a = false;
  matmul_dnnl(at.data(), b, bias, c, plain);
}

// ---- large products in builds without AVX-512: the packed AVX2 kernel (matmul_packed.h) ----
// oneDNN 2.6's AVX2 sgemm runs a 1024³ product at 63–67 % of the FMA peak on the AVX2 VM, the
// packed kernel at 74–80 % in the same rounds (docs/benchmarks.md, step 25), the Dense layer's
// weight gradient (M, K, N) = (9216, 128, 128) with a transposed a 1.7× faster than the transposed
// copy and oneDNN below, and, split by columns (128 ≤ M < 256, N ≥ 1024), its dx (128, 128, 9216)
// 1.2× faster (step 27). Each packed value of op(b) serves M/6 tiles and each of op(a) N/16: the
// kernel loses where K is long against M and N (the Dense forward, (128, 9216, 128): 50–51 % of the
// peak against oneDNN's 61–63 %), for M below 128 ((64, 512, 4096): 37–45 % against 48–55 %), and on
// small products, where packing costs more than it saves. AVX-512 builds run oneDNN's sgemm
// (below).
bool large_product(const MatmulDims& d) {  // d folded (fold_batch)
  const bool by_rows = d.m >= 256 && d.n >= 64, by_columns = d.m >= 128 && d.m < 256 && d.n >= 1024;
  return d.batch_rank == 0 && (by_rows || by_columns) && d.k >= 32 && d.k <= 4 * std::max(d.m, d.n) &&
         d.m * d.k * d.n >= (int64_t{1} << 22);
}

bool runs_packed(const MatmulDims& d) {  // d folded (fold_batch)
#if defined(__AVX512F__)
  (void)d;
  return false;
#else
  return matmul_packed_supported() && large_product(d);
#endif
}

// ---- large products in AVX-512 builds: oneDNN's own sgemm ----
// At 1024³ on Zen 5 (2026-12-02, 2 threads, 3 rounds of 5 interleaved repetitions) dnnl_sgemm ran
// at 86.7–87.1 % of the FMA peak measured beside it, the matmul primitive (brg:avx512_core) at
// 73.4–79.9 %. Bias: c is filled with it and sgemm adds the product (beta = 1). Its split between
// threads does not cut K for these shapes: the same bits on 1 and 2 threads (tested).
bool runs_sgemm(const MatmulDims& d) {  // d folded (fold_batch)
#if defined(__AVX512F__)
  return large_product(d);
#else
  (void)d;
  return false;
#endif
}

void matmul_sgemm(const float* a, const float* b, const float* bias, float* c, const MatmulDims& d) {
  dnnl_sync_threads();
  float beta = 0.0f;
  if (bias) {
    fill_bias(c, bias, d.m, d.n);
    beta = 1.0f;
  }
  const dnnl_status_t status =
      dnnl_sgemm(d.transpose_a ? 'T' : 'N', d.transpose_b ? 'T' : 'N', d.m, d.n, d.k, 1.0f, a,
                 d.transpose_a ? d.m : d.k, b, d.transpose_b ? d.k : d.n, beta, c, d.n);
  if (status != dnnl_success) throw dnnl::error(status, "dnnl_sgemm");
}

bool matmul_forward_runs_packed(const MatmulDims& d) { return runs_packed(fold_batch(d)); }
bool matmul_forward_runs_sgemm(const MatmulDims& d) { return runs_sgemm(fold_batch(d)); }

bool matmul_built_for_avx512() {
#if defined(__AVX512F__)
  return true;
#else
  return false;
#endif
}

int64_t matmul_batch_count(const MatmulDims& d) {
  int64_t count = 1;
  for (int i = 0; i < d.batch_rank; ++i) count *= std::max(d.a_batch[i], d.b_batch[i]);
  return count;
}

void matmul_forward(const float* a, const float* b, const float* bias, float* c, const MatmulDims& dims) {
  const MatmulDims d = fold_batch(dims);
  const int64_t rows = matmul_batch_count(d) * d.m;
  if (rows == 0 || d.n == 0) return;
  if (d.k == 0) return fill_bias(c, bias, rows, d.n);  // an empty sum
  if (use_gemv(d)) return gemv_forward(a, b, bias, c, d.k, d.n);
  if (runs_packed(d))
    return matmul_packed_forward(a, b, bias, c, d.m, d.k, d.n, d.transpose_a, d.transpose_b);
  try {
    if (runs_sgemm(d))
      matmul_sgemm(a, b, bias, c, d);
    else if (transposes_a_first(d))
      matmul_transposed_a_first(a, b, bias, c, d);
    else
      matmul_dnnl(a, b, bias, c, d);
  } catch (const dnnl::error&) {
    dnnl_note_fallback();
    matmul_reference(a, b, bias, c, d);
  }
}

void matmul_forward(const double* a, const double* b, const double* bias, double* c, const MatmulDims& d) {
  matmul_reference(a, b, bias, c, fold_batch(d));
}

template <class T>
void matmul_reference(const T* a, const T* b, const T* bias, T* c, const MatmulDims& d) {
  const int64_t batch = matmul_batch_count(d);
  const int64_t M = d.m, K = d.k, N = d.n;
  // Element strides of each batch axis in a and b (0 along an axis they are broadcast on).
  int64_t extent[kMaxMatmulBatchRank], a_step[kMaxMatmulBatchRank], b_step[kMaxMatmulBatchRank];
  int64_t a_size = M * K, b_size = K * N;
  for (int i = d.batch_rank - 1; i >= 0; --i) {
    extent[i] = std::max(d.a_batch[i], d.b_batch[i]);
    a_step[i] = d.a_batch[i] == 1 ? 0 : a_size;
    b_step[i] = d.b_batch[i] == 1 ? 0 : b_size;
    a_size *= d.a_batch[i];
    b_size *= d.b_batch[i];
  }
  // A(i, k) and B(k, j) of op(a), op(b) within one batch matrix.
  const int64_t a_row = d.transpose_a ? 1 : K, a_col = d.transpose_a ? M : 1;
  const int64_t b_row = d.transpose_b ? 1 : N, b_col = d.transpose_b ? K : 1;
#pragma omp parallel for collapse(2) num_threads(get_num_threads()) if (batch * M * N * K > 32768)
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t i = 0; i < M; ++i) {
      int64_t rest = bi, a_off = 0, b_off = 0;
      for (int r = d.batch_rank - 1; r >= 0; --r) {
        const int64_t idx = rest % extent[r];
        rest /= extent[r];
        a_off += idx * a_step[r];
        b_off += idx * b_step[r];
      }
      const T* pa = a + a_off + i * a_row;
      T* pc = c + (bi * M + i) * N;
      for (int64_t j = 0; j < N; ++j) {
        const T* pb = b + b_off + j * b_col;
        double acc = bias ? static_cast<double>(bias[j]) : 0.0;
        for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(pa[k * a_col]) * static_cast<double>(pb[k * b_row]);
        pc[j] = static_cast<T>(acc);
      }
    }
  }
}

template <class T>
void bias_backward(const T* dy, T* dbias, int64_t rows, int64_t n) {
  // Columns in blocks of 64 per thread; rows summed in order in double (deterministic).
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const int threads = blocks > 1 && rows * n > 65536 ? get_num_threads() : 1;
  parallel_for(blocks, threads, [=](int64_t blk) {
    const int64_t c0 = blk * kBlock, width = std::min(kBlock, n - c0);
    double acc[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = dy + r * n + c0;
      for (int64_t j = 0; j < width; ++j) acc[j] += static_cast<double>(row[j]);
    }
    for (int64_t j = 0; j < width; ++j) dbias[c0 + j] = static_cast<T>(acc[j]);
  });
}

template void matmul_reference<float>(const float*, const float*, const float*, float*, const MatmulDims&);
template void matmul_reference<double>(const double*, const double*, const double*, double*, const MatmulDims&);
template void bias_backward<float>(const float*, float*, int64_t, int64_t);
template void bias_backward<double>(const double*, double*, int64_t, int64_t);

}  // namespace normnet::kernels::cpu

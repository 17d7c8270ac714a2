// The packed AVX2 matrix product: a 6×16 register tile (12 accumulators of 8 lanes, two loads of
// b and six broadcasts of a per step of k) over panels packed Goto / BLIS style.
//
// Split by rows (M ≥ 256), loops outermost first: columns in blocks of kNc (a packed panel of
// op(b), kKc × kNc, shared by the threads, sits in L3); k in blocks of kKc; units of 48 rows taken
// by the threads in turn, each packing its rows of op(a) (48 × kKc, L2); then every 16-column
// micro-panel of b (kKc × 16 floats, L1) against every 6-row micro-panel of a. Split by columns
// (shorter M): each thread packs all of op(a) per block of k and its own micro-panels of b one at a
// time (run_columns). Edges are padded with zeros in the packed panels and computed through a
// 6×16 buffer.
#include "kernels/cpu/matmul_packed.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "normnet/threading.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace normnet::kernels::cpu {

#if defined(__AVX2__) && defined(__FMA__)
namespace {

constexpr int64_t kMr = 6, kNr = 16;  // the register tile
// k per packed block: a micro-panel of b is kKc × 16 floats = 16 KiB (L1).
constexpr int64_t kKc = kMatmulPackedBlockK;
constexpr int64_t kNc = 4080;     // columns per packed panel of b: at most 4 MiB (L3)
constexpr int64_t kColumnsBelowRows = 256;  // M below this: threads split the columns (run_columns)
constexpr int64_t kRowUnit = 48;  // rows per unit of work shared out between threads (8 micro-panels)
constexpr int64_t kParallelMin = int64_t{1} << 20;  // M·K·N below this: one thread

// A float buffer kept per thread, aligned to 32 bytes for the packed panels' loads, with 8 floats
// of slack after `count` (pack_a_panel writes up to 2 past the last micro-panel).
float* aligned_buffer(std::vector<float>& storage, int64_t count) {
  const auto need = static_cast<std::size_t>(count + 16);  // 32-byte alignment, then 8 floats of slack
  if (storage.size() < need) storage.resize(need);
  auto address = reinterpret_cast<std::uintptr_t>(storage.data());
  return storage.data() + ((32 - address % 32) % 32) / sizeof(float);
}

// r[j][i] ← r[i][j] for the eight rows of eight floats.
inline void transpose_8x8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // r_i0 r_i+1,0 r_i1 r_i+1,1 | same for columns 4, 5
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // columns 2, 3 | 6, 7
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = _mm256_shuffle_ps(t[i + h], t[i + 2 + h], _MM_SHUFFLE(1, 0, 1, 0));
      u[i + 2 * h + 1] = _mm256_shuffle_ps(t[i + h], t[i + 2 + h], _MM_SHUFFLE(3, 2, 3, 2));
    }
  }
  // u[0..3]: columns 0, 1, 2, 3 of rows 0–3 (low half) and 4, 5, 6, 7 (high half); u[4..7]: rows 4–7.
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

// Packing reads b and a in runs of at most a page (a row's share of a panel), where the hardware
// prefetchers start cold each time: each run is prefetched while the one before it is packed.
constexpr int64_t kPrefetchRows = 4;  // rows of b ahead
// Rows of a stored [K, M] ahead: a unit's run per row is short, so there is less work per row.
constexpr int64_t kPrefetchRowsTransposed = 16;

inline void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

// Floats from one packed micro-panel of b to the next: kc × 16 and one line more. At exactly
// 16·kc floats (16 KiB for kc = 256) the packing's row of stores, one per micro-panel, all fell in
// one set of the 8-way L1: packing b took 4.5 % of the samples against 3.0 % with the extra line.
constexpr int64_t panel_stride(int64_t kc) { return kNr * kc + 16; }

// ---- packing: op(b) rows [p0, p0 + kc) × columns [j0, j0 + nc) as micro-panels of 16 columns,
// each kc × 16 floats (row kk of micro-panel q at dst + panel_stride(kc)·(q − q0) + 16·kk); columns
// past nc are zero.
// This packs micro-panels [q0, q1).
void pack_b_panels(const float* b, int64_t k, int64_t n, bool transpose_b, int64_t p0, int64_t kc, int64_t j0,
                   int64_t nc, int64_t q0, int64_t q1, float* dst) {
  if (!transpose_b) {  // b[p, j] at b[p·N + j]: row by row, so that b is read front to back
    for (int64_t kk = 0; kk < kc; ++kk) {
      const float* src = b + (p0 + kk) * n + j0;
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t width = std::min(kNr, nc - q * kNr);
        float* out = dst + (q - q0) * panel_stride(kc) + kk * kNr;
        if (kk + kPrefetchRows < kc) prefetch(src + kPrefetchRows * n + q * kNr);
        if (width == kNr) {
          _mm256_store_ps(out, _mm256_loadu_ps(src + q * kNr));
          _mm256_store_ps(out + 8, _mm256_loadu_ps(src + q * kNr + 8));
        } else {
          for (int64_t j = 0; j < kNr; ++j) out[j] = j < width ? src[q * kNr + j] : 0.0f;
        }
      }
    }
    return;
  }
  // b stored [N, K]: op(b)[p, j] at b[j·K + p], each column a contiguous run of k; eight columns
  // by eight values of k at a time through a transpose.
  for (int64_t q = q0; q < q1; ++q) {
    float* panel = dst + (q - q0) * panel_stride(kc);
    for (int64_t half = 0; half < kNr; half += 8) {
      const int64_t col = q * kNr + half, width = std::clamp<int64_t>(nc - col, 0, 8);
      if (width == 0) {  // the second half of the last micro-panel, past the edge: zeros
        for (int64_t kk = 0; kk < kc; ++kk) _mm256_store_ps(panel + kk * kNr + half, _mm256_setzero_ps());
        continue;
      }
      const float* cols[8];  // columns past the edge repeat the last one (read, never used)
      for (int64_t x = 0; x < 8; ++x) cols[x] = b + (j0 + col + std::min(x, width - 1)) * k + p0;
      const bool next_panel = j0 + col + kNr + 8 <= n;  // the next micro-panel's columns, prefetched
      int64_t kk = 0;
      for (; kk + 8 <= kc; kk += 8) {
        if (next_panel && kk % 16 == 0) {
          for (int64_t x = 0; x < 8; ++x) prefetch(cols[x] + kNr * k + kk);
        }
        __m256 r[8];
        for (int64_t x = 0; x < 8; ++x)
          r[x] = x < width ? _mm256_loadu_ps(cols[x] + kk) : _mm256_setzero_ps();
        transpose_8x8(r);
        for (int64_t y = 0; y < 8; ++y) _mm256_store_ps(panel + (kk + y) * kNr + half, r[y]);
      }
      for (; kk < kc; ++kk) {
        for (int64_t x = 0; x < 8; ++x) panel[kk * kNr + half + x] = x < width ? cols[x][kk] : 0.0f;
      }
    }
  }
}

// op(a) rows [i0, i0 + 6) × k [p0, p0 + kc) as one micro-panel: row kk at 6·kk; rows past m are zero.
void pack_a_panel(const float* a, int64_t m, int64_t k, int64_t i0, int64_t p0, int64_t kc, float* dst) {
  const int64_t height = std::min(kMr, m - i0);
  // a[i, p] at a[i·K + p]: six rows, each a contiguous run of k, transposed eight values of k at a
  // time (rows 6 and 7 of the 8 × 8 transpose are zero; each store of eight floats writes the six of
  // one kk and two that the next store, or the next micro-panel's, overwrites: the buffer has slack).
  const float* rows[kMr];
  for (int64_t i = 0; i < kMr; ++i) rows[i] = a + (i0 + std::min(i, height - 1)) * k + p0;
  const bool next_panel = i0 + 2 * kMr <= m;  // the next micro-panel's rows, prefetched
  int64_t kk = 0;
  for (; kk + 8 <= kc; kk += 8) {
    if (next_panel && kk % 16 == 0) {
      for (int64_t i = 0; i < kMr; ++i) prefetch(rows[i] + kMr * k + kk);
    }
    __m256 r[8];
    for (int64_t i = 0; i < kMr; ++i) r[i] = i < height ? _mm256_loadu_ps(rows[i] + kk) : _mm256_setzero_ps();
    r[6] = r[7] = _mm256_setzero_ps();
    transpose_8x8(r);
    for (int64_t j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (kk + j) * kMr, r[j]);
  }
  for (; kk < kc; ++kk) {
    for (int64_t i = 0; i < kMr; ++i) dst[kk * kMr + i] = i < height ? rows[i][kk] : 0.0f;
  }
}

// Rows [r0, r1) of op(a) × k [p0, p0 + kc) from a stored [K, M] (transpose_a), as micro-panels of
// 6 rows at dst + kc·ir (as pack_a_panel's): k by k, each k's run of r1 − r0 floats read once. Per
// micro-panel the run is 24 bytes of a line 4·M bytes from the next k's: packed a micro-panel at a
// time, a unit re-read each line from L3 two or three times (a third of the samples of the
// Dense 9216→128 layer's dW, (M, K, N) = (9216, 128, 128)).
void pack_a_transposed(const float* a, int64_t m, int64_t r0, int64_t r1, int64_t p0, int64_t kc,
                       float* dst) {
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* src = a + (p0 + kk) * m + r0;
    if (kk + kPrefetchRowsTransposed < kc) {
      for (int64_t i = 0; i < r1 - r0; i += 16) prefetch(src + kPrefetchRowsTransposed * m + i);
    }
    for (int64_t ir = 0; ir < r1 - r0; ir += kMr) {
      float* out = dst + ir * kc + kk * kMr;
      const int64_t height = std::min(kMr, r1 - r0 - ir);
      if (kk + 1 < kc && r0 + ir + 8 <= m) {  // eight stored: the last two are the next k's, written later
        _mm256_storeu_ps(out, _mm256_loadu_ps(src + ir));
      } else {
        for (int64_t i = 0; i < kMr; ++i) out[i] = i < height ? src[ir + i] : 0.0f;
      }
    }
  }
}

// ---- the 6×16 tile: c[i, 0..16) = start[i] + Σ_kk pa[6·kk + i] · pb[16·kk + 0..16) for i < 6.
// The block's sum is one chain of fused multiply-adds from 0 in kk order, then added to start:
// c itself, or the bias (0 when null) on the first block of k (`first`). Summing each block of
// kKc apart keeps the rounding error of a long K near that of a blocked sum; c's lines are
// prefetched at the start, so they have arrived when the sum is added to them.
void tile_6x16(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, bool first,
               const float* bias) {
#pragma GCC unroll 6
  for (int64_t i = 0; i < kMr; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNr - 1), _MM_HINT_T0);
  }
  __m256 acc[kMr][2];
#pragma GCC unroll 6
  for (int64_t i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
#pragma GCC unroll 4  // 2 ran the loop at 90 % of the FMA peak, 4 at 100 % (Zen 3, L1-resident panels)
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m256 b0 = _mm256_load_ps(pb), b1 = _mm256_load_ps(pb + 8);
#pragma GCC unroll 6
    for (int64_t i = 0; i < kMr; ++i) {
      const __m256 ai = _mm256_broadcast_ss(pa + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    pa += kMr;
    pb += kNr;
  }
  const __m256 bias0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  const __m256 bias1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int64_t i = 0; i < kMr; ++i) {
    const __m256 start0 = first ? bias0 : _mm256_loadu_ps(c + i * ldc);
    const __m256 start1 = first ? bias1 : _mm256_loadu_ps(c + i * ldc + 8);
    _mm256_storeu_ps(c + i * ldc, _mm256_add_ps(start0, acc[i][0]));
    _mm256_storeu_ps(c + i * ldc + 8, _mm256_add_ps(start1, acc[i][1]));
  }
}

// A tile cut by the edge of c (height < 6 rows or width < 16 columns): computed in a 6×16 buffer
// that starts from c's part (or the bias) and is copied back.
void edge_tile(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int64_t height,
               int64_t width, bool first, const float* bias) {
  alignas(32) float tile[kMr * kNr] = {};
  for (int64_t i = 0; i < height; ++i) {
    for (int64_t j = 0; j < width; ++j) tile[i * kNr + j] = first ? (bias ? bias[j] : 0.0f) : c[i * ldc + j];
  }
  tile_6x16(kc, pa, pb, tile, kNr, false, nullptr);
  for (int64_t i = 0; i < height; ++i) std::memcpy(c + i * ldc, tile + i * kNr, sizeof(float) * width);
}

struct Problem {
  const float* a;
  const float* b;
  const float* bias;
  float* c;
  int64_t m, k, n;
  bool transpose_a, transpose_b;
};

// Rows [r0, r1) of op(a), packed at packed_a (micro-panel ir at packed_a + ir·kc), against the
// packed micro-panel pb of op(b) for the 16 (or fewer, `width`) columns from col.
void tiles_against_panel(const Problem& p, const float* packed_a, int64_t r0, int64_t r1, const float* pb,
                         int64_t col, int64_t width, int64_t kc, bool first) {
  const float* bias = p.bias ? p.bias + col : nullptr;
  for (int64_t ir = 0; ir < r1 - r0; ir += kMr) {
    const int64_t height = std::min(kMr, r1 - (r0 + ir));
    float* c = p.c + (r0 + ir) * p.n + col;
    if (height == kMr && width == kNr)
      tile_6x16(kc, packed_a + ir * kc, pb, c, p.n, first, bias);
    else
      edge_tile(kc, packed_a + ir * kc, pb, c, p.n, height, width, first, bias);
  }
}

// Rows [r0, r1) of op(a) × k [p0, p0 + kc) into packed_a (micro-panel ir at packed_a + ir·kc).
void pack_a_rows(const Problem& p, int64_t r0, int64_t r1, int64_t p0, int64_t kc, float* packed_a) {
  if (p.transpose_a) return pack_a_transposed(p.a, p.m, r0, r1, p0, kc, packed_a);
  for (int64_t ir = 0; ir < r1 - r0; ir += kMr)
    pack_a_panel(p.a, p.m, p.k, r0 + ir, p0, kc, packed_a + ir * kc);
}

// ---- rows split: a unit of rows [r0, r1) (at most kRowUnit) against the packed b panel (columns
// [j0, j0 + nc), k [p0, p0 + kc)): its rows of op(a) packed into this thread's buffer (48 × 256
// floats, L2), then every micro-panel of b (L1) against every micro-panel of a.
void multiply_rows(const Problem& p, const float* packed_b, int64_t j0, int64_t nc, int64_t p0, int64_t kc,
                   int64_t r0, int64_t r1) {
  thread_local std::vector<float> storage;
  float* packed_a = aligned_buffer(storage, kRowUnit * kKc);
  pack_a_rows(p, r0, r1, p0, kc, packed_a);
  for (int64_t jr = 0; jr < nc; jr += kNr) {
    tiles_against_panel(p, packed_a, r0, r1, packed_b + jr / kNr * panel_stride(kc), j0 + jr,
                        std::min(kNr, nc - jr), kc, p0 == 0);
  }
}

// Thread t of nt: packs its share of each b panel, waits for the others, then multiplies units of
// kRowUnit rows taken dynamically (the end of the loop waits for all). Static halves made both
// threads wait for the slower one at every block of k: on the shared VM one of them is often
// slowed for a while, and libgomp's barrier took 5–7 % of the samples against 1.6–2 % (`perf`,
// 1024³, 2 threads).
void run_rows(const Problem& p, float* packed_b, int t, int nt) {
  const int64_t units = (p.m + kRowUnit - 1) / kRowUnit;
  for (int64_t j0 = 0; j0 < p.n; j0 += kNc) {
    const int64_t nc = std::min(kNc, p.n - j0);
    const int64_t col_panels = (nc + kNr - 1) / kNr;
    for (int64_t p0 = 0; p0 < p.k; p0 += kKc) {
      const int64_t kc = std::min(kKc, p.k - p0);
      const int64_t q0 = col_panels * t / nt;
      pack_b_panels(p.b, p.k, p.n, p.transpose_b, p0, kc, j0, nc, q0, col_panels * (t + 1) / nt,
                    packed_b + q0 * panel_stride(kc));
      if (nt > 1) {
#pragma omp barrier
      }
#pragma omp for schedule(dynamic, 1)
      for (int64_t u = 0; u < units; ++u) {
        multiply_rows(p, packed_b, j0, nc, p0, kc, u * kRowUnit, std::min(p.m, (u + 1) * kRowUnit));
      }
    }
  }
}

// ---- columns split, for a short op(a) (M < kColumnsBelowRows): thread t of nt takes the
// micro-panels of b [Q·t/nt, Q·(t+1)/nt) of Q = ⌈N/16⌉ and, per block of k, packs all of op(a)
// (at most 255 × 256 floats, L2) and then each of its micro-panels of b just before the tiles that
// use it (one L1 buffer): no shared panel, so no barrier, and reading b overlaps the arithmetic of
// the micro-panel before. (Split by rows, a short M gave each shared b panel only M/6 tiles per
// barrier: the Dense 9216→128 layer's dx, (128, 128, 9216), ran at oneDNN's speed, 43–48 % of
// the peak.)
void run_columns(const Problem& p, int t, int nt) {
  thread_local std::vector<float> a_storage, b_storage;
  float* packed_a = aligned_buffer(a_storage, (p.m + kMr - 1) / kMr * kMr * kKc);
  float* packed_b = aligned_buffer(b_storage, panel_stride(kKc));
  const int64_t col_panels = (p.n + kNr - 1) / kNr;
  for (int64_t p0 = 0; p0 < p.k; p0 += kKc) {
    const int64_t kc = std::min(kKc, p.k - p0);
    pack_a_rows(p, 0, p.m, p0, kc, packed_a);
    for (int64_t q = col_panels * t / nt; q < col_panels * (t + 1) / nt; ++q) {
      pack_b_panels(p.b, p.k, p.n, p.transpose_b, p0, kc, 0, p.n, q, q + 1, packed_b);
      tiles_against_panel(p, packed_a, 0, p.m, packed_b, q * kNr, std::min(kNr, p.n - q * kNr), kc, p0 == 0);
    }
  }
}

}  // namespace

bool matmul_packed_supported() { return true; }

void matmul_packed_forward(const float* a, const float* b, const float* bias, float* c, int64_t m, int64_t k,
                           int64_t n, bool transpose_a, bool transpose_b, MatmulPackedSplit split) {
  const Problem p{a, b, bias, c, m, k, n, transpose_a, transpose_b};
  const bool by_columns =
      split == MatmulPackedSplit::kAuto ? m < kColumnsBelowRows : split == MatmulPackedSplit::kColumns;
  const int64_t shares = by_columns ? (n + kNr - 1) / kNr : (m + kRowUnit - 1) / kRowUnit;
  const int threads =
      m * k * n >= kParallelMin ? static_cast<int>(std::min<int64_t>(get_num_threads(), shares)) : 1;
  if (by_columns) {
    if (threads == 1) return run_columns(p, 0, 1);
#pragma omp parallel num_threads(threads)
    run_columns(p, omp_get_thread_num(), omp_get_num_threads());
    return;
  }
  thread_local std::vector<float> storage;
  const int64_t panel_columns = (std::min(kNc, n) + kNr - 1) / kNr * kNr;
  float* packed_b = aligned_buffer(storage, panel_columns / kNr * panel_stride(std::min(kKc, k)));
  if (threads == 1) return run_rows(p, packed_b, 0, 1);
#pragma omp parallel num_threads(threads)
  run_rows(p, packed_b, omp_get_thread_num(), omp_get_num_threads());
}

#else  // no AVX2 with FMA: matmul.cpp never routes here

bool matmul_packed_supported() { return false; }

void matmul_packed_forward(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t, bool,
                           bool, MatmulPackedSplit) {}

#endif

}  // namespace normnet::kernels::cpu

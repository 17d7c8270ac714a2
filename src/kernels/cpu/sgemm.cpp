// Packed AVX-512 SGEMM for one matrix: c = op(a)·op(b) + bias. The loop order and packing of
// Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication" (TOMS 2008), as in BLIS.
#include "kernels/cpu/sgemm.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "normnet/threading.h"
#endif

namespace normnet::kernels::cpu {

#if !defined(__AVX512F__)

bool sgemm_available() { return false; }
void sgemm_forward(const float*, const float*, const float*, float*, const MatmulDims&) {}

#else

bool sgemm_available() { return true; }

namespace {

// Blocking, for a core with a 48 KB L1d and a 2 MB L2 (Sapphire Rapids) and a large shared L3:
//   kMr × kNr = 14 × 32: the microkernel keeps a 14×32 tile of c in 28 zmm accumulators, 2 more
//     hold a row of b; each k step is 2 loads of b and 14 broadcasts of a for 28 FMAs, enough
//     independent FMAs to hide their 4-cycle latency on both FMA ports, and the fewest bytes of b
//     per FMA (4.6) of the shapes with ≥ 24 accumulators (8×48: 8, 6×64: 10.7).
//   kKc = 256: a packed kMr×kKc micro-panel of a (14 KB) stays in L1d while it meets every
//     kKc×kNr micro-panel of b (32 KB each) of a block, streamed from L2. kKc also fixes the
//     order of the sums, so it must not depend on the thread count.
//   kNc = 1024: a packed kKc×kNc block of b (1 MB) stays in L2 while the micro-panels of a go by.
// Measured at 1024³ on one thread (best of 10, busy shared machine): kKc 256/384/512/768/1024
// with kNc 1024/640/512/384/256 all within noise of each other (125–135 GFLOP/s); b-block
// micro-panels in L1 instead (kMc 16·kMr, kKc 384) the same; software prefetch of a or b no
// better. What mattered: each K block of b packed contiguously (a panel stride of K·kNr floats,
// 128 KB at K = 1024, put every panel on the same L2 sets: 60–90 GFLOP/s).
constexpr int kVectors = 2;  // zmm per row of the tile
constexpr int kMr = 14;
constexpr int kNr = 16 * kVectors;
constexpr int64_t kKc = 256;
constexpr int64_t kNc = 1024;

// Most floats of b packed at once (64 MB); a wider b is packed and multiplied a chunk of columns at a time.
constexpr int64_t kPackedBMax = int64_t{1} << 24;

constexpr int64_t kParallelMin = int64_t{1} << 18;

// Element (line, k) of an operand sits at p[line·ls + k·ks]; lines are the rows of op(a) or the
// columns of op(b), so either layout (transposed or not) packs with the same code.
struct Operand {
  const float* p;
  int64_t ls, ks;
};

// Where a microkernel's tile goes: its corner in c, c's row stride, how many of its rows and
// columns lie inside c, and where it starts from: the bias (or zero) on the first K block,
// else the partial sums already in c.
struct Tile {
  float* c;
  int64_t ldc;
  int rows, cols;
  const float* bias;  // the tile's first column of bias; null for none
  bool first;
};

__mmask16 lanes(int n) { return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

using Accumulators = __m512[kMr][kVectors];

// The tile's rows of c are fetched while the K loop runs, so that adding them at the end does
// not wait on memory (c is usually in L3 by then: a 1024² c is 4 MB).
[[gnu::always_inline]] inline void prefetch_tile(const Tile& t) {
  if (t.first) return;
  for (int r = 0; r < t.rows; ++r) {
    for (int v = 0; v < kVectors; ++v) _mm_prefetch(reinterpret_cast<const char*>(t.c + r * t.ldc + 16 * v), _MM_HINT_T0);
  }
}

// c = acc + (bias or 0) on the first K block, else c = acc + c: the block's sum, then its addition.
[[gnu::always_inline]] inline void store_tile(const Accumulators& acc, const Tile& t, const __mmask16* mask) {
  for (int r = 0; r < kMr; ++r) {
    if (r >= t.rows) break;
    float* row = t.c + r * t.ldc;
    for (int v = 0; v < kVectors; ++v) {
      const float* start = t.first ? t.bias : row;
      const __m512 base = start ? _mm512_maskz_loadu_ps(mask[v], start + 16 * v) : _mm512_setzero_ps();
      _mm512_mask_storeu_ps(row + 16 * v, mask[v], _mm512_add_ps(acc[r][v], base));
    }
  }
}

// tile (+)= Σ_{k < kc} pa[k, 0..kMr) ⊗ pb[k, 0..kNr), from packed, zero-padded micro-panels.
// Every element is one chain of FMAs in k order whatever the tile's position or edge.
void micro_kernel(int64_t kc, const float* pa, const float* pb, const Tile& t) {
  __mmask16 mask[kVectors];
  for (int v = 0; v < kVectors; ++v) mask[v] = lanes(t.cols - 16 * v);
  prefetch_tile(t);
  Accumulators acc;
  for (int r = 0; r < kMr; ++r) {
    for (int v = 0; v < kVectors; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k, pa += kMr, pb += kNr) {
    __m512 b[kVectors];
    for (int v = 0; v < kVectors; ++v) b[v] = _mm512_load_ps(pb + 16 * v);
    for (int r = 0; r < kMr; ++r) {
      const __m512 ar = _mm512_set1_ps(pa[r]);
      for (int v = 0; v < kVectors; ++v) acc[r][v] = _mm512_fmadd_ps(ar, b[v], acc[r][v]);
    }
  }
  store_tile(acc, t, mask);
}

// dst[k, 0..W) = line 0..W) of x at k, for k < kc, from x's line `line0` and k `k0` on; lines
// at or past `valid` are zero (the padding of an edge panel).
template <int W>
void pack_panel(const Operand& x, int64_t line0, int64_t k0, int valid, int64_t kc, float* dst) {
  const float* src = x.p + line0 * x.ls + k0 * x.ks;
  if (x.ls == 1) {  // a panel's lines lie side by side at each k: copy them
    for (int64_t k = 0; k < kc; ++k, src += x.ks, dst += W) {
      for (int v = 0; v < W; v += 16) {
        _mm512_mask_storeu_ps(dst + v, lanes(W - v), _mm512_maskz_loadu_ps(lanes(valid - v), src + v));
      }
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k, src += x.ks, dst += W) {  // each line strided: gather one k at a time
    for (int l = 0; l < W; ++l) dst[l] = l < valid ? src[l * x.ls] : 0.0f;
  }
}

// A buffer of `count` floats aligned to a cache line, kept per thread across calls.
float* aligned_buffer(std::vector<float>& storage, std::size_t count) {
  if (storage.size() < count + 16) storage.resize(count + 16);
  const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
  return storage.data() + ((64 - address % 64) % 64) / sizeof(float);
}

float* packed_a_buffer() {
  thread_local std::vector<float> storage;
  return aligned_buffer(storage, kMr * kKc);
}

float* packed_b_buffer(std::size_t count) {
  thread_local std::vector<float> storage;
  return aligned_buffer(storage, count);
}

int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }

// Which part of c a thread computes: rows [row0, row1) by panels [panel0, panel1) of kNr columns
// of the columns packed at a time. Threads split the rows when there are enough of them, else the
// columns; the split changes who computes a tile, never how.
struct Share {
  int64_t row0, row1, panel0, panel1;
};

Share thread_share(int64_t m, int64_t panels, int t, int nt) {
  const int64_t row_panels = ceil_div(m, kMr);
  if (row_panels >= 4 * nt || row_panels >= panels) {
    return {row_panels * t / nt * kMr, std::min(m, row_panels * (t + 1) / nt * kMr), 0, panels};
  }
  return {0, m, panels * t / nt, panels * (t + 1) / nt};
}

// The thread's share of c's columns [col0, col0 + panels·kNr) ∩ [0, N), whose b is packed by
// K blocks of kKc, each block as panels of kKc×kNr: blocks of kNc columns, then kKc of K; in
// each, a packed kMr-row micro-panel of a meets every packed micro-panel of b of the block.
void compute_share(const Operand& a, const float* packed_b, int64_t panels, const float* bias, float* c, int64_t k,
                   int64_t n, int64_t col0, const Share& s) {
  float* packed_a = packed_a_buffer();
  for (int64_t p0 = s.panel0; p0 < s.panel1; p0 += kNc / kNr) {
    const int64_t p1 = std::min(s.panel1, p0 + kNc / kNr);
    for (int64_t pc = 0; pc < k; pc += kKc) {
      const int64_t kc = std::min(kKc, k - pc);
      for (int64_t i = s.row0; i < s.row1; i += kMr) {
        const int rows = static_cast<int>(std::min<int64_t>(kMr, s.row1 - i));
        pack_panel<kMr>(a, i, pc, rows, kc, packed_a);
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t j = col0 + p * kNr;
          const Tile tile{c + i * n + j, n, rows, static_cast<int>(std::min<int64_t>(kNr, n - j)),
                          bias ? bias + j : nullptr, pc == 0};
          micro_kernel(kc, packed_a, packed_b + (pc * panels + p * kc) * kNr, tile);
        }
      }
    }
  }
}

}  // namespace

void sgemm_forward(const float* a, const float* b, const float* bias, float* c, const MatmulDims& d) {
  const int64_t m = d.m, k = d.k, n = d.n;
  const Operand op_a{a, d.transpose_a ? 1 : k, d.transpose_a ? m : 1};
  const Operand op_b{b, d.transpose_b ? k : 1, d.transpose_b ? 1 : n};
  // Columns packed at a time: all of them while that takes at most kPackedBMax floats.
  const int64_t chunk = std::min(ceil_div(n, kNr), std::max<int64_t>(1, kPackedBMax / (k * kNr))) * kNr;
  float* packed_b = packed_b_buffer(static_cast<std::size_t>(chunk * k));
  const int threads = m * n * k >= kParallelMin ? get_num_threads() : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    for (int64_t j0 = 0; j0 < n; j0 += chunk) {
      const int64_t cols = std::min(chunk, n - j0), panels = ceil_div(cols, kNr);
      for (int64_t p = panels * t / nt; p < panels * (t + 1) / nt; ++p) {  // the threads pack b together
        const int valid = static_cast<int>(std::min<int64_t>(kNr, cols - p * kNr));
        for (int64_t pc = 0; pc < k; pc += kKc) {
          const int64_t kc = std::min(kKc, k - pc);
          pack_panel<kNr>(op_b, j0 + p * kNr, pc, valid, kc, packed_b + (pc * panels + p * kc) * kNr);
        }
      }
#pragma omp barrier
      compute_share(op_a, packed_b, panels, bias, c, k, n, j0, thread_share(m, panels, t, nt));
      if (j0 + chunk < n) {
#pragma omp barrier
      }
    }
  }
}

#endif  // __AVX512F__

}  // namespace normnet::kernels::cpu

// Backward of a convolution followed by a tiling max pool, one term per window and channel (see
// conv2d_pooled_backward.h).
//
// Shape letters as in conv2d.h and pool2d.h: x [N, H, W, C], kernel [KH, KW, C, O], the pooled
// gradient dp and argmax [N, OH', OW', O]. A kernel row is KW·C contiguous floats in x (NHWC) and,
// transposed to kt[o][a][b·C + c], in the kernel: LV = KW·C / lanes vectors. The taps are cut into
// register blocks of R kernel rows × LB vectors (R·LB ≤ 24 of AVX-512's 32 registers, ≤ 12 of
// AVX2's 16): one block's accumulators (weights) or taps (data) stay in registers while the
// block runs over a window row's terms.
//
// Weights: channel o's block of accumulators stays in registers over a window row's terms: per
// term R·LB FMAs with x's taps read from L1 (a window row's input rows, 13 KB for the CNN's conv2,
// serve every channel o). Data: per window and chosen pixel m, the block's sum over the channels
// that chose m builds up in registers (R·LB FMAs per channel, kt's block read from L1/L2), then
// dx's taps at m take one read-modify-write; a read-modify-write per term instead ran at about a
// third of the FMA rate, bound by the stores.
#include "kernels/cpu/conv2d_pooled_backward.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "kernels/cpu/simd.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

using simd::kLanes;
constexpr int kMaxVectors = simd::kAccumulators;

constexpr double kParallelMinFlops = 1 << 18;  // below this one thread: the fork/join costs more

bool shapes_fit(const Conv2dDims& d, const Pool2dDims& pd) {
  const bool unpadded = d.pad_top == 0 && d.pad_left == 0 && d.pad_bottom == 0 && d.pad_right == 0;
  const bool pool_over_z = pd.n == d.n && pd.h == d.oh && pd.w == d.ow && pd.c == d.o;
  const bool nonempty =
      d.n > 0 && d.oh > 0 && d.ow > 0 && d.c > 0 && d.o > 0 && d.kh > 0 && d.kw > 0 && pd.oh > 0 && pd.ow > 0;
  const bool whole_vectors = (d.kw * d.c) % kLanes == 0;
  return unpadded && pool_over_z && nonempty && whole_vectors && pool_windows_tile(pd) &&
         max_pool2d_argmax_fits(pd);
}

}  // namespace

bool conv2d_pooled_backward_supported(const Conv2dDims& d, const Pool2dDims& pd) {
  return simd::kSimd && shapes_fit(d, pd);
}

#if !defined(NORMNET_SIMD)

void conv2d_pooled_backward(const float*, const float*, const uint8_t*, const float*, float*, bool, float*,
                            const Conv2dDims&, const Pool2dDims&) {}

#else

namespace {

using simd::add;
using simd::broadcast;
using simd::load;
using simd::multiply_add;
using simd::store;
using simd::Vec;

// Where the terms of one window row (n, i) live: for window column j and argmax byte m, the tap
// origin is x + image_row(n, i) + col_at[j] + at[m] (likewise dx), and the term's dp and argmax
// sit at term_row(n, i) + j·O + o.
struct Geometry {
  const Conv2dDims& d;
  const Pool2dDims& pd;
  int64_t row_stride;              // floats between input rows: W·C
  int64_t taps_per_channel;        // KH·KW·C: one channel's stretch of kt
  std::vector<int64_t> at;         // argmax byte -> offset of the chosen pixel's taps from the window's first
  std::vector<int64_t> col_at;     // window column j -> offset of its first pixel's taps
  std::vector<int64_t> row_first;  // window row i -> its first input row (p·sh)
  Geometry(const Conv2dDims& dims, const Pool2dDims& pool)
      : d(dims), pd(pool), row_stride(dims.w * dims.c), taps_per_channel(dims.kh * dims.kw * dims.c) {
    at.resize(static_cast<std::size_t>(pd.ph * pd.pw));
    for (int64_t m = 0; m < pd.ph * pd.pw; ++m) {
      at[m] = (m / pd.pw) * d.stride_h * row_stride + (m % pd.pw) * d.stride_w * d.c;
    }
    col_at.resize(static_cast<std::size_t>(pd.ow));
    for (int64_t j = 0; j < pd.ow; ++j) {
      col_at[j] = std::max<int64_t>(j * pd.stride_w - pd.pad_left, 0) * d.stride_w * d.c;
    }
    row_first.resize(static_cast<std::size_t>(pd.oh));
    for (int64_t i = 0; i < pd.oh; ++i) {
      row_first[i] = std::max<int64_t>(i * pd.stride_h - pd.pad_top, 0) * d.stride_h;
    }
  }
  [[nodiscard]] int64_t image_row(int64_t n, int64_t i) const {
    return (n * d.h + row_first[i]) * row_stride;
  }
  [[nodiscard]] int64_t term_row(int64_t n, int64_t i) const { return (n * pd.oh + i) * pd.ow * d.o; }
};

// One register block of channel o's taps: kernel rows [a0, a0 + R), vectors [l0, l0 + LB) of each
// row; `offset` = a0·row_stride + l0·lanes in x and dx, and a0·KW·C + l0·lanes in kt and dkt.
struct Block {
  int64_t x_offset, k_offset;
  void (*weights)(const float* xr, const uint8_t* argmax, const float* dp, float* dkt, const Geometry& g,
                  int64_t tr, int64_t o_begin, int64_t o_end);
  void (*data)(const float* kt, const float* dpw, const uint8_t* amw, float* dxw, const Geometry& g);
};

// For each channel o in [o_begin, o_end): dk (this block of channel o's accumulators in dkt,
// channels taps_per_channel apart, rows KW·C apart) += Σ over the window row's columns j of
// dp · x's taps at the chosen pixel (xr: the window row's first input row). One call serves all
// the channels: a call per channel spent about as long entering and leaving as in its 12 terms.
//   dk[a, b, c, o] = Σ_{n, i, j} dp[n, i, j, o] · x[n, p·sh + a, q·sw + b, c]
template <int R, int LB>
void weights_block(const float* xr, const uint8_t* argmax, const float* dp, float* dkt, const Geometry& g,
                   int64_t tr, int64_t o_begin, int64_t o_end) {
  const int64_t rs = g.row_stride, ks = g.d.kw * g.d.c, o_count = g.d.o, stretch = g.taps_per_channel;
  const int64_t windows = g.pd.ow;
  const int64_t* col_at = g.col_at.data();
  const int64_t* at = g.at.data();
  for (int64_t o = o_begin; o < o_end; ++o) {
    float* dk = dkt + o * stretch;
    Vec acc[R * LB];
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 24
      for (int l = 0; l < LB; ++l) acc[r * LB + l] = load(dk + r * ks + l * kLanes);
    }
    for (int64_t j = 0; j < windows; ++j) {
      const int64_t t = tr + j * o_count + o;
      const Vec s = broadcast(dp[t]);
      const float* taps = xr + col_at[j] + at[argmax[t]];
#pragma GCC unroll 24
      for (int r = 0; r < R; ++r) {
#pragma GCC unroll 24
        for (int l = 0; l < LB; ++l) {
          acc[r * LB + l] = multiply_add(s, load(taps + r * rs + l * kLanes), acc[r * LB + l]);
        }
      }
    }
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 24
      for (int l = 0; l < LB; ++l) store(dk + r * ks + l * kLanes, acc[r * LB + l]);
    }
  }
}

// Bit b set where p[b] == m, for b < count ≤ 64 (SSE2 compares, 16 bytes at a time).
inline uint64_t equal_bits(const uint8_t* p, int64_t count, uint8_t m) {
  uint64_t bits = 0;
  int64_t b = 0;
  const __m128i wanted = _mm_set1_epi8(static_cast<char>(m));
  for (; b + 16 <= count; b += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b));
    bits |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, wanted))))
            << b;
  }
  for (; b < count; ++b) bits |= static_cast<uint64_t>(p[b] == m) << b;
  return bits;
}

// dx around one window (dxw: its first pixel's taps, this block's part) += for each pixel m of
// the window, Σ over the channels o that chose m (amw[o] == m, in increasing o) of dp · this
// block of o's taps (kt: channel 0's block, channels taps_per_channel apart). The sum over the
// channels runs in registers and reaches dx once per chosen pixel: one read-modify-write of the
// taps per pixel instead of one per channel (which ran at about a third of the FMA rate, bound
// by the stores).
//   dx[n, p·sh + a, q·sw + b, c] += Σ_{o chose (p, q)} dp[n, i, j, o] · k[a, b, c, o]
template <int R, int LB>
void data_block(const float* kt, const float* dpw, const uint8_t* amw, float* dxw, const Geometry& g) {
  const int64_t rs = g.row_stride, ks = g.d.kw * g.d.c, stretch = g.taps_per_channel, channels = g.d.o;
  const int64_t pixels = g.pd.ph * g.pd.pw;
  for (int64_t m = 0; m < pixels; ++m) {
    Vec acc[R * LB];
#pragma GCC unroll 24
    for (int v = 0; v < R * LB; ++v) acc[v] = broadcast(0.0f);
    bool any = false;
    for (int64_t word = 0; word < channels; word += 64) {
      uint64_t bits = equal_bits(amw + word, std::min<int64_t>(64, channels - word), static_cast<uint8_t>(m));
      any = any || bits != 0;
      for (; bits != 0; bits &= bits - 1) {
        const int64_t o = word + __builtin_ctzll(bits);
        const Vec s = broadcast(dpw[o]);
        const float* k = kt + o * stretch;
#pragma GCC unroll 24
        for (int r = 0; r < R; ++r) {
#pragma GCC unroll 24
          for (int l = 0; l < LB; ++l) {
            acc[r * LB + l] = multiply_add(s, load(k + r * ks + l * kLanes), acc[r * LB + l]);
          }
        }
      }
    }
    if (!any) continue;
    float* taps = dxw + g.at[m];
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 24
      for (int l = 0; l < LB; ++l) {
        float* p = taps + r * rs + l * kLanes;
        store(p, add(load(p), acc[r * LB + l]));
      }
    }
  }
}

// The block functions for R rows of LB vectors, in a table indexed by (R − 1)·kMaxVectors + LB − 1
// (R·LB ≤ kMaxVectors; the other entries stay empty).
using BlockFns = std::pair<decltype(Block::weights), decltype(Block::data)>;
constexpr std::size_t kTableSize = static_cast<std::size_t>(kMaxVectors * kMaxVectors);

template <int R, int LB>
constexpr BlockFns fns_for() {
  if constexpr (R * LB <= kMaxVectors)
    return {&weights_block<R, LB>, &data_block<R, LB>};
  else
    return {nullptr, nullptr};
}

template <int R, std::size_t... L>
constexpr void fill_row(std::array<BlockFns, kTableSize>& table, std::index_sequence<L...>) {
  ((table[(R - 1) * kMaxVectors + L] = fns_for<R, static_cast<int>(L) + 1>()), ...);
}

template <std::size_t... R>
constexpr std::array<BlockFns, kTableSize> make_table(std::index_sequence<R...>) {
  std::array<BlockFns, kTableSize> table{};
  (fill_row<static_cast<int>(R) + 1>(table, std::make_index_sequence<kMaxVectors>()), ...);
  return table;
}

constexpr auto kTable = make_table(std::make_index_sequence<kMaxVectors>());

// The blocks covering KH rows of LV vectors: LB = min(LV, kMaxVectors) vectors per block column
// (the last column narrower), R = min(KH, kMaxVectors / LB) rows per block row (the last fewer).
std::vector<Block> plan_blocks(const Geometry& g) {
  const int64_t lv = g.d.kw * g.d.c / kLanes, ks = g.d.kw * g.d.c;
  const int64_t lb_full = std::min<int64_t>(lv, kMaxVectors);
  const int64_t r_full = std::min<int64_t>(g.d.kh, kMaxVectors / lb_full);
  std::vector<Block> blocks;
  for (int64_t a0 = 0; a0 < g.d.kh; a0 += r_full) {
    const int64_t r = std::min(r_full, g.d.kh - a0);
    for (int64_t l0 = 0; l0 < lv; l0 += lb_full) {
      const int64_t lb = std::min(lb_full, lv - l0);
      const BlockFns fns = kTable[(r - 1) * kMaxVectors + lb - 1];
      blocks.push_back({a0 * g.row_stride + l0 * kLanes, a0 * ks + l0 * kLanes, fns.first, fns.second});
    }
  }
  return blocks;
}

// dkt[o] for the channels [o_begin, o_end): each window row's input rows are read once per
// thread while every channel and block passes over them. (Chunks of 7 or 14 channels, to keep
// their accumulators in L1 beside the input rows, ran slower on the AVX2 machine: the input rows
// then come from L3 once per chunk.)
void weights_for_channels(const float* x, const uint8_t* argmax, const float* dp, float* dkt,
                          const Geometry& g, const std::vector<Block>& blocks, int64_t o_begin,
                          int64_t o_end) {
  const int64_t stretch = g.taps_per_channel;
  std::fill(dkt + o_begin * stretch, dkt + o_end * stretch, 0.0f);
  for (int64_t n = 0; n < g.d.n; ++n) {
    for (int64_t i = 0; i < g.pd.oh; ++i) {
      const float* xr = x + g.image_row(n, i);
      const int64_t tr = g.term_row(n, i);
      for (const Block& b : blocks)
        b.weights(xr + b.x_offset, argmax, dp, dkt + b.k_offset, g, tr, o_begin, o_end);
    }
  }
}

// dx of image n (zeroed first when `overwrite`): block by block (its taps of every channel stay
// in L1), window by window.
void data_for_image(const float* kt, const uint8_t* argmax, const float* dp, float* dx, bool overwrite,
                    const Geometry& g, const std::vector<Block>& blocks, int64_t n) {
  const int64_t image = g.d.h * g.row_stride;
  if (overwrite) std::fill(dx + n * image, dx + (n + 1) * image, 0.0f);
  for (const Block& b : blocks) {
    for (int64_t i = 0; i < g.pd.oh; ++i) {
      float* dxr = dx + g.image_row(n, i) + b.x_offset;
      const int64_t tr = g.term_row(n, i);
      for (int64_t j = 0; j < g.pd.ow; ++j) {
        const int64_t t = tr + j * g.d.o;
        b.data(kt + b.k_offset, dp + t, argmax + t, dxr + g.col_at[j], g);
      }
    }
  }
}

}  // namespace

void conv2d_pooled_backward(const float* x, const float* kernel, const uint8_t* argmax, const float* dp,
                            float* dx, bool overwrite_dx, float* dkernel, const Conv2dDims& d,
                            const Pool2dDims& pd) {
  const Geometry g(d, pd);
  const std::vector<Block> blocks = plan_blocks(g);
  const int64_t taps = g.taps_per_channel;
  const double flops = 2.0 * static_cast<double>(d.n * pd.oh * pd.ow * d.o) * static_cast<double>(taps);
  const int threads = flops >= kParallelMinFlops ? get_num_threads() : 1;
  // The kernel transposed to kt[o][a][b·C + c] (dk likewise): one channel's taps contiguous.
  std::vector<float> kt(dx ? static_cast<std::size_t>(d.o * taps) : 0);
  for (int64_t t = 0; dx && t < taps; ++t) {
    for (int64_t o = 0; o < d.o; ++o) kt[o * taps + t] = kernel[t * d.o + o];
  }
  std::vector<float> dkt(dkernel ? static_cast<std::size_t>(d.o * taps) : 0);
  const int64_t images = dx ? d.n : 0, channels = dkernel ? d.o : 0;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    // Contiguous ranges: dk's channels and dx's images split evenly between the threads.
    const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t o_begin = channels * me / team, o_end = channels * (me + 1) / team;
    if (o_begin < o_end) weights_for_channels(x, argmax, dp, dkt.data(), g, blocks, o_begin, o_end);
    for (int64_t n = images * me / team; n < images * (me + 1) / team; ++n) {
      data_for_image(kt.data(), argmax, dp, dx, overwrite_dx, g, blocks, n);
    }
  }
  for (int64_t t = 0; dkernel && t < taps; ++t) {
    for (int64_t o = 0; o < d.o; ++o) dkernel[t * d.o + o] = dkt[o * taps + t];
  }
}

#endif

}  // namespace normnet::kernels::cpu

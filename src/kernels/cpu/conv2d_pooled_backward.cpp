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
//
// Terms with dp = 0 are skipped: bit masks of the nonzero dp (per channel over a window row's
// columns for the weights, per window over the channels for the data) choose the terms. In the
// CNN's training 60–88 % of dp is 0 (ReLU after the pool and Dropout zero it).
#include "kernels/cpu/conv2d_pooled_backward.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <utility>
#include <vector>

#include "kernels/cpu/conv2d_pooled_blocks.h"
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

using pooled::Block;
using pooled::data_block;
using pooled::Geometry;
using pooled::live_argmax;
using pooled::Segment;
using pooled::weights_block;

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

// Prefetches into L1 the input rows that window row (n, i)'s successor, (n, i + 1) or (n + 1, 0),
// reads: (PH − 1)·sh + KH rows from its first (a prefetch never faults; the last window row has
// no successor).
void prefetch_next_window_row(const float* x, const Geometry& g, int64_t n, int64_t i) {
  const bool same_image = i + 1 < g.pd.oh;
  const int64_t next_n = same_image ? n : n + 1, next_i = same_image ? i + 1 : 0;
  if (next_n >= g.d.n) return;
  const int64_t rows = std::min<int64_t>((g.pd.ph - 1) * g.d.stride_h + g.d.kh, g.d.h - g.row_first[next_i]);
  const char* p = reinterpret_cast<const char*>(x + g.image_row(next_n, next_i));
  const int64_t bytes = rows * g.row_stride * static_cast<int64_t>(sizeof(float));
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
}

// dkt[o] for the channels [o_begin, o_end): each window row's input rows are read once per
// thread while every channel and block passes over them. Segments of window rows gather until
// their live terms average kFlushTerms per channel (two segments of 12 columns when dp has no
// zeros), at most kSegments; while they gather, the next window row's input rows are prefetched
// into L1, so that a flush finds them there. (Chunks of 7 or 14 channels, to keep their
// accumulators in L1 beside the input rows, ran slower on the AVX2 machine: the input rows then
// come from L3 once per chunk. Flushing at 12 terms per channel and without the prefetch, the
// weights part took 1.2–1.35× as long on Zen 5: docs/benchmarks.md, step 36.)
void weights_for_channels(const float* x, const uint8_t* argmax, const float* dp, float* dkt,
                          const Geometry& g, const std::vector<Block>& blocks, int64_t o_begin,
                          int64_t o_end) {
  constexpr int64_t kSegments = 8, kFlushTerms = 24;
  const int64_t stretch = g.taps_per_channel, o_count = g.d.o, channels = o_end - o_begin;
  std::fill(dkt + o_begin * stretch, dkt + o_end * stretch, 0.0f);
  std::vector<uint32_t> live(static_cast<std::size_t>(kSegments * channels));
  std::array<Segment, kSegments> segments{};
  int64_t count = 0, terms = 0;
  const auto flush = [&] {
    for (const Block& b : blocks)
      b.weights(segments.data(), count, b.x_offset, argmax, dp, dkt + b.k_offset, g, o_begin, o_end);
    count = 0;
    terms = 0;
  };
  for (int64_t n = 0; n < g.d.n; ++n) {
    for (int64_t i = 0; i < g.pd.oh; ++i) {
      const int64_t tr = g.term_row(n, i);
      for (int64_t j0 = 0; j0 < g.pd.ow; j0 += 32) {
        // live[o] bit j − j0 set where dp[n, i, j, o] is not 0 (NaN included): one compare per
        // term, vectorized over o, shared by every block.
        uint32_t* lv = live.data() + count * channels;
        std::fill(lv, lv + channels, 0u);
        for (int64_t j = j0; j < std::min<int64_t>(j0 + 32, g.pd.ow); ++j) {
          const float* dpj = dp + tr + j * o_count + o_begin;
          const uint32_t bit = 1u << (j - j0);
          for (int64_t o = 0; o < channels; ++o) lv[o] |= dpj[o] != 0.0f ? bit : 0u;
        }
        for (int64_t o = 0; o < channels; ++o) terms += std::popcount(lv[o]);
        const int64_t width = std::min<int64_t>(32, g.pd.ow - j0);
        segments[count++] = {x + g.image_row(n, i), tr, j0, lv, width, width == 32 ? ~0u : (1u << width) - 1};
        if (j0 == 0) prefetch_next_window_row(x, g, n, i);
        if (count == kSegments || terms >= kFlushTerms * channels) flush();
      }
    }
  }
  if (count > 0) flush();
}

// (live: scratch for the image's argmax bytes with the zero-dp channels left out.)
void data_for_image(const float* kt, const uint8_t* argmax, const float* dp, float* dx, bool overwrite,
                    const Geometry& g, const std::vector<Block>& blocks, int64_t n,
                    std::vector<uint8_t>& live) {
  const int64_t image = g.d.h * g.row_stride;
  if (overwrite) std::fill(dx + n * image, dx + (n + 1) * image, 0.0f);
  const int64_t first = g.term_row(n, 0), terms = g.pd.oh * g.pd.ow * g.d.o;
  const uint8_t* am = argmax + first;
  if (g.pd.ph * g.pd.pw < 256) {  // else 0xFF is a window pixel: every term runs
    live.resize(static_cast<std::size_t>(terms));
    live_argmax(argmax + first, dp + first, terms, live.data());
    am = live.data();
  }
  for (const Block& b : blocks) {
    for (int64_t i = 0; i < g.pd.oh; ++i) {
      float* dxr = dx + g.image_row(n, i) + b.x_offset;
      const int64_t tr = g.term_row(n, i);
      for (int64_t j = 0; j < g.pd.ow; ++j) {
        const int64_t t = tr + j * g.d.o;
        b.data(kt + b.k_offset, dp + t, am + (t - first), dxr + g.col_at[j], g);
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
    std::vector<uint8_t> live;
    for (int64_t n = images * me / team; n < images * (me + 1) / team; ++n) {
      data_for_image(kt.data(), argmax, dp, dx, overwrite_dx, g, blocks, n, live);
    }
  }
  for (int64_t t = 0; dkernel && t < taps; ++t) {
    for (int64_t o = 0; o < d.o; ++o) dkernel[t * d.o + o] = dkt[o * taps + t];
  }
}

#endif

}  // namespace normnet::kernels::cpu

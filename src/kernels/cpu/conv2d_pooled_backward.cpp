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

#include "kernels/cpu/simd.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

using simd::kLanes;
constexpr int kMaxVectors = simd::kAccumulators;
constexpr int64_t kVectorBytes = kLanes * static_cast<int64_t>(sizeof(float));

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

// A stretch of up to 32 window columns [j0, j0 + 32) of window row (n, i): x's row (xr =
// x + image_row(n, i)), its terms (tr = term_row(n, i)), and per channel o of the thread's range a
// mask of the columns whose dp is not 0 (live[o − o_begin], bit j − j0).
struct Segment {
  const float* xr;
  int64_t tr, j0;
  const uint32_t* live;
  int64_t width;  // columns in the stretch
  uint32_t all;   // the bits of every column of the stretch
};

// One register block of channel o's taps: kernel rows [a0, a0 + R), vectors [l0, l0 + LB) of each
// row; `offset` = a0·row_stride + l0·lanes in x and dx, and a0·KW·C + l0·lanes in kt and dkt.
struct Block {
  int64_t x_offset, k_offset;
  void (*weights)(const Segment* segments, int64_t count, int64_t x_offset, const uint8_t* argmax,
                  const float* dp, float* dkt, const Geometry& g, int64_t o_begin, int64_t o_end);
  void (*data)(const float* kt, const float* dpw, const uint8_t* amw, float* dxw, const Geometry& g);
};

// For each channel o in [o_begin, o_end): dk (this block of channel o's accumulators in dkt,
// channels taps_per_channel apart, rows KW·C apart) += Σ over the segments' window columns whose
// dp is not 0 of dp · x's taps at the chosen pixel (x_offset: this block's offset in a row). One
// call serves all the channels (a call per channel spent about as long entering and leaving as in
// its 12 terms) and several segments when most dp are 0 (the accumulators' load and store then
// serve about as many terms as one dense window row).
//   dk[a, b, c, o] = Σ_{n, i, j} dp[n, i, j, o] · x[n, p·sh + a, q·sw + b, c]
template <int R, int LB>
void weights_block(const Segment* segments, int64_t count, int64_t x_offset, const uint8_t* argmax,
                   const float* dp, float* dkt, const Geometry& g, int64_t o_begin, int64_t o_end) {
  const int64_t rs = g.row_stride, ks = g.d.kw * g.d.c, o_count = g.d.o, stretch = g.taps_per_channel;
  const int64_t* col_at = g.col_at.data();
  const int64_t* at = g.at.data();
  const int64_t row_bytes = rs * static_cast<int64_t>(sizeof(float));
  for (int64_t o = o_begin; o < o_end; ++o) {
    uint32_t any = 0;
    for (int64_t k = 0; k < count; ++k) any |= segments[k].live[o - o_begin];
    if (any == 0) continue;
    float* dk = dkt + o * stretch;
    Vec acc[R * LB];
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 24
      for (int l = 0; l < LB; ++l) acc[r * LB + l] = load(dk + r * ks + l * kLanes);
    }
    for (int64_t k = 0; k < count; ++k) {
      const Segment& sg = segments[k];
      // Column j0 + b's term: dp and argmax at dp_b[b·O] and am_b[b·O], its taps at
      // xr + col_b[b] + at[argmax]. (Few live values: with more, GCC kept some on the stack and
      // the loop ran out of load slots, 20 % slower.)
      // Tap row r at byte offset r·row_bytes from the term's first tap, vector l at l·kVectorBytes
      // in it: each FMA reads its operand as base + index + displacement. Written as float offsets
      // (taps + r·rs + l·lanes), GCC 12 kept seven of the 18 offsets on the stack and reloaded
      // them per term: 1.14–1.23× this loop's time on Zen 5 (docs/benchmarks.md, step 32).
      const char* xr = reinterpret_cast<const char*>(sg.xr + x_offset);
      const int64_t first = sg.tr + sg.j0 * o_count + o;
      const float* dp_b = dp + first;
      const uint8_t* am_b = argmax + first;
      const int64_t* col_b = col_at + sg.j0;
      const auto term = [&](int64_t b) __attribute__((always_inline)) {
        const Vec s = broadcast(dp_b[b * o_count]);
        const char* taps = xr + static_cast<int64_t>(sizeof(float)) * (col_b[b] + at[am_b[b * o_count]]);
#pragma GCC unroll 24
        for (int r = 0; r < R; ++r) {
          const char* row = taps + r * row_bytes;
#pragma GCC unroll 24
          for (int l = 0; l < LB; ++l) {
            acc[r * LB + l] = multiply_add(s, load(reinterpret_cast<const float*>(row + l * kVectorBytes)),
                                           acc[r * LB + l]);
          }
        }
      };
      uint32_t bits = sg.live[o - o_begin];
      if (bits == sg.all) {  // no zero dp: a loop the branch predictor learns
        for (int64_t b = 0; b < sg.width; ++b) term(b);
      } else {
        for (; bits != 0; bits &= bits - 1) term(__builtin_ctz(bits));
      }
    }
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 24
      for (int l = 0; l < LB; ++l) store(dk + r * ks + l * kLanes, acc[r * LB + l]);
    }
  }
}

// out[b] = am[b] where dp[b] != 0 (NaN included), else 0xFF (no window pixel has that index:
// pool2d's argmax fits a byte with room to spare, max_pool2d_argmax_fits), for b < count.
inline void live_argmax(const uint8_t* am, const float* dp, int64_t count, uint8_t* out) {
  int64_t b = 0;
  const __m128 zero = _mm_setzero_ps();
  for (; b + 16 <= count; b += 16) {
    const __m128i z0 = _mm_castps_si128(_mm_cmpeq_ps(_mm_loadu_ps(dp + b), zero));
    const __m128i z1 = _mm_castps_si128(_mm_cmpeq_ps(_mm_loadu_ps(dp + b + 4), zero));
    const __m128i z2 = _mm_castps_si128(_mm_cmpeq_ps(_mm_loadu_ps(dp + b + 8), zero));
    const __m128i z3 = _mm_castps_si128(_mm_cmpeq_ps(_mm_loadu_ps(dp + b + 12), zero));
    const __m128i zeros =
        _mm_packs_epi16(_mm_packs_epi32(z0, z1), _mm_packs_epi32(z2, z3));  // 0xFF where dp == 0
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(am + b));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b), _mm_or_si128(bytes, zeros));
  }
  for (; b < count; ++b) out[b] = dp[b] == 0.0f ? uint8_t{0xFF} : am[b];
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
// the window, Σ over the channels o that chose m (amw[o] == m, in increasing o: live_argmax's bytes,
// which leave out the channels whose dp is 0) of dp · this
// block of o's taps (kt: channel 0's block, channels taps_per_channel apart). The sum over the
// channels runs in registers and reaches dx once per chosen pixel: one read-modify-write of the
// taps per pixel instead of one per channel (which ran at about a third of the FMA rate, bound
// by the stores).
//   dx[n, p·sh + a, q·sw + b, c] += Σ_{o chose (p, q)} dp[n, i, j, o] · k[a, b, c, o]
template <int R, int LB>
void data_block(const float* kt, const float* dpw, const uint8_t* amw, float* dxw, const Geometry& g) {
  const int64_t rs = g.row_stride, ks = g.d.kw * g.d.c, stretch = g.taps_per_channel, channels = g.d.o;
  const int64_t pixels = g.pd.ph * g.pd.pw;
  const int64_t k_row_bytes = ks * static_cast<int64_t>(sizeof(float)),
                x_row_bytes = rs * static_cast<int64_t>(sizeof(float));
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
        const char* k = reinterpret_cast<const char*>(kt + o * stretch);
#pragma GCC unroll 24
        for (int r = 0; r < R; ++r) {
          const char* row = k + r * k_row_bytes;
#pragma GCC unroll 24
          for (int l = 0; l < LB; ++l) {
            acc[r * LB + l] = multiply_add(s, load(reinterpret_cast<const float*>(row + l * kVectorBytes)),
                                           acc[r * LB + l]);
          }
        }
      }
    }
    if (!any) continue;
    // Byte offsets, as in weights_block (the kernel rows likewise).
    char* taps = reinterpret_cast<char*>(dxw + g.at[m]);
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
      char* row = taps + r * x_row_bytes;
#pragma GCC unroll 24
      for (int l = 0; l < LB; ++l) {
        float* p = reinterpret_cast<float*>(row + l * kVectorBytes);
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
// thread while every channel and block passes over them. Segments of window rows gather until
// their live terms average 12 per channel (one segment when dp has no zeros), at most kSegments.
// (Chunks of 7 or 14 channels, to keep their accumulators in L1 beside the input rows, ran slower
// on the AVX2 machine: the input rows then come from L3 once per chunk.)
void weights_for_channels(const float* x, const uint8_t* argmax, const float* dp, float* dkt,
                          const Geometry& g, const std::vector<Block>& blocks, int64_t o_begin,
                          int64_t o_end) {
  constexpr int64_t kSegments = 8;
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
        if (count == kSegments || terms >= 12 * channels) flush();
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

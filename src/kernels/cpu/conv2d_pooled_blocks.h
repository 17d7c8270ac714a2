// The register-block kernels of the pooled convolution backward (conv2d_pooled_backward.cpp,
// whose opening comment gives the scheme): where a window row's terms live (Geometry), the
// weights block (a channel's accumulators in registers over a flush of window-row segments) and
// the data block (a window's sum over the channels that chose each pixel), each with the
// derivative it computes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cpu/simd.h"

#if defined(NORMNET_SIMD)

namespace normnet::kernels::cpu::pooled {

using simd::kLanes;
inline constexpr int64_t kVectorBytes = kLanes * static_cast<int64_t>(sizeof(float));

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

}  // namespace normnet::kernels::cpu::pooled

#endif

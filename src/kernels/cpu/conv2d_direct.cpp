// Direct AVX-512 / AVX2 convolution forward for stride 1 and no padding (see conv2d_direct.h).
//
// Shape letters as in conv2d.h: x [N, H, W, C], kernel [KH, KW, C, O], y [N, OH, OW, O].
// A tile holds R × V accumulators of one vector each (16 floats with AVX-512, 8 with AVX2) in
// registers (R pixels times V vectors of output channels; R·V ≤ 24 of AVX-512's 32 registers,
// ≤ 12 of AVX2's 16, the rest hold the V kernel vectors and a broadcast). Each step loads V kernel
// vectors once and uses them for R pixels: R·V FMAs (R·V/2 cycles at 2 per cycle) against V + R
// loads, which the load ports sustain for every tile used.
#include "kernels/cpu/conv2d_direct.h"

#include <algorithm>
#include <array>
#include <utility>

#include "kernels/cpu/simd.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

constexpr int64_t kMaxTaps = 64;  // KH·KW

bool stride1_unpadded(const Conv2dDims& d) {
  return d.stride_h == 1 && d.stride_w == 1 && d.pad_top == 0 && d.pad_left == 0 && d.pad_bottom == 0 &&
         d.pad_right == 0 && d.kh * d.kw <= kMaxTaps && d.n > 0 && d.oh > 0 && d.ow > 0 && d.c > 0 && d.o > 0;
}

}  // namespace

bool conv2d_direct_forward_supported(const Conv2dDims& d) {
  return simd::kSimdWide && stride1_unpadded(d) && d.o % 16 == 0;
}

#if defined(NORMNET_SIMD_WIDE)
namespace {

using simd::kLanes;
using simd::Vec;
constexpr double kParallelMinFlops = 1 << 18;  // below this one thread: the fork/join costs more
constexpr int64_t kL1WeightBytes = 32 << 10;  // of the 48 KB L1d

// Most pixels per tile for V vectors of channels. AVX-512 (32 registers): R·V accumulators ≤ 24;
// for V = 1 at most 14 (each pixel is one more broadcast address to keep). AVX2 (16 registers):
// R·V ≤ 12 with V kernel vectors and a broadcast beside them.
constexpr int max_rows(int vectors) {
  if constexpr (kLanes == 16) return vectors == 4 ? 6 : vectors == 2 ? 12 : 14;
  return vectors == 4 ? 2 : vectors == 2 ? 6 : 12;
}

int threads_for(double flops) { return flops >= kParallelMinFlops ? get_num_threads() : 1; }

// Calls fn(first_channel, V) for blocks of V = 4, 2 or 1 vectors covering `vectors` · lanes
// channels. AVX2 takes no blocks of 4: their 2-pixel tiles load 6 operands per 8 FMAs, where 6×2
// tiles load 8 per 12.
template <class Fn>
void for_each_channel_block(int64_t vectors, const Fn& fn) {
  int64_t v = 0;
  if constexpr (kLanes == 16) {
    for (; vectors - v >= 4; v += 4) fn(v * kLanes, 4);
  }
  for (; vectors - v >= 2; v += 2) fn(v * kLanes, 2);
  for (; v < vectors; ++v) fn(v * kLanes, 1);
}

// Calls fn(start, size) for tiles of at most `most` covering [0, width), sizes differing by ≤ 1.
template <class Fn>
void for_each_tile(int64_t width, int most, const Fn& fn) {
  const int64_t tiles = (width + most - 1) / most;
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t start = width * t / tiles;
    fn(start, static_cast<int>(width * (t + 1) / tiles - start));
  }
}

// ---- a tile of R pixels × 16·V output channels ----
// One kernel row i of a tile's sum: for s < count = KW·C, acc[r][v] += a[offset + r·a_stride + s] ·
// b[s·ldb + 16v], i.e. Σ_{j,c} x[n, p+i, q+r+j, c] · kernel[i, j, c, o0 + 16v + lane]. Stride 1 and no
// padding make the KW taps of a row one run: x[n, p+i, q+r, 0] + j·C + c is x[n, p+i, q+r+j, c], and
// kernel[i, j, c, ·] lies at (j·C + c)·O from kernel[i, 0, 0, ·]. The terms are added in the order
// (j, c) either way; one run instead of KW per row saves the loop's set-up, which dominated short
// rows (C = 1: a run of 3 instead of three of 1).
struct Segment {
  int64_t offset;  // into the tile's a: i·W·C
  const float* b;  // kernel[i, 0, 0, o0]
};

struct PixelTile {
  const float* a;      // x at the tile's first input pixel
  int64_t a_stride;    // floats between the tile's pixels in a: C
  const Segment* segments;
  int64_t segment_count;
  int64_t count;       // steps per segment: KW·C
  int64_t ldb;         // floats between the rows of b: O
  float* out;          // y at the tile's first pixel, channel o0
  int64_t out_stride;  // floats between the tile's pixels in y: O
};

template <int R, int V>
void pixel_tile_sum(const PixelTile& t, Vec (&acc)[R][V]) {
  for (int64_t g = 0; g < t.segment_count; ++g) {
    const float* a = t.a + t.segments[g].offset;
    const float* b = t.segments[g].b;
    for (int64_t s = 0; s < t.count; ++s, b += t.ldb) {
      Vec w[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) w[v] = simd::load(b + v * kLanes);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const Vec ar = simd::broadcast(a[r * t.a_stride + s]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = simd::multiply_add(ar, w[v], acc[r][v]);
      }
    }
  }
}

enum TileStart { kFromZero, kFromBias, kFromOut };

// out = start + Σ, start = 0, bias or out itself (a partial sum); then relu as ops::relu:
// max(z, 0) with NaN kept.
template <int R, int V>
void pixel_tile(const PixelTile& t, TileStart from, const float* bias, bool relu) {
  Vec acc[R][V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const Vec start = from == kFromBias ? simd::load(bias + v * kLanes) : simd::zero();
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      acc[r][v] = from == kFromOut ? simd::load(t.out + r * t.out_stride + v * kLanes) : start;
    }
  }
  pixel_tile_sum<R, V>(t, acc);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      Vec z = acc[r][v];
      if (relu) z = simd::relu(z);  // z > 0 or NaN
      simd::store(t.out + r * t.out_stride + v * kLanes, z);
    }
  }
}

using PixelTileFn = void (*)(const PixelTile&, TileStart, const float*, bool);

template <int V, int... Rs>
constexpr std::array<PixelTileFn, sizeof...(Rs)> pixel_tiles(std::integer_sequence<int, Rs...>) {
  return {&pixel_tile<Rs + 1, V>...};
}

void run_pixel_tile(int vectors, int rows, const PixelTile& t, TileStart from, const float* bias, bool relu) {
  static constexpr auto k1 = pixel_tiles<1>(std::make_integer_sequence<int, max_rows(1)>());
  static constexpr auto k2 = pixel_tiles<2>(std::make_integer_sequence<int, max_rows(2)>());
  static constexpr auto k4 = pixel_tiles<4>(std::make_integer_sequence<int, max_rows(4)>());
  const PixelTileFn fn = vectors == 4 ? k4[rows - 1] : vectors == 2 ? k2[rows - 1] : k1[rows - 1];
  fn(t, from, bias, relu);
}

}  // namespace

namespace {

// One output row: y_row[q, o] for q < OW, all o, from the KH input rows starting at x_row.
void conv_row(const float* x_row, const float* kernel, const float* bias, float* y_row, const Conv2dDims& d,
              bool relu) {
  for_each_channel_block(d.o / kLanes, [&](int64_t o0, int vectors) {
    Segment segments[kMaxTaps];
    for (int64_t i = 0; i < d.kh; ++i) segments[i] = {i * d.w * d.c, kernel + i * d.kw * d.c * d.o + o0};
    // Grouping only pays when all taps' weights for the block overflow L1.
    const bool big = d.kh * d.kw * d.c * vectors * kLanes * 4 > kL1WeightBytes;
    const int64_t groups = big ? d.kh : 1, per_group = d.kh / groups;
    for (int64_t g = 0; g < groups; ++g) {
      const TileStart from = g > 0 ? kFromOut : bias ? kFromBias : kFromZero;
      for_each_tile(d.ow, max_rows(vectors), [&](int64_t q0, int size) {
        // Built in place: copying a prepared tile compiled to one 64-byte load of fields just
        // stored one by one (a store-forwarding stall per tile; perf put most of this loop's
        // samples on that load).
        const PixelTile t{x_row + q0 * d.c, d.c, segments + g * per_group, per_group,
                          d.kw * d.c,       d.o, y_row + q0 * d.o + o0,    d.o};
        run_pixel_tile(vectors, size, t, from, bias ? bias + o0 : nullptr, relu && g == groups - 1);
      });
    }
  });
}

constexpr int64_t kPoolScratchFloats = 8192;  // conv rows of one pooled row, 32 KB: stays in L1

}  // namespace

// y[n,p,q,o] = bias[o] + Σ_{i,j,c} x[n, p+i, q+j, c] · kernel[i,j,c,o]
// Tiles: R consecutive pixels q of one output row × 16·V output channels, reading x and kernel
// in place. The sum runs over the kernel rows i, then the taps j of a row, then c; between kernel
// rows the partial sum is stored in y and reloaded (the same float additions in the same order),
// so that one kernel row's weights (KW·C·16V floats) stay in L1 while all tiles of the output row
// use them.
void conv2d_direct_forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d,
                           bool relu) {
  const int64_t rows = d.n * d.oh;
  const int threads = threads_for(2.0 * rows * d.ow * d.o * d.kh * d.kw * d.c);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / d.oh, p = row % d.oh;
    conv_row(x + (n * d.h + p) * d.w * d.c, kernel, bias, y + row * d.ow * d.o, d, relu);
  }
}

bool conv2d_direct_forward_max_pool_relu_supported(const Conv2dDims& d, const Pool2dDims& pd) {
  return conv2d_direct_forward_supported(d) && pd.n == d.n && pd.h == d.oh && pd.w == d.ow && pd.c == d.o &&
         pd.pad_top == 0 && pd.pad_left == 0 && pd.stride_h == pd.ph && pd.stride_w == pd.pw && pd.oh > 0 &&
         pd.ow > 0 && pd.oh * pd.ph <= d.oh && pd.ow * pd.pw <= d.ow && pd.ph * d.ow * d.o <= kPoolScratchFloats;
}

// Per pooled row (n, p): the PH convolution rows p·PH + i into an L1 buffer z (no ReLU), then each
// window's maximum in row-major window order (v replaces the best when v > best, or v is the first
// NaN: window_max's rule), then relu as ops::relu (v > 0 or NaN ? v : +0).
bool conv2d_direct_forward_max_pool_relu(const float* x, const float* kernel, const float* bias, float* y,
                                         const Conv2dDims& d, const Pool2dDims& pd, uint8_t* argmax) {
  if (!conv2d_direct_forward_max_pool_relu_supported(d, pd)) return false;
  const int64_t rows = d.n * pd.oh;
  const int threads = threads_for(2.0 * d.n * d.oh * d.ow * d.o * d.kh * d.kw * d.c);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t row = 0; row < rows; ++row) {
    alignas(64) float z[kPoolScratchFloats];
    const int64_t n = row / pd.oh, p = row % pd.oh, z_row = d.ow * d.o;
    for (int64_t i = 0; i < pd.ph; ++i) {
      conv_row(x + (n * d.h + p * pd.ph + i) * d.w * d.c, kernel, bias, z + i * z_row, d, /*relu=*/false);
    }
    float* out = y + row * pd.ow * d.o;
    for (int64_t q = 0; q < pd.ow; ++q) {
      for (int64_t c = 0; c < d.o; c += kLanes) {
        const float* window = z + q * pd.pw * d.o + c;
        Vec best = simd::load(window);
        if (argmax) {  // training: the window pixel i·PW + j of each maximum, as max_pool2d_forward_argmax
          Vec at = simd::zero();
          for (int64_t i = 0; i < pd.ph; ++i) {
            for (int64_t j = 0; j < pd.pw; ++j) {
              simd::take_larger_noting(best, at, simd::load(window + i * z_row + j * d.o),
                                       simd::broadcast(static_cast<float>(i * pd.pw + j)));
            }
          }
          // One vector conversion: lane by lane (a float store, then a scalar conversion and a byte
          // store per lane) it took most of the pooling's time on Zen 5 (step 33).
          simd::store_bytes(argmax + (row * pd.ow + q) * d.o + c, at);
        } else {
          for (int64_t i = 0; i < pd.ph; ++i) {
            for (int64_t j = 0; j < pd.pw; ++j)
              best = simd::take_larger(best, simd::load(window + i * z_row + j * d.o));
          }
        }
        simd::store(out + q * d.o + c, simd::relu(best));  // best > 0 or NaN
      }
    }
  }
  return true;
}

#else  // no AVX-512 or AVX2: conv2d_direct_forward_supported() is false and conv2d.cpp never calls it

void conv2d_direct_forward(const float*, const float*, const float*, float*, const Conv2dDims&, bool) {}
bool conv2d_direct_forward_max_pool_relu_supported(const Conv2dDims&, const Pool2dDims&) { return false; }
bool conv2d_direct_forward_max_pool_relu(const float*, const float*, const float*, float*, const Conv2dDims&,
                                         const Pool2dDims&, uint8_t*) {
  return false;
}

#endif

}  // namespace normnet::kernels::cpu

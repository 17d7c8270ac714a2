// Winograd F(4×4, 3×3) convolution forward (see conv2d_winograd.h).
//
// u[pos][c][o] = (G g G^T)[pos] for the 36 positions pos of a 6×6 tile comes from
// conv2d_winograd_filters.h (transformed once per kernel value). Then each block of at most kBlockTiles
// output tiles (a thread's unit of work) goes through three steps in a per-thread scratch buffer that stays
// in L2:
//   1. input transform: v[pos][t][c] = (B^T d_t B)[pos] for the block's tiles t;
//   2. 36 products m[pos] = v[pos] · u[pos] ([tiles × C] · [C × O]) in register tiles of R tiles
//      × V vectors of output channels, each element one FMA chain over c in order;
//   3. output transform of each tile and vector of channels, A^T m A + bias, then the epilogue
//      (a store with an optional ReLU, or max pooling in registers).
//
// Lavin & Gray's matrices (interpolation points 0, ±1, ±2, ∞):
//   B^T = [4  0 -5  0 1 0]   A^T = [1 1  1 1  1 0]   (G: conv2d_winograd_filters.cpp)
//         [0 -4 -4  1 1 0]         [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]         [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]         [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]
//         [0  4  0 -5 0 1]
#include "kernels/cpu/conv2d_winograd.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv2d_winograd_filters.h"
#include "kernels/cpu/simd.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {

using winograd::kPatch;
using winograd::kTile;

bool conv2d_winograd_forward_supported(const Conv2dDims& d) {
  return simd::kSimdWide && d.kh == 3 && d.kw == 3 && d.stride_h == 1 && d.stride_w == 1 && d.pad_top >= 0 &&
         d.pad_left >= 0 && d.n > 0 && d.oh > 0 && d.ow > 0 && d.c > 0 && d.c % 16 == 0 && d.o > 0 &&
         d.o % 16 == 0;
}

bool conv2d_winograd_forward_max_pool_relu_supported(const Conv2dDims& d, const Pool2dDims& pd) {
  return conv2d_winograd_forward_supported(d) && pd.n == d.n && pd.h == d.oh && pd.w == d.ow && pd.c == d.o &&
         pd.pad_top == 0 && pd.pad_left == 0 && pd.ph > 0 && pd.pw > 0 && pd.stride_h == pd.ph &&
         pd.stride_w == pd.pw && kTile % pd.ph == 0 && kTile % pd.pw == 0 && pd.oh > 0 && pd.ow > 0 &&
         pd.oh * pd.ph <= d.oh && pd.ow * pd.pw <= d.ow;
}

#if defined(NORMNET_SIMD_WIDE)
namespace {

using simd::kLanes;
using simd::Vec;
using winograd::kPositions;
using winograd::position_stride;
using winograd::times;
using winograd::times_plus;
constexpr int64_t kBlockTiles = 18;            // v and m of 18 tiles (32 → 64 channels): 250 KB
constexpr int kMaxRows = 6;                    // tiles per register tile
constexpr double kParallelMinFlops = 1 << 18;  // of the direct convolution; below: one thread

// r = B^T d (six values of one column or row of a patch).
inline void input_transform(const Vec (&d)[kPatch], Vec (&r)[kPatch]) {
  r[0] = times_plus(4, d[0], times_plus(-5, d[2], d[4]));
  r[1] = times_plus(-4, simd::add(d[1], d[2]), simd::add(d[3], d[4]));
  r[2] = times_plus(4, simd::sub(d[1], d[2]), simd::sub(d[4], d[3]));
  r[3] = times_plus(2, simd::sub(d[3], d[1]), simd::sub(d[4], d[2]));
  r[4] = times_plus(2, simd::sub(d[1], d[3]), simd::sub(d[4], d[2]));
  r[5] = times_plus(4, d[1], times_plus(-5, d[3], d[5]));
}

// r = A^T m.
inline void output_transform(const Vec (&m)[kPatch], Vec (&r)[kTile]) {
  const Vec sum12 = simd::add(m[1], m[2]), diff12 = simd::sub(m[1], m[2]);
  const Vec sum34 = simd::add(m[3], m[4]), diff34 = simd::sub(m[3], m[4]);
  r[0] = simd::add(simd::add(m[0], sum12), sum34);
  r[1] = times_plus(2, diff34, diff12);
  r[2] = times_plus(4, sum34, sum12);
  r[3] = simd::add(times_plus(8, diff34, diff12), m[5]);
}

struct Tiling {
  int64_t rows, cols, per_image, total;  // tiles per image column and row, per image, in all
  explicit Tiling(const Conv2dDims& d)
      : rows((d.oh + kTile - 1) / kTile),
        cols((d.ow + kTile - 1) / kTile),
        per_image(rows * cols),
        total(d.n * rows * cols) {}
};

// v[pos][t][c] = (B^T d B)[pos] for the patch d of tile `tile` (zero outside x), t its index in a
// block of `count` tiles.
void transform_patch(const float* x, const Conv2dDims& d, const Tiling& tl, int64_t tile, float* v, int64_t t,
                     int64_t count) {
  const int64_t n = tile / tl.per_image, rest = tile % tl.per_image;
  const int64_t h0 = rest / tl.cols * kTile - d.pad_top, w0 = rest % tl.cols * kTile - d.pad_left;
  const float* at[kPatch][kPatch];
  for (int64_t i = 0; i < kPatch; ++i) {
    for (int64_t j = 0; j < kPatch; ++j) {
      const int64_t h = h0 + i, w = w0 + j;
      at[i][j] = h >= 0 && h < d.h && w >= 0 && w < d.w ? x + ((n * d.h + h) * d.w + w) * d.c : nullptr;
    }
  }
  for (int64_t c = 0; c < d.c; c += kLanes) {
    Vec rows[kPatch][kPatch];  // B^T d: rows[a][j]
    for (int64_t j = 0; j < kPatch; ++j) {
      Vec column[kPatch], r[kPatch];
      for (int64_t i = 0; i < kPatch; ++i) column[i] = at[i][j] ? simd::load(at[i][j] + c) : simd::zero();
      input_transform(column, r);
      for (int64_t a = 0; a < kPatch; ++a) rows[a][j] = r[a];
    }
    for (int64_t a = 0; a < kPatch; ++a) {
      Vec r[kPatch];
      input_transform(rows[a], r);
      for (int64_t b = 0; b < kPatch; ++b) simd::store(v + ((a * kPatch + b) * count + t) * d.c + c, r[b]);
    }
  }
}

// out[r][o] = Σ_s a[r·k + s] · b[s·ldb + o] for R rows and V vectors of o, s in order from 0.
template <int R, int V>
void product_tile(const float* a, const float* b, float* out, int64_t k, int64_t ldb) {
  Vec acc[R][V];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = simd::zero();
  }
  for (int64_t s = 0; s < k; ++s) {
    Vec w[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) w[v] = simd::load(b + s * ldb + v * kLanes);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const Vec ar = simd::broadcast(a[r * k + s]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = simd::multiply_add(ar, w[v], acc[r][v]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) simd::store(out + r * ldb + v * kLanes, acc[r][v]);
  }
}

using ProductTileFn = void (*)(const float*, const float*, float*, int64_t, int64_t);

template <int V>
constexpr ProductTileFn product_tile_for(int rows) {
  constexpr ProductTileFn table[kMaxRows] = {&product_tile<1, V>, &product_tile<2, V>, &product_tile<3, V>,
                                             &product_tile<4, V>, &product_tile<5, V>, &product_tile<6, V>};
  return table[rows - 1];
}

// m[pos][t][o] = Σ_c v[pos][t][c] · u[pos][c][o] for the block's `count` tiles. Blocks of V = 4
// vectors of channels (AVX-512 only: 6×4 accumulators), 2 or 1.
void block_products(const float* v, const float* u, float* m, int64_t count, const Conv2dDims& d) {
  const int64_t vectors = d.o / kLanes;
  for (int64_t pos = 0; pos < kPositions; ++pos) {
    const float* a = v + pos * count * d.c;
    const float* b = u + pos * position_stride(d);
    float* out = m + pos * count * d.o;
    for (int64_t vec = 0; vec < vectors;) {
      const int width = kLanes == 16 && vectors - vec >= 4 ? 4 : vectors - vec >= 2 ? 2 : 1;
      for (int64_t r0 = 0; r0 < count; r0 += kMaxRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kMaxRows, count - r0));
        const ProductTileFn fn = width == 4   ? product_tile_for<4>(rows)
                                 : width == 2 ? product_tile_for<2>(rows)
                                              : product_tile_for<1>(rows);
        fn(a + r0 * d.c, b + vec * kLanes, out + r0 * d.o + vec * kLanes, d.c, d.o);
      }
      vec += width;
    }
  }
}

// y = A^T m A (+ bias) for tile t of the block, channels [o, o + lanes).
void transform_outputs(const float* m, int64_t t, int64_t count, int64_t o, const Conv2dDims& d,
                       const float* bias, Vec (&y)[kTile][kTile]) {
  Vec columns[kTile][kPatch];  // A^T m: columns[i][b]
  for (int64_t b = 0; b < kPatch; ++b) {
    Vec column[kPatch], r[kTile];
    for (int64_t a = 0; a < kPatch; ++a) column[a] = simd::load(m + ((a * kPatch + b) * count + t) * d.o + o);
    output_transform(column, r);
    for (int64_t i = 0; i < kTile; ++i) columns[i][b] = r[i];
  }
  for (int64_t i = 0; i < kTile; ++i) {
    Vec r[kTile];
    output_transform(columns[i], r);
    for (int64_t j = 0; j < kTile; ++j) y[i][j] = bias ? simd::add(r[j], simd::load(bias + o)) : r[j];
  }
}

// Runs the blocks; epilogue(n, tile_row, tile_col, o, y) takes each tile's outputs, channels
// [o, o + lanes).
template <class Epilogue>
void winograd_forward(const float* x, const float* kernel, const float* bias, const Conv2dDims& d,
                      const Epilogue& epilogue) {
  const Tiling tl(d);
  const double flops = 2.0 * d.n * d.oh * d.ow * d.o * 9 * d.c;
  const int threads = flops >= kParallelMinFlops ? get_num_threads() : 1;
  // At least one block per thread, and a multiple of the thread count, so that a few images split evenly.
  const int64_t least = (tl.total + kBlockTiles - 1) / kBlockTiles;
  const int64_t blocks = std::min(tl.total, (least + threads - 1) / threads * threads);
  const float* u = winograd::transformed_filters(kernel, d, threads);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t first = tl.total * blk / blocks, count = tl.total * (blk + 1) / blocks - first;
      thread_local std::vector<float> scratch;
      const auto scratch_floats = static_cast<std::size_t>(kPositions * kBlockTiles * (d.c + d.o));
      if (scratch.size() < scratch_floats) scratch.resize(scratch_floats);
      float* v = scratch.data();
      float* m = v + kPositions * count * d.c;
      for (int64_t t = 0; t < count; ++t) transform_patch(x, d, tl, first + t, v, t, count);
      block_products(v, u, m, count, d);
      for (int64_t t = 0; t < count; ++t) {
        const int64_t tile = first + t, n = tile / tl.per_image, rest = tile % tl.per_image;
        for (int64_t o = 0; o < d.o; o += kLanes) {
          Vec y[kTile][kTile];
          transform_outputs(m, t, count, o, d, bias, y);
          epilogue(n, rest / tl.cols, rest % tl.cols, o, y);
        }
      }
    }
  }
}

}  // namespace

void conv2d_winograd_forward(const float* x, const float* kernel, const float* bias, float* y,
                             const Conv2dDims& d, bool relu) {
  winograd_forward(
      x, kernel, bias, d, [&](int64_t n, int64_t ty, int64_t tx, int64_t o, Vec(&z)[kTile][kTile]) {
        const int64_t rows = std::min(kTile, d.oh - ty * kTile), cols = std::min(kTile, d.ow - tx * kTile);
        for (int64_t i = 0; i < rows; ++i) {
          float* out = y + ((n * d.oh + ty * kTile + i) * d.ow + tx * kTile) * d.o + o;
          for (int64_t j = 0; j < cols; ++j) simd::store(out + j * d.o, relu ? simd::relu(z[i][j]) : z[i][j]);
        }
      });
}

// Each window's maximum in row-major window order (v replaces the best when v > best, or v is the
// first NaN: window_max's rule), then relu as ops::relu (v > 0 or NaN ? v : +0).
bool conv2d_winograd_forward_max_pool_relu(const float* x, const float* kernel, const float* bias, float* y,
                                           const Conv2dDims& d, const Pool2dDims& pd, uint8_t* argmax) {
  if (!conv2d_winograd_forward_max_pool_relu_supported(d, pd)) return false;
  const int64_t per_row = kTile / pd.ph, per_col = kTile / pd.pw;  // windows per tile side
  winograd_forward(x, kernel, bias, d,
                   [&](int64_t n, int64_t ty, int64_t tx, int64_t o, Vec(&z)[kTile][kTile]) {
                     for (int64_t wy = 0; wy < per_row; ++wy) {
                       const int64_t p = ty * per_row + wy;
                       if (p >= pd.oh) break;
                       for (int64_t wx = 0; wx < per_col; ++wx) {
                         const int64_t q = tx * per_col + wx;
                         if (q >= pd.ow) break;
                         const int64_t index = (n * pd.oh + p) * pd.ow + q;
                         const Vec* first = &z[wy * pd.ph][wx * pd.pw];
                         Vec best = *first;
                         if (argmax) {  // training: the window pixel i·PW + j of each maximum, as
                                        // max_pool2d_forward_argmax
                           Vec at = simd::zero();
                           for (int64_t i = 0; i < pd.ph; ++i) {
                             for (int64_t j = 0; j < pd.pw; ++j) {
                               simd::take_larger_noting(best, at, z[wy * pd.ph + i][wx * pd.pw + j],
                                                        simd::broadcast(static_cast<float>(i * pd.pw + j)));
                             }
                           }
                           alignas(64) float where[kLanes];
                           simd::store(where, at);
                           uint8_t* am = argmax + index * d.o + o;
                           for (int64_t l = 0; l < kLanes; ++l) am[l] = static_cast<uint8_t>(where[l]);
                         } else {
                           for (int64_t i = 0; i < pd.ph; ++i) {
                             for (int64_t j = 0; j < pd.pw; ++j)
                               best = simd::take_larger(best, z[wy * pd.ph + i][wx * pd.pw + j]);
                           }
                         }
                         simd::store(y + index * d.o + o, simd::relu(best));  // best > 0 or NaN
                       }
                     }
                   });
  return true;
}

#else  // no AVX-512 or AVX2: conv2d_winograd_forward_supported() is false and conv2d.cpp never calls it

void conv2d_winograd_forward(const float*, const float*, const float*, float*, const Conv2dDims&, bool) {}
bool conv2d_winograd_forward_max_pool_relu(const float*, const float*, const float*, float*,
                                           const Conv2dDims&, const Pool2dDims&, uint8_t*) {
  return false;
}

#endif

std::size_t conv2d_winograd_cached_filter_bytes() { return winograd::cached_filter_bytes(); }

}  // namespace normnet::kernels::cpu

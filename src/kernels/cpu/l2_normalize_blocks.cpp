// L2 normalization of vectors that are not contiguous rows (inner > 1: an axis before the last,
// such as the channels of NCHW or H and W of NHWC): blocks of inner positions, each block's R rows
// streamed once to reduce and once to write, with the vector arithmetic of l2_normalize_vector.h.
#include "kernels/cpu/l2_normalize_blocks.h"

#include "kernels/cpu/l2_normalize_vector.h"
#include "kernels/cpu/parallel.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu::l2_detail {
namespace {

// Inner positions reduced together by the (O, R, I) loop when I > 1 (stack arrays, no heap). Up
// to 64 the block's sums stay in registers. Wider inner extents take blocks of 512 (about 24 KB of
// stack), which keep each of the R rows a long sequential run: with 64 positions (256 bytes per
// row) the NCHW-channels backward, R = 64 rows of three tensors 12.5 KB apart, ran at a fifth of
// the copy speed, the hardware prefetchers losing track of 192 short streams (step 17).
constexpr int64_t kNarrowBlock = 64;
constexpr int64_t kWideBlock = 512;

// ---- inner > 1: kBlock vectors (o, i0..i0+w) at a time, vectorized across i ----
// (kBlock is kNarrowBlock or kWideBlock, see for_each_block.)

template <int64_t kBlock, class T, class Acc>
void forward_block(const T* xb, T* yb, double* denom, int64_t n, int64_t inner, int64_t w, const Rule& rule) {
  Acc acc[kBlock] = {};
  for (int64_t r = 0; r < n; ++r) {
    const T* row = xb + r * inner;
#pragma omp simd
    for (int64_t i = 0; i < w; ++i) acc[i] += static_cast<Acc>(row[i]) * static_cast<Acc>(row[i]);
  }
  Scale sc[kBlock];
  double inv[kBlock];
  for (int64_t i = 0; i < w; ++i) {
    double d;
    sc[i] = finalize<T, Acc>(acc[i], xb + i, n, Strided{inner}, rule, d);
    if (denom) denom[i] = d;
    inv[i] = sc[i].sigma == 1.0 ? sc[i].inv : 0.0;  // rescaled vectors are written below
  }
  bool general[kBlock];
  if constexpr (std::is_same_v<T, float>) {
    // float32: 1/d = hi + lo in two floats and y = fma(v, hi, v·lo), as scale_vector's fast path
    // (16 float lanes instead of 8 doubles); the columns outside its range are written below.
    float hi[kBlock], lo[kBlock];
    for (int64_t i = 0; i < w; ++i) {
      general[i] =
          !(sc[i].sigma == 1.0 && sc[i].inv >= 0x1p-100 && sc[i].inv <= std::numeric_limits<float>::max());
      hi[i] = general[i] ? 0.0f : static_cast<float>(sc[i].inv);
      lo[i] = general[i] ? 0.0f : static_cast<float>(sc[i].inv - static_cast<double>(hi[i]));
    }
    for (int64_t r = 0; r < n; ++r) {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) {
        const float v = xb[r * inner + i];
        yb[r * inner + i] = std::fma(v, hi[i], v * lo[i]);
      }
    }
  } else {
    for (int64_t i = 0; i < w; ++i) general[i] = sc[i].sigma != 1.0;
    for (int64_t r = 0; r < n; ++r) {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i)
        yb[r * inner + i] = static_cast<T>(static_cast<double>(xb[r * inner + i]) * inv[i]);
    }
  }
  for (int64_t i = 0; i < w; ++i) {
    if (general[i]) scale_vector(xb + i, yb + i, n, Strided{inner}, sc[i]);
  }
}

// dxb[r·I + i] = term(r·I + i, i) when `overwrite`, else += it, over a block (the choice hoisted
// out of the loops); then the columns marked `general` are redone by backward_vector.
template <class T, class Term>
void store_block_grad(const T* xb, const T* gb, T* dxb, int64_t n, int64_t inner, int64_t w, bool overwrite,
                      const Term& term, const bool* general, const Scale* sc) {
  const auto update = [&](auto write) {
    for (int64_t r = 0; r < n; ++r) {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) {
        const T v = term(r * inner + i, i);
        if constexpr (decltype(write)::value)
          dxb[r * inner + i] = v;
        else
          dxb[r * inner + i] += v;
      }
    }
  };
  if (overwrite)
    update(std::true_type{});
  else
    update(std::false_type{});
  for (int64_t i = 0; i < w; ++i) {
    if (!general[i]) continue;
    if (overwrite) {
      for (int64_t r = 0; r < n; ++r) dxb[r * inner + i] = T(0);
    }
    backward_vector(xb + i, gb + i, dxb + i, n, Strided{inner}, sc[i]);
  }
}

// float32 blocks: t = inv·Σ dy·v (float products are exact in double), then dv = dy·a − v·b in
// float with a = inv, b = inv²·t, one FMA per element as in add_vector_grad. Columns whose factors
// float cannot hold, and rescaled ones, go through backward_vector.
template <int64_t kBlock>
void backward_block_float(const float* xb, const float* gb, const double* denom, float* dxb, int64_t n,
                          int64_t inner, int64_t w, EpsilonMode mode, bool overwrite) {
  Scale sc[kBlock];
  double dot[kBlock] = {};
  float a[kBlock], b[kBlock];
  bool general[kBlock];
  for (int64_t i = 0; i < w; ++i) sc[i] = scale_from_denominator(denom[i], xb + i, n, Strided{inner}, mode);
  for (int64_t r = 0; r < n; ++r) {
#pragma omp simd
    for (int64_t i = 0; i < w; ++i)
      dot[i] += static_cast<double>(gb[r * inner + i]) * static_cast<double>(xb[r * inner + i]);
  }
  for (int64_t i = 0; i < w; ++i) {
    const double t = sc[i].clamped ? 0.0 : sc[i].inv * dot[i];
    const double ai = sc[i].inv, bi = ai * ai * t;
    general[i] = !(sc[i].sigma == 1.0 && float_safe(ai) && (bi == 0.0 || float_safe(std::abs(bi))));
    a[i] = general[i] ? 0.0f : static_cast<float>(ai);
    b[i] = general[i] ? 0.0f : static_cast<float>(bi);
  }
  store_block_grad(
      xb, gb, dxb, n, inner, w, overwrite,
      [&](int64_t k, int64_t i) { return std::fma(gb[k], a[i], -(xb[k] * b[i])); }, general, sc);
}

template <int64_t kBlock, class T>
void backward_block(const T* xb, const T* gb, const double* denom, T* dxb, int64_t n, int64_t inner,
                    int64_t w, EpsilonMode mode, bool overwrite) {
  if constexpr (std::is_same_v<T, float>) {
    return backward_block_float<kBlock>(xb, gb, denom, dxb, n, inner, w, mode, overwrite);
  }
  Scale sc[kBlock];
  double inv[kBlock];
  double t[kBlock] = {};
  for (int64_t i = 0; i < w; ++i) {
    sc[i] = scale_from_denominator(denom[i], xb + i, n, Strided{inner}, mode);
    inv[i] = sc[i].sigma == 1.0 ? sc[i].inv : 0.0;  // rescaled vectors are added below
  }
  for (int64_t r = 0; r < n; ++r) {
#pragma omp simd
    for (int64_t i = 0; i < w; ++i) {
      t[i] += static_cast<double>(gb[r * inner + i]) * (static_cast<double>(xb[r * inner + i]) * inv[i]);
    }
  }
  bool general[kBlock];
  for (int64_t i = 0; i < w; ++i) {
    if (sc[i].clamped) t[i] = 0.0;
    general[i] = sc[i].sigma != 1.0;
  }
  store_block_grad(
      xb, gb, dxb, n, inner, w, overwrite,
      [&](int64_t k, int64_t i) {
        const double y = static_cast<double>(xb[k]) * inv[i];
        return static_cast<T>((static_cast<double>(gb[k]) - y * t[i]) * inv[i]);
      },
      general, sc);
}

// block(kBlock constant, offset of the block's first element, its first vector o·I + i0, width)
// for every block of every outer index, in parallel.
template <class Block>
void for_each_block(int64_t outer, int64_t n, int64_t inner, const Block& block) {
  const auto run = [&](auto block_width) {
    constexpr int64_t kBlock = decltype(block_width)::value;
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
    const int threads = outer * n * inner >= kParallelMin ? get_num_threads() : 1;
    parallel_for(outer * blocks, threads, [&](int64_t item) {
      const int64_t o = item / blocks;
      const int64_t i0 = (item % blocks) * kBlock;
      block(block_width, o * n * inner + i0, o * inner + i0, std::min(kBlock, inner - i0));
    });
  };
  if (inner <= kNarrowBlock)
    run(std::integral_constant<int64_t, kNarrowBlock>{});
  else
    run(std::integral_constant<int64_t, kWideBlock>{});
}

}  // namespace

template <class T>
void forward_blocks(const T* x, T* y, double* denom, int64_t outer, int64_t n, int64_t inner,
                    EpsilonMode mode, double epsilon) {
  const Rule rule{mode, epsilon};
  const auto run = [&](auto acc) {
    using Acc = decltype(acc);
    for_each_block(outer, n, inner, [&](auto block_width, int64_t offset, int64_t first, int64_t w) {
      forward_block<decltype(block_width)::value, T, Acc>(x + offset, y + offset,
                                                          denom ? denom + first : nullptr, n, inner, w, rule);
    });
  };
  // As the rows: the exact mode sums in double, the compatibility modes in T.
  if (mode == EpsilonMode::kExact)
    run(double{});
  else
    run(T{});
}

template <class T>
void backward_blocks(const T* x, const T* dy, const double* denom, T* dx, int64_t outer, int64_t n,
                     int64_t inner, EpsilonMode mode, bool overwrite) {
  for_each_block(outer, n, inner, [&](auto block_width, int64_t offset, int64_t first, int64_t w) {
    backward_block<decltype(block_width)::value>(x + offset, dy + offset, denom + first, dx + offset, n,
                                                 inner, w, mode, overwrite);
  });
}

template void forward_blocks<float>(const float*, float*, double*, int64_t, int64_t, int64_t, EpsilonMode,
                                    double);
template void forward_blocks<double>(const double*, double*, double*, int64_t, int64_t, int64_t, EpsilonMode,
                                     double);
template void backward_blocks<float>(const float*, const float*, const double*, float*, int64_t, int64_t,
                                     int64_t, EpsilonMode, bool);
template void backward_blocks<double>(const double*, const double*, const double*, double*, int64_t, int64_t,
                                      int64_t, EpsilonMode, bool);

}  // namespace normnet::kernels::cpu::l2_detail

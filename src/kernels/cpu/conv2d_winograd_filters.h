// The filter side of normnet's Winograd F(4×4, 3×3) forward (conv2d_winograd.cpp): u = G g G^T
// for every pair of input and output channels, and a per-thread cache of them keyed by the
// kernel's values. Shared constants and the scalar-times-vector helpers of both files.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/simd.h"

namespace normnet::kernels::cpu::winograd {

constexpr int64_t kTile = 4;   // output pixels per tile side (m)
constexpr int64_t kPatch = 6;  // input pixels per tile side (m + 3 − 1)
constexpr int64_t kPositions = kPatch * kPatch;

// Floats between u's positions: C·O and one cache line more, so that the 36 positions of one (c, o)
// do not all fall in one L1 set (C·O is a multiple of 256 floats, the set stride).
inline int64_t position_stride(const Conv2dDims& d) { return d.c * d.o + 16; }

// u[pos · position_stride(d) + c·O + o] = (G g G^T)[pos] for g = kernel[·, ·, c, o], d a shape that
// conv2d_winograd_forward_supported takes: from the calling thread's cache when it holds a kernel
// with these values, else transformed now on `threads` threads (and kept when it fits the cache).
// Valid until the calling thread's next call.
[[nodiscard]] const float* transformed_filters(const float* kernel, const Conv2dDims& d, int threads);

// Bytes the calling thread's cache holds (conv2d_winograd_cached_filter_bytes).
[[nodiscard]] std::size_t cached_filter_bytes();

#if defined(NORMNET_SIMD_WIDE)
inline simd::Vec times(float s, simd::Vec v) { return simd::mul(simd::broadcast(s), v); }
inline simd::Vec times_plus(float s, simd::Vec v, simd::Vec c) {
  return simd::multiply_add(simd::broadcast(s), v, c);
}
#endif

}  // namespace normnet::kernels::cpu::winograd

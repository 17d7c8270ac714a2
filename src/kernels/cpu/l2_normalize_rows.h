// Short float32 rows (inner == 1) of the L2-normalization kernels, eight at a time, with the
// per-row scalars (sum, square root, reciprocal, backward factors) computed in one double lane per
// row (one AVX-512 register, or two AVX2 ones with the same sums in the same order: the same bits),
// and the ranges inside which those fast formulas hold (shared with l2_normalize_vector.h).
#pragma once

#include <cstdint>

#include "normnet/ops/l2_normalize.h"

namespace normnet::kernels::cpu::l2_rows {

// Exact mode. A sum of squares s in [2^-960, DBL_MAX] lost nothing that matters to underflow or
// overflow, so d = sqrt(s) lies in [2^-480, 2^512] and y = v·(1/d) needs no rescaling. A float32
// vector always lands there when it is non-zero and finite (its squares, summed in double, are
// >= 2^-298); float64 extremes, zero and Inf take the rescaled path of l2_normalize_vector.h.
inline constexpr double kTinySum = 0x1p-960;
inline constexpr double kSafeLow = 0x1p-480;
inline constexpr double kSafeHigh = 0x1p512;

// A positive factor that float holds with full precision, far from overflow and underflow.
inline bool float_safe(double f) { return f >= 0x1p-100 && f <= 0x1p100; }

inline constexpr int kGroup = 8;  // rows per call: one double lane each in a 512-bit register

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
inline constexpr bool kAvailable = true;
#else
inline constexpr bool kAvailable = false;  // the functions below are then never called
#endif

// Exact-mode forward of `rows` (<= kGroup) consecutive rows of n floats (x[g·n + r]). Writes y and
// denom for every row whose s lies in [kTinySum, DBL_MAX] and whose 1/‖v‖ lies in
// [2^-100, FLT_MAX] (the float32 split of scale_vector); returns the bitmask of the other rows
// (zero, Inf, NaN, norms above 2^100 or below 1/FLT_MAX), which it leaves untouched for the general
// loop.
unsigned exact_forward(const float* x, float* y, double* denom, int rows, int64_t n);

// dx += ∂L/∂x (dx = ∂L/∂x when `overwrite`) for every row whose backward factors a = 1/|d| and
// b = a²·t (t = a·⟨dy, v⟩, or 0 where the forward clamped) pass float_safe (the float32 form of
// add_vector_grad), and, in the exact mode, d lies in [kSafeLow, kSafeHigh]; returns the bitmask
// of the rows left untouched.
unsigned backward(const float* x, const float* dy, const double* denom, float* dx, int rows, int64_t n,
                  EpsilonMode mode, bool overwrite);

}  // namespace normnet::kernels::cpu::l2_rows

// Short float32 rows (inner == 1) of the L2-normalization kernels, eight at a time, with the
// per-row scalars (sum, square root, reciprocal, backward factors) computed in one double lane per
// row (one AVX-512 register, or two AVX2 ones with the same sums in the same order: the same bits),
// and the ranges inside which those fast formulas hold (shared with l2_normalize_vector.h).
// Each row's sums run in its own register; the eight sums are transposed into one vector (lane g =
// row g), so the square roots, reciprocals and backward factors of eight rows take one vector
// instruction each and rows of 64 channels run at memory speed, not bound by a scalar sqrt and
// division chain per row. Each thread's rows go through one call (the loops:
// l2_normalize_rows_loops.h; the forward's is software-pipelined).
// Implementations: l2_normalize_rows_avx512.cpp, l2_normalize_rows_avx2.cpp (l2_normalize_rows.cpp
// for builds with neither).
#pragma once

#include <cstdint>
#include <type_traits>

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

// Non-temporal stores ("streaming": written to memory without first reading the line into the
// cache) for y and an overwritten dx in AVX2 builds, for y alone in AVX-512 builds (measured on
// Zen 5: l2_normalize_rows_avx512.cpp). Worth it when the output will have left
// the cache before anyone reads it back: when input and output together exceed the last-level
// cache of the machines we measure on (32 MiB, one Zen 3 CCX), the case of issue 7's
// [32, 56, 56, 64] tensor. The reads for ownership that ordinary stores make are a third of the
// forward's traffic and a quarter of the backward's.
inline constexpr int64_t kStreamBytes = int64_t{32} << 20;

// Whether this build streams (a function: the library's build flags decide, not the includer's).
[[nodiscard]] bool streams_available();

// Whether rows of n floats at `out` can be streamed: 32-byte aligned rows (n a multiple of 8).
inline bool stream_aligned(const float* out, int64_t n) {
  return streams_available() && n % 8 == 0 && reinterpret_cast<std::uintptr_t>(out) % 32 == 0;
}

// Orders this thread's non-temporal stores before its later stores (an sfence): each thread that
// streamed calls it before the others may read what it wrote.
void stream_fence();

// Where the kernels hand the rows their fast formulas cannot take: fn(ctx, row) with the row's
// index in the call, once the rest of its group of kGroup rows is written. The caller runs such a
// row through the general loop (l2_normalize_vector.h).
struct Rest {
  void (*fn)(void* ctx, int64_t row);
  void* ctx;
};

// Exact-mode forward of `rows` consecutive rows of n floats (x[o·n + r]), kGroup at a time,
// software-pipelined (l2_normalize_rows_loops.h). Writes y and denom for every row whose s lies
// in [kTinySum, DBL_MAX] and whose 1/‖v‖ lies in [2^-100, FLT_MAX] (the float32 split of
// scale_vector); hands the others (zero, Inf, NaN, norms above 2^100 or below 1/FLT_MAX) to `rest`
// untouched.
// `stream` (requires stream_aligned(y, n)): y's rows are written with non-temporal stores.
void exact_forward(const float* x, float* y, double* denom, int64_t rows, int64_t n, bool stream, Rest rest);

// dx += ∂L/∂x (dx = ∂L/∂x when `overwrite`) for every row whose backward factors a = 1/|d| and
// b = a²·t (t = a·⟨dy, v⟩, or 0 where the forward clamped) pass float_safe (the float32 form of
// add_vector_grad), and, in the exact mode, d lies in [kSafeLow, kSafeHigh]; hands the other rows
// to `rest` untouched. Rows as in exact_forward, a group's sums before its writes.
// `stream` (requires `overwrite` and stream_aligned(dx, n)): dx's rows are written with
// non-temporal stores.
void backward(const float* x, const float* dy, const double* denom, float* dx, int64_t rows, int64_t n,
              EpsilonMode mode, bool overwrite, bool stream, Rest rest);

// f(std::integral_constant<int64_t, L>{}) with L = n for rows of 32 and 64 (common channel counts:
// the kernels' loops unroll), else L = 0 (the kernels read n at run time). At 64, the
// runtime-length loops made the forward about 30 % slower than copying (docs/benchmarks.md,
// step 16); from 128 on the loop overhead no longer shows.
template <class F>
void by_length(int64_t n, F&& f) {
  if (n == 64) return f(std::integral_constant<int64_t, 64>{});
  if (n == 32) return f(std::integral_constant<int64_t, 32>{});
  return f(std::integral_constant<int64_t, 0>{});
}

}  // namespace normnet::kernels::cpu::l2_rows

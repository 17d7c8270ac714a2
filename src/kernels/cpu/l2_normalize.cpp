// Fused L2-normalization loops: per-vector sums of squares, the four epsilon rules, the power-of-two
// rescaling that keeps the exact mode finite from subnormals to DBL_MAX, and a naive twin.
#include "kernels/cpu/l2_normalize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/cpu/l2_normalize_rows.h"
#include "kernels/cpu/parallel.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The exact mode's fast ranges (kTinySum, kSafeLow, kSafeHigh; see l2_normalize_rows.h). Outside
// them (float64 extremes, zero, Inf) a vector is rescaled by σ = 2^±600, picked from max|v|:
// multiplying by a power of two is exact, the idea of LAPACK's dnrm2.
using l2_rows::float_safe;
using l2_rows::kSafeHigh;
using l2_rows::kSafeLow;
using l2_rows::kTinySum;
// Fewer elements than this run on one thread (an OpenMP fork costs about a microsecond).
constexpr int64_t kParallelMin = int64_t{1} << 16;
// Vectors at least 2·kChunk long are reduced in fixed chunks by all threads (whole tensor,
// all_axes of a small batch); the chunking does not depend on the thread count, so results do not.
constexpr int64_t kChunk = int64_t{1} << 14;
constexpr int64_t kMaxChunks = 256;
// Contiguous rows normalized together, phase by phase (see forward_row_group).
constexpr int64_t kRowGroup = l2_rows::kGroup;
// Inner positions reduced together by the (O, R, I) loop when I > 1 (stack arrays, no heap). Up
// to 64 the block's sums stay in registers. Wider inner extents take blocks of 512 (about 24 KB of
// stack), which keep each of the R rows a long sequential run: with 64 positions (256 bytes per
// row) the NCHW-channels backward, R = 64 rows of three tensors 12.5 KB apart, ran at a fifth of
// the copy speed, the hardware prefetchers losing track of 192 short streams (step 17).
constexpr int64_t kNarrowBlock = 64;
constexpr int64_t kWideBlock = 512;

// How a vector's elements are addressed from its base pointer.
struct Contiguous {
  int64_t operator()(int64_t r) const { return r; }
};
struct Strided {
  int64_t stride;
  int64_t operator()(int64_t r) const { return r * stride; }
};
struct Gathered {
  const int64_t* offsets;
  int64_t operator()(int64_t r) const { return offsets[r]; }
};

struct Rule {
  EpsilonMode mode;
  double epsilon;
};

// One vector's factors: y = (v·sigma)·inv. Backward: dv = ((dy − y·t)·inv)·sigma with t = ⟨dy, y⟩,
// or t = 0 where the forward was clamped (there y = v·inv with inv constant).
struct Scale {
  double sigma = 1.0;
  double inv = 0.0;
  bool clamped = false;
};

// Contiguous vectors keep kLanes<Acc> independent partial sums (four AVX-512 registers), which
// hides the add latency that a single accumulator would serialize on; they are combined pairwise
// in a fixed order, so the result does not depend on the machine's thread count.
template <class Acc>
constexpr int64_t kLanes = 4 * 64 / static_cast<int64_t>(sizeof(Acc));

// acc[0] += acc[W] ... pairwise down to one lane (W a constant, so each step is a few vector adds).
template <int64_t W, class Acc>
[[gnu::always_inline]] inline Acc combine_lanes(Acc* acc) {
#pragma omp simd
  for (int64_t k = 0; k < W; ++k) acc[k] += acc[k + W];
  if constexpr (W == 1) {
    return acc[0];
  } else {
    return combine_lanes<W / 2>(acc);
  }
}

// Σ f(a_r, b_r) over a contiguous range, f = a·b in Acc.
template <class Acc, class T, bool kSquare>
Acc dot_contiguous_impl(const T* a, const T* b, int64_t n) {
  constexpr int64_t L = kLanes<Acc>;
  Acc acc[L] = {};
  const auto term = [&](int64_t r) {
    const auto w = static_cast<Acc>(a[r]);
    return kSquare ? w * w : w * static_cast<Acc>(b[r]);
  };
  int64_t r = 0;
  for (; r + L <= n; r += L) {
#pragma omp simd
    for (int64_t k = 0; k < L; ++k) acc[k] += term(r + k);
  }
  for (int64_t k = 0; k < n - r; ++k) acc[k] += term(r + k);
  return combine_lanes<L / 2>(acc);
}

template <class Acc, class T>
Acc dot_contiguous(const T* a, const T* b, int64_t n) {
  return dot_contiguous_impl<Acc, T, false>(a, b, n);
}

template <class T, class Acc, class At>
Acc sum_squares(const T* v, int64_t n, At at) {
  if constexpr (std::is_same_v<At, Contiguous>) {
    return dot_contiguous_impl<Acc, T, true>(v, v, n);
  } else {
    Acc s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t r = 0; r < n; ++r) {
      const Acc w = static_cast<Acc>(v[at(r)]);
      s += w * w;
    }
    return s;
  }
}

// Exact mode's slow path: ‖v‖ = ‖v·σ‖/σ. d receives ‖v‖ (which may itself be subnormal or Inf in
// float64; y is computed from the scaled values, so it is exact regardless).
template <class T, class At>
Scale rescaled(const T* v, int64_t n, At at, double& d) {
  double m = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    const double a = std::abs(static_cast<double>(v[at(r)]));
    if (a > m || a != a) m = a;  // a NaN sticks
  }
  if (m == 0.0) {  // the zero vector: y = 0, and its gradient is 0 (see ops/l2_normalize.cpp)
    d = 0.0;
    return {1.0, 0.0, false};
  }
  const double sigma = m < 0x1p-400 ? 0x1p600 : (m > 0x1p400 ? 0x1p-600 : 1.0);
  double s = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    const double w = static_cast<double>(v[at(r)]) * sigma;
    s += w * w;
  }
  if (!std::isfinite(s)) {  // an Inf or NaN component: the whole vector becomes NaN
    d = kNaN;
    return {1.0, kNaN, false};
  }
  const double scaled_norm = std::sqrt(s);
  d = scaled_norm / sigma;
  return {sigma, 1.0 / scaled_norm, false};
}

template <class T, class At>
Scale exact_scale(double s, const T* v, int64_t n, At at, double& d) {
  if (s >= kTinySum && s <= std::numeric_limits<double>::max()) {
    d = std::sqrt(s);
    return {1.0, 1.0 / d, false};
  }
  if (std::isnan(s)) {
    d = kNaN;
    return {1.0, kNaN, false};
  }
  return rescaled(v, n, at, d);
}

// The compatibility modes' denominator, computed in T as the frameworks do; negative = clamped.
//   TF: y = v·rsqrt(max(s, ε)); PyTorch: y = v/max(‖v‖, ε); additive: y = v/sqrt(s + ε).
// A NaN s fails every `<` and propagates.
template <class T>
double compat_denominator(T s, EpsilonMode mode, T eps) {
  switch (mode) {
    case EpsilonMode::kTensorFlow:
      return s < eps ? -static_cast<double>(std::sqrt(eps)) : static_cast<double>(std::sqrt(s));
    case EpsilonMode::kPyTorch: {
      const T norm = std::sqrt(s);
      return norm < eps ? -static_cast<double>(eps) : static_cast<double>(norm);
    }
    case EpsilonMode::kAdditive:
      return static_cast<double>(std::sqrt(s + eps));
    case EpsilonMode::kExact:
      break;
  }
  return kNaN;
}

template <class T, class Acc, class At>
Scale finalize(Acc s, const T* v, int64_t n, At at, const Rule& rule, double& d) {
  if (rule.mode == EpsilonMode::kExact) return exact_scale(static_cast<double>(s), v, n, at, d);
  d = compat_denominator<T>(static_cast<T>(s), rule.mode, static_cast<T>(rule.epsilon));
  return {1.0, 1.0 / std::abs(d), d < 0.0};
}

// The forward's factors again, from its saved denominator (the backward's view).
template <class T, class At>
Scale scale_from_denominator(double d, const T* v, int64_t n, At at, EpsilonMode mode) {
  if (mode != EpsilonMode::kExact) return {1.0, 1.0 / std::abs(d), d < 0.0};
  if (d == 0.0) return {1.0, 0.0, false};
  if (std::isnan(d)) return {1.0, kNaN, false};
  if (d >= kSafeLow && d <= kSafeHigh) return {1.0, 1.0 / d, false};
  double unused;
  return rescaled(v, n, at, unused);
}

template <class T, class At>
void scale_vector(const T* v, T* out, int64_t n, At at, const Scale& sc) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<At, Contiguous>) {
    // float32 fast path: inv = hi + lo split into two floats; fma(v, hi, v·lo) is v·inv rounded
    // once (to within 2^-48 relative), as the double product would be, at one float FMA per lane.
    // Needs hi well inside float's normal range (‖v‖ roughly in [1e-38, 1e30]).
    const auto hi = static_cast<float>(sc.inv);
    if (sc.sigma == 1.0 && sc.inv >= 0x1p-100 && sc.inv <= std::numeric_limits<float>::max()) {
      const auto lo = static_cast<float>(sc.inv - static_cast<double>(hi));
#pragma omp simd
      for (int64_t r = 0; r < n; ++r) out[r] = std::fma(v[r], hi, v[r] * lo);
      return;
    }
  }
  if (sc.sigma == 1.0) {
#pragma omp simd
    for (int64_t r = 0; r < n; ++r) out[at(r)] = static_cast<T>(static_cast<double>(v[at(r)]) * sc.inv);
  } else {
    for (int64_t r = 0; r < n; ++r) {
      out[at(r)] = static_cast<T>((static_cast<double>(v[at(r)]) * sc.sigma) * sc.inv);
    }
  }
}

// t = ⟨dy, y⟩ with y = (v·sigma)·inv.
template <class T, class At>
double dot_dy_y(const T* v, const T* g, int64_t n, At at, const Scale& sc) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<At, Contiguous>) {
    // float32 products are exact in double and their sums cannot overflow: t = inv·Σ g·v.
    if (sc.sigma == 1.0) return sc.inv * dot_contiguous<double>(g, v, n);
  }
  double t = 0.0;
#pragma omp simd reduction(+ : t)
  for (int64_t r = 0; r < n; ++r) {
    const double y = (static_cast<double>(v[at(r)]) * sc.sigma) * sc.inv;
    t += static_cast<double>(g[at(r)]) * y;
  }
  return t;
}

// dv += ((dy − y·t)·inv)·sigma
template <class T, class At>
void add_vector_grad(const T* v, const T* g, T* dv, int64_t n, At at, const Scale& sc, double t) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<At, Contiguous>) {
    // The same as dy·a − v·b with a = inv, b = inv²·t; for float32 inputs inv ∈ [1e-40, 1e45], so
    // b stays inside double's range. (float64 inputs keep the y-form: inv² could overflow there.)
    if (sc.sigma == 1.0) {
      const double a = sc.inv, b = sc.inv * sc.inv * t;
      if (float_safe(a) && (b == 0.0 || float_safe(std::abs(b)))) {
        // One float FMA per lane: each term is within a few float ulps of the double result, the
        // precision that dy itself carries.
        const auto af = static_cast<float>(a), bf = static_cast<float>(b);
#pragma omp simd
        for (int64_t r = 0; r < n; ++r) dv[r] += std::fma(g[r], af, -(v[r] * bf));
        return;
      }
#pragma omp simd
      for (int64_t r = 0; r < n; ++r) {
        dv[r] += static_cast<float>(static_cast<double>(g[r]) * a - static_cast<double>(v[r]) * b);
      }
      return;
    }
  }
#pragma omp simd
  for (int64_t r = 0; r < n; ++r) {
    const double y = (static_cast<double>(v[at(r)]) * sc.sigma) * sc.inv;
    dv[at(r)] += static_cast<T>(((static_cast<double>(g[at(r)]) - y * t) * sc.inv) * sc.sigma);
  }
}

template <class T, class At>
void backward_vector(const T* v, const T* g, T* dv, int64_t n, At at, const Scale& sc) {
  const double t = sc.clamped ? 0.0 : dot_dy_y(v, g, n, at, sc);
  add_vector_grad(v, g, dv, n, at, sc, t);
}

// ---- one long vector, reduced by all threads in fixed chunks ----

struct Chunks {
  int64_t count, len;
  explicit Chunks(int64_t n)
      : count(std::min(kMaxChunks, (n + kChunk - 1) / kChunk)), len((n + count - 1) / count) {}
  int64_t begin(int64_t c) const { return c * len; }
  int64_t size(int64_t c, int64_t n) const { return std::min(n, (c + 1) * len) - c * len; }
};

template <class T, class Acc>
void forward_long_vector(const T* v, T* out, double* denom, int64_t n, const Rule& rule) {
  const Chunks chunks(n);
  Acc partial[kMaxChunks];
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
  for (int64_t c = 0; c < chunks.count; ++c) {
    partial[c] = sum_squares<T, Acc>(v + chunks.begin(c), chunks.size(c, n), Contiguous{});
  }
  Acc s = 0;
  for (int64_t c = 0; c < chunks.count; ++c) s += partial[c];
  double d;
  const Scale sc = finalize<T, Acc>(s, v, n, Contiguous{}, rule, d);
  if (denom) *denom = d;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
  for (int64_t c = 0; c < chunks.count; ++c) {
    scale_vector(v + chunks.begin(c), out + chunks.begin(c), chunks.size(c, n), Contiguous{}, sc);
  }
}

template <class T>
void backward_long_vector(const T* v, const T* g, double d, T* dv, int64_t n, EpsilonMode mode,
                          bool overwrite) {
  const Chunks chunks(n);
  const Scale sc = scale_from_denominator(d, v, n, Contiguous{}, mode);
  double partial[kMaxChunks] = {};
  if (!sc.clamped) {
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t c = 0; c < chunks.count; ++c) {
      partial[c] = dot_dy_y(v + chunks.begin(c), g + chunks.begin(c), chunks.size(c, n), Contiguous{}, sc);
    }
  }
  double t = 0.0;
  for (int64_t c = 0; c < chunks.count; ++c) t += partial[c];
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
  for (int64_t c = 0; c < chunks.count; ++c) {
    const int64_t b = chunks.begin(c);
    if (overwrite) std::fill_n(dv + b, chunks.size(c, n), T(0));
    add_vector_grad(v + b, g + b, dv + b, chunks.size(c, n), Contiguous{}, sc, t);
  }
}

// ---- inner == 1: contiguous rows, kRowGroup at a time ----
// Each phase runs over a group of independent rows before the next begins, so the rows' reduction
// tails, square roots and divisions overlap instead of forming one long dependency chain per row.

// Σv² of kRows consecutive rows: one register of partial sums per row, so that the rows' add
// chains run side by side. Each row's sum has the same order whatever kRows is (a tail group runs
// its rows one at a time), so a row's result does not depend on its position in the batch.
template <class T, class Acc, int64_t kRows>
void group_sum_squares(const T* x, int64_t n, Acc* s) {
  constexpr int64_t L = 64 / static_cast<int64_t>(sizeof(Acc));
  Acc acc[kRows][L] = {};
  int64_t r = 0;
  for (; r + L <= n; r += L) {
    for (int64_t g = 0; g < kRows; ++g) {
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) {
        const auto w = static_cast<Acc>(x[g * n + r + l]);
        acc[g][l] += w * w;
      }
    }
  }
  for (int64_t g = 0; g < kRows; ++g) {
    for (int64_t l = 0; l < n - r; ++l) {
      const auto w = static_cast<Acc>(x[g * n + r + l]);
      acc[g][l] += w * w;
    }
    s[g] = combine_lanes<L / 2>(acc[g]);
  }
}

// One row through the general path (the rows that l2_rows leaves: zero, Inf, NaN, extreme norms).
template <class T, class Acc>
void forward_row(const T* v, T* out, double* denom, int64_t n, const Rule& rule) {
  double d;
  const Scale sc = finalize<T, Acc>(sum_squares<T, Acc>(v, n, Contiguous{}), v, n, Contiguous{}, rule, d);
  if (denom) *denom = d;
  scale_vector(v, out, n, Contiguous{}, sc);
}

template <class T, class Acc>
void forward_row_group(const T* x, T* y, double* denom, int64_t rows, int64_t n, const Rule& rule) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<Acc, double> && l2_rows::kAvailable) {
    // float32 in the exact mode (the only one that sums float32 in double): one lane per row.
    for (unsigned rest = l2_rows::exact_forward(x, y, denom, static_cast<int>(rows), n); rest != 0;
         rest &= rest - 1) {
      const int g = __builtin_ctz(rest);
      forward_row<T, Acc>(x + g * n, y + g * n, denom ? denom + g : nullptr, n, rule);
    }
    return;
  }
  Acc s[kRowGroup];
  Scale sc[kRowGroup];
  if (rows == kRowGroup) {
    group_sum_squares<T, Acc, kRowGroup>(x, n, s);
  } else {
    for (int64_t g = 0; g < rows; ++g) group_sum_squares<T, Acc, 1>(x + g * n, n, s + g);
  }
  for (int64_t g = 0; g < rows; ++g) {
    double d;
    sc[g] = finalize<T, Acc>(s[g], x + g * n, n, Contiguous{}, rule, d);
    if (denom) denom[g] = d;
  }
  for (int64_t g = 0; g < rows; ++g) scale_vector(x + g * n, y + g * n, n, Contiguous{}, sc[g]);
}

template <class T, class Acc>
void forward_rows(const T* x, T* y, double* denom, int64_t rows, int64_t n, const Rule& rule) {
  if (n >= 2 * kChunk) {
    for (int64_t o = 0; o < rows; ++o)
      forward_long_vector<T, Acc>(x + o * n, y + o * n, denom ? denom + o : nullptr, n, rule);
    return;
  }
  const int threads = rows * n >= kParallelMin ? get_num_threads() : 1;
  const int64_t groups = (rows + kRowGroup - 1) / kRowGroup;
  parallel_for(groups, threads, [&](int64_t k) {
    const int64_t o = k * kRowGroup;
    forward_row_group<T, Acc>(x + o * n, y + o * n, denom ? denom + o : nullptr, std::min(kRowGroup, rows - o), n,
                              rule);
  });
}

// `overwrite`: dx holds garbage, and every row is written (the general loops add, so the rows
// they take are zeroed first, while they are in cache).
template <class T>
void backward_row_group(const T* x, const T* dy, const double* denom, T* dx, int64_t rows, int64_t n,
                        EpsilonMode mode, bool overwrite) {
  const auto general = [&](int64_t g) {
    if (overwrite) std::fill_n(dx + g * n, n, T(0));
    const Scale sc = scale_from_denominator(denom[g], x + g * n, n, Contiguous{}, mode);
    backward_vector(x + g * n, dy + g * n, dx + g * n, n, Contiguous{}, sc);
  };
  if constexpr (std::is_same_v<T, float> && l2_rows::kAvailable) {
    for (unsigned rest = l2_rows::backward(x, dy, denom, dx, static_cast<int>(rows), n, mode, overwrite);
         rest != 0; rest &= rest - 1) {
      general(__builtin_ctz(rest));
    }
    return;
  }
  if (overwrite) std::fill_n(dx, rows * n, T(0));
  Scale sc[kRowGroup];
  double t[kRowGroup];
  for (int64_t g = 0; g < rows; ++g) sc[g] = scale_from_denominator(denom[g], x + g * n, n, Contiguous{}, mode);
  for (int64_t g = 0; g < rows; ++g) t[g] = sc[g].clamped ? 0.0 : dot_dy_y(x + g * n, dy + g * n, n, Contiguous{}, sc[g]);
  for (int64_t g = 0; g < rows; ++g) add_vector_grad(x + g * n, dy + g * n, dx + g * n, n, Contiguous{}, sc[g], t[g]);
}

template <class T>
void backward_rows(const T* x, const T* dy, const double* denom, T* dx, int64_t rows, int64_t n,
                   EpsilonMode mode, bool overwrite) {
  if (n >= 2 * kChunk) {
    for (int64_t o = 0; o < rows; ++o)
      backward_long_vector(x + o * n, dy + o * n, denom[o], dx + o * n, n, mode, overwrite);
    return;
  }
  const int threads = rows * n >= kParallelMin ? get_num_threads() : 1;
  const int64_t groups = (rows + kRowGroup - 1) / kRowGroup;
  parallel_for(groups, threads, [&](int64_t k) {
    const int64_t o = k * kRowGroup;
    backward_row_group(x + o * n, dy + o * n, denom + o, dx + o * n, std::min(kRowGroup, rows - o), n, mode,
                       overwrite);
  });
}

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

template <class T, class Acc>
void forward_fused(const T* x, T* y, double* denom, int64_t outer, int64_t n, int64_t inner,
                   const Rule& rule) {
  if (inner == 1) return forward_rows<T, Acc>(x, y, denom, outer, n, rule);
  for_each_block(outer, n, inner, [&](auto block_width, int64_t offset, int64_t first, int64_t w) {
    forward_block<decltype(block_width)::value, T, Acc>(x + offset, y + offset,
                                                        denom ? denom + first : nullptr, n, inner, w, rule);
  });
}

}  // namespace

template <class T>
void l2_normalize_forward(const T* x, T* y, double* denom, int64_t outer, int64_t reduced, int64_t inner,
                          EpsilonMode mode, double epsilon) {
  const Rule rule{mode, epsilon};
  // The exact mode sums float32 squares in double (their range fits); the compatibility modes sum
  // in T, reproducing the frameworks' overflow and underflow.
  if (mode == EpsilonMode::kExact)
    forward_fused<T, double>(x, y, denom, outer, reduced, inner, rule);
  else
    forward_fused<T, T>(x, y, denom, outer, reduced, inner, rule);
}

template <class T>
void l2_normalize_backward(const T* x, const T* dy, const double* denom, T* dx, int64_t outer,
                           int64_t reduced, int64_t inner, EpsilonMode mode, bool overwrite) {
  if (inner == 1) return backward_rows(x, dy, denom, dx, outer, reduced, mode, overwrite);
  for_each_block(outer, reduced, inner, [&](auto block_width, int64_t offset, int64_t first, int64_t w) {
    backward_block<decltype(block_width)::value>(x + offset, dy + offset, denom + first, dx + offset, reduced,
                                                 inner, w, mode, overwrite);
  });
}

template <class T>
void l2_normalize_forward_strided(const T* x, T* y, double* denom, const int64_t* bases, int64_t count,
                                  const int64_t* offsets, int64_t reduced, EpsilonMode mode, double epsilon) {
  const Rule rule{mode, epsilon};
  const Gathered at{offsets};
  const int threads = count * reduced >= kParallelMin ? get_num_threads() : 1;
  parallel_for(count, threads, [&](int64_t k) {
    const T* v = x + bases[k];
    double d;
    const Scale sc =
        mode == EpsilonMode::kExact
            ? finalize<T, double>(sum_squares<T, double>(v, reduced, at), v, reduced, at, rule, d)
            : finalize<T, T>(sum_squares<T, T>(v, reduced, at), v, reduced, at, rule, d);
    if (denom) denom[k] = d;
    scale_vector(v, y + bases[k], reduced, at, sc);
  });
}

template <class T>
void l2_normalize_backward_strided(const T* x, const T* dy, const double* denom, T* dx, const int64_t* bases,
                                   int64_t count, const int64_t* offsets, int64_t reduced, EpsilonMode mode,
                                   bool overwrite) {
  const Gathered at{offsets};
  const int threads = count * reduced >= kParallelMin ? get_num_threads() : 1;
  parallel_for(count, threads, [&](int64_t k) {
    const T* v = x + bases[k];
    const Scale sc = scale_from_denominator(denom[k], v, reduced, at, mode);
    if (overwrite) {
      for (int64_t r = 0; r < reduced; ++r) dx[bases[k] + offsets[r]] = T(0);
    }
    backward_vector(v, dy + bases[k], dx + bases[k], reduced, at, sc);
  });
}

// ---- the naive twin ----

namespace {

// The compatibility modes' denominator c (y = v/c) in T, sequentially; `clamped` where c is ε-made.
template <class T>
T reference_denominator(const T* v, const int64_t* offsets, int64_t n, EpsilonMode mode, T eps,
                        bool& clamped) {
  T s = 0;
  for (int64_t r = 0; r < n; ++r) s += v[offsets[r]] * v[offsets[r]];
  clamped = false;
  if (mode == EpsilonMode::kTensorFlow) {
    clamped = s < eps;
    return std::sqrt(clamped ? eps : s);
  }
  if (mode == EpsilonMode::kPyTorch) {
    const T norm = std::sqrt(s);
    clamped = norm < eps;
    return clamped ? eps : norm;
  }
  return std::sqrt(s + eps);
}

// The exact norm in long double (its exponent range holds the square of every float64): 0 for a
// zero vector, NaN when a component is NaN or Inf.
template <class T>
long double reference_norm(const T* v, const int64_t* offsets, int64_t n) {
  long double s = 0;
  for (int64_t r = 0; r < n; ++r) s += static_cast<long double>(v[offsets[r]]) * v[offsets[r]];
  return std::isfinite(s) ? std::sqrt(s) : std::numeric_limits<long double>::quiet_NaN();
}

}  // namespace

template <class T>
void l2_normalize_forward_reference(const T* x, T* y, const int64_t* bases, int64_t count,
                                    const int64_t* offsets, int64_t n, EpsilonMode mode, double epsilon) {
  for (int64_t k = 0; k < count; ++k) {
    const T* v = x + bases[k];
    T* out = y + bases[k];
    bool clamped = false;
    const long double c = mode == EpsilonMode::kExact
                              ? reference_norm(v, offsets, n)
                              : reference_denominator(v, offsets, n, mode, static_cast<T>(epsilon), clamped);
    for (int64_t r = 0; r < n; ++r) {
      // exact mode at v = 0: y = 0 by convention
      out[offsets[r]] = (mode == EpsilonMode::kExact && c == 0) ? T(0) : static_cast<T>(v[offsets[r]] / c);
    }
  }
}

template <class T>
void l2_normalize_backward_reference(const T* x, const T* dy, T* dx, const int64_t* bases, int64_t count,
                                     const int64_t* offsets, int64_t n, EpsilonMode mode, double epsilon) {
  for (int64_t k = 0; k < count; ++k) {
    const T* v = x + bases[k];
    const T* g = dy + bases[k];
    T* dv = dx + bases[k];
    bool clamped = false;
    const long double c = mode == EpsilonMode::kExact
                              ? reference_norm(v, offsets, n)
                              : reference_denominator(v, offsets, n, mode, static_cast<T>(epsilon), clamped);
    if (mode == EpsilonMode::kExact && c == 0) continue;  // zero vector: gradient 0
    long double t = 0;                                    // ⟨dy, y⟩
    if (!clamped)
      for (int64_t r = 0; r < n; ++r) t += g[offsets[r]] * (v[offsets[r]] / c);
    for (int64_t r = 0; r < n; ++r) {
      const long double yr = v[offsets[r]] / c;
      dv[offsets[r]] += static_cast<T>((g[offsets[r]] - yr * t) / c);
    }
  }
}

template void l2_normalize_forward<float>(const float*, float*, double*, int64_t, int64_t, int64_t,
                                          EpsilonMode, double);
template void l2_normalize_backward<float>(const float*, const float*, const double*, float*, int64_t,
                                           int64_t, int64_t, EpsilonMode, bool);
template void l2_normalize_forward_strided<float>(const float*, float*, double*, const int64_t*, int64_t,
                                                  const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_backward_strided<float>(const float*, const float*, const double*, float*,
                                                   const int64_t*, int64_t, const int64_t*, int64_t,
                                                   EpsilonMode, bool);
template void l2_normalize_forward_reference<float>(const float*, float*, const int64_t*, int64_t,
                                                    const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_backward_reference<float>(const float*, const float*, float*, const int64_t*,
                                                     int64_t, const int64_t*, int64_t, EpsilonMode, double);

template void l2_normalize_forward<double>(const double*, double*, double*, int64_t, int64_t, int64_t,
                                           EpsilonMode, double);
template void l2_normalize_backward<double>(const double*, const double*, const double*, double*, int64_t,
                                            int64_t, int64_t, EpsilonMode, bool);
template void l2_normalize_forward_strided<double>(const double*, double*, double*, const int64_t*, int64_t,
                                                   const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_backward_strided<double>(const double*, const double*, const double*, double*,
                                                    const int64_t*, int64_t, const int64_t*, int64_t,
                                                    EpsilonMode, bool);
template void l2_normalize_forward_reference<double>(const double*, double*, const int64_t*, int64_t,
                                                     const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_backward_reference<double>(const double*, const double*, double*, const int64_t*,
                                                      int64_t, const int64_t*, int64_t, EpsilonMode, double);

}  // namespace normnet::kernels::cpu

// One vector's L2-normalization arithmetic, shared by the layouts of l2_normalize.cpp and
// l2_normalize_blocks.cpp: how elements are addressed, sums of squares, the four epsilon rules, the
// power-of-two rescaling that keeps the exact mode finite from subnormals to DBL_MAX, scaling, and
// the gradient dv = (dy − y·⟨dy, y⟩)/‖v‖.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/cpu/l2_normalize_rows.h"
#include "normnet/ops/l2_normalize.h"

namespace normnet::kernels::cpu::l2_detail {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The exact mode's fast ranges (kTinySum, kSafeLow, kSafeHigh; see l2_normalize_rows.h). Outside
// them (float64 extremes, zero, Inf) a vector is rescaled by σ = 2^±600, picked from max|v|:
// multiplying by a power of two is exact, the idea of LAPACK's dnrm2.
using l2_rows::float_safe;
using l2_rows::kSafeHigh;
using l2_rows::kSafeLow;
using l2_rows::kTinySum;
// Fewer elements than this run on one thread (an OpenMP fork costs about a microsecond).
inline constexpr int64_t kParallelMin = int64_t{1} << 16;

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
inline constexpr int64_t kLanes = 4 * 64 / static_cast<int64_t>(sizeof(Acc));

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

}  // namespace normnet::kernels::cpu::l2_detail

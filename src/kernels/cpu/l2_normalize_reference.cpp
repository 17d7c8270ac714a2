// The naive twin of the L2-normalization kernels, for tests: one vector at a time in the strided
// form, sequential sums, the exact mode in long double.
#include <cmath>
#include <limits>

#include "kernels/cpu/l2_normalize.h"

namespace normnet::kernels::cpu {

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

// The denominator c of vector v (y = v/c) under `mode`; `clamped` where ε made it.
template <class T>
long double reference_divisor(const T* v, const int64_t* offsets, int64_t n, EpsilonMode mode, double epsilon,
                              bool& clamped) {
  clamped = false;
  return mode == EpsilonMode::kExact
             ? reference_norm(v, offsets, n)
             : reference_denominator(v, offsets, n, mode, static_cast<T>(epsilon), clamped);
}

}  // namespace

template <class T>
void l2_normalize_forward_reference(const T* x, T* y, const int64_t* bases, int64_t count,
                                    const int64_t* offsets, int64_t n, EpsilonMode mode, double epsilon) {
  for (int64_t k = 0; k < count; ++k) {
    const T* v = x + bases[k];
    T* out = y + bases[k];
    bool clamped = false;
    const long double c = reference_divisor(v, offsets, n, mode, epsilon, clamped);
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
    const long double c = reference_divisor(v, offsets, n, mode, epsilon, clamped);
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

template void l2_normalize_forward_reference<float>(const float*, float*, const int64_t*, int64_t,
                                                    const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_backward_reference<float>(const float*, const float*, float*, const int64_t*,
                                                     int64_t, const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_forward_reference<double>(const double*, double*, const int64_t*, int64_t,
                                                     const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_backward_reference<double>(const double*, const double*, double*, const int64_t*,
                                                      int64_t, const int64_t*, int64_t, EpsilonMode, double);

}  // namespace normnet::kernels::cpu

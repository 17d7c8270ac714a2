// Fused optimizer update loops: SGD, Adam/AdamW (with a plain reference twin), RMSprop. The
// update rules are written above each declaration in optimizer_update.h.
// SGD's loops vectorize as they are. The Adam and RMSprop loops vectorize only under
// -fno-math-errno: std::sqrt may set errno, and GCC keeps that possible libm call as a branch it
// cannot vectorize (neither `#pragma GCC optimize` nor the optimize attribute lifts it, since the
// builtin's attributes are fixed by the command line). The flag changes no value: sqrt stays
// correctly rounded and NaN stays NaN; only errno is left alone.

#include "kernels/cpu/optimizer_update.h"

#include <cmath>

#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

// Below this many elements a weight is updated on one thread (a bias of 128 is not worth a fork).
constexpr int64_t kParallelThreshold = 1 << 15;

int threads_for(int64_t n) { return n >= kParallelThreshold ? normnet::get_num_threads() : 1; }

// The Adam loop with its two options fixed at compile time, so each variant vectorizes without a
// branch per element.
template <class T, bool kAmsgrad, bool kDecay>
void adam_loop(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict v_hat,
               int64_t n, const AdamCoefficients& c) {
  const T lr_t = static_cast<T>(c.lr_t);
  const T b1 = static_cast<T>(c.one_minus_beta_1);
  const T b2 = static_cast<T>(c.one_minus_beta_2);
  const T eps = static_cast<T>(c.epsilon);
  const T decay = static_cast<T>(c.decay);
#pragma omp parallel for simd num_threads(threads_for(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T wi = w[i];
    if constexpr (kDecay) wi = wi - wi * decay;
    const T gi = g[i];
    const T mi = m[i] + (gi - m[i]) * b1;
    T vi = v[i] + (gi * gi - v[i]) * b2;
    m[i] = mi;
    v[i] = vi;
    if constexpr (kAmsgrad) {
      vi = v_hat[i] > vi ? v_hat[i] : vi;
      v_hat[i] = vi;
    }
    w[i] = wi - lr_t * mi / (std::sqrt(vi) + eps);
  }
}

}  // namespace

template <class T>
void sgd_update(T* __restrict w, const T* __restrict g, T* __restrict velocity, int64_t n, T lr, T momentum,
                bool nesterov) {
  const int threads = threads_for(n);
  if (momentum == T(0)) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) w[i] = w[i] - lr * g[i];
  } else if (nesterov) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T step = -lr * g[i];
      const T vi = momentum * velocity[i] + step;
      velocity[i] = vi;
      w[i] = w[i] + (momentum * vi + step);
    }
  } else {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T vi = momentum * velocity[i] - lr * g[i];
      velocity[i] = vi;
      w[i] = w[i] + vi;
    }
  }
}

template <class T>
void adam_update(T* w, const T* g, T* m, T* v, T* v_hat, int64_t n, const AdamCoefficients& c, bool amsgrad) {
  const bool decay = c.decay != 0.0;
  if (amsgrad) {
    if (decay) adam_loop<T, true, true>(w, g, m, v, v_hat, n, c);
    else adam_loop<T, true, false>(w, g, m, v, v_hat, n, c);
  } else {
    if (decay) adam_loop<T, false, true>(w, g, m, v, v_hat, n, c);
    else adam_loop<T, false, false>(w, g, m, v, v_hat, n, c);
  }
}

template <class T>
void adam_update_reference(T* w, const T* g, T* m, T* v, T* v_hat, int64_t n, const AdamCoefficients& c,
                           bool amsgrad) {
  const T lr_t = static_cast<T>(c.lr_t);
  const T b1 = static_cast<T>(c.one_minus_beta_1);
  const T b2 = static_cast<T>(c.one_minus_beta_2);
  const T eps = static_cast<T>(c.epsilon);
  const T decay = static_cast<T>(c.decay);
  for (int64_t i = 0; i < n; ++i) {
    if (c.decay != 0.0) w[i] = w[i] - w[i] * decay;   // w ← w − lr·wd·w
    m[i] = m[i] + (g[i] - m[i]) * b1;                 // m ← m + (g − m)(1 − β₁)
    v[i] = v[i] + (g[i] * g[i] - v[i]) * b2;          // v ← v + (g² − v)(1 − β₂)
    T denom_v = v[i];
    if (amsgrad) {
      if (v[i] > v_hat[i]) v_hat[i] = v[i];           // v̂ ← max(v̂, v)
      denom_v = v_hat[i];
    }
    w[i] = w[i] - lr_t * m[i] / (std::sqrt(denom_v) + eps);  // w ← w − lr_t·m/(√v + ε)
  }
}

template <class T>
void rmsprop_update(T* __restrict w, const T* __restrict g, T* __restrict velocity, T* __restrict mom, int64_t n,
                    T lr, T rho, T momentum, T epsilon) {
  const int threads = threads_for(n);
  const T one_minus_rho = T(1) - rho;
  if (momentum == T(0)) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T si = rho * velocity[i] + one_minus_rho * (g[i] * g[i]);
      velocity[i] = si;
      w[i] = w[i] - lr * g[i] / std::sqrt(si + epsilon);
    }
  } else {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T si = rho * velocity[i] + one_minus_rho * (g[i] * g[i]);
      velocity[i] = si;
      const T ui = momentum * mom[i] + lr * g[i] / std::sqrt(si + epsilon);
      mom[i] = ui;
      w[i] = w[i] - ui;
    }
  }
}

template <class T>
double sum_of_squares(const T* x, int64_t n) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return total;
}

template <class T>
void scale_in_place(T* x, int64_t n, T scale) {
#pragma omp parallel for simd num_threads(threads_for(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * scale;
}

template void sgd_update<float>(float*, const float*, float*, int64_t, float, float, bool);
template void adam_update<float>(float*, const float*, float*, float*, float*, int64_t, const AdamCoefficients&, bool);
template void adam_update_reference<float>(float*, const float*, float*, float*, float*, int64_t, const AdamCoefficients&,
                                            bool);
template void rmsprop_update<float>(float*, const float*, float*, float*, int64_t, float, float, float, float);
template double sum_of_squares<float>(const float*, int64_t);
template void scale_in_place<float>(float*, int64_t, float);
template void sgd_update<double>(double*, const double*, double*, int64_t, double, double, bool);
template void adam_update<double>(double*, const double*, double*, double*, double*, int64_t, const AdamCoefficients&, bool);
template void adam_update_reference<double>(double*, const double*, double*, double*, double*, int64_t, const AdamCoefficients&,
                                            bool);
template void rmsprop_update<double>(double*, const double*, double*, double*, int64_t, double, double, double, double);
template double sum_of_squares<double>(const double*, int64_t);
template void scale_in_place<double>(double*, int64_t, double);

}  // namespace normnet::kernels::cpu

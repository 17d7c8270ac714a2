// Elementwise unary kernels: each forward beside its backward, the derivative above the pair.
// Loops are `omp simd` (the library builds with -march=native) and go parallel past a grain.
#include "kernels/cpu/unary.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/cpu/matmul.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

// Elements below which a loop stays on one thread: a parallel region costs a few microseconds,
// which a memory-bound loop repays only past ~64k elements; transcendental ones (~0.5 ns per
// float32 element with simd_exp, 2–20 ns per libm call in float64) sooner.
constexpr int64_t kGrainCheap = int64_t{1} << 16;
constexpr int64_t kGrainTranscendental = int64_t{1} << 14;

// Runs body(i) for every i in [0, n): vectorized, and across threads when n >= grain. Bodies
// capture by value ([=]): GCC 12 reloaded pointers captured by reference on every iteration and
// left those loops scalar (perf annotate of relu's backward, docs/benchmarks.md).
template <class Body>
inline void for_each_index(int64_t n, int64_t grain, const Body& body) {
  if (n < grain) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for simd num_threads(get_num_threads()) schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}

}  // namespace

// y = −x  ⇒  dx = −dy
template <class T>
void neg_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { y[i] = -x[i]; });
}
template <class T>
void neg_backward(const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { dx[i] -= dy[i]; });
}

// y = eˣ  ⇒  dx = dy·y. Overflows to +inf past ln(max) as IEEE says; the gradient there is inf.
template <class T>
void exp_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainTranscendental, [=](int64_t i) { y[i] = simd_exp(x[i]); });
}
template <class T>
void exp_backward(const T* y, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { dx[i] += dy[i] * y[i]; });
}

// y = ln x  ⇒  dx = dy/x. At x = 0: y = −inf and dx = dy/0 (±inf; NaN when dy = 0), as IEEE and
// PyTorch; x < 0 gives NaN.
template <class T>
void log_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainTranscendental, [=](int64_t i) { y[i] = std::log(x[i]); });
}
template <class T>
void log_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { dx[i] += dy[i] / x[i]; });
}

// y = √x  ⇒  dx = dy/(2y). At x = 0: dx = dy/0 = ±inf (NaN when dy = 0), as IEEE and PyTorch;
// TensorFlow's sqrt_grad gives the same.
template <class T>
void sqrt_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { y[i] = std::sqrt(x[i]); });
}
template <class T>
void sqrt_backward(const T* y, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { dx[i] += dy[i] / (T(2) * y[i]); });
}

// y = x²  ⇒  dx = 2x·dy
template <class T>
void square_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { y[i] = x[i] * x[i]; });
}
template <class T>
void square_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { dx[i] += T(2) * x[i] * dy[i]; });
}

// y = |x|  ⇒  dx = sign(x)·dy; at x = 0 the subgradient 0 (PyTorch, TensorFlow).
template <class T>
void abs_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { y[i] = std::abs(x[i]); });
}
template <class T>
void abs_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) {
    dx[i] += x[i] > T(0) ? dy[i] : (x[i] < T(0) ? -dy[i] : T(0));
  });
}

// y = sign(x): piecewise constant, so the gradient is 0 and there is no backward kernel.
template <class T>
void sign_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) {
    y[i] = x[i] > T(0) ? T(1) : (x[i] < T(0) ? T(-1) : (x[i] == T(0) ? T(0) : x[i]));
  });
}

// y = xᵖ  ⇒  dx = dy·p·xᵖ⁻¹. p = 0 gives dx = 0 everywhere (PyTorch masks it too; the formula
// would give 0·x⁻¹ = NaN at x = 0). At x = 0 with p < 1 the gradient is ±inf as IEEE says.
template <class T>
void pow_forward(const T* x, double p, T* y, int64_t n) {
  if (p == 2.0) return square_forward(x, y, n);  // the common case, without a libm call
  const T pt = static_cast<T>(p);
  for_each_index(n, kGrainTranscendental, [=](int64_t i) { y[i] = std::pow(x[i], pt); });
}
template <class T>
void pow_backward(const T* x, double p, const T* dy, T* dx, int64_t n) {
  if (p == 0.0) return;
  if (p == 2.0) return square_backward(x, dy, dx, n);
  const T pt = static_cast<T>(p);
  const T pm1 = static_cast<T>(p - 1.0);
  for_each_index(n, kGrainTranscendental, [=](int64_t i) { dx[i] += dy[i] * pt * std::pow(x[i], pm1); });
}

// y = max(x, 0)  ⇒  dx = dy·[x > 0]; at x = 0 the gradient is 0 (PyTorch, TensorFlow). NaN is
// passed through (std::max would hide it), so TerminateOnNaN still sees it.
template <class T>
void relu_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { y[i] = x[i] > T(0) || x[i] != x[i] ? x[i] : T(0); });
}
template <class T>
void relu_backward(const T* y, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) {
    const T g = dy[i];  // loaded unconditionally, so the select vectorizes (a branch would not)
    dx[i] += y[i] > T(0) ? g : T(0);
  });
}
template <class T>
void relu_backward_write(const T* y, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) {
    const T g = dy[i];
    dx[i] = y[i] > T(0) ? g : T(0);
  });
}

// y = max(x, 0), x = conv + bias  ⇒  dz = dy·[y > 0], dbias = Σ_rows dz. The rows split into
// kReluBiasPieces fixed pieces whose column sums (double) wait on the caller's stack and are
// added in piece order: one barrier, and the same sums for any thread count. (A first version
// joined chunk sums through `omp ordered`; on this shared 2-core machine every hand-over waited
// for a preempted partner thread and the pass took 15 % of a training step.) Past
// kMaxStackChannels channels, the mask pass and bias_backward run one after the other.
namespace {
constexpr int64_t kMaxStackChannels = 256;
}  // namespace

template <class T>
void relu_bias_backward(const T* y, const T* dy, T* dz, T* dbias, int64_t rows, int64_t channels) {
  if (!dbias || channels > kMaxStackChannels) {
    relu_backward_write(y, dy, dz, rows * channels);
    if (dbias) bias_backward(dz, dbias, rows, channels);
    return;
  }
  double sums[kReluBiasPieces][kMaxStackChannels];  // 64 KiB
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (rows * channels >= kGrainCheap)
  for (int64_t k = 0; k < kReluBiasPieces; ++k) {
    double* acc = sums[k];
    for (int64_t c = 0; c < channels; ++c) acc[c] = 0.0;
    for (int64_t r = k * rows / kReluBiasPieces; r < (k + 1) * rows / kReluBiasPieces; ++r) {
      const T* yr = y + r * channels;
      const T* gr = dy + r * channels;
      T* zr = dz + r * channels;
      // Two loops over the row (the second reads it back from L1): GCC 12 leaves a select and
      // a float → double sum in one loop scalar ("control flow in loop").
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) {
        const T g = gr[c];
        zr[c] = yr[c] > T(0) ? g : T(0);
      }
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) acc[c] += static_cast<double>(zr[c]);
    }
  }
  for (int64_t c = 0; c < channels; ++c) {
    double total = 0.0;
    for (int64_t k = 0; k < kReluBiasPieces; ++k) total += sums[k][c];
    dbias[c] = static_cast<T>(total);
  }
}

template <class T>
void relu_bias_backward_reference(const T* y, const T* dy, T* dz, T* dbias, int64_t rows, int64_t channels) {
  for (int64_t i = 0; i < rows * channels; ++i) dz[i] = y[i] > T(0) ? dy[i] : T(0);
  if (!dbias) return;
  for (int64_t c = 0; c < channels; ++c) {
    double acc = 0.0;
    for (int64_t r = 0; r < rows; ++r) acc += static_cast<double>(dz[r * channels + c]);
    dbias[c] = static_cast<T>(acc);
  }
}

// y = 1/(1 + e⁻ˣ)  ⇒  dx = dy·y·(1 − y). Computed from e = e^−|x| ≤ 1, so neither branch
// overflows: x ≥ 0 gives 1/(1 + e), x < 0 gives e/(1 + e) (which keeps tiny values like
// sigmoid(−100) ≈ 3.7e−44 instead of rounding 1 − (1 − y) to 0).
template <class T>
void sigmoid_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainTranscendental, [=](int64_t i) {
    const T e = simd_exp(-std::abs(x[i]));
    y[i] = x[i] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  });
}
template <class T>
void sigmoid_backward(const T* y, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { dx[i] += dy[i] * y[i] * (T(1) - y[i]); });
}

// y = tanh x  ⇒  dx = dy·(1 − y²)
template <class T>
void tanh_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, kGrainTranscendental, [=](int64_t i) { y[i] = simd_tanh(x[i]); });
}
template <class T>
void tanh_backward(const T* y, const T* dy, T* dx, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { dx[i] += dy[i] * (T(1) - y[i] * y[i]); });
}

// y = min(max(x, lo), hi)  ⇒  dx = dy·[lo ≤ x ≤ hi]: the bounds themselves pass the gradient
// (TensorFlow's clip_by_value and PyTorch's clamp agree). NaN stays NaN.
template <class T>
void clip_forward(const T* x, double lo, double hi, T* y, int64_t n) {
  const T l = static_cast<T>(lo), h = static_cast<T>(hi);
  for_each_index(n, kGrainCheap, [=](int64_t i) { y[i] = x[i] < l ? l : (x[i] > h ? h : x[i]); });
}
template <class T>
void clip_backward(const T* x, double lo, double hi, const T* dy, T* dx, int64_t n) {
  const T l = static_cast<T>(lo), h = static_cast<T>(hi);
  for_each_index(n, kGrainCheap, [=](int64_t i) { dx[i] += x[i] >= l && x[i] <= h ? dy[i] : T(0); });
}

namespace {
template <class From, class To>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, int64_t> && !std::is_same_v<From, int64_t>) {
    constexpr From kTwo63 = From(9223372036854775808.0);  // 2⁶³, exact in both float types
    if (v != v) return 0;
    if (v >= kTwo63) return std::numeric_limits<int64_t>::max();
    if (v < -kTwo63) return std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(v);
  } else {
    return static_cast<To>(v);
  }
}
}  // namespace

template <class From, class To>
void cast_forward(const From* x, To* y, int64_t n) {
  for_each_index(n, kGrainCheap, [=](int64_t i) { y[i] = convert<From, To>(x[i]); });
}

// Explicit instantiations for float and double.
template void neg_forward<float>(const float*, float*, int64_t);
template void neg_backward<float>(const float*, float*, int64_t);
template void exp_forward<float>(const float*, float*, int64_t);
template void exp_backward<float>(const float*, const float*, float*, int64_t);
template void log_forward<float>(const float*, float*, int64_t);
template void log_backward<float>(const float*, const float*, float*, int64_t);
template void sqrt_forward<float>(const float*, float*, int64_t);
template void sqrt_backward<float>(const float*, const float*, float*, int64_t);
template void square_forward<float>(const float*, float*, int64_t);
template void square_backward<float>(const float*, const float*, float*, int64_t);
template void abs_forward<float>(const float*, float*, int64_t);
template void abs_backward<float>(const float*, const float*, float*, int64_t);
template void sign_forward<float>(const float*, float*, int64_t);
template void pow_forward<float>(const float*, double, float*, int64_t);
template void pow_backward<float>(const float*, double, const float*, float*, int64_t);
template void relu_forward<float>(const float*, float*, int64_t);
template void relu_backward<float>(const float*, const float*, float*, int64_t);
template void relu_backward_write<float>(const float*, const float*, float*, int64_t);
template void relu_bias_backward<float>(const float*, const float*, float*, float*, int64_t, int64_t);
template void relu_bias_backward_reference<float>(const float*, const float*, float*, float*, int64_t, int64_t);
template void sigmoid_forward<float>(const float*, float*, int64_t);
template void sigmoid_backward<float>(const float*, const float*, float*, int64_t);
template void tanh_forward<float>(const float*, float*, int64_t);
template void tanh_backward<float>(const float*, const float*, float*, int64_t);
template void clip_forward<float>(const float*, double, double, float*, int64_t);
template void clip_backward<float>(const float*, double, double, const float*, float*, int64_t);

template void neg_forward<double>(const double*, double*, int64_t);
template void neg_backward<double>(const double*, double*, int64_t);
template void exp_forward<double>(const double*, double*, int64_t);
template void exp_backward<double>(const double*, const double*, double*, int64_t);
template void log_forward<double>(const double*, double*, int64_t);
template void log_backward<double>(const double*, const double*, double*, int64_t);
template void sqrt_forward<double>(const double*, double*, int64_t);
template void sqrt_backward<double>(const double*, const double*, double*, int64_t);
template void square_forward<double>(const double*, double*, int64_t);
template void square_backward<double>(const double*, const double*, double*, int64_t);
template void abs_forward<double>(const double*, double*, int64_t);
template void abs_backward<double>(const double*, const double*, double*, int64_t);
template void sign_forward<double>(const double*, double*, int64_t);
template void pow_forward<double>(const double*, double, double*, int64_t);
template void pow_backward<double>(const double*, double, const double*, double*, int64_t);
template void relu_forward<double>(const double*, double*, int64_t);
template void relu_backward<double>(const double*, const double*, double*, int64_t);
template void relu_backward_write<double>(const double*, const double*, double*, int64_t);
template void relu_bias_backward<double>(const double*, const double*, double*, double*, int64_t, int64_t);
template void relu_bias_backward_reference<double>(const double*, const double*, double*, double*, int64_t, int64_t);
template void sigmoid_forward<double>(const double*, double*, int64_t);
template void sigmoid_backward<double>(const double*, const double*, double*, int64_t);
template void tanh_forward<double>(const double*, double*, int64_t);
template void tanh_backward<double>(const double*, const double*, double*, int64_t);
template void clip_forward<double>(const double*, double, double, double*, int64_t);
template void clip_backward<double>(const double*, double, double, const double*, double*, int64_t);

template void cast_forward<float, double>(const float*, double*, int64_t);
template void cast_forward<float, int64_t>(const float*, int64_t*, int64_t);
template void cast_forward<double, float>(const double*, float*, int64_t);
template void cast_forward<double, int64_t>(const double*, int64_t*, int64_t);
template void cast_forward<int64_t, float>(const int64_t*, float*, int64_t);
template void cast_forward<int64_t, double>(const int64_t*, double*, int64_t);

}  // namespace normnet::kernels::cpu

// Elementwise unary kernels (forward and backward side by side) and dtype casts. Raw loops over contiguous buffers of n elements: no allocation, no throwing, OpenMP
// above a size threshold. Every *_backward ADDS its result into dx.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace normnet::kernels::cpu {

// ---- eˣ and tanh x in a form the compiler vectorizes --------------------------------------------
// libm's expf/tanhf are one call per element (2.3 / 11 ns here); these inline versions run
// 8–16 lanes at a time (~0.5 ns per element). float32 only: the double overloads are std::exp and
// std::tanh (float64 is for gradient checks, where exactness matters more than speed).

// eˣ: Cody–Waite reduction x = n·ln2 + r (ln2 split as 0.693359375 − 2.12194440e−4, the first
// part exact in 9 bits, so n·ln2_hi is exact), Cephes' degree-6 minimax polynomial for eʳ on
// |r| ≤ ln2/2, then 2ⁿ applied as two halves so that subnormal results (x < −87.3) and the
// overflow to +inf (x > 88.72) round correctly. Against double exp over every 61st float in
// [−104.5, 89.5]: at most 1.01 ulp, mean 0.06 ulp (glibc expf: < 0.51 ulp). NaN → NaN,
// +inf → +inf, −inf → 0.
inline float simd_exp(float x) {
  const float xc = x != x ? 0.0f : (x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x));
  constexpr float kRound = 12582912.0f;  // 1.5·2²³: adding and subtracting it rounds to an integer
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * (r * r) + r) + 1.0f;
  const auto ni = static_cast<int32_t>(n);  // in [−150, 129]
  const int32_t half = ni / 2;
  const float scale1 = std::bit_cast<float>((half + 127) << 23);
  const float scale2 = std::bit_cast<float>((ni - half + 127) << 23);
  const float y = (p * scale1) * scale2;
  return x != x ? x : y;
}
inline double simd_exp(double x) { return std::exp(x); }

// tanh x: Cephes' odd polynomial x + x³·P(x²) for |x| < 0.625, else (1 − e)/(1 + e) with
// e = e^−2|x| ∈ (0, 1] (no cancellation worse than 2× there), sign restored by copysign, so
// tanh(−0) = −0. Against double tanh over every 13th float with |x| ≤ 20: at most 1.5 ulp.
inline float simd_tanh(float x) {
  const float a = std::abs(x);
  const float s = a * a;
  const float small =
      ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s + 1.33314422036e-1f) * s -
       3.33332819422e-1f) * s * a + a;
  const float e = simd_exp(-2.0f * a);
  const float large = (1.0f - e) / (1.0f + e);
  return std::copysign(a < 0.625f ? small : large, x);
}
inline double simd_tanh(double x) { return std::tanh(x); }

// T is float or double throughout (explicitly instantiated in unary.cpp).

// y = −x                      ⇒ dx += −dy
template <class T> void neg_forward(const T* x, T* y, int64_t n);
template <class T> void neg_backward(const T* dy, T* dx, int64_t n);

// y = eˣ                      ⇒ dx += dy·y
template <class T> void exp_forward(const T* x, T* y, int64_t n);
template <class T> void exp_backward(const T* y, const T* dy, T* dx, int64_t n);

// y = ln x                    ⇒ dx += dy/x   (x = 0: ±inf or NaN as IEEE divides)
template <class T> void log_forward(const T* x, T* y, int64_t n);
template <class T> void log_backward(const T* x, const T* dy, T* dx, int64_t n);

// y = √x                      ⇒ dx += dy/(2y) (x = 0: dy/0, i.e. ±inf, NaN when dy = 0)
template <class T> void sqrt_forward(const T* x, T* y, int64_t n);
template <class T> void sqrt_backward(const T* y, const T* dy, T* dx, int64_t n);

// y = x²                      ⇒ dx += 2x·dy
template <class T> void square_forward(const T* x, T* y, int64_t n);
template <class T> void square_backward(const T* x, const T* dy, T* dx, int64_t n);

// y = |x|                     ⇒ dx += sign(x)·dy (x = 0: 0)
template <class T> void abs_forward(const T* x, T* y, int64_t n);
template <class T> void abs_backward(const T* x, const T* dy, T* dx, int64_t n);

// y = sign(x) ∈ {−1, 0, 1}, NaN stays NaN; gradient 0 everywhere (nothing to add).
template <class T> void sign_forward(const T* x, T* y, int64_t n);

// y = xᵖ                      ⇒ dx += dy·p·xᵖ⁻¹ (p = 0: 0 everywhere, as PyTorch)
template <class T> void pow_forward(const T* x, double p, T* y, int64_t n);
template <class T> void pow_backward(const T* x, double p, const T* dy, T* dx, int64_t n);

// y = max(x, 0), NaN stays NaN ⇒ dx += dy·[y > 0] (x = 0: 0)
template <class T> void relu_forward(const T* x, T* y, int64_t n);
template <class T> void relu_backward(const T* y, const T* dy, T* dx, int64_t n);
// The same written, not added: dx = dy·[y > 0]. For a fresh gradient buffer, it saves the zero
// fill and the read of dx (ops::relu hands the result to the sink).
template <class T> void relu_backward_write(const T* y, const T* dy, T* dx, int64_t n);
// relu's backward fused with the bias gradient of the op that produced y (ops::conv2d_relu),
// y viewed as [rows, channels]: dz = dy·[y > 0] written (not added) and dbias[c] = Σ_rows dz[·, c]
// overwritten (dbias null: dz only). The column sums run in double over kReluBiasPieces
// fixed pieces of rows, the piece sums added in piece order: dbias does not depend on the thread
// count. One pass over y and dy instead of relu's pass plus a second read for the bias. dz may be
// dy itself (each element is read before it is written).
inline constexpr int64_t kReluBiasPieces = 32;
template <class T>
void relu_bias_backward(const T* y, const T* dy, T* dz, T* dbias, int64_t rows, int64_t channels);
// Naive twin: the mask, then each column summed in row order in double.
template <class T>
void relu_bias_backward_reference(const T* y, const T* dy, T* dz, T* dbias, int64_t rows, int64_t channels);

// y = 1/(1 + e⁻ˣ)             ⇒ dx += dy·y·(1 − y)
template <class T> void sigmoid_forward(const T* x, T* y, int64_t n);
template <class T> void sigmoid_backward(const T* y, const T* dy, T* dx, int64_t n);

// y = tanh x                  ⇒ dx += dy·(1 − y²)
template <class T> void tanh_forward(const T* x, T* y, int64_t n);
template <class T> void tanh_backward(const T* y, const T* dy, T* dx, int64_t n);

// y = min(max(x, lo), hi), NaN stays NaN ⇒ dx += dy·[lo ≤ x ≤ hi]
template <class T> void clip_forward(const T* x, double lo, double hi, T* y, int64_t n);
template <class T> void clip_backward(const T* x, double lo, double hi, const T* dy, T* dx, int64_t n);

// y = x converted. Floating → int64 truncates toward zero and saturates: NaN → 0, values beyond
// the int64 range → INT64_MIN / INT64_MAX (a plain C++ cast would be undefined behaviour).
// Between float32 and float64: y = round(x) ⇒ dx += dy converted back.
template <class From, class To> void cast_forward(const From* x, To* y, int64_t n);

}  // namespace normnet::kernels::cpu

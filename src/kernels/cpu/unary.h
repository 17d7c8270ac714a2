// Elementwise unary kernels (forward and backward side by side), dtype casts and the dropout
// mask. Raw loops over contiguous buffers of n elements: no allocation, no throwing, OpenMP
// above a size threshold. Every *_backward ADDS its result into dx.
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

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

// Inverted dropout: mask = 0 with probability `rate`, else 1/(1 − rate); y = x·mask.
// Blocks of kDropoutBlock elements draw from their own stream (seeded from `seed` and the block
// index), so the mask depends on the seed only, never on the thread count.
//   y = x·mask                ⇒ dx += dy·mask
inline constexpr int64_t kDropoutBlock = 4096;
template <class T> void dropout_forward(const T* x, double rate, uint64_t seed, T* mask, T* y, int64_t n);
template <class T> void dropout_backward(const T* mask, const T* dy, T* dx, int64_t n);

}  // namespace normnet::kernels::cpu

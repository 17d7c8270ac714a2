// Softmax, log-softmax and the fused sparse softmax cross-entropy: raw loops, forward beside
// backward, with naive `_reference` twins for tests. No allocation, no throwing.
//
// A tensor is viewed as [outer, K, inner] around the softmax axis (K = the axis' extent, inner =
// product of the extents after it): element (o, k, j) lives at (o·K + k)·inner + j. Every row is
// shifted by its maximum first, so no exp overflows (float32 uses simd_exp from unary.h, within
// 1.01 ulp of eˣ); sums accumulate in double for both float types. A row holding NaN or +inf
// gives NaN; a row of all −inf gives NaN (as PyTorch, Keras).
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// T is float or double.

// y = eˣ⁻ᵐ / Σₖ eˣ⁻ᵐ                 ⇒ dx += y ⊙ (dy − ⟨dy, y⟩)       (along the axis)
template <class T> void softmax_forward(const T* x, T* y, int64_t outer, int64_t K, int64_t inner);
template <class T> void softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t K, int64_t inner);

// y = x − m − ln Σₖ eˣ⁻ᵐ             ⇒ dx += dy − eʸ·Σₖ dy            (along the axis)
template <class T> void log_softmax_forward(const T* x, T* y, int64_t outer, int64_t K, int64_t inner);
template <class T> void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t K, int64_t inner);

// Naive twins: one element at a time, everything in double, single-threaded.
template <class T> void softmax_reference(const T* x, T* y, int64_t outer, int64_t K, int64_t inner);
template <class T> void log_softmax_reference(const T* x, T* y, int64_t outer, int64_t K, int64_t inner);

// Sparse softmax cross-entropy over logits [N, C] and labels [N] (each in [0, C): the caller
// checks). Writes lse[n] = ln Σ_c e^{logits[n, c]} and row_loss[n] = lse[n] − logits[n, label[n]]
// (both double, N each), and returns Σₙ row_loss[n] summed in row order (deterministic).
template <class T>
double sparse_softmax_cross_entropy_forward(const T* logits, const int64_t* labels, int64_t N, int64_t C,
                                            double* lse, double* row_loss);
// loss = scale·Σₙ row_loss[n]        ⇒ dlogits[n, c] += scale·(e^{logits[n,c] − lse[n]} − [c = label[n]])
// (the op passes scale = dloss/N for the batch mean).
template <class T>
void sparse_softmax_cross_entropy_backward(const T* logits, const int64_t* labels, const double* lse, double scale,
                                           int64_t N, int64_t C, T* dlogits);

}  // namespace normnet::kernels::cpu

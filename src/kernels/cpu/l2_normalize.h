// Raw L2-normalization loops (no autograd): a fused kernel for vectors that are a contiguous block
// of axes, a strided one for any other axis set, and a naive reference twin of both.
//
// Letters: the tensor is viewed as (O, R, I) = (outer, reduced, inner); vector (o, i) has the R
// elements x[(o·R + r)·I + i]. The strided form lists each vector's base offset and the R element
// offsets instead. `denom` (one double per vector, may be null when no backward will follow)
// receives the denominator d the forward divided by: y = v / |d|, negative d marking a clamped
// vector (TF: Σv² < ε, PyTorch: ‖v‖ < ε), d = 0 an exact-mode zero vector, d = NaN a vector that
// held NaN or Inf. The backward reads x, dy and that d and ADDS into dx, or, with `overwrite`,
// writes every element of dx (whose old contents, NaN included, are then ignored): a fresh
// gradient buffer needs no zero fill.
#pragma once

#include <cstdint>

#include "normnet/ops/l2_normalize.h"

namespace normnet::kernels::cpu {

// x, y [O, R, I]; denom [O, I] or null.
template <class T>
void l2_normalize_forward(const T* x, T* y, double* denom, int64_t outer, int64_t reduced, int64_t inner,
                          EpsilonMode mode, double epsilon);
// x, dy, dx [O, R, I]; denom [O, I] from the forward. dx += ∂L/∂x (dx = ∂L/∂x if overwrite).
template <class T>
void l2_normalize_backward(const T* x, const T* dy, const double* denom, T* dx, int64_t outer,
                           int64_t reduced, int64_t inner, EpsilonMode mode, bool overwrite = false);

// Vector k has elements x[bases[k] + offsets[r]], r < R. denom [count] or null.
template <class T>
void l2_normalize_forward_strided(const T* x, T* y, double* denom, const int64_t* bases, int64_t count,
                                  const int64_t* offsets, int64_t reduced, EpsilonMode mode, double epsilon);
template <class T>
void l2_normalize_backward_strided(const T* x, const T* dy, const double* denom, T* dx, const int64_t* bases,
                                   int64_t count, const int64_t* offsets, int64_t reduced, EpsilonMode mode,
                                   bool overwrite = false);

// Naive twins in the strided form (the most general): one vector at a time, sequential sums,
// the exact mode in long double (whose range holds the square of every float64), compatibility
// modes accumulating in T as the frameworks do. The backward recomputes everything from x (it
// shares nothing with the forward). Slow; for tests only.
template <class T>
void l2_normalize_forward_reference(const T* x, T* y, const int64_t* bases, int64_t count,
                                    const int64_t* offsets, int64_t reduced, EpsilonMode mode,
                                    double epsilon);
template <class T>
void l2_normalize_backward_reference(const T* x, const T* dy, T* dx, const int64_t* bases, int64_t count,
                                     const int64_t* offsets, int64_t reduced, EpsilonMode mode,
                                     double epsilon);

}  // namespace normnet::kernels::cpu

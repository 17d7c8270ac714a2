// Reductions over one contiguous block of axes: x is viewed as [outer, R, inner] and reduced
// over R into out [outer, inner].
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// out[o, i] = Σ_r x[o, r, i]. float sums along contiguous memory (inner == 1) accumulate in
// double; strided ones in the element type.
template <class T>
void sum_forward(const T* x, T* out, int64_t outer, int64_t reduce, int64_t inner);

// out[o, i] = max_r x[o, r, i] and argmax[o, i] = the first r attaining it (NaN wins: a NaN
// anywhere makes the result NaN, at its first position).
template <class T>
void max_forward(const T* x, T* out, int64_t* argmax, int64_t outer, int64_t reduce, int64_t inner);

// y = max_r x[o, r, i]  ⇒  dx[o, argmax[o, i], i] += dy[o, i]; every other dx gets nothing.
template <class T>
void max_backward(const T* dy, const int64_t* argmax, T* dx, int64_t outer, int64_t reduce, int64_t inner);

template <class T>
void sum_reference(const T* x, T* out, int64_t outer, int64_t reduce, int64_t inner);

}  // namespace normnet::kernels::cpu

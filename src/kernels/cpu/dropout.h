// Inverted dropout with a counter-based mask: the draw of element i is a pure function of
// (seed, i), so forward is one vectorized pass, backward recomputes the mask instead of reading a
// stored one, and neither depends on the thread count.
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// Element i is dropped (mask 0) with probability `rate`, else kept with mask 1/(1 − rate):
//   u_i = splitmix64(key(seed) + (i + 1)·γ) >> 11   (53 random bits; γ = ⌊2⁶⁴/φ⌋)
//   dropped ⇔ u_i < ⌈rate·2⁵³⌉
// key(seed) is seed passed once through splitmix64's finalizer, so seeds that differ by a
// multiple of γ (the Dropout layer's per-call seeds do) give unrelated streams, not shifted ones.
// That is splitmix64 used as a counter-based generator, as in Steele, Lea & Flood,
// "Fast splittable pseudorandom number generators" (OOPSLA 2014).
//
//   y = x·mask  ⇒  dx = dy·mask        (x, y, dy, dx: n elements; T float or double)
template <class T> void dropout_forward(const T* x, double rate, uint64_t seed, T* y, int64_t n);
// Adds dy·mask into dx.
template <class T> void dropout_backward(double rate, uint64_t seed, const T* dy, T* dx, int64_t n);
// Writes dy·mask into dx (for a fresh gradient buffer: no zero fill, no read of dx).
template <class T> void dropout_backward_write(double rate, uint64_t seed, const T* dy, T* dx, int64_t n);
// The mask itself: 0 or 1/(1 − rate).
template <class T> void dropout_mask(double rate, uint64_t seed, T* mask, int64_t n);

// Naive twin of dropout_forward: one element at a time, the same draws.
template <class T> void dropout_forward_reference(const T* x, double rate, uint64_t seed, T* y, int64_t n);

}  // namespace normnet::kernels::cpu

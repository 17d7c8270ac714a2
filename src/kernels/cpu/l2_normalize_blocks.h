// The inner > 1 layout of the fused L2-normalization kernels: vectors (o, i) with elements
// x[(o·R + r)·I + i], normalized a block of inner positions at a time, vectorized across i.
#pragma once

#include <cstdint>

#include "normnet/ops/l2_normalize.h"

namespace normnet::kernels::cpu::l2_detail {

// As l2_normalize_forward / l2_normalize_backward (kernels/cpu/l2_normalize.h) for inner > 1.
template <class T>
void forward_blocks(const T* x, T* y, double* denom, int64_t outer, int64_t n, int64_t inner,
                    EpsilonMode mode, double epsilon);
template <class T>
void backward_blocks(const T* x, const T* dy, const double* denom, T* dx, int64_t outer, int64_t n,
                     int64_t inner, EpsilonMode mode, bool overwrite);

}  // namespace normnet::kernels::cpu::l2_detail

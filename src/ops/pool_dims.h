// The pooling window arithmetic shared by max_pool2d / avg_pool2d and the fused
// conv2d_relu_max_pool2d.
#pragma once

#include <array>

#include "kernels/cpu/pool2d.h"
#include "normnet/ops/conv.h"
#include "normnet/shape.h"

namespace normnet::ops::detail {

// Checks rank, pool size, strides (0 = the pool size) and that a valid window fits, throwing
// ShapeError / ValueError that name `op`, the pooled tensor (`input`) and its shape; returns the
// dims (output extents -1 where the input's are unknown).
[[nodiscard]] kernels::cpu::Pool2dDims pool_dims(const char* op, const Shape& shape, std::array<int, 2> pool_size,
                                                 std::array<int, 2> strides, Padding padding,
                                                 const char* input = "x");

}  // namespace normnet::ops::detail

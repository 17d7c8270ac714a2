// 2-d convolutions of float32 NHWC activations through oneDNN: its direct kernels for every pass,
// and its F(4×4, 3×3) Winograd kernels where it has them. Every function may throw dnnl::error
// (no kernel, out of memory); conv2d.cpp routes here and falls back on the direct or reference
// kernels.
#pragma once

#include "kernels/cpu/conv2d.h"

namespace normnet::kernels::cpu::conv2d_onednn {

// y = conv(x, kernel) + bias (bias may be null).
void forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d);
// dx = the transposed convolution of dy.
void backward_data(const float* dy, const float* kernel, float* dx, const Conv2dDims& d);
// dkernel = Σ x ⊗ dy (the bias gradient is the caller's: see conv2d_onednn.cpp).
void backward_weights(const float* x, const float* dy, float* dkernel, const Conv2dDims& d);

// Shapes for which Winograd does less work than the direct kernels: 3×3, stride 1, input and
// output channels multiples of 16.
[[nodiscard]] bool winograd_shape(const Conv2dDims& d);

// y = conv(x, kernel) + bias by Winograd, y NHWC or (y_blocked16) nChw16c, x reordered into
// x_blocked16 when given (else a scratch buffer); false (nothing written) where oneDNN has no
// kernel for this shape.
bool winograd_forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d,
                      bool y_blocked16, float* x_blocked16);

// dx and dkernel (either may be null) by Winograd from x and dy, both NHWC or (blocked16) both
// nChw16c. False (nothing written) where oneDNN has no kernel for this shape.
bool winograd_backward(const float* x, const float* dy, const float* kernel, float* dx, float* dkernel,
                       const Conv2dDims& d, bool blocked16);

}  // namespace normnet::kernels::cpu::conv2d_onednn

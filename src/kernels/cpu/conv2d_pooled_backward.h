// Backward of a convolution whose output was max-pooled over tiling windows, from the pooled
// gradient and the pool's recorded argmax (Conv2D(relu) → MaxPooling2D in training:
// ops::conv2d_relu_max_pool2d). The convolution's gradient dz is the pooled gradient dp at each
// window's argmax and 0 elsewhere, so with windows of PH·PW elements only one term in PH·PW of the
// dense backward passes is not a product with 0. These kernels compute only those terms:
//
//   (p, q) = the convolution output pixel that window (n, i, j) of channel o chose (argmax)
//   dx[n, p·sh + a, q·sw + b, c] += dp[n, i, j, o] · k[a, b, c, o]       for every tap (a, b), c
//   dk[a, b, c, o]               += dp[n, i, j, o] · x[n, p·sh + a, q·sw + b, c]
//
// a quarter of the arithmetic of oneDNN's dense passes for 2×2 windows, and no dz tensor. The
// dense chain (max_pool2d_backward_write_argmax into dz, then conv2d_backward) is the twin: the same
// terms, summed in another order (tests bound the difference by K·u·Σ|terms|).
//
// Terms whose dp is 0 (±0) are not summed: adding ±0 to an accumulator that starts at +0 never
// changes it, so finite results are the same bits; only a 0 · Inf or 0 · NaN that the dense chain
// would have turned into NaN (an infinite or NaN weight or input under a zero gradient) is left
// out, as the terms of the windows' other pixels always were. In training most of dp is 0 (ReLU
// after the pool and Dropout zero it), and the kernels' time shrinks with it.
//
// Every sum runs in a fixed order that depends only on the shapes and the argmax: dk[·, o] over
// images, window rows, window columns; dx over window rows, window columns, window pixels, and at
// each pixel over the channels that chose it (summed first, then added into dx). Threads split dk
// by channel o and dx by image, so results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool2d.h"

namespace normnet::kernels::cpu {

// Whether this build has the kernels (x86-64: AVX-512, AVX2 with FMA, or SSE2 vectors, whichever
// the compiler targets) and they take these shapes: an unpadded convolution (any strides) whose
// kernel rows are whole vectors (KW·C a multiple of 16, 8 or 4 floats); `pd` a max pool over the
// convolution's output [N, OH, OW, O] whose windows tile it (pool_windows_tile), with a recorded
// argmax (max_pool2d_argmax_fits).
[[nodiscard]] bool conv2d_pooled_backward_supported(const Conv2dDims& d, const Pool2dDims& pd);

// dx (unless null) and dkernel (unless null) of the convolution `d` from the pooled gradient dp
// [N, OH', OW', O] and the argmax bytes of max_pool2d_forward_argmax (pool2d.h). dx is overwritten
// when `overwrite_dx`, else the gradient is added into it; dkernel ([KH, KW, C, O]) is overwritten.
// Requires conv2d_pooled_backward_supported(d, pd).
void conv2d_pooled_backward(const float* x, const float* kernel, const uint8_t* argmax, const float* dp,
                            float* dx, bool overwrite_dx, float* dkernel, const Conv2dDims& d,
                            const Pool2dDims& pd);

}  // namespace normnet::kernels::cpu

// Direct AVX-512 / AVX2 convolution forward for stride 1 and no padding ("valid"), NHWC activations,
// Keras's kernel layout [KH, KW, C, O]: register-blocked tiles that read x and the kernel where
// they lie (no im2col buffer, no weight reorder), with the bias and an optional ReLU applied
// before the store. conv2d.cpp routes small batches here (where oneDNN's fixed cost per call,
// the kernel's reorder among it, outweighs its faster large-batch kernels), and in builds without
// AVX-512 any batch (conv2d_forward_runs_direct).
//
// Every output element is one sum in a fixed order that depends only on the shapes (tiles and
// threads only decide who computes it), so results do not depend on the thread count.
#pragma once

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool2d.h"

namespace normnet::kernels::cpu {

// Whether this build has the direct kernel (compiled for AVX-512, or AVX2 with FMA) and `d` is a stride-1,
// unpadded convolution with a window of at most 64 taps and O a multiple of 16.
[[nodiscard]] bool conv2d_direct_forward_supported(const Conv2dDims& d);

// y = conv(x, kernel) + bias (bias may be null), then max(y, 0) with NaN kept if `relu`.
// Requires conv2d_direct_forward_supported(d).
void conv2d_direct_forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d,
                           bool relu);

// y = relu(max_pool(conv(x, kernel) + bias)) in one pass (Conv2D(relu) → MaxPooling2D): each pooled row's
// convolution rows are computed into an L1 buffer and pooled there, so the convolution's output never reaches
// memory. Applies when the direct kernel does and the pool's windows tile the convolution's output without
// padding (stride = window, `pd` describing a pool over y's shape), with at most 8192 floats of convolution
// rows per pooled row; otherwise it returns false and writes nothing. Bits: conv2d_direct_forward (relu =
// false), then max_pool2d_relu_forward (tests). With `argmax` (training) it also notes each window's maximum
// as max_pool2d_forward_argmax does (the same bytes).
[[nodiscard]] bool conv2d_direct_forward_max_pool_relu_supported(const Conv2dDims& d, const Pool2dDims& pd);
[[nodiscard]] bool conv2d_direct_forward_max_pool_relu(const float* x, const float* kernel, const float* bias,
                                                       float* y, const Conv2dDims& d, const Pool2dDims& pd,
                                                       uint8_t* argmax = nullptr);

}  // namespace normnet::kernels::cpu

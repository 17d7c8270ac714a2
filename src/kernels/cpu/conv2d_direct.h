// Direct AVX-512 convolution forward for stride 1 and no padding ("valid"), NHWC activations,
// Keras's kernel layout [KH, KW, C, O]: register-blocked tiles that read x and the kernel where
// they lie (no im2col buffer, no weight reorder), with the bias and an optional ReLU applied
// before the store. conv2d.cpp routes small batches here (where oneDNN's fixed cost per call,
// the kernel's reorder among it, outweighs its faster large-batch kernels) and the rest to oneDNN.
//
// Every output element is one sum in a fixed order that depends only on the shapes (tiles and
// threads only decide who computes it), so results do not depend on the thread count.
#pragma once

#include "kernels/cpu/conv2d.h"

namespace normnet::kernels::cpu {

// Whether this build has the direct kernel (compiled with AVX-512) and `d` is a stride-1,
// unpadded convolution with a window of at most 64 taps and O a multiple of 16.
[[nodiscard]] bool conv2d_direct_forward_supported(const Conv2dDims& d);

// y = conv(x, kernel) + bias (bias may be null), then max(y, 0) with NaN kept if `relu`.
// Requires conv2d_direct_forward_supported(d).
void conv2d_direct_forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d,
                           bool relu);

}  // namespace normnet::kernels::cpu

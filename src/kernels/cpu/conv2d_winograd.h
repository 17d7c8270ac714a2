// normnet's own Winograd convolution forward, F(4×4, 3×3), for AVX-512 and AVX2 + FMA builds: the
// opt-in algorithm (set_conv2d_winograd) where oneDNN's Winograd kernels do not run, i.e. a
// forward pass small enough for the direct kernel, and in builds without AVX-512 (oneDNN has
// Winograd kernels for AVX-512 only) every forward pass. 4× fewer multiplications than the direct
// kernel in the products; the error is not covered by the direct kernels' K·u·Σ|terms| bound
// (measured in tests/kernels/test_conv2d_winograd_forward.cpp), and an Inf anywhere in a 6×6 input
// tile or a 3×3 filter makes NaN (Inf − Inf in the transforms) in outputs where the direct kernel
// gives ±Inf. NaN inputs spread to their whole 4×4 output tile.
// No backward here: the gradients are the convolution's own (dx = the transposed convolution of dy
// with the kernel, dkernel = Σ x ⊗ dy), computed by the direct / oneDNN kernels of conv2d.h.
//
// Shape letters as in conv2d.h: x [N, H, W, C], kernel [3, 3, C, O], y [N, OH, OW, O].
// Each output tile (4×4 pixels, one image) is y = A^T [(G g G^T) ⊙ (B^T d B)] A + bias, where d is
// the 6×6 input patch at rows 4·ty − pad_top + i, columns 4·tx − pad_left + j (zero outside x), g
// a 3×3 filter and ⊙ the 36 products summed over the input channels c in order. The operations per
// output element depend only on the shapes, so results do not depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool2d.h"

namespace normnet::kernels::cpu {

// Whether this build has the kernel (AVX-512, or AVX2 with FMA) and `d` is a 3×3 stride-1
// convolution (any padding) with C and O multiples of 16, the shapes oneDNN's Winograd takes.
[[nodiscard]] bool conv2d_winograd_forward_supported(const Conv2dDims& d);

// y = conv(x, kernel) + bias (bias may be null), then max(y, 0) with NaN kept if `relu`.
// Requires conv2d_winograd_forward_supported(d).
void conv2d_winograd_forward(const float* x, const float* kernel, const float* bias, float* y,
                             const Conv2dDims& d, bool relu);

// y = relu(max_pool(conv(x, kernel) + bias)) with each tile pooled in registers: the convolution's
// output is never written. Applies when the kernel takes `d` and the pool's windows tile the
// convolution's output without padding (stride = window) with window sides dividing 4 (so that no
// window straddles two tiles); otherwise it returns false and writes nothing. Bits:
// conv2d_winograd_forward (relu = false), then max_pool2d_relu_forward; with `argmax` (training)
// it notes each window's maximum as max_pool2d_forward_argmax does (tests).
[[nodiscard]] bool conv2d_winograd_forward_max_pool_relu_supported(const Conv2dDims& d, const Pool2dDims& pd);
[[nodiscard]] bool conv2d_winograd_forward_max_pool_relu(const float* x, const float* kernel,
                                                         const float* bias, float* y, const Conv2dDims& d,
                                                         const Pool2dDims& pd, uint8_t* argmax = nullptr);

// Bytes of transformed filters (and the kernel copies they are checked against) that the calling
// thread keeps for later calls: at most 16 MiB, 4 kernels.
[[nodiscard]] std::size_t conv2d_winograd_cached_filter_bytes();

}  // namespace normnet::kernels::cpu

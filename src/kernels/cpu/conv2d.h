// 2-d convolution over NHWC images with Keras's kernel layout [KH, KW, Cin, Cout]. float32 runs
// cached oneDNN primitives (forward, backward data, backward weights + bias), except a forward
// pass over a few images with stride 1 and no padding, which runs our direct AVX-512 kernel
// (conv2d_direct.h); float64 runs naive loops, which are also the float32 twin in tests.
#pragma once

#include <cstdint>

#include "kernels/cpu/pool2d.h"

namespace normnet::kernels::cpu {

// Shape letters: N batch, H/W input height/width, C input channels, O output channels (filters),
// KH/KW kernel height/width, OH/OW output height/width.
//   x [N, H, W, C], kernel [KH, KW, C, O], bias [O], y [N, OH, OW, O]
// Output pixel (p, q) reads input rows p·stride_h − pad_top + i, i < KH (likewise columns); rows
// outside the image read as 0. pad_bottom/pad_right only complete oneDNN's description:
// OH = (H + pad_top + pad_bottom − KH) / stride_h + 1.
struct Conv2dDims {
  int64_t n = 0, h = 0, w = 0, c = 0;
  int64_t kh = 0, kw = 0, o = 0;
  int64_t oh = 0, ow = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// Output extent and padding of one spatial axis. `same`: out = ceil(in/stride), total padding
// max((out − 1)·stride + window − in, 0) with the odd one at the end (TensorFlow's rule);
// valid: out = (in − window)/stride + 1 (callers check in >= window), no padding.
struct WindowAxis {
  int64_t out = 0, pad_before = 0, pad_after = 0;
};
[[nodiscard]] WindowAxis window_axis(int64_t in, int64_t window, int64_t stride, bool same);

// y = conv(x, kernel) + bias (bias may be null), then relu(y) = max(y, 0) with NaN kept if `relu`.
// Overwrites y. float32 runs the direct kernel (conv2d_direct.h) where conv2d_forward_runs_direct
// says so (normnet's Winograd forward instead when chosen and it takes the shape), else oneDNN (or
// its Winograd kernels when chosen).
void conv2d_forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d,
                    bool relu = false);
void conv2d_forward(const double* x, const double* kernel, const double* bias, double* y, const Conv2dDims& d,
                    bool relu = false);
// Whether float32 conv2d_forward runs the direct kernel: wherever it takes the shape (AVX-512 or
// AVX2 builds; at every batch measured as fast as oneDNN's kernels with the ReLU pass after them,
// or faster: conv2d.cpp).
[[nodiscard]] bool conv2d_forward_runs_direct(const Conv2dDims& d);
// y = relu(max_pool(conv2d_forward(x, kernel, bias))) in one pass where conv2d_forward would run
// the direct kernel and the pool's windows tile its output without padding
// (conv2d_direct_forward_max_pool_relu, with the window argmax noted when `argmax` is given; under
// Winograd, for the shapes normnet's Winograd forward takes, conv2d_winograd_forward_max_pool_relu,
// which pools each 4×4 tile in registers); false, nothing written, elsewhere.
[[nodiscard]] bool conv2d_forward_max_pool_relu(const float* x, const float* kernel, const float* bias,
                                                float* y, const Conv2dDims& d, const Pool2dDims& pd,
                                                uint8_t* argmax = nullptr);
// dx = the transposed convolution of dy with kernel. Overwrites dx.
void conv2d_backward_data(const float* dy, const float* kernel, float* dx, const Conv2dDims& d);
void conv2d_backward_data(const double* dy, const double* kernel, double* dx, const Conv2dDims& d);
// dkernel = Σ x ⊗ dy over batch and output pixels; dbias = Σ dy (dbias may be null). Overwrites.
void conv2d_backward_weights(const float* x, const float* dy, float* dkernel, float* dbias, const Conv2dDims& d);
void conv2d_backward_weights(const double* x, const double* dy, double* dkernel, double* dbias,
                             const Conv2dDims& d);

// dx (unless null) and dkernel (unless null) at once: conv2d_backward_data and
// conv2d_backward_weights (no bias), with dy reordered once for both under Winograd.
void conv2d_backward(const float* x, const float* dy, const float* kernel, float* dx, float* dkernel,
                     const Conv2dDims& d);
void conv2d_backward(const double* x, const double* dy, const double* kernel, double* dx, double* dkernel,
                     const Conv2dDims& d);

// Whether float32 convolutions run Winograd F(4×4, 3×3) kernels where they take the shape (3×3,
// stride 1, input and output channels multiples of 16): a forward pass that would run the direct
// kernel (conv2d_forward_runs_direct) runs normnet's own (conv2d_winograd.h), the other passes
// oneDNN's where it has them (AVX-512); elsewhere, and by default, the direct kernels run.
// Process-wide (ops::set_conv2d_algorithm).
void set_conv2d_winograd(bool on);
[[nodiscard]] bool conv2d_winograd();

// The Winograd forward pass writing y in oneDNN's nChw16c layout (for a max pooling that reads it
// as such: pool2d.h's *_blocked16 kernels) and x reordered to nChw16c into x_blocked16 (kept for
// conv2d_backward_blocked16; null: a scratch buffer); C and O multiples of 16, so both have as many
// floats as in NHWC.
// False, with nothing written, unless Winograd is chosen and runs for this shape (conv2d_forward
// then computes y in NHWC).
// Whether conv2d_forward would try oneDNN's Winograd for this shape (chosen, a shape it takes, one
// the direct kernel does not take); oneDNN may still lack a kernel for it.
[[nodiscard]] bool conv2d_forward_may_use_winograd(const Conv2dDims& d);
[[nodiscard]] bool conv2d_forward_winograd_blocked16(const float* x, const float* kernel, const float* bias,
                                                     float* y, float* x_blocked16, const Conv2dDims& d);
// conv2d_backward with x and dy in nChw16c (after conv2d_forward_winograd_blocked16 returned true).
void conv2d_backward_blocked16(const float* x_blocked16, const float* dy_blocked16, const float* kernel, float* dx,
                               float* dkernel, const Conv2dDims& d);

// The oneDNN forward alone, whatever the shape (benchmarks compare it with the direct kernel).
void conv2d_forward_dnnl(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d);

// Naive twins: one sum per output element, accumulated in double.
template <class T>
void conv2d_forward_reference(const T* x, const T* kernel, const T* bias, T* y, const Conv2dDims& d);
template <class T>
void conv2d_backward_data_reference(const T* dy, const T* kernel, T* dx, const Conv2dDims& d);
template <class T>
void conv2d_backward_weights_reference(const T* x, const T* dy, T* dkernel, T* dbias, const Conv2dDims& d);

}  // namespace normnet::kernels::cpu

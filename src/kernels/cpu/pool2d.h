// Max and average pooling over NHWC images: OpenMP loops (memory-bound: oneDNN would bring no
// speed, and these serve float32 and float64 alike).
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// Shape letters: N batch, H/W input height/width, C channels, PH/PW pool window, OH/OW output.
//   x [N, H, W, C] -> y [N, OH, OW, C]
// Output pixel (p, q) pools input rows p·stride_h − pad_top + i, i < PH, that lie inside the
// image (likewise columns); padded positions take no part (neither in the max nor in the count).
// Every window must contain at least one real element (true of valid and of TensorFlow's same).
struct Pool2dDims {
  int64_t n = 0, h = 0, w = 0, c = 0;
  int64_t ph = 1, pw = 1;
  int64_t oh = 0, ow = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0;
};

// y = max over each window. NaN propagates (the first NaN of a window wins).
template <class T>
void max_pool2d_forward(const T* x, T* y, const Pool2dDims& d);
// y = relu(max over each window) = max over the window of relu(x), relu(v) = v > 0 or NaN ? v : 0
// as ops::relu (max and ReLU commute, NaN included): Conv2D(relu) → MaxPooling2D's inference path,
// one pass instead of the pool and a ReLU over its output. Its twin: max_pool2d_forward, then
// relu_forward (tests).
template <class T>
void max_pool2d_relu_forward(const T* x, T* y, const Pool2dDims& d);
// dx += dy routed to each window's argmax: the first maximal element in row-major window order
// on ties (the first NaN if any), the element whose value forward returned.
template <class T>
void max_pool2d_backward(const T* x, const T* dy, T* dx, const Pool2dDims& d);

// True when the windows tile the image: stride = pool size on both axes and the windows cover
// every real element (valid padding with H, W multiples of the pool, or same padding), so each
// input element lies in exactly one window.
[[nodiscard]] bool pool_windows_tile(const Pool2dDims& d);
// For tiling windows (pool_windows_tile(d)): dx = dy at each window's argmax (as
// max_pool2d_backward chooses it) and 0 elsewhere, written once per element, not added: a fresh
// buffer needs no zero fill. max_pool2d_backward into zeros is its reference twin.
template <class T>
void max_pool2d_backward_write(const T* x, const T* dy, T* dx, const Pool2dDims& d);

// Max pooling that also records where each maximum came from, for a backward that does not read
// x again (the recording training step keeps 1 byte per output instead of the whole input).
// argmax[i] = (h − first row)·PW + (w − first column) of output element i's maximum within its
// window (its real elements; the same element max_pool2d_backward chooses). Needs PH·PW ≤ 256.
[[nodiscard]] bool max_pool2d_argmax_fits(const Pool2dDims& d);
template <class T>
void max_pool2d_forward_argmax(const T* x, T* y, uint8_t* argmax, const Pool2dDims& d);
// For tiling windows: dx = dy at each window's recorded argmax, 0 elsewhere, written once (as
// max_pool2d_backward_write, which finds the same argmax from x; both have the adding
// max_pool2d_backward into zeros as their reference twin).
template <class T>
void max_pool2d_backward_write_argmax(const uint8_t* argmax, const T* dy, T* dx, const Pool2dDims& d);

// The same two kernels with x (forward) or dx (backward) in oneDNN's nChw16c layout, as a
// Winograd convolution writes and reads it: element (n, h, w, c) at
// (((n·C/16 + c/16)·H + h)·W + w)·16 + c mod 16, C a multiple of 16. y, argmax and dy stay NHWC.
// Their twins are the NHWC kernels on the input reordered (tests).
void max_pool2d_forward_argmax_blocked16(const float* x, float* y, uint8_t* argmax, const Pool2dDims& d);
void max_pool2d_backward_write_argmax_blocked16(const uint8_t* argmax, const float* dy, float* dx,
                                                const Pool2dDims& d);

// y = mean over the real elements of each window (Keras's count for `same` padding).
template <class T>
void avg_pool2d_forward(const T* x, T* y, const Pool2dDims& d);
// dx += dy / count spread over each window's real elements.
template <class T>
void avg_pool2d_backward(const T* dy, T* dx, const Pool2dDims& d);

}  // namespace normnet::kernels::cpu

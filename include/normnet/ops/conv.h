// Convolution and pooling over NHWC images (channels last, as in Keras).
#pragma once

#include <array>

#include "normnet/tensor.h"

namespace normnet::ops {

enum class Padding { kValid, kSame };

// x [N, H, W, Cin], kernel [kh, kw, Cin, Cout] (Keras's layout), bias [Cout] or undefined.
// `same` padding pads (total = max((ceil(H/s)-1)*s + kh - H, 0)) with the extra row/column at
// the bottom/right, as TensorFlow does. oneDNN for float32; a reference loop for float64.
[[nodiscard]] Tensor conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                            std::array<int, 2> strides = {1, 1}, Padding padding = Padding::kValid);

// relu(conv2d(x, kernel, bias, ...)) as one op: the same values (NaN passes through, as in
// ops::relu) and gradients, with the activation applied in place and relu's backward fused with
// the bias gradient. Conv2D layers with activation "relu" call it.
//   Tensor h = ops::conv2d_relu(x, kernel, bias);   // == ops::relu(ops::conv2d(x, kernel, bias))
[[nodiscard]] Tensor conv2d_relu(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                 std::array<int, 2> strides = {1, 1}, Padding padding = Padding::kValid);

// Max / average pooling of x [N, H, W, C]; strides default to the pool size. Average pooling
// with `same` padding divides by the number of real (unpadded) elements, as Keras does.
[[nodiscard]] Tensor max_pool2d(const Tensor& x, std::array<int, 2> pool_size,
                                std::array<int, 2> strides = {0, 0}, Padding padding = Padding::kValid);
[[nodiscard]] Tensor avg_pool2d(const Tensor& x, std::array<int, 2> pool_size,
                                std::array<int, 2> strides = {0, 0}, Padding padding = Padding::kValid);

// max_pool2d(conv2d_relu(x, kernel, bias, strides, padding), pool_size, pool_strides, pool_padding)
// as one op: the same values and x and kernel gradients to the bit (the bias gradient within
// rounding: it is summed over the pooled elements), without the activation-sized ReLU output.
// The ReLU is applied after pooling (max and ReLU commute, NaN included) and its backward runs on
// the pooled gradient; the convolution's output is never kept. Runs fused when the pooling
// windows tile the image (stride = pool size, as MaxPooling2D's default) and have at most 256
// elements; otherwise it is exactly the two ops. Functional and Sequential models run a
// Conv2D(activation "relu") followed only by a MaxPooling2D through it.
[[nodiscard]] Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                            std::array<int, 2> strides, Padding padding,
                                            std::array<int, 2> pool_size, std::array<int, 2> pool_strides = {0, 0},
                                            Padding pool_padding = Padding::kValid);

}  // namespace normnet::ops

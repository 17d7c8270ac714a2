// Convolution and pooling over NHWC images (channels last, as in Keras).
#pragma once

#include <array>

#include "normnet/tensor.h"

namespace normnet::ops {

enum class Padding { kValid, kSame };

// How float32 convolutions compute, process-wide (float64 always runs the reference loops).
//   kDirect (default): oneDNN's direct convolutions and normnet's direct kernel; every output is a
//     plain sum of products, within K·u·Σ|terms| of the exact value (K terms, u = 2^-24).
//   kWinograd: F(4×4, 3×3) Winograd convolutions for 3×3 kernels, stride 1, input and output
//     channels multiples of 16: on an AVX-512 CPU oneDNN's kernels for the forward pass and both
//     backward passes, except a forward pass small enough for the direct kernel (a few images),
//     which runs normnet's own Winograd forward; on an AVX2 CPU normnet's own forward for every
//     batch (oneDNN has none there) and the direct backward passes. Other shapes keep the direct
//     kernels. 4× fewer multiplications in the products (36 instead of 144 per 4×4 output tile and
//     channel pair), at the cost of transforms, of reorders to oneDNN's blocked layout (AVX-512;
//     conv2d_relu_max_pool2d keeps its convolution's output and gradient in that layout and avoids
//     most of them) and a rounding error that no longer follows the K·u·Σ|terms| bound (the
//     transforms scale the data by constants up to 8): results differ from kDirect's in the last
//     bits; on random data with 3×3×16 or more terms the error stayed within 0.03–0.21 of that
//     bound (tests), and an Inf input makes NaN in its 4×4 output tiles where kDirect gives ±Inf.
//     For speed, as cuDNN's algorithm choice in PyTorch: training steps, and a batch-1 forward
//     whose second convolution takes about half the direct kernel's time.
//   ops::set_conv2d_algorithm(ops::Conv2dAlgorithm::kWinograd);
enum class Conv2dAlgorithm { kDirect, kWinograd };
void set_conv2d_algorithm(Conv2dAlgorithm algorithm);
[[nodiscard]] Conv2dAlgorithm get_conv2d_algorithm();

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
// as one op: the same values, without the activation-sized ReLU output. The ReLU is applied after
// pooling (max and ReLU commute, NaN included) and its backward runs on the pooled gradient; the
// convolution's output is never kept. The convolution's gradient is zero except at each window's
// maximum, so for float32 with valid padding and KW·Cin a multiple of the vector width (16 floats
// with AVX-512, 8 with AVX2) the x and kernel gradients sum only those terms (a quarter of the
// dense passes' work for 2×2 windows), and of those only the ones whose pooled gradient is not 0
// (in training most are: the ReLU and a Dropout after the pool zero them): the two ops' terms in
// another order, equal within rounding, except that a 0 · Inf or 0 · NaN (a non-finite input or
// weight under a zero gradient) is left out where the two ops' dense passes make it NaN. Elsewhere
// (float64, same padding, Winograd) they are the two ops' gradients to the bit. The bias gradient is summed over the pooled elements (within rounding). Runs fused
// when the pooling windows tile the image (stride = pool size, as MaxPooling2D's default) and
// have at most 256 elements; otherwise it is exactly the two ops. Functional and Sequential
// models run a Conv2D(activation "relu") followed only by a MaxPooling2D through it.
[[nodiscard]] Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                            std::array<int, 2> strides, Padding padding,
                                            std::array<int, 2> pool_size, std::array<int, 2> pool_strides = {0, 0},
                                            Padding pool_padding = Padding::kValid);

}  // namespace normnet::ops

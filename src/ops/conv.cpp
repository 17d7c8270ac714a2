// conv2d, conv2d_relu and conv2d_relu_max_pool2d: shape rule (valid / TensorFlow's same padding),
// forward through the conv2d kernel (oneDNN for float32) and backward to the input, the kernel and
// the bias.
#include "normnet/ops/conv.h"

#include <type_traits>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_pooled_backward.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cpu/unary.h"
#include "ops/op_util.h"
#include "ops/pool_dims.h"

namespace normnet::ops {
namespace {

using namespace detail;
using kernels::cpu::Conv2dDims;

// Output extent of one spatial axis; unknown stays unknown.
kernels::cpu::WindowAxis axis_or_unknown(int64_t in, int64_t window, int64_t stride, bool same) {
  if (in == kUnknownDim) return {kUnknownDim, 0, 0};
  return kernels::cpu::window_axis(in, window, stride, same);
}

void check_conv_args(const char* kOp, const Tensor& x, const Tensor& kernel, const Tensor& bias,
                     std::array<int, 2> strides, Padding padding) {
  check_floating(x, kOp, "x");
  check_floating(kernel, kOp, "kernel");
  check_same_dtype(x, kernel, kOp);
  if (x.dim() != 4) throw ShapeError(str(kOp, ": expected x of rank 4 [N, H, W, Cin], got shape ", x.shape()));
  if (kernel.dim() != 4) {
    throw ShapeError(str(kOp, ": expected kernel of rank 4 [kh, kw, Cin, Cout], got shape ", kernel.shape()));
  }
  if (strides[0] < 1 || strides[1] < 1) {
    throw ValueError(str(kOp, ": strides must be >= 1, got [", strides[0], ", ", strides[1], "] for x shape ",
                         x.shape(), " and kernel shape ", kernel.shape()));
  }
  if (kernel.size(0) < 1 || kernel.size(1) < 1) {
    throw ShapeError(str(kOp, ": kernel shape ", kernel.shape(), " has an empty window"));
  }
  if (x.size(3) != kernel.size(2)) {
    throw ShapeError(str(kOp, ": x shape ", x.shape(), " has ", x.size(3), " channels but kernel shape ",
                         kernel.shape(), " expects ", kernel.size(2), " (kernel layout [kh, kw, Cin, Cout])"));
  }
  if (bias.defined()) {
    check_floating(bias, kOp, "bias");
    check_same_dtype(x, bias, kOp);
    if (bias.shape() != Shape{kernel.size(3)}) {
      throw ShapeError(str(kOp, ": bias shape ", bias.shape(), " does not match kernel shape ", kernel.shape(),
                           " (expected [", kernel.size(3), "])"));
    }
  }
  const bool too_small = (x.size(1) != kUnknownDim && x.size(1) < kernel.size(0)) ||
                         (x.size(2) != kUnknownDim && x.size(2) < kernel.size(1));
  if (padding == Padding::kValid && too_small) {
    throw ShapeError(str(kOp, ": kernel shape ", kernel.shape(), " is larger than the image of x shape ", x.shape(),
                         " with valid padding"));
  }
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class T>
void forward(const Tensor& x, const Tensor& kernel, const Tensor& bias, Tensor& y, bool relu, const Conv2dDims& d) {
  // relu: the same values as ops::relu(conv2d(...)) (NaN passed through), applied by the kernel
  // before it stores y or in place after it: no second activation-sized buffer.
  kernels::cpu::conv2d_forward(x.data<T>(), kernel.data<T>(), data_or_null<T>(bias), y.data<T>(), d, relu);
}

// dz = dy·[y > 0] (or dy itself without relu) and dbias = Σ dz over the N·OH·OW rows.
template <class T>
Tensor pre_activation_grad(const Tensor& y, const Tensor& dy, Tensor* dbias, bool relu, const Conv2dDims& d) {
  const int64_t rows = d.n * d.oh * d.ow;
  T* db = dbias ? dbias->data<T>() : nullptr;
  if (!relu) {
    if (db) kernels::cpu::bias_backward(dy.data<T>(), db, rows, d.o);
    return dy;
  }
  // Overwriting dy when nobody else holds it (the usual case: a gradient made for this op alone)
  // saves a 4-byte-per-element allocation and the cache-line fills of writing a fresh buffer.
  Tensor dz = held_only_here(dy) ? dy : Tensor::empty(dy.shape(), dy.dtype());
  kernels::cpu::relu_bias_backward(y.data<T>(), dy.data<T>(), dz.data<T>(), db, rows, d.o);
  return dz;
}

// dx and dkernel from the gradient dz of the convolution's output (inputs 0 and 1 of the sink).
template <class T>
void backward_from_dz(const Tensor& x, const Tensor& kernel, const Tensor& dz, const Conv2dDims& d, GradSink& sink) {
  Tensor dx = sink.wants(0) ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
  Tensor dkernel = sink.wants(1) ? Tensor::empty(kernel.shape(), kernel.dtype()) : Tensor();
  kernels::cpu::conv2d_backward(x.data<T>(), dz.data<T>(), kernel.data<T>(), dx.defined() ? dx.data<T>() : nullptr,
                                dkernel.defined() ? dkernel.data<T>() : nullptr, d);
  if (dx.defined()) sink.add(0, dx);
  if (dkernel.defined()) sink.add(1, dkernel);
}

template <class T>
void backward(const Tensor& x, const Tensor& kernel, const Tensor& y, const Tensor& dy, bool relu, const Conv2dDims& d,
              GradSink& sink) {
  const bool want_bias = sink.wants(2);
  Tensor dbias = want_bias ? Tensor::empty({d.o}, dy.dtype()) : Tensor();
  const Tensor dz = pre_activation_grad<T>(y, dy, want_bias ? &dbias : nullptr, relu, d);
  backward_from_dz<T>(x, kernel, dz, d, sink);
  if (want_bias) sink.add(2, dbias);
}

// The convolution's dims (output extents -1 where the input's are unknown).
Conv2dDims conv_dims(const Tensor& x, const Tensor& kernel, std::array<int, 2> strides, Padding padding) {
  const bool same = padding == Padding::kSame;
  const auto rows = axis_or_unknown(x.size(1), kernel.size(0), strides[0], same);
  const auto cols = axis_or_unknown(x.size(2), kernel.size(1), strides[1], same);
  return Conv2dDims{x.size(0), x.size(1), x.size(2), x.size(3),
                    kernel.size(0), kernel.size(1), kernel.size(3),
                    rows.out, cols.out, strides[0], strides[1],
                    rows.pad_before, cols.pad_before, rows.pad_after, cols.pad_after};
}

Tensor conv2d_impl(const char* op, const Tensor& x, const Tensor& kernel, const Tensor& bias,
                   std::array<int, 2> strides, Padding padding, bool relu) {
  check_conv_args(op, x, kernel, bias, strides, padding);
  const Conv2dDims d = conv_dims(x, kernel, strides, padding);
  Shape out_shape{d.n, d.oh, d.ow, d.o};
  if (any_symbolic({x, kernel, bias})) return make_result(std::move(out_shape), x.dtype(), /*symbolic=*/true);

  Tensor out = make_result(std::move(out_shape), x.dtype(), /*symbolic=*/false);
  if (x.dtype() == DType::kFloat32) forward<float>(x, kernel, bias, out, relu, d);
  else forward<double>(x, kernel, bias, out, relu, d);
  if (!should_record({x, kernel, bias})) return out;

  // z[n,p,q,o] = b[o] + Σ_{i,j,c} x[n, p·s−pt+i, q·s−pl+j, c] · k[i,j,c,o]   (x = 0 in the padding)
  // y = z, or y = max(z, 0) for conv2d_relu  ⇒  dz = dy, or dz = dy·[y > 0] (0 at z = 0 and NaN)
  //   ⇒ dx[n,h,w,c] = Σ_{p,q,i,j,o : h = p·s−pt+i, w = q·s−pl+j} dz[n,p,q,o] · k[i,j,c,o]
  //     dk[i,j,c,o] = Σ_{n,p,q} x[n, p·s−pt+i, q·s−pl+j, c] · dz[n,p,q,o]
  //     db[o]       = Σ_{n,p,q} dz[n,p,q,o]
  // Padded positions receive no gradient (they are constants).
  Tensor kept = relu ? out.detach() : Tensor();  // relu's backward reads its output, as ops::relu
  record(out, op, {x, kernel, bias},
         [x = x.detach(), kernel = kernel.detach(), kept, relu, d](const Tensor& dy, GradSink& sink) {
           if (dy.dtype() == DType::kFloat32) backward<float>(x, kernel, kept, dy, relu, d, sink);
           else backward<double>(x, kernel, kept, dy, relu, d, sink);
         });
  return out;
}

// max_pool2d(relu(conv2d(x))) over tiling windows: z = conv2d(x) (not kept), p = max over each
// window of z (argmax noted in a byte), y = relu(p) = max over the window of relu(z) (max and ReLU
// commute: both pick the first NaN, and a window with no positive element gives +0 either way).
//   dp = dy·[y > 0], db = Σ dp (over the pooled elements: dz is zero elsewhere)
//   dz = dp at each window's argmax, 0 elsewhere (= relu's then the pool's backward of the two ops:
//        where the argmaxes differ, the window has no positive element and the gradient is 0)
//   dx, dkernel from dz as for conv2d; for float32 outside Winograd, where the kernels take the
//        shape, only dz's non-zero terms are summed, from dp and the argmax (pooled_backward):
//        the same terms in another order, without the dz tensor.
// Under Winograd (float32, a shape it runs) the convolution writes z in oneDNN's blocked nChw16c
// layout, the pooling reads it there and its backward writes dz there for the Winograd backward
// passes: no reorder of the 19-MB z or dz to and from NHWC (z is internal to this op).
template <class T>
bool winograd_forward_blocked(const Tensor& x, const Tensor& kernel, const Tensor& bias, Tensor& z,
                              Tensor& x_blocked, const Conv2dDims& d) {
  if constexpr (std::is_same_v<T, float>) {
    return kernels::cpu::conv2d_forward_winograd_blocked16(x.data<float>(), kernel.data<float>(),
                                                           data_or_null<float>(bias), z.data<float>(),
                                                           x_blocked.defined() ? x_blocked.data<float>() : nullptr, d);
  }
  return false;
}

// dx and dkernel straight from the pooled gradient dp and the argmax, one term per window and
// channel (conv2d_pooled_backward.h: a quarter of the dense passes' arithmetic for 2×2 windows,
// and no dz), where the kernels take the shapes; false, nothing done, elsewhere. dx is written
// into the input's gradient buffer, or added into the gradient it already has.
template <class T>
bool pooled_backward(const Tensor& x, const Tensor& kernel, const Tensor& argmax, const Tensor& dp,
                     const Conv2dDims& d, const kernels::cpu::Pool2dDims& pd, bool blocked, GradSink& sink) {
  if constexpr (std::is_same_v<T, float>) {
    if (blocked || !kernels::cpu::conv2d_pooled_backward_supported(d, pd)) return false;
    bool overwrite = false;
    Tensor dx = sink.wants(0) ? sink.buffer(0, overwrite) : Tensor();
    Tensor dkernel = sink.wants(1) ? Tensor::empty(kernel.shape(), kernel.dtype()) : Tensor();
    kernels::cpu::conv2d_pooled_backward(x.data<float>(), kernel.data<float>(), argmax.data<uint8_t>(),
                                         dp.data<float>(), dx.defined() ? dx.data<float>() : nullptr,
                                         overwrite, dkernel.defined() ? dkernel.data<float>() : nullptr, d,
                                         pd);
    if (dkernel.defined()) sink.add(1, dkernel);
    return true;
  }
  return false;
}

template <class T>
Tensor conv_relu_pool_fused(const char* op, const Tensor& x, const Tensor& kernel, const Tensor& bias,
                            const Conv2dDims& d, const kernels::cpu::Pool2dDims& pd) {
  const bool recording = should_record({x, kernel, bias});
  Tensor out = make_result({pd.n, pd.oh, pd.ow, pd.c}, x.dtype(), /*symbolic=*/false);
  Tensor argmax = recording ? Tensor::empty(out.shape(), DType::kUInt8) : Tensor();
  // Where conv2d_forward runs the direct kernel, it pools each row pair in L1 (noting the argmax
  // when recording): z never exists.
  bool pooled_in_l1 = false;
  if constexpr (std::is_same_v<T, float>) {
    pooled_in_l1 = kernels::cpu::conv2d_forward_max_pool_relu(
        x.data<float>(), kernel.data<float>(), data_or_null<float>(bias), out.data<float>(), d, pd,
        recording ? argmax.data<uint8_t>() : nullptr);
    if (pooled_in_l1 && !recording) return out;
  }
  bool blocked = false;
  Tensor x_blocked;
  if (!pooled_in_l1) {
    Tensor z = Tensor::empty({d.n, d.oh, d.ow, d.o}, x.dtype());
    // x in nChw16c, kept for the Winograd backward weights; without recording, the kernel's own
    // scratch buffer takes it (inference leaves no activation-sized block in the allocator's cache).
    const bool may_block = std::is_same_v<T, float> && kernels::cpu::conv2d_forward_may_use_winograd(d);
    if (may_block && recording) x_blocked = Tensor::empty(x.shape(), x.dtype());
    blocked = may_block && winograd_forward_blocked<T>(x, kernel, bias, z, x_blocked, d);
    if (!blocked) {
      x_blocked = Tensor();
      forward<T>(x, kernel, bias, z, /*relu=*/false, d);
    }
    if (!recording && !blocked) {
      kernels::cpu::max_pool2d_relu_forward(z.data<T>(), out.data<T>(), pd);
      return out;
    }
    if (!argmax.defined()) argmax = Tensor::empty(out.shape(), DType::kUInt8);
    if constexpr (std::is_same_v<T, float>) {
      if (blocked) {
        kernels::cpu::max_pool2d_forward_argmax_blocked16(z.data<float>(), out.data<float>(),
                                                          argmax.data<uint8_t>(), pd);
      }
    }
    if (!blocked)
      kernels::cpu::max_pool2d_forward_argmax(z.data<T>(), out.data<T>(), argmax.data<uint8_t>(), pd);
    kernels::cpu::relu_forward(out.data<T>(), out.data<T>(), out.numel());
    if (!recording) return out;
  }
  record(out, op, {x, kernel, bias},
         [x = blocked ? x_blocked : x.detach(), kernel = kernel.detach(), y = out.detach(), argmax, d, pd,
          blocked = blocked](const Tensor& dy, GradSink& sink) {
           const bool want_bias = sink.wants(2);
           Tensor dbias = want_bias ? Tensor::empty({d.o}, dy.dtype()) : Tensor();
           Tensor dp = held_only_here(dy) ? dy : Tensor::empty(dy.shape(), dy.dtype());
           kernels::cpu::relu_bias_backward(y.data<T>(), dy.data<T>(), dp.data<T>(), want_bias ? dbias.data<T>() : nullptr,
                                            pd.n * pd.oh * pd.ow, pd.c);
           if ((sink.wants(0) || sink.wants(1)) &&
               !pooled_backward<T>(x, kernel, argmax, dp, d, pd, blocked, sink)) {
             Tensor dz = Tensor::empty({d.n, d.oh, d.ow, d.o}, dy.dtype());
             if constexpr (std::is_same_v<T, float>) {
               if (blocked) {
                 kernels::cpu::max_pool2d_backward_write_argmax_blocked16(argmax.data<uint8_t>(), dp.data<float>(),
                                                                          dz.data<float>(), pd);
                 Tensor dx = sink.wants(0) ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
                 Tensor dkernel = sink.wants(1) ? Tensor::empty(kernel.shape(), kernel.dtype()) : Tensor();
                 kernels::cpu::conv2d_backward_blocked16(x.data<float>(), dz.data<float>(), kernel.data<float>(),
                                                         dx.defined() ? dx.data<float>() : nullptr,
                                                         dkernel.defined() ? dkernel.data<float>() : nullptr, d);
                 if (dx.defined()) sink.add(0, dx);
                 if (dkernel.defined()) sink.add(1, dkernel);
               }
             }
             if (!blocked) {
               kernels::cpu::max_pool2d_backward_write_argmax(argmax.data<uint8_t>(), dp.data<T>(), dz.data<T>(), pd);
               backward_from_dz<T>(x, kernel, dz, d, sink);
             }
           }
           if (want_bias) sink.add(2, dbias);
         });
  return out;
}

}  // namespace

void set_conv2d_algorithm(Conv2dAlgorithm algorithm) {
  if (algorithm != Conv2dAlgorithm::kDirect && algorithm != Conv2dAlgorithm::kWinograd) {
    throw ValueError(str("ops::set_conv2d_algorithm: unknown algorithm ", static_cast<int>(algorithm),
                         " (expected Conv2dAlgorithm::kDirect or kWinograd)"));
  }
  kernels::cpu::set_conv2d_winograd(algorithm == Conv2dAlgorithm::kWinograd);
}

Conv2dAlgorithm get_conv2d_algorithm() {
  return kernels::cpu::conv2d_winograd() ? Conv2dAlgorithm::kWinograd : Conv2dAlgorithm::kDirect;
}

Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, std::array<int, 2> strides,
                              Padding padding, std::array<int, 2> pool_size, std::array<int, 2> pool_strides,
                              Padding pool_padding) {
  constexpr const char* kOp = "ops::conv2d_relu_max_pool2d";
  check_conv_args(kOp, x, kernel, bias, strides, padding);
  const Conv2dDims d = conv_dims(x, kernel, strides, padding);
  const kernels::cpu::Pool2dDims pd =
      pool_dims(kOp, {d.n, d.oh, d.ow, d.o}, pool_size, pool_strides, pool_padding, "the convolution's output");
  if (any_symbolic({x, kernel, bias})) return make_result({pd.n, pd.oh, pd.ow, pd.c}, x.dtype(), /*symbolic=*/true);
  if (!kernels::cpu::pool_windows_tile(pd) || !kernels::cpu::max_pool2d_argmax_fits(pd)) {
    return max_pool2d(conv2d_relu(x, kernel, bias, strides, padding), pool_size, pool_strides, pool_padding);
  }
  if (x.dtype() == DType::kFloat32) return conv_relu_pool_fused<float>(kOp, x, kernel, bias, d, pd);
  return conv_relu_pool_fused<double>(kOp, x, kernel, bias, d, pd);
}

Tensor conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, std::array<int, 2> strides,
              Padding padding) {
  return conv2d_impl("ops::conv2d", x, kernel, bias, strides, padding, /*relu=*/false);
}

Tensor conv2d_relu(const Tensor& x, const Tensor& kernel, const Tensor& bias, std::array<int, 2> strides,
                   Padding padding) {
  return conv2d_impl("ops::conv2d_relu", x, kernel, bias, strides, padding, /*relu=*/true);
}

}  // namespace normnet::ops

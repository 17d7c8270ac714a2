// conv2d: shape rule (valid / TensorFlow's same padding), forward through the conv2d kernel
// (oneDNN for float32) and backward to the input, the kernel and the bias.
#include "normnet/ops/conv.h"

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/matmul.h"
#include "ops/op_util.h"

namespace normnet::ops {
namespace {

using namespace detail;
using kernels::cpu::Conv2dDims;

constexpr const char* kOp = "ops::conv2d";

// Output extent of one spatial axis; unknown stays unknown.
kernels::cpu::WindowAxis axis_or_unknown(int64_t in, int64_t window, int64_t stride, bool same) {
  if (in == kUnknownDim) return {kUnknownDim, 0, 0};
  return kernels::cpu::window_axis(in, window, stride, same);
}

void check_conv_args(const Tensor& x, const Tensor& kernel, const Tensor& bias, std::array<int, 2> strides,
                     Padding padding) {
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
void backward_weights(const Tensor& x, const Tensor& dy, Tensor& dkernel, Tensor* dbias, const Conv2dDims& d) {
  kernels::cpu::conv2d_backward_weights(x.data<T>(), dy.data<T>(), dkernel.data<T>(),
                                        dbias ? dbias->data<T>() : nullptr, d);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, std::array<int, 2> strides,
              Padding padding) {
  check_conv_args(x, kernel, bias, strides, padding);
  const bool same = padding == Padding::kSame;
  const auto rows = axis_or_unknown(x.size(1), kernel.size(0), strides[0], same);
  const auto cols = axis_or_unknown(x.size(2), kernel.size(1), strides[1], same);
  Shape out_shape{x.size(0), rows.out, cols.out, kernel.size(3)};
  if (any_symbolic({x, kernel, bias})) return make_result(std::move(out_shape), x.dtype(), /*symbolic=*/true);

  const Conv2dDims d{x.size(0), x.size(1), x.size(2), x.size(3),
                     kernel.size(0), kernel.size(1), kernel.size(3),
                     rows.out, cols.out, strides[0], strides[1],
                     rows.pad_before, cols.pad_before, rows.pad_after, cols.pad_after};
  Tensor out = make_result(std::move(out_shape), x.dtype(), /*symbolic=*/false);
  if (x.dtype() == DType::kFloat32) {
    kernels::cpu::conv2d_forward(x.data<float>(), kernel.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                                 out.data<float>(), d);
  } else {
    kernels::cpu::conv2d_forward(x.data<double>(), kernel.data<double>(),
                                 bias.defined() ? bias.data<double>() : nullptr, out.data<double>(), d);
  }
  if (!should_record({x, kernel, bias})) return out;

  // y[n,p,q,o] = b[o] + Σ_{i,j,c} x[n, p·s−pt+i, q·s−pl+j, c] · k[i,j,c,o]   (x = 0 in the padding)
  //   ⇒ dx[n,h,w,c] = Σ_{p,q,i,j,o : h = p·s−pt+i, w = q·s−pl+j} dy[n,p,q,o] · k[i,j,c,o]
  //     dk[i,j,c,o] = Σ_{n,p,q} x[n, p·s−pt+i, q·s−pl+j, c] · dy[n,p,q,o]
  //     db[o]       = Σ_{n,p,q} dy[n,p,q,o]
  // Padded positions receive no gradient (they are constants).
  record(out, kOp, {x, kernel, bias}, [x = x.detach(), kernel = kernel.detach(), d](const Tensor& dy, GradSink& sink) {
    const bool f32 = dy.dtype() == DType::kFloat32;
    if (sink.wants(0)) {
      Tensor dx = Tensor::empty(x.shape(), x.dtype());
      if (f32) kernels::cpu::conv2d_backward_data(dy.data<float>(), kernel.data<float>(), dx.data<float>(), d);
      else kernels::cpu::conv2d_backward_data(dy.data<double>(), kernel.data<double>(), dx.data<double>(), d);
      sink.add(0, dx);
    }
    const bool want_bias = sink.wants(2);
    Tensor dbias = want_bias ? Tensor::empty({d.o}, dy.dtype()) : Tensor();
    if (sink.wants(1)) {
      Tensor dkernel = Tensor::empty(kernel.shape(), kernel.dtype());
      if (f32) backward_weights<float>(x, dy, dkernel, want_bias ? &dbias : nullptr, d);
      else backward_weights<double>(x, dy, dkernel, want_bias ? &dbias : nullptr, d);
      sink.add(1, dkernel);
    } else if (want_bias) {
      const int64_t rows = d.n * d.oh * d.ow;
      if (f32) kernels::cpu::bias_backward(dy.data<float>(), dbias.data<float>(), rows, d.o);
      else kernels::cpu::bias_backward(dy.data<double>(), dbias.data<double>(), rows, d.o);
    }
    if (want_bias) sink.add(2, dbias);
  });
  return out;
}

}  // namespace normnet::ops

// conv2d and conv2d_relu: shape rule (valid / TensorFlow's same padding), forward through the
// conv2d kernel (oneDNN for float32) and backward to the input, the kernel and the bias.
#include "normnet/ops/conv.h"

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/unary.h"
#include "ops/op_util.h"

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

template <class T>
void backward(const Tensor& x, const Tensor& kernel, const Tensor& y, const Tensor& dy, bool relu, const Conv2dDims& d,
              GradSink& sink) {
  const bool want_bias = sink.wants(2);
  Tensor dbias = want_bias ? Tensor::empty({d.o}, dy.dtype()) : Tensor();
  const Tensor dz = pre_activation_grad<T>(y, dy, want_bias ? &dbias : nullptr, relu, d);
  if (sink.wants(0)) {
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    kernels::cpu::conv2d_backward_data(dz.data<T>(), kernel.data<T>(), dx.data<T>(), d);
    sink.add(0, dx);
  }
  if (sink.wants(1)) {
    Tensor dkernel = Tensor::empty(kernel.shape(), kernel.dtype());
    kernels::cpu::conv2d_backward_weights(x.data<T>(), dz.data<T>(), dkernel.data<T>(), nullptr, d);
    sink.add(1, dkernel);
  }
  if (want_bias) sink.add(2, dbias);
}

Tensor conv2d_impl(const char* op, const Tensor& x, const Tensor& kernel, const Tensor& bias,
                   std::array<int, 2> strides, Padding padding, bool relu) {
  check_conv_args(op, x, kernel, bias, strides, padding);
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

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, std::array<int, 2> strides,
              Padding padding) {
  return conv2d_impl("ops::conv2d", x, kernel, bias, strides, padding, /*relu=*/false);
}

Tensor conv2d_relu(const Tensor& x, const Tensor& kernel, const Tensor& bias, std::array<int, 2> strides,
                   Padding padding) {
  return conv2d_impl("ops::conv2d_relu", x, kernel, bias, strides, padding, /*relu=*/true);
}

}  // namespace normnet::ops

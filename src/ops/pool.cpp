// max_pool2d and avg_pool2d over NHWC images: shape rule (valid / TensorFlow's same padding),
// forward and backward through the pool2d kernels.
#include <string>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool2d.h"
#include "normnet/ops/conv.h"
#include "ops/op_util.h"
#include "ops/pool_dims.h"

namespace normnet::ops {
namespace {

using namespace detail;
using kernels::cpu::Pool2dDims;

enum class PoolKind { kMax, kAverage };

}  // namespace

Pool2dDims detail::pool_dims(const char* op, const Shape& shape, std::array<int, 2> pool_size,
                             std::array<int, 2> strides, Padding padding, const char* input) {
  if (shape.size() != 4) {
    throw ShapeError(str(op, ": expected ", input, " of rank 4 [N, H, W, C], got shape ", shape));
  }
  if (pool_size[0] < 1 || pool_size[1] < 1 || strides[0] < 0 || strides[1] < 0) {
    throw ValueError(str(op, ": expected pool_size >= 1 and strides >= 1 (0 = pool size), got pool_size [",
                         pool_size[0], ", ", pool_size[1], "] and strides [", strides[0], ", ", strides[1],
                         "] for ", input, " shape ", shape));
  }
  Pool2dDims d;
  d.n = shape[0];
  d.h = shape[1];
  d.w = shape[2];
  d.c = shape[3];
  d.ph = pool_size[0];
  d.pw = pool_size[1];
  d.stride_h = strides[0] == 0 ? pool_size[0] : strides[0];
  d.stride_w = strides[1] == 0 ? pool_size[1] : strides[1];
  const bool same = padding == Padding::kSame;
  const bool too_small = (d.h != kUnknownDim && d.h < d.ph) || (d.w != kUnknownDim && d.w < d.pw);
  if (!same && too_small) {
    throw ShapeError(str(op, ": pool_size [", d.ph, ", ", d.pw, "] is larger than the image of ", input, " shape ",
                         shape, " with valid padding"));
  }
  const auto rows = d.h == kUnknownDim ? kernels::cpu::WindowAxis{kUnknownDim, 0, 0}
                                       : kernels::cpu::window_axis(d.h, d.ph, d.stride_h, same);
  const auto cols = d.w == kUnknownDim ? kernels::cpu::WindowAxis{kUnknownDim, 0, 0}
                                       : kernels::cpu::window_axis(d.w, d.pw, d.stride_w, same);
  d.oh = rows.out;
  d.ow = cols.out;
  d.pad_top = rows.pad_before;
  d.pad_left = cols.pad_before;
  return d;
}

namespace {

template <class T>
void pool_forward(PoolKind kind, const Tensor& x, Tensor& y, const Pool2dDims& d) {
  if (kind == PoolKind::kMax) kernels::cpu::max_pool2d_forward(x.data<T>(), y.data<T>(), d);
  else kernels::cpu::avg_pool2d_forward(x.data<T>(), y.data<T>(), d);
}

template <class T>
void pool_backward(PoolKind kind, const Tensor& x, const Tensor& dy, Tensor& dx, const Pool2dDims& d) {
  if (kind == PoolKind::kMax) kernels::cpu::max_pool2d_backward(x.data<T>(), dy.data<T>(), dx.data<T>(), d);
  else kernels::cpu::avg_pool2d_backward(dy.data<T>(), dx.data<T>(), d);
}

// Max pooling over tiling windows, recorded: forward notes each maximum's window position (1 byte
// per output), so backward neither keeps nor re-reads x.
//   y = x[argmax of the window]  ⇒  dx = dy at the argmax, 0 elsewhere (each element of x lies
//   in exactly one window; ties and NaN as in max_pool2d_backward)
Tensor max_pool2d_recorded(const char* op, const Tensor& x, Tensor& out, const Pool2dDims& d) {
  Tensor argmax = Tensor::empty(out.shape(), DType::kUInt8);
  if (x.dtype() == DType::kFloat32) {
    kernels::cpu::max_pool2d_forward_argmax(x.data<float>(), out.data<float>(), argmax.data<uint8_t>(), d);
  } else {
    kernels::cpu::max_pool2d_forward_argmax(x.data<double>(), out.data<double>(), argmax.data<uint8_t>(), d);
  }
  record(out, op, {x}, [argmax, x_shape = x.shape(), d](const Tensor& dy, GradSink& sink) {
    if (!sink.wants(0)) return;
    // Written once into a fresh tensor, which the sink takes as is when x has no gradient yet.
    Tensor dx = Tensor::empty(x_shape, dy.dtype());
    if (dy.dtype() == DType::kFloat32) {
      kernels::cpu::max_pool2d_backward_write_argmax(argmax.data<uint8_t>(), dy.data<float>(), dx.data<float>(), d);
    } else {
      kernels::cpu::max_pool2d_backward_write_argmax(argmax.data<uint8_t>(), dy.data<double>(), dx.data<double>(), d);
    }
    sink.add(0, dx);
  });
  return out;
}

Tensor pool2d(PoolKind kind, const char* op, const Tensor& x, std::array<int, 2> pool_size,
              std::array<int, 2> strides, Padding padding) {
  check_floating(x, op, "x");
  const Pool2dDims d = pool_dims(op, x.shape(), pool_size, strides, padding);
  Shape out_shape{d.n, d.oh, d.ow, d.c};
  if (x.is_symbolic()) return make_result(std::move(out_shape), x.dtype(), /*symbolic=*/true);
  Tensor out = make_result(std::move(out_shape), x.dtype(), /*symbolic=*/false);
  if (kind == PoolKind::kMax && kernels::cpu::pool_windows_tile(d) && kernels::cpu::max_pool2d_argmax_fits(d) &&
      should_record({x})) {
    return max_pool2d_recorded(op, x, out, d);
  }
  if (x.dtype() == DType::kFloat32) pool_forward<float>(kind, x, out, d);
  else pool_forward<double>(kind, x, out, d);
  if (!should_record({x})) return out;

  // max: y = x[argmax of the window]  ⇒  dx[argmax] += dy (first maximal element on ties; a
  //      subgradient, as in TensorFlow and PyTorch, which also pick one element).
  // avg: y = (1/count) Σ_window x      ⇒  dx[window] += dy / count (count = real elements only).
  record(out, op, {x}, [kind, x = x.detach(), d](const Tensor& dy, GradSink& sink) {
    if (!sink.wants(0)) return;
    if (kind == PoolKind::kMax && kernels::cpu::pool_windows_tile(d)) {
      // Windows of more than 256 elements: the argmax found again from x, dx written once.
      Tensor dx = Tensor::empty(x.shape(), x.dtype());
      if (dy.dtype() == DType::kFloat32) {
        kernels::cpu::max_pool2d_backward_write(x.data<float>(), dy.data<float>(), dx.data<float>(), d);
      } else {
        kernels::cpu::max_pool2d_backward_write(x.data<double>(), dy.data<double>(), dx.data<double>(), d);
      }
      sink.add(0, dx);
      return;
    }
    Tensor dx = sink.buffer(0);  // zero-filled on first use; the kernels add into it
    if (dy.dtype() == DType::kFloat32) pool_backward<float>(kind, x, dy, dx, d);
    else pool_backward<double>(kind, x, dy, dx, d);
  });
  return out;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, std::array<int, 2> pool_size, std::array<int, 2> strides, Padding padding) {
  return pool2d(PoolKind::kMax, "ops::max_pool2d", x, pool_size, strides, padding);
}

Tensor avg_pool2d(const Tensor& x, std::array<int, 2> pool_size, std::array<int, 2> strides, Padding padding) {
  return pool2d(PoolKind::kAverage, "ops::avg_pool2d", x, pool_size, strides, padding);
}

}  // namespace normnet::ops

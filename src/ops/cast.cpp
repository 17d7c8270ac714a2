// Dtype conversion (ops::cast and Tensor::to): differentiable between float32 and float64;
// casts from or to int64 and uint8 are steps and are not recorded.
#include <type_traits>

#include "kernels/cpu/cast_uint8.h"
#include "kernels/cpu/unary.h"
#include "normnet/ops/elementwise.h"
#include "ops/op_util.h"

namespace normnet {
namespace ops {
namespace {

// Calls fn(T{}) with T the element type of `dtype`.
template <class Fn>
void with_type(DType dtype, const Fn& fn) {
  switch (dtype) {
    case DType::kFloat32: fn(float{}); break;
    case DType::kFloat64: fn(double{}); break;
    case DType::kInt64: fn(int64_t{}); break;
    case DType::kUInt8: fn(uint8_t{}); break;
  }
}

template <class From, class To>
void convert(const From* x, To* y, int64_t n) {
  if constexpr (std::is_same_v<From, To>) {
    return;  // cast() returns x itself before it gets here
  } else if constexpr (std::is_same_v<To, uint8_t>) {
    kernels::cpu::cast_to_uint8(x, y, n);
  } else if constexpr (std::is_same_v<From, uint8_t>) {
    kernels::cpu::cast_from_uint8(x, y, n);
  } else {
    kernels::cpu::cast_forward(x, y, n);
  }
}

}  // namespace

// Same dtype: returns x itself (no copy, as torch's .to() and Keras's ops.cast).
// Floating → int64 truncates toward zero and saturates (NaN → 0), see kernels/cpu/unary.h.
// Anything → uint8 truncates toward zero and saturates to [0, 255] (NaN → 0; int64 300 → 255,
// −3 → 0), see kernels/cpu/cast_uint8.h; uint8 → anything is exact.
Tensor cast(const Tensor& x, DType dtype) {
  detail::check_defined(x, "ops::cast");
  if (x.dtype() == dtype) return x;
  Tensor y = detail::make_result(x.shape(), dtype, x.is_symbolic());
  if (y.is_symbolic()) return y;
  with_type(x.dtype(), [&](auto from_zero) {
    with_type(dtype, [&](auto to_zero) {
      using From = decltype(from_zero);
      using To = decltype(to_zero);
      convert(x.data<From>(), y.data<To>(), x.numel());
    });
  });
  // y = x rounded to the new float type  ⇒  dx = dy converted back to x's dtype
  if (is_floating(dtype) && is_floating(x.dtype())) {
    detail::record(y, "ops::cast", {x}, [from = x.dtype()](const Tensor& dy, detail::GradSink& sink) {
      if (sink.wants(0)) sink.add(0, cast(dy, from));
    });
  }
  return y;
}

}  // namespace ops

Tensor Tensor::to(DType dtype) const { return ops::cast(*this, dtype); }

}  // namespace normnet

// Views that keep the elements in place: reshape, flatten, squeeze, unsqueeze. The result shares
// storage with the input (tensors are contiguous, so no copy is ever needed).
#include "normnet/ops/shape_ops.h"
#include "ops/op_util.h"

namespace normnet::ops {
namespace {

using namespace detail;

// Resolves one -1 in `target` for a tensor of `shape`. With an unknown batch (symbolic input),
// a -1 in the target stands for the batch and the other extents must account for the rest.
Shape resolve(const Shape& shape, Shape target, const char* op) {
  int infer = -1;
  int64_t known = 1;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      if (infer >= 0) throw ValueError(str(op, ": more than one -1 in the target shape ", target));
      infer = static_cast<int>(i);
    } else if (target[i] < 0) {
      throw ValueError(str(op, ": invalid extent ", target[i], " in the target shape ", target));
    } else {
      known *= target[i];
    }
  }
  if (shape_has_unknown(shape)) {
    int64_t rest = 1;
    for (int64_t d : shape) if (d != kUnknownDim) rest *= d;
    if (infer < 0 || known != rest) {
      throw ShapeError(str(op, ": cannot reshape ", shape, " to ", target,
                           ": with an unknown batch, the target must keep it as -1 and hold the other ", rest,
                           " elements"));
    }
    return target;  // the -1 stays unknown
  }
  const int64_t n = shape_numel(shape);
  if (infer >= 0) {
    if (known == 0 || n % known != 0) {
      throw ShapeError(str(op, ": cannot reshape ", shape, " (", n, " elements) to ", target));
    }
    target[static_cast<std::size_t>(infer)] = n / known;
  } else if (known != n) {
    throw ShapeError(str(op, ": cannot reshape ", shape, " (", n, " elements) to ", target, " (", known,
                         " elements)"));
  }
  return target;
}

Tensor view(const Tensor& x, Shape shape, const char* op) {
  if (x.is_symbolic()) return make_result(std::move(shape), x.dtype(), true);
  if (shape == x.shape()) return x;
  auto impl = std::make_shared<normnet::detail::TensorImpl>();
  impl->shape = std::move(shape);
  impl->dtype = x.dtype();
  impl->storage = x.impl()->storage;
  Tensor out(std::move(impl));
  // y = reshape(x)  ⇒  dx = reshape(dy, x.shape)
  if (should_record({x})) {
    record(out, op, {x}, [sx = x.shape()](const Tensor& dy, GradSink& sink) { sink.add(0, reshape(dy, sx)); });
  }
  return out;
}

}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  check_defined(x, "ops::reshape");
  return view(x, resolve(x.shape(), std::move(shape), "ops::reshape"), "ops::reshape");
}

Tensor flatten(const Tensor& x) {
  check_defined(x, "ops::flatten");
  if (x.dim() < 1) throw ShapeError(str("ops::flatten: needs at least one axis, got shape ", x.shape()));
  int64_t rest = 1;
  for (std::size_t i = 1; i < x.shape().size(); ++i) rest *= x.shape()[i];
  return view(x, {x.shape()[0], rest}, "ops::flatten");
}

Tensor unsqueeze(const Tensor& x, int axis) {
  check_defined(x, "ops::unsqueeze");
  const int a = normalize_axis(axis, x.shape().size() + 1, "ops::unsqueeze", x.shape());
  Shape shape = x.shape();
  shape.insert(shape.begin() + a, 1);
  return view(x, std::move(shape), "ops::unsqueeze");
}

Tensor squeeze(const Tensor& x, int axis) {
  check_defined(x, "ops::squeeze");
  const int a = normalize_axis(axis, x.shape().size(), "ops::squeeze", x.shape());
  if (x.shape()[static_cast<std::size_t>(a)] != 1) {
    throw ShapeError(str("ops::squeeze: axis ", axis, " of shape ", x.shape(), " has extent ",
                         x.shape()[static_cast<std::size_t>(a)], ", not 1"));
  }
  Shape shape = x.shape();
  shape.erase(shape.begin() + a);
  return view(x, std::move(shape), "ops::squeeze");
}

}  // namespace normnet::ops

// Tensor handle: factories, accessors, conversion and printing. Autograd entry points live in
// src/autograd/engine.cpp.
#include "normnet/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <type_traits>

#include "core/allocator.h"
#include "core/random.h"

namespace normnet {
namespace {

std::shared_ptr<detail::TensorImpl> make_impl(Shape shape, DType dtype, bool with_data) {
  for (int64_t d : shape) {
    if (d < 0 && !(d == kUnknownDim && !with_data)) {
      throw ShapeError(detail::str("Tensor: invalid shape ", shape, " (extents must be >= 0)"));
    }
  }
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->dtype = dtype;
  if (with_data) {
    // Checked: a shape from a file or config may overflow 64 bits (signed overflow is UB).
    uint64_t n = 1, bytes = 0;
    bool overflow = false;
    for (int64_t d : shape) overflow = overflow || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n);
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) n = 0, overflow = false;
    if (overflow || __builtin_mul_overflow(std::max<uint64_t>(n, 1), dtype_size(dtype), &bytes) || bytes > (1ull << 62)) {
      throw ShapeError(detail::str("Tensor: shape ", shape, " of ", dtype_name(dtype), " is too large to allocate"));
    }
    impl->storage = std::make_shared<detail::Storage>(static_cast<std::size_t>(bytes));
  }
  impl->shape = std::move(shape);
  return impl;
}

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::kFloat32; }
template <>
constexpr DType dtype_of<double>() { return DType::kFloat64; }
template <>
constexpr DType dtype_of<int64_t>() { return DType::kInt64; }
template <>
constexpr DType dtype_of<uint8_t>() { return DType::kUInt8; }

// A double stored as T. For uint8 the rule of ops::cast: truncate toward zero, saturate to
// [0, 255], NaN → 0 (a plain static_cast of an out-of-range value is undefined behaviour).
template <class T>
T element_from(double v) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    if (!(v > 0.0)) return 0;  // also NaN
    return v >= 255.0 ? uint8_t{255} : static_cast<uint8_t>(v);
  } else {
    return static_cast<T>(v);
  }
}

// Calls fn(T*) with the tensor's typed element pointer.
template <class Fn>
void visit(Tensor& t, Fn&& fn) {
  switch (t.dtype()) {
    case DType::kFloat32: fn(t.data<float>()); break;
    case DType::kFloat64: fn(t.data<double>()); break;
    case DType::kInt64: fn(t.data<int64_t>()); break;
    case DType::kUInt8: fn(t.data<uint8_t>()); break;
  }
}

template <class T>
Tensor from_values(const std::vector<T>& values, Shape shape) {
  const int64_t n = shape_numel(shape);
  if (n < 0 || static_cast<std::size_t>(n) != values.size()) {
    throw ShapeError(detail::str("Tensor::from_vector: ", values.size(), " values do not fill shape ",
                                 shape, " (", n, " elements)"));
  }
  Tensor t(make_impl(std::move(shape), dtype_of<T>(), true));
  if (!values.empty()) std::memcpy(t.data<T>(), values.data(), values.size() * sizeof(T));
  return t;
}

}  // namespace

Tensor Tensor::empty(Shape shape, DType dtype) { return Tensor(make_impl(std::move(shape), dtype, true)); }

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  std::memset(t.impl_->storage->data(), 0, static_cast<std::size_t>(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor Tensor::ones(Shape shape, DType dtype) { return full(std::move(shape), 1.0, dtype); }

Tensor Tensor::full(Shape shape, double value, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  const int64_t n = t.numel();
  visit(t, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (int64_t i = 0; i < n; ++i) p[i] = element_from<T>(value);
  });
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

namespace {
// Random samples are real numbers: an integer dtype would silently truncate and saturate them (randn
// into uint8 gave mostly 0: negative and fractional samples truncate). PyTorch raises for
// torch.randn(..., dtype=torch.uint8) too.
void check_sampling_dtype(const char* op, DType dtype) {
  if (!is_floating(dtype)) {
    throw ValueError(detail::str("Tensor::", op, ": dtype must be float32 or float64, got ", dtype_name(dtype),
                                 " (draw float32 and ops::cast it)"));
  }
}
}  // namespace

Tensor Tensor::randn(Shape shape, uint64_t seed, DType dtype) {
  check_sampling_dtype("randn", dtype);
  Tensor t = empty(std::move(shape), dtype);
  detail::Rng rng(seed);
  const int64_t n = t.numel();
  visit(t, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (int64_t i = 0; i < n; ++i) p[i] = element_from<T>(rng.normal());
  });
  return t;
}

Tensor Tensor::uniform(Shape shape, double lo, double hi, uint64_t seed, DType dtype) {
  check_sampling_dtype("uniform", dtype);
  if (!(hi >= lo)) throw ValueError(detail::str("Tensor::uniform: expected lo <= hi, got ", lo, " and ", hi));
  Tensor t = empty(std::move(shape), dtype);
  detail::Rng rng(seed);
  const int64_t n = t.numel();
  visit(t, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (int64_t i = 0; i < n; ++i) p[i] = element_from<T>(lo + (hi - lo) * rng.uniform());
  });
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, Shape shape) { return from_values(values, std::move(shape)); }
Tensor Tensor::from_vector(const std::vector<double>& values, Shape shape) { return from_values(values, std::move(shape)); }
Tensor Tensor::from_vector(const std::vector<int64_t>& values, Shape shape) { return from_values(values, std::move(shape)); }
Tensor Tensor::from_vector(const std::vector<uint8_t>& values, Shape shape) { return from_values(values, std::move(shape)); }

Tensor Tensor::arange(int64_t n, DType dtype) { return arange(0.0, static_cast<double>(n), 1.0, dtype); }

Tensor Tensor::arange(double start, double stop, double step, DType dtype) {
  if (step == 0.0) throw ValueError("Tensor::arange: step must not be 0");
  const double count = std::ceil((stop - start) / step);
  const auto n = static_cast<int64_t>(count > 0 ? count : 0);
  Tensor t = empty({n}, dtype);
  visit(t, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (int64_t i = 0; i < n; ++i) p[i] = element_from<T>(start + static_cast<double>(i) * step);
  });
  return t;
}

Tensor Tensor::symbolic(Shape shape, DType dtype) {
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0 && shape[i] != kUnknownDim) {
      throw ShapeError(detail::str("Tensor::symbolic: invalid shape ", shape));
    }
  }
  return Tensor(make_impl(std::move(shape), dtype, false));
}

void Tensor::check_defined(const char* who) const {
  if (!impl_) throw Error(detail::str("Tensor::", who, ": the tensor is undefined"));
}

bool Tensor::is_symbolic() const { return impl_ && !impl_->storage; }
const Shape& Tensor::shape() const { check_defined("shape"); return impl_->shape; }
int64_t Tensor::dim() const { return static_cast<int64_t>(shape().size()); }
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const { check_defined("dtype"); return impl_->dtype; }

int64_t Tensor::size(int64_t axis) const {
  return shape()[static_cast<std::size_t>(normalize_axis(axis, shape().size(), "Tensor::size", shape()))];
}

template <class T>
T* Tensor::data() {
  check_defined("data");
  if (impl_->dtype != dtype_of<T>()) {
    throw Error(detail::str("Tensor::data: requested ", dtype_name(dtype_of<T>()), " from a ",
                            dtype_name(impl_->dtype), " tensor of shape ", impl_->shape));
  }
  if (!impl_->storage) {
    throw Error(detail::str("Tensor::data: the tensor of shape ", impl_->shape,
                            " is symbolic (it has a shape but no values)"));
  }
  return static_cast<T*>(impl_->storage->data());
}

template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  if (dtype() != dtype_of<T>()) return to(dtype_of<T>()).template to_vector<T>();
  const T* p = data<T>();
  return std::vector<T>(p, p + numel());
}

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template int64_t* Tensor::data<int64_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const int64_t* Tensor::data<int64_t>() const;
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>();
template const uint8_t* Tensor::data<uint8_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

double Tensor::item() const {
  if (numel() != 1) {
    throw ValueError(detail::str("Tensor::item: expected a tensor with one element, got shape ", shape()));
  }
  switch (dtype()) {
    case DType::kFloat32: return data<float>()[0];
    case DType::kFloat64: return data<double>()[0];
    case DType::kInt64: return static_cast<double>(data<int64_t>()[0]);
    case DType::kUInt8: return data<uint8_t>()[0];
  }
  return 0.0;
}

Tensor Tensor::clone() const {
  check_defined("clone");
  if (is_symbolic()) return symbolic(shape(), dtype());
  Tensor t = empty(shape(), dtype());
  std::memcpy(t.impl_->storage->data(), impl_->storage->data(), static_cast<std::size_t>(numel()) * dtype_size(dtype()));
  return t;
}

Tensor Tensor::detach() const {
  check_defined("detach");
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  impl->storage = impl_->storage;
  impl->origin = impl_->origin;
  impl->mask = impl_->mask;
  return Tensor(std::move(impl));
}

Tensor Tensor::mask() const {
  check_defined("mask");
  return impl_->mask ? Tensor(impl_->mask) : Tensor();
}

void Tensor::set_mask(const Tensor& mask) {
  check_defined("set_mask");
  impl_->mask = mask.impl();
}

std::string Tensor::to_string() const {
  std::ostringstream out;
  out << *this;
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
  if (!t.defined()) return out << "Tensor(undefined)";
  out << "Tensor(" << dtype_name(t.dtype()) << ", " << shape_to_string(t.shape());
  if (t.is_symbolic()) return out << ", symbolic)";
  out << ")";
  const Shape& shape = t.shape();
  const int64_t n = t.numel();
  constexpr int64_t kMaxShown = 64;
  std::vector<double> values;
  if (t.dtype() == DType::kInt64) {
    for (int64_t v : t.to_vector<int64_t>()) values.push_back(static_cast<double>(v));
  } else {
    values = t.to_vector<double>();
  }
  // Nested brackets, one level per axis; elided after kMaxShown values.
  out << ' ';
  if (shape.empty()) return out << values[0];
  // block[a] = elements in one sub-array of axis a; a bracket opens where an index is a
  // multiple of it and closes where the next index is.
  std::vector<int64_t> block(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    block[i] = shape[i] * (i + 1 < static_cast<int>(shape.size()) ? block[i + 1] : 1);
  }
  for (int64_t i = 0; i < n && i < kMaxShown; ++i) {
    for (std::size_t a = 0; a < shape.size(); ++a) if (block[a] > 0 && i % block[a] == 0) out << '[';
    out << values[static_cast<std::size_t>(i)];
    for (std::size_t a = 0; a < shape.size(); ++a) if (block[a] > 0 && (i + 1) % block[a] == 0) out << ']';
    if (i + 1 < n) out << ", ";
  }
  if (n > kMaxShown) out << "...";
  return out;
}

}  // namespace normnet

// Tensor: a cheap handle to shared, row-major, contiguous storage, with reverse-mode autograd.
//
//   auto x = normnet::Tensor::randn({4, 3}, /*seed=*/1).set_requires_grad(true);
//   auto loss = normnet::ops::sum(x * x);
//   loss.backward();            // x.grad() == 2x
//
// A tensor without data is *symbolic*: it has a shape (whose batch extent may be unknown, -1)
// and every op accepts it, computing only the output shape. The functional API, Lambda shape
// inference and summary() run the same op code on symbolic tensors.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "normnet/error.h"
#include "normnet/shape.h"

namespace normnet {

class Tensor;

namespace detail {
class Storage;
struct Node;
struct GraphOrigin;  // defined by the model layer: which layer call produced a symbolic tensor

struct TensorImpl {
  Shape shape;
  DType dtype = DType::kFloat32;
  std::shared_ptr<Storage> storage;  // null for a symbolic tensor
  bool requires_grad = false;        // set on leaves by the user
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor, if recorded
  std::shared_ptr<GraphOrigin> origin;  // functional-API history (symbolic tensors)
  std::shared_ptr<TensorImpl> mask;     // Keras-style mask carried with the tensor, if any
};
}  // namespace detail

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: defined() == false
  explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (all return contiguous, freshly allocated tensors) ----
  [[nodiscard]] static Tensor empty(Shape shape, DType dtype = DType::kFloat32);
  [[nodiscard]] static Tensor zeros(Shape shape, DType dtype = DType::kFloat32);
  [[nodiscard]] static Tensor ones(Shape shape, DType dtype = DType::kFloat32);
  [[nodiscard]] static Tensor full(Shape shape, double value, DType dtype = DType::kFloat32);
  [[nodiscard]] static Tensor scalar(double value, DType dtype = DType::kFloat32);
  // Standard normal samples; the same seed gives the same values on every machine. float32 or
  // float64 (ValueError for an integer dtype: cast a float draw instead).
  [[nodiscard]] static Tensor randn(Shape shape, uint64_t seed, DType dtype = DType::kFloat32);
  // Uniform samples in [lo, hi); float32 or float64, as randn.
  [[nodiscard]] static Tensor uniform(Shape shape, double lo, double hi, uint64_t seed,
                                      DType dtype = DType::kFloat32);
  [[nodiscard]] static Tensor from_vector(const std::vector<float>& values, Shape shape);
  [[nodiscard]] static Tensor from_vector(const std::vector<double>& values, Shape shape);
  [[nodiscard]] static Tensor from_vector(const std::vector<int64_t>& values, Shape shape);
  // A uint8 (storage) tensor, e.g. image bytes 0..255.
  [[nodiscard]] static Tensor from_vector(const std::vector<uint8_t>& values, Shape shape);
  // 0, 1, ..., n-1 (and start, start+step, ... < stop).
  [[nodiscard]] static Tensor arange(int64_t n, DType dtype = DType::kFloat32);
  [[nodiscard]] static Tensor arange(double start, double stop, double step,
                                     DType dtype = DType::kFloat32);
  // A shape-only tensor; the first extent may be kUnknownDim.
  [[nodiscard]] static Tensor symbolic(Shape shape, DType dtype = DType::kFloat32);

  // ---- accessors ----
  [[nodiscard]] bool defined() const { return impl_ != nullptr; }
  [[nodiscard]] bool is_symbolic() const;
  [[nodiscard]] const Shape& shape() const;
  [[nodiscard]] int64_t dim() const;
  [[nodiscard]] int64_t numel() const;
  // Extent of one axis; negative axes count from the end.
  [[nodiscard]] int64_t size(int64_t axis) const;
  [[nodiscard]] DType dtype() const;
  // Raw element pointer (T = float, double, int64_t or uint8_t); throws Error if T does not match
  // dtype() or the tensor is symbolic.
  template <class T>
  [[nodiscard]] T* data();
  template <class T>
  [[nodiscard]] const T* data() const;
  template <class T>
  [[nodiscard]] std::vector<T> to_vector() const;
  // The single element of a one-element tensor, as a double.
  [[nodiscard]] double item() const;
  // x converted to `dtype` (differentiable between floating types); x itself when the dtype
  // already matches, as torch.Tensor.to and keras.ops.cast do.
  [[nodiscard]] Tensor to(DType dtype) const;
  // A deep copy of the data (not recorded by autograd).
  [[nodiscard]] Tensor clone() const;
  // Shares data and shape, not the graph: never requires grad.
  [[nodiscard]] Tensor detach() const;
  // "Tensor(float32, [2, 3]) [[...]]", for debugging.
  [[nodiscard]] std::string to_string() const;

  // ---- autograd ----
  // Marks a leaf as needing a gradient. Returns *this for chaining.
  Tensor& set_requires_grad(bool requires_grad = true);
  // True for a leaf marked with set_requires_grad, and for results of recorded ops.
  [[nodiscard]] bool requires_grad() const;
  // Back-propagates from a one-element tensor (seed 1), accumulating into leaves' grad().
  void backward() const;
  // Back-propagates with an explicit upstream gradient of this tensor's shape.
  void backward(const Tensor& grad) const;
  // The accumulated gradient of a leaf (undefined until a backward reached it).
  [[nodiscard]] Tensor grad() const;
  void zero_grad();
  void set_grad(const Tensor& grad);

  // ---- Keras-style mask carried with the tensor ----
  [[nodiscard]] Tensor mask() const;
  void set_mask(const Tensor& mask);

  [[nodiscard]] const std::shared_ptr<detail::TensorImpl>& impl() const { return impl_; }
  // True when both handles share one tensor.
  [[nodiscard]] bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  void check_defined(const char* who) const;
  std::shared_ptr<detail::TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

// Elementwise arithmetic with NumPy broadcasting (see normnet/ops/elementwise.h).
[[nodiscard]] Tensor operator+(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor operator-(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor operator*(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor operator/(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor operator-(const Tensor& a);
[[nodiscard]] Tensor operator+(const Tensor& a, double b);
[[nodiscard]] Tensor operator-(const Tensor& a, double b);
[[nodiscard]] Tensor operator*(const Tensor& a, double b);
[[nodiscard]] Tensor operator/(const Tensor& a, double b);
[[nodiscard]] Tensor operator+(double a, const Tensor& b);
[[nodiscard]] Tensor operator-(double a, const Tensor& b);
[[nodiscard]] Tensor operator*(double a, const Tensor& b);
[[nodiscard]] Tensor operator/(double a, const Tensor& b);

}  // namespace normnet

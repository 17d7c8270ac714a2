// Neural-network ops: softmax and log-softmax over any axis, inverted dropout, embedding lookup
// and the fused sparse softmax cross-entropy. Each forward is followed by its backward closure.
#include "normnet/ops/nn.h"

#include "kernels/cpu/dropout.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/softmax.h"
#include "ops/op_util.h"

namespace normnet::ops {
namespace {

namespace cpu = normnet::kernels::cpu;
using detail::GradSink;
using detail::str;

// Calls fn(T{}) with T the element type of a floating dtype.
template <class Fn>
void with_floating(DType dtype, const Fn& fn) {
  if (dtype == DType::kFloat32) fn(float{});
  else fn(double{});
}

// x viewed as [outer, K, inner] around `axis` (see kernels/cpu/softmax.h).
struct AxisView {
  int64_t outer = 1, K = 1, inner = 1;
};

AxisView view_around(const Shape& shape, int axis) {
  AxisView v;
  for (int a = 0; a < axis; ++a) v.outer *= shape[static_cast<std::size_t>(a)];
  v.K = shape[static_cast<std::size_t>(axis)];
  for (std::size_t a = static_cast<std::size_t>(axis) + 1; a < shape.size(); ++a) v.inner *= shape[a];
  return v;
}

// The shared shape rule and forward of softmax and log_softmax: y has x's shape.
template <class Forward>
Tensor softmax_family(const Tensor& x, int axis, const char* op, AxisView& view, const Forward& forward) {
  detail::check_floating(x, op);
  const int a = normalize_axis(axis, x.shape().size(), op, x.shape());
  Tensor y = detail::make_result(x.shape(), x.dtype(), x.is_symbolic());
  if (y.is_symbolic()) return y;
  view = view_around(x.shape(), a);
  with_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    forward(x.data<T>(), y.data<T>(), view);
  });
  return y;
}

void check_int64(const Tensor& t, const char* op, const char* arg) {
  detail::check_defined(t, op, arg);
  if (t.dtype() != DType::kInt64) {
    throw ValueError(str(op, ": ", arg, " must be int64, got ", dtype_name(t.dtype()), " of shape ", t.shape()));
  }
}

}  // namespace

Tensor softmax(const Tensor& x, int axis) {
  AxisView v;
  Tensor y = softmax_family(x, axis, "ops::softmax", v, [](const auto* px, auto* py, const AxisView& w) {
    cpu::softmax_forward(px, py, w.outer, w.K, w.inner);
  });
  // y = eˣ⁻ᵐ/Σₖ eˣ⁻ᵐ along the axis  ⇒  dx = y ⊙ (dy − ⟨dy, y⟩)
  if (detail::should_record({x})) {
    detail::record(y, "ops::softmax", {x}, [saved = y.detach(), v](const Tensor& dy, GradSink& sink) {
      if (!sink.wants(0)) return;
      Tensor dx = sink.buffer(0);
      with_floating(dx.dtype(), [&](auto zero) {
        using T = decltype(zero);
        cpu::softmax_backward(saved.data<T>(), dy.data<T>(), dx.data<T>(), v.outer, v.K, v.inner);
      });
    });
  }
  return y;
}

Tensor log_softmax(const Tensor& x, int axis) {
  AxisView v;
  Tensor y = softmax_family(x, axis, "ops::log_softmax", v, [](const auto* px, auto* py, const AxisView& w) {
    cpu::log_softmax_forward(px, py, w.outer, w.K, w.inner);
  });
  // y = x − m − ln Σₖ eˣ⁻ᵐ along the axis  ⇒  dx = dy − eʸ·Σₖ dy
  if (detail::should_record({x})) {
    detail::record(y, "ops::log_softmax", {x}, [saved = y.detach(), v](const Tensor& dy, GradSink& sink) {
      if (!sink.wants(0)) return;
      Tensor dx = sink.buffer(0);
      with_floating(dx.dtype(), [&](auto zero) {
        using T = decltype(zero);
        cpu::log_softmax_backward(saved.data<T>(), dy.data<T>(), dx.data<T>(), v.outer, v.K, v.inner);
      });
    });
  }
  return y;
}

Tensor dropout(const Tensor& x, double rate, bool training, uint64_t seed) {
  detail::check_floating(x, "ops::dropout");
  if (!(rate >= 0.0 && rate < 1.0)) {
    throw ValueError(str("ops::dropout: rate must be in [0, 1), got ", rate, " (input shape ", x.shape(), ")"));
  }
  if (!training || rate == 0.0) return x;
  Tensor y = detail::make_result(x.shape(), x.dtype(), x.is_symbolic());
  if (y.is_symbolic()) return y;
  with_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::dropout_forward(x.data<T>(), rate, seed, y.data<T>(), x.numel());
  });
  // y = x·mask  ⇒  dx = dy·mask, with mask ∈ {0, 1/(1 − rate)} a function of (seed, index) that
  // backward recomputes (kernels/cpu/dropout.h) rather than storing. dx is written into a fresh
  // tensor the sink takes as is when x has no gradient yet (no zero fill).
  if (detail::should_record({x})) {
    detail::record(y, "ops::dropout", {x}, [rate, seed](const Tensor& dy, GradSink& sink) {
      if (!sink.wants(0)) return;
      Tensor dx = Tensor::empty(dy.shape(), dy.dtype());
      with_floating(dx.dtype(), [&](auto zero) {
        using T = decltype(zero);
        cpu::dropout_backward_write(rate, seed, dy.data<T>(), dx.data<T>(), dx.numel());
      });
      sink.add(0, dx);
    });
  }
  return y;
}

Tensor embedding(const Tensor& table, const Tensor& indices) {
  const char* op = "ops::embedding";
  detail::check_floating(table, op, "table");
  check_int64(indices, op, "indices");
  if (table.dim() != 2) {
    throw ShapeError(str(op, ": table must be 2-d [V, D], got shape ", table.shape(), " (indices shape ",
                         indices.shape(), ")"));
  }
  const int64_t V = table.shape()[0];
  const int64_t D = table.shape()[1];
  Shape out_shape = indices.shape();
  out_shape.push_back(D);
  Tensor y = detail::make_result(out_shape, table.dtype(), detail::any_symbolic({table, indices}));
  if (y.is_symbolic()) return y;
  const int64_t n = indices.numel();
  const int64_t* idx = indices.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] < 0 || idx[i] >= V) {
      throw ValueError(str(op, ": index ", idx[i], " (at flat position ", i, " of indices ", indices.shape(),
                           ") is out of range for a table of V = ", V, " rows, shape ", table.shape()));
    }
  }
  with_floating(table.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::embedding_forward(table.data<T>(), idx, n, D, y.data<T>());
  });
  // y[i, :] = table[idx[i], :]  ⇒  dtable[idx[i], :] += dy[i, :] (repeated indices add up)
  if (detail::should_record({table})) {
    detail::record(y, op, {table, indices}, [kept = indices.detach(), n, D](const Tensor& dy, GradSink& sink) {
      if (!sink.wants(0)) return;
      Tensor dtable = sink.buffer(0);
      with_floating(dtable.dtype(), [&](auto zero) {
        using T = decltype(zero);
        cpu::embedding_backward(kept.data<int64_t>(), dy.data<T>(), n, D, dtable.data<T>());
      });
    });
  }
  return y;
}

Tensor sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels) {
  const char* op = "ops::sparse_softmax_cross_entropy";
  detail::check_floating(logits, op, "logits");
  check_int64(labels, op, "labels");
  const Shape& ls = logits.shape();
  const Shape& ts = labels.shape();
  if (ls.size() != 2 || ts.size() != 1 || (ls[0] != ts[0] && ls[0] != kUnknownDim && ts[0] != kUnknownDim)) {
    throw ShapeError(str(op, ": expected logits [N, C] and labels [N], got logits ", ls, " and labels ", ts));
  }
  Tensor loss = detail::make_result({}, logits.dtype(), detail::any_symbolic({logits, labels}));
  if (loss.is_symbolic()) return loss;
  const int64_t N = ls[0];
  const int64_t C = ls[1];
  const int64_t* label = labels.data<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    if (label[n] < 0 || label[n] >= C) {
      throw ValueError(str(op, ": label ", label[n], " at position ", n, " is out of range [0, ", C,
                           ") for C = ", C, " classes (logits shape ", ls, ")"));
    }
  }
  Tensor lse = Tensor::empty({N}, DType::kFloat64);  // ln Σ_c e^{logits[n, c]}, kept for backward
  Tensor row_loss = Tensor::empty({N}, DType::kFloat64);
  with_floating(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const double total = cpu::sparse_softmax_cross_entropy_forward(logits.data<T>(), label, N, C,
                                                                   lse.data<double>(), row_loss.data<double>());
    loss.data<T>()[0] = static_cast<T>(total / static_cast<double>(N));  // N = 0 gives NaN, a mean of nothing
  });
  // loss = (1/N)·Σₙ (lseₙ − xₙ,ₗₙ)  ⇒  dx = dloss·(softmax(x) − onehot(l))/N
  if (detail::should_record({logits})) {
    detail::record(loss, op, {logits, labels},
                   [x = logits.detach(), l = labels.detach(), lse, N, C](const Tensor& dy, GradSink& sink) {
                     if (!sink.wants(0)) return;
                     const double scale = dy.item() / static_cast<double>(N);
                     Tensor dx = sink.buffer(0);
                     with_floating(dx.dtype(), [&](auto zero) {
                       using T = decltype(zero);
                       cpu::sparse_softmax_cross_entropy_backward(x.data<T>(), l.data<int64_t>(), lse.data<double>(),
                                                                  scale, N, C, dx.data<T>());
                     });
                   });
  }
  return loss;
}

}  // namespace normnet::ops

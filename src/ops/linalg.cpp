// matmul and linear: shape rules, forward through the matmul kernel (oneDNN for float32), and
// backward as two more products.
#include "normnet/ops/linalg.h"

#include <algorithm>

#include "kernels/cpu/matmul.h"
#include "normnet/ops/shape_ops.h"
#include "ops/op_util.h"

namespace normnet::ops {
namespace {

using namespace detail;
using kernels::cpu::MatmulDims;

Shape batch_of(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// Batch axes of a and b broadcast NumPy-style; the message names both full shapes.
Shape broadcast_batch(const Shape& a, const Shape& b) {
  const Shape ab = batch_of(a), bb = batch_of(b);
  const std::size_t rank = std::max(ab.size(), bb.size());
  Shape out(rank);
  for (std::size_t k = 0; k < rank; ++k) {
    const int64_t da = k < ab.size() ? ab[ab.size() - 1 - k] : 1;
    const int64_t db = k < bb.size() ? bb[bb.size() - 1 - k] : 1;
    if (da != db && da != 1 && db != 1 && da != kUnknownDim && db != kUnknownDim) {
      throw ShapeError(str("ops::matmul: shapes ", a, " and ", b, " do not broadcast on their batch axes (", da,
                           " vs ", db, ")"));
    }
    out[rank - 1 - k] = (da == 1 || da == kUnknownDim) ? db : da;
    if (da == kUnknownDim && db == 1) out[rank - 1 - k] = kUnknownDim;
  }
  return out;
}

// Right-aligns `batch` to `rank` axes, padding with 1.
void fill_batch(int64_t* dst, const Shape& batch, int rank) {
  const int lead = rank - static_cast<int>(batch.size());
  for (int i = 0; i < rank; ++i) dst[i] = i < lead ? 1 : batch[i - lead];
}

// The product op(a)[a_batch, M, K] · op(b)[b_batch, K, N] as kernel dims.
MatmulDims product_dims(const Shape& a_batch, const Shape& b_batch, int64_t m, int64_t k, int64_t n,
                        bool transpose_a, bool transpose_b) {
  MatmulDims d;
  d.batch_rank = static_cast<int>(std::max(a_batch.size(), b_batch.size()));
  if (d.batch_rank > kernels::cpu::kMaxMatmulBatchRank) {
    throw ShapeError(str("ops::matmul: at most ", kernels::cpu::kMaxMatmulBatchRank, " batch axes are supported, got ",
                         d.batch_rank));
  }
  fill_batch(d.a_batch, a_batch, d.batch_rank);
  fill_batch(d.b_batch, b_batch, d.batch_rank);
  d.m = m;
  d.k = k;
  d.n = n;
  d.transpose_a = transpose_a;
  d.transpose_b = transpose_b;
  return d;
}

// out = op(a)·op(b) (+ bias) into a fresh tensor of `shape`.
Tensor run_product(const Tensor& a, const Tensor& b, const Tensor& bias, const MatmulDims& d, Shape shape) {
  Tensor out = Tensor::empty(std::move(shape), a.dtype());
  if (a.dtype() == DType::kFloat32) {
    kernels::cpu::matmul_forward(a.data<float>(), b.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                                 out.data<float>(), d);
  } else {
    kernels::cpu::matmul_forward(a.data<double>(), b.data<double>(),
                                 bias.defined() ? bias.data<double>() : nullptr, out.data<double>(), d);
  }
  return out;
}

Shape with_last_two(Shape batch, int64_t r, int64_t c) {
  batch.push_back(r);
  batch.push_back(c);
  return batch;
}

bool all_ones(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](int64_t e) { return e == 1; });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  constexpr const char* kOp = "ops::matmul";
  check_floating(a, kOp, "a");
  check_floating(b, kOp, "b");
  check_same_dtype(a, b, kOp);
  if (a.dim() < 2 || b.dim() < 2) {
    throw ShapeError(str(kOp, ": both operands need rank >= 2 ([..., M, K] and [..., K, N]), got shapes ", a.shape(),
                         " and ", b.shape()));
  }
  const int64_t m = a.size(-2), k = a.size(-1), kb = b.size(-2), n = b.size(-1);
  if (k != kb && k != kUnknownDim && kb != kUnknownDim) {
    throw ShapeError(str(kOp, ": shapes ", a.shape(), " and ", b.shape(),
                         " do not match on the inner dimension (", k, " vs ", kb, ")"));
  }
  const Shape batch = broadcast_batch(a.shape(), b.shape());
  const Shape out_shape = with_last_two(batch, m, n);
  if (any_symbolic({a, b})) return make_result(out_shape, a.dtype(), /*symbolic=*/true);

  const Shape a_batch = batch_of(a.shape()), b_batch = batch_of(b.shape());
  Tensor out = run_product(a, b, Tensor(), product_dims(a_batch, b_batch, m, k, n, false, false), out_shape);
  if (!should_record({a, b})) return out;

  // y = a·b  ⇒  da = dy·bᵀ, db = aᵀ·dy, each summed over the batch axes its operand was broadcast on.
  record(out, kOp, {a, b}, [a = a.detach(), b = b.detach(), batch, m, k, n](const Tensor& dy, GradSink& sink) {
    const Shape a_batch = batch_of(a.shape()), b_batch = batch_of(b.shape());
    if (sink.wants(0)) {
      const MatmulDims d = product_dims(batch, b_batch, m, n, k, false, /*transpose_b=*/true);
      sink.add(0, sum_to(run_product(dy, b, Tensor(), d, with_last_two(batch, m, k)), a.shape()));
    }
    if (sink.wants(1)) {
      if (all_ones(b_batch)) {
        // b is shared by every batch matrix: db = Σ_batch a_iᵀ·dy_i = [B·M, K]ᵀ·[B·M, N] in one product.
        const int64_t rows = a.numel() / k;
        const MatmulDims d = product_dims({}, {}, k, rows, n, /*transpose_a=*/true, false);
        sink.add(1, run_product(a, dy, Tensor(), d, b.shape()));
      } else {
        const MatmulDims d = product_dims(a_batch, batch, k, m, n, /*transpose_a=*/true, false);
        sink.add(1, sum_to(run_product(a, dy, Tensor(), d, with_last_two(batch, k, n)), b.shape()));
      }
    }
  });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& kernel, const Tensor& bias) {
  constexpr const char* kOp = "ops::linear";
  check_floating(x, kOp, "x");
  check_floating(kernel, kOp, "kernel");
  check_same_dtype(x, kernel, kOp);
  if (x.dim() < 1 || kernel.dim() != 2) {
    throw ShapeError(str(kOp, ": expected x [..., K] and kernel [K, N], got shapes ", x.shape(), " and ",
                         kernel.shape()));
  }
  const int64_t k = x.size(-1), n = kernel.size(1);
  if (k != kernel.size(0)) {
    throw ShapeError(str(kOp, ": shapes ", x.shape(), " and ", kernel.shape(), " do not match on the inner dimension (",
                         k, " vs ", kernel.size(0), ")"));
  }
  if (bias.defined()) {
    check_floating(bias, kOp, "bias");
    check_same_dtype(x, bias, kOp);
    if (bias.shape() != Shape{n}) {
      throw ShapeError(str(kOp, ": bias shape ", bias.shape(), " does not match kernel shape ", kernel.shape(),
                           " (expected [", n, "])"));
    }
  }
  Shape out_shape = x.shape();
  out_shape.back() = n;
  if (any_symbolic({x, kernel, bias})) return make_result(out_shape, x.dtype(), /*symbolic=*/true);

  const int64_t m = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));  // x as [M, K]
  Tensor out = run_product(x, kernel, bias, product_dims({}, {}, m, k, n, false, false), out_shape);
  if (!should_record({x, kernel, bias})) return out;

  // y = x·W + b (x as [M, K])  ⇒  dx = dy·Wᵀ, dW = xᵀ·dy, db = Σ_rows dy
  record(out, kOp, {x, kernel, bias},
         [x = x.detach(), kernel = kernel.detach(), m, k, n](const Tensor& dy, GradSink& sink) {
           if (sink.wants(0)) {
             sink.add(0, run_product(dy, kernel, Tensor(), product_dims({}, {}, m, n, k, false, true), x.shape()));
           }
           if (sink.wants(1)) {
             sink.add(1, run_product(x, dy, Tensor(), product_dims({}, {}, k, m, n, true, false), kernel.shape()));
           }
           if (sink.wants(2)) {
             Tensor dbias = Tensor::empty({n}, dy.dtype());
             if (dy.dtype() == DType::kFloat32) kernels::cpu::bias_backward(dy.data<float>(), dbias.data<float>(), m, n);
             else kernels::cpu::bias_backward(dy.data<double>(), dbias.data<double>(), m, n);
             sink.add(2, dbias);
           }
         });
  return out;
}

}  // namespace normnet::ops

// Finite-difference VJP check shared by every op and layer test.
#include "support/gradcheck.h"

#include <cmath>
#include <sstream>

#include "normnet/autograd.h"

namespace normnet::testing {
namespace {

double dot(const Tensor& y, const Tensor& u) {
  const double* py = y.data<double>();
  const double* pu = u.data<double>();
  double acc = 0.0;
  for (int64_t i = 0; i < y.numel(); ++i) acc += py[i] * pu[i];
  return acc;
}

bool skipped(const GradCheckOptions& opts, std::size_t i) {
  for (std::size_t s : opts.skip_inputs) if (s == i) return true;
  return false;
}

bool near_kink(const GradCheckOptions& opts, double x) {
  for (double k : opts.kinks) if (std::abs(x - k) < opts.kink_width) return true;
  return false;
}

// Fresh leaves (copies) so that gradients of earlier runs do not leak in.
std::vector<Tensor> fresh_leaves(const std::vector<Tensor>& inputs, const GradCheckOptions& opts) {
  std::vector<Tensor> leaves;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Tensor t = inputs[i].clone();
    if (t.dtype() == DType::kFloat64 && !skipped(opts, i)) t.set_requires_grad(true);
    leaves.push_back(t);
  }
  return leaves;
}

}  // namespace

double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  const auto va = a.to_vector<double>();
  const auto vb = b.to_vector<double>();
  double worst = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double d = std::abs(va[i] - vb[i]);
    if (std::isnan(d)) return NAN;
    worst = std::max(worst, d);
  }
  return worst;
}

::testing::AssertionResult gradcheck(const GradFn& f, const std::vector<Tensor>& inputs,
                                     const GradCheckOptions& opts) {
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (is_floating(inputs[i].dtype()) && inputs[i].dtype() != DType::kFloat64 && !skipped(opts, i)) {
      return ::testing::AssertionFailure() << "gradcheck: input " << i << " must be float64";
    }
  }
  std::vector<Tensor> leaves = fresh_leaves(inputs, opts);
  Tensor y = f(leaves);
  if (y.dtype() != DType::kFloat64) return ::testing::AssertionFailure() << "gradcheck: output must be float64";
  const Tensor u = Tensor::randn(y.shape(), opts.seed, DType::kFloat64);
  y.backward(u);

  std::ostringstream failures;
  int failed = 0;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype() != DType::kFloat64 || skipped(opts, i)) continue;
    const Tensor analytic = leaves[i].grad();
    if (!analytic.defined()) {
      return ::testing::AssertionFailure() << "gradcheck: input " << i << " received no gradient";
    }
    const double* ga = analytic.data<double>();
    for (int64_t j = 0; j < inputs[i].numel(); ++j) {
      std::vector<Tensor> shifted(inputs.begin(), inputs.end());
      shifted[i] = inputs[i].clone();
      double* p = shifted[i].data<double>();
      const double x0 = p[j];
      if (near_kink(opts, x0)) continue;
      p[j] = x0 + opts.step;
      const double plus = dot(f(shifted), u);
      p[j] = x0 - opts.step;
      const double minus = dot(f(shifted), u);
      const double numeric = (plus - minus) / (2.0 * opts.step);
      const double err = std::abs(ga[j] - numeric);
      if (!(err <= opts.atol + opts.rtol * std::abs(numeric))) {
        if (++failed <= 8) {
          failures << "\n  input " << i << " element " << j << ": analytic " << ga[j] << ", numeric " << numeric
                   << " (x = " << x0 << ")";
        }
      }
    }
  }
  if (failed) return ::testing::AssertionFailure() << failed << " gradient element(s) differ:" << failures.str();

  if (opts.check_accumulation) {
    set_grad_enabled(true);
    Tensor y2 = f(leaves);  // leaves still hold the first gradient: backward must add to it
    y2.backward(u);
    Tensor y3 = f(leaves);
    y3.backward(Tensor::zeros(y3.shape(), DType::kFloat64));  // zero upstream must add nothing
    set_grad_enabled(false);
    std::vector<Tensor> once = fresh_leaves(inputs, opts);
    {
      set_grad_enabled(true);
      f(once).backward(u);
      set_grad_enabled(false);
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].dtype() != DType::kFloat64 || skipped(opts, i)) continue;
      const auto twice = leaves[i].grad().to_vector<double>();
      const auto single = once[i].grad().to_vector<double>();
      for (std::size_t j = 0; j < single.size(); ++j) {
        if (!(std::abs(twice[j] - 2.0 * single[j]) <= 1e-9 * (1.0 + std::abs(single[j])))) {
          return ::testing::AssertionFailure() << "gradcheck: input " << i << " element " << j
                                               << ": a second backward did not add (got " << twice[j]
                                               << ", expected " << 2.0 * single[j] << ")";
        }
      }
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace normnet::testing

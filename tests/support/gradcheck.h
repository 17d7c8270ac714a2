// The one finite-difference gradient checker: float64 central differences of a random
// vector-Jacobian product, compared with what backward() produced.
//
//   EXPECT_TRUE(normnet::testing::gradcheck(
//       [](const std::vector<Tensor>& in) { return ops::l2_normalize(in[0]); },
//       {Tensor::randn({4, 5}, 1, DType::kFloat64)}));
//
// For each input x_i it checks ∂⟨f(x), u⟩/∂x_i against (⟨f(x+h·e_j), u⟩ − ⟨f(x−h·e_j), u⟩)/2h for
// every element j, with u random; then that a second backward *adds* (grads double) and that
// u = 0 gives zero gradients.
#pragma once

#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "normnet/tensor.h"

namespace normnet::testing {

struct GradCheckOptions {
  double step = 1e-6;   // h of the central difference
  double atol = 1e-6;   // |analytic − numeric| <= atol + rtol·|numeric|
  double rtol = 1e-5;
  uint64_t seed = 1234; // seed of the upstream gradient u
  // Inputs (by index) not to check, e.g. integer indices or a non-differentiable argument.
  std::vector<std::size_t> skip_inputs;
  // Elements x with |x − k| < kink_width for some kink k (e.g. 0 for relu/abs) are skipped.
  std::vector<double> kinks;
  double kink_width = 1e-4;
  // Check that a second backward accumulates and that a zero upstream gives zero.
  bool check_accumulation = true;
};

using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Inputs must be float64 (integer inputs are passed through and never checked).
::testing::AssertionResult gradcheck(const GradFn& f, const std::vector<Tensor>& inputs,
                                     const GradCheckOptions& opts = {});

// Largest |a − b| over two tensors of equal shape (converted to float64).
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace normnet::testing

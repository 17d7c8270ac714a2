// L2 normalization three ways, with identical outputs and gradients:
//   1. the op ops::l2_normalize inside a custom function (masking by hand),
//   2. a custom Layer subclass that supports masking (zero at masked steps),
//   3. a Lambda layer in a functional model.
// All three sit on one shared Dense layer; the example prints each model's summary() and the
// max abs differences of outputs and gradients between the ways, which are exactly 0.
//
//   l2_three_ways [--quick]
#include <iostream>

#include <normnet/layers.h>
#include <normnet/model.h>
#include <normnet/normnet.h>

#include "example_util.h"

using namespace normnet;

namespace {

constexpr int64_t kBatch = 4, kSteps = 5, kFeatures = 6, kUnits = 3;

// Way 1: the op in a plain function. y = m · l2_normalize(m · x) along the last axis, where
// m [N, T] is the mask (undefined: no mask), so masked steps are zero and get zero gradient.
Tensor unit_rows(const Tensor& x, const Tensor& mask) {
  if (!mask.defined()) return ops::l2_normalize(x);
  const Tensor m = ops::unsqueeze(ops::cast(mask, x.dtype()), -1);  // [N, T, 1]
  return m * ops::l2_normalize(x * m);
}

// Way 2: a custom layer. supports_masking makes the functional graph pass it the incoming mask
// (from a Masking or Embedding(mask_zero) layer) and propagate it onward.
class UnitRows : public Layer {
 public:
  UnitRows() : Layer("UnitRows") { set_supports_masking(true); }
  Tensor call(const Tensor& x, const CallArgs& args) override { return unit_rows(x, args.mask); }
};

struct Grads {
  Tensor y, dx, dkernel;
};

// Runs `forward` on a fresh leaf copy of x, back-propagates Σ y ⊙ w, and returns y and the
// gradients with respect to the input and the shared Dense kernel.
template <class Forward>
Grads run(Forward forward, const Tensor& x, const Tensor& w, Tensor& kernel) {
  Tensor input = x.clone();
  input.set_requires_grad(true);
  kernel.zero_grad();
  Tensor y = forward(input);
  ops::sum(y * w).backward();
  return {y.detach(), input.grad().clone(), kernel.grad().clone()};
}

void compare(const std::string& what, const Grads& a, const Grads& b) {
  std::cout << "  " << what << ": max |dy| = " << examples::max_abs_diff(a.y, b.y)
            << ", max |d(dx)| = " << examples::max_abs_diff(a.dx, b.dx)
            << ", max |d(dkernel)| = " << examples::max_abs_diff(a.dkernel, b.dkernel) << "\n";
}

// The models of the three ways (and the built-in layer), all on one shared Dense layer.
struct Models {
  Model features;     // way 1: up to the Dense layer; unit_rows() runs on its output
  Model with_layer;   // way 2
  Model with_lambda;  // way 3
  Model builtin;      // layers::L2Normalization, for reference
  Tensor kernel;      // the shared Dense kernel
};

Models make_models() {
  auto dense = layers::Dense(kUnits).name("shared_dense");
  auto in1 = Input({kSteps, kFeatures}, DType::kFloat32, "input_op");
  Model features({in1}, {dense(layers::Masking(0.0).name("masking_op")(in1))});
  features.name("features_then_op");

  auto in2 = Input({kSteps, kFeatures}, DType::kFloat32, "input_layer");
  auto unit_layer = make_layer<UnitRows>();
  Model with_layer({in2}, {unit_layer(dense(layers::Masking(0.0).name("masking_layer")(in2)))});
  with_layer.name("custom_layer");

  // A Lambda has no mask argument, so this model has no Masking layer.
  auto in3 = Input({kSteps, kFeatures}, DType::kFloat32, "input_lambda");
  auto lambda = layers::Lambda([](const Tensor& x) { return ops::l2_normalize(x); }).name("l2_lambda");
  Model with_lambda({in3}, {lambda(dense(in3))});
  with_lambda.name("lambda_layer");

  auto in4 = Input({kSteps, kFeatures}, DType::kFloat32, "input_builtin");
  Model builtin({in4}, {layers::L2Normalization().name("builtin_l2")(dense(layers::Masking(0.0)(in4)))});
  return {features, with_layer, with_lambda, builtin, dense->kernel};
}

// Largest |y| at the masked steps of `y` [N, T, kUnits], and largest |‖y‖ − 1| at the others.
std::pair<double, double> masked_and_unit(const Tensor& y_tensor, const std::vector<bool>& masked) {
  const std::vector<float> y = y_tensor.to_vector<float>();
  double masked_abs = 0, norm_error = 0;
  for (std::size_t step = 0; step < masked.size(); ++step) {
    double norm2 = 0;
    for (int64_t c = 0; c < kUnits; ++c) {
      const double v = y[step * kUnits + c];
      norm2 += v * v;
      if (masked[step]) masked_abs = std::max(masked_abs, std::abs(v));
    }
    if (!masked[step]) norm_error = std::max(norm_error, std::abs(std::sqrt(norm2) - 1.0));
  }
  return {masked_abs, norm_error};
}

bool identical(const Grads& a, const Grads& b) {
  return examples::max_abs_diff(a.y, b.y) == 0 && examples::max_abs_diff(a.dx, b.dx) == 0 &&
         examples::max_abs_diff(a.dkernel, b.dkernel) == 0;
}

int run_main() {
  Models m = make_models();
  std::cout << "Way 1: ops::l2_normalize in a function, applied to this model's output\n";
  m.features.summary();
  std::cout << "\nWay 2: a custom Layer subclass (UnitRows, mask-aware)\n";
  m.with_layer.summary();
  std::cout << "\nWay 3: a Lambda layer\n";
  m.with_lambda.summary();

  const Tensor w = Tensor::randn({kBatch, kSteps, kUnits}, 2);
  const auto op_way = [&](const Tensor& t) {
    const Tensor h = m.features(t);
    return unit_rows(h, h.mask());
  };

  // Unmasked input (no all-zero step): all three ways agree exactly.
  const Tensor x = Tensor::randn({kBatch, kSteps, kFeatures}, 1);
  const Grads op = run(op_way, x, w, m.kernel);
  const Grads layer = run([&](const Tensor& t) { return m.with_layer(t); }, x, w, m.kernel);
  const Grads lam = run([&](const Tensor& t) { return m.with_lambda(t); }, x, w, m.kernel);
  std::cout << "\nUnmasked input " << shape_to_string(x.shape()) << ", loss = sum(y * w):\n";
  compare("op vs custom layer", op, layer);
  compare("op vs Lambda      ", op, lam);

  // Masked input: steps 3 and 4 of sample 0 and step 0 of sample 2 are all zero, so Masking
  // masks them. The function, the custom layer and the built-in L2Normalization agree.
  std::vector<float> values = x.to_vector<float>();
  std::vector<bool> masked(kBatch * kSteps, false);
  for (int64_t step : {0 * kSteps + 3, 0 * kSteps + 4, 2 * kSteps + 0}) {
    std::fill_n(values.begin() + step * kFeatures, kFeatures, 0.0f);
    masked[step] = true;
  }
  const Tensor xm = Tensor::from_vector(values, {kBatch, kSteps, kFeatures});
  const Grads op_m = run(op_way, xm, w, m.kernel);
  const Grads layer_m = run([&](const Tensor& t) { return m.with_layer(t); }, xm, w, m.kernel);
  const Grads builtin_m = run([&](const Tensor& t) { return m.builtin(t); }, xm, w, m.kernel);
  std::cout << "\nMasked input (3 of 20 steps masked):\n";
  compare("op vs custom layer            ", op_m, layer_m);
  compare("op vs built-in L2Normalization", op_m, builtin_m);

  const auto [masked_abs, norm_error] = masked_and_unit(layer_m.y, masked);
  std::cout << "custom layer output: max |y| at masked steps = " << masked_abs
            << ", max |norm - 1| at the other steps = " << norm_error << "\n";
  const bool ok = identical(op, layer) && identical(op, lam) && identical(op_m, layer_m) &&
                  identical(op_m, builtin_m) && masked_abs == 0 && norm_error < 1e-6;
  std::cout << (ok ? "RESULT: all three ways give identical outputs and gradients\n"
                   : "RESULT: MISMATCH between the three ways\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  (void)examples::has_flag(argc, argv, "--quick");  // the example is small; --quick runs the same
  return examples::run_example(run_main);
}

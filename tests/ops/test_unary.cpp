// Unary elementwise ops and cast: values against double computations, IEEE edge cases, symbolic
// shapes, errors, and float64 gradient checks.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;
using testing::GradCheckOptions;

constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor f64(Shape shape, uint64_t seed) { return Tensor::randn(std::move(shape), seed, DType::kFloat64); }
// Uniform float64 values in [lo, hi): inputs that stay inside a domain (log, sqrt, pow).
Tensor f64_in(Shape shape, double lo, double hi, uint64_t seed) {
  return Tensor::uniform(std::move(shape), lo, hi, seed, DType::kFloat64);
}

using UnaryOp = std::function<Tensor(const Tensor&)>;

// Applies op to float32 x and compares with ref evaluated in double on the same float inputs,
// to within 5 float ulps (relative), or exactly where ref is ±inf or 0.
void expect_matches_double(const UnaryOp& op, double (*ref)(double), const Tensor& x, double rtol = 6e-7) {
  const Tensor y = op(x);
  ASSERT_EQ(y.shape(), x.shape());
  ASSERT_EQ(y.dtype(), DType::kFloat32);
  const auto xs = x.to_vector<float>();
  const auto ys = y.to_vector<float>();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double want = ref(static_cast<double>(xs[i]));
    if (std::isinf(want) || want == 0.0) {
      EXPECT_EQ(static_cast<double>(ys[i]), static_cast<double>(static_cast<float>(want))) << "x = " << xs[i];
    } else {
      EXPECT_NEAR(ys[i], want, rtol * std::abs(want) + 1e-45) << "x = " << xs[i];
    }
  }
}

double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double ref_relu(double x) { return x > 0 ? x : 0.0; }
double ref_square(double x) { return x * x; }
double ref_neg(double x) { return -x; }
double ref_sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }
double ref_abs(double x) { return std::abs(x); }
double ref_exp(double x) { return std::exp(x); }
double ref_log(double x) { return std::log(x); }
double ref_sqrt(double x) { return std::sqrt(x); }
double ref_tanh(double x) { return std::tanh(x); }

TEST(Unary, ValuesMatchDoubleComputation) {
  const Tensor x = Tensor::uniform({7, 31}, -8.0, 8.0, 3);
  const Tensor pos = Tensor::uniform({7, 31}, 1e-3, 50.0, 4);
  expect_matches_double([](const Tensor& t) { return ops::neg(t); }, ref_neg, x);
  expect_matches_double([](const Tensor& t) { return ops::exp(t); }, ref_exp, x);
  expect_matches_double([](const Tensor& t) { return ops::log(t); }, ref_log, pos);
  expect_matches_double([](const Tensor& t) { return ops::sqrt(t); }, ref_sqrt, pos);
  expect_matches_double([](const Tensor& t) { return ops::square(t); }, ref_square, x);
  expect_matches_double([](const Tensor& t) { return ops::abs(t); }, ref_abs, x);
  expect_matches_double([](const Tensor& t) { return ops::sign(t); }, ref_sign, x);
  expect_matches_double([](const Tensor& t) { return ops::relu(t); }, ref_relu, x);
  expect_matches_double([](const Tensor& t) { return ops::sigmoid(t); }, ref_sigmoid, x);
  expect_matches_double([](const Tensor& t) { return ops::tanh(t); }, ref_tanh, x);
}

TEST(Unary, LargeTensorTakesParallelPathWithSameValues) {
  const Tensor x = Tensor::uniform({300, 700}, -5.0, 5.0, 9);  // 210k elements: past every grain
  expect_matches_double([](const Tensor& t) { return ops::tanh(t); }, ref_tanh, x);
  expect_matches_double([](const Tensor& t) { return ops::relu(t); }, ref_relu, x);
  expect_matches_double([](const Tensor& t) { return ops::sigmoid(t); }, ref_sigmoid, x);
}

TEST(Unary, PowMatchesStdPow) {
  const Tensor x = Tensor::from_vector(std::vector<double>{0.5, 2.0, 3.0, 10.0}, {4});
  for (double p : {-1.5, 0.0, 0.5, 1.0, 2.0, 3.0}) {
    const auto y = ops::pow(x, p).to_vector<double>();
    for (std::size_t i = 0; i < y.size(); ++i) EXPECT_DOUBLE_EQ(y[i], std::pow(x.to_vector<double>()[i], p)) << p;
  }
  EXPECT_EQ(ops::pow(Tensor::from_vector(std::vector<float>{-3.0f}, {1}), 2.0).item(), 9.0);
}

TEST(Unary, ClipValuesAndBounds) {
  const Tensor x = Tensor::from_vector(std::vector<float>{-5, -1, 0, 0.5f, 1, 7}, {6});
  EXPECT_EQ(ops::clip(x, -1.0, 1.0).to_vector<float>(), (std::vector<float>{-1, -1, 0, 0.5f, 1, 1}));
  EXPECT_TRUE(std::isnan(ops::clip(Tensor::scalar(NAN), -1.0, 1.0).item()));
}

TEST(Unary, ExtremeInputsFollowIeee) {
  // Sigmoid saturates without overflow: 1 at +100, e^-100 (a float32 subnormal) at -100.
  const Tensor s = ops::sigmoid(Tensor::from_vector(std::vector<float>{100.0f, -100.0f, 0.0f}, {3}));
  EXPECT_EQ(s.to_vector<float>()[0], 1.0f);
  EXPECT_NEAR(s.to_vector<float>()[1], std::exp(-100.0), 1.5e-45);
  EXPECT_GT(s.to_vector<float>()[1], 0.0f);
  EXPECT_EQ(s.to_vector<float>()[2], 0.5f);
  const Tensor s64 = ops::sigmoid(Tensor::from_vector(std::vector<double>{-800.0, 800.0}, {2}));
  EXPECT_EQ(s64.to_vector<double>(), (std::vector<double>{0.0, 1.0}));
  // exp overflows to +inf, underflows to 0.
  EXPECT_EQ(ops::exp(Tensor::scalar(100.0f)).item(), kInf);
  EXPECT_EQ(ops::exp(Tensor::scalar(1000.0, DType::kFloat64)).item(), kInf);
  EXPECT_EQ(ops::exp(Tensor::scalar(-1000.0, DType::kFloat64)).item(), 0.0);
  // log(0) = -inf, log(-1) = NaN; sqrt(-1) = NaN; tanh saturates.
  EXPECT_EQ(ops::log(Tensor::scalar(0.0)).item(), -kInf);
  EXPECT_TRUE(std::isnan(ops::log(Tensor::scalar(-1.0)).item()));
  EXPECT_TRUE(std::isnan(ops::sqrt(Tensor::scalar(-1.0)).item()));
  EXPECT_EQ(ops::tanh(Tensor::scalar(50.0f)).item(), 1.0);
  // relu and sign pass NaN through (TerminateOnNaN must still see it).
  EXPECT_TRUE(std::isnan(ops::relu(Tensor::scalar(NAN)).item()));
  EXPECT_TRUE(std::isnan(ops::sign(Tensor::scalar(NAN)).item()));
  EXPECT_EQ(ops::relu(Tensor::scalar(-kInf)).item(), 0.0);
}

// Gradient of f at scalar x (float64), via backward with seed 1.
double grad_at(const UnaryOp& f, double x) {
  Tensor t = Tensor::scalar(x, DType::kFloat64).set_requires_grad(true);
  f(t).backward();
  return t.grad().item();
}

TEST(Unary, GradientConventionsAtSingularPoints) {
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::relu(t); }, 0.0), 0.0);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::abs(t); }, 0.0), 0.0);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::sign(t); }, 0.0), 0.0);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::sign(t); }, 3.0), 0.0);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::sqrt(t); }, 0.0), kInf);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::log(t); }, 0.0), kInf);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::pow(t, 0.0); }, 0.0), 0.0);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::pow(t, 1.0); }, 0.0), 1.0);
  // The clip bounds pass the gradient; outside they do not.
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::clip(t, -1.0, 1.0); }, 1.0), 1.0);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::clip(t, -1.0, 1.0); }, -1.0), 1.0);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::clip(t, -1.0, 1.0); }, 1.5), 0.0);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::sigmoid(t); }, 0.0), 0.25);
  EXPECT_EQ(grad_at([](const Tensor& t) { return ops::tanh(t); }, 0.0), 1.0);
}

TEST(Unary, GradientMagnitudesAreExact) {
  // A backward that points the right way with a wrong scale must fail: compare closed forms.
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::exp(t); }, 2.0), std::exp(2.0));
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::log(t); }, 4.0), 0.25);
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::sqrt(t); }, 4.0), 0.25);
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::square(t); }, -3.0), -6.0);
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::pow(t, 3.0); }, 2.0), 12.0);
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::pow(t, -1.0); }, 2.0), -0.25);
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::neg(t); }, 5.0), -1.0);
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::abs(t); }, -2.0), -1.0);
  EXPECT_DOUBLE_EQ(grad_at([](const Tensor& t) { return ops::sigmoid(t); }, 1.0),
                   ref_sigmoid(1.0) * (1.0 - ref_sigmoid(1.0)));
}

TEST(Unary, GradcheckSmoothOps) {
  const Tensor x = f64({3, 4}, 11);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::neg(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::exp(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::square(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::sigmoid(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::tanh(in[0]); }, {x}));
  const Tensor pos = f64_in({3, 4}, 0.2, 3.0, 12);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::log(in[0]); }, {pos}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::sqrt(in[0]); }, {pos}));
  for (double p : {-1.5, 0.0, 0.5, 2.0, 3.0}) {
    EXPECT_TRUE(gradcheck([p](const std::vector<Tensor>& in) { return ops::pow(in[0], p); }, {pos})) << "p = " << p;
  }
}

TEST(Unary, GradcheckKinkedOps) {
  GradCheckOptions at_zero;
  at_zero.kinks = {0.0};
  const Tensor x = f64({4, 5}, 13);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::relu(in[0]); }, {x}, at_zero));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::abs(in[0]); }, {x}, at_zero));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::sign(in[0]); }, {x}, at_zero));
  GradCheckOptions at_bounds;
  at_bounds.kinks = {-0.5, 0.7};
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::clip(in[0], -0.5, 0.7); }, {x}, at_bounds));
}

// relu hands a fresh gradient to the sink: a second use of x must still add, not replace.
TEST(Unary, ReluGradientAddsToOtherUsesOfX) {
  Tensor x = Tensor::from_vector(std::vector<float>{-2.0f, 0.0f, 3.0f}, {3}).set_requires_grad(true);
  ops::sum(ops::relu(x) * 5.0 + x * 2.0 + ops::relu(x)).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2.0f, 2.0f, 8.0f}));
}

TEST(Unary, SymbolicInputGivesSymbolicOutput) {
  const Tensor x = Tensor::symbolic({kUnknownDim, 3});
  for (const UnaryOp& op : std::vector<UnaryOp>{
           [](const Tensor& t) { return ops::relu(t); }, [](const Tensor& t) { return ops::exp(t); },
           [](const Tensor& t) { return ops::pow(t, 3.0); }, [](const Tensor& t) { return ops::clip(t, 0, 1); },
           [](const Tensor& t) { return ops::sign(t); }, [](const Tensor& t) { return -t; }}) {
    const Tensor y = op(x);
    EXPECT_TRUE(y.is_symbolic());
    EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 3}));
    EXPECT_EQ(y.dtype(), DType::kFloat32);
  }
}

TEST(Unary, ErrorsNameOpAndShape) {
  const Tensor ints = Tensor::from_vector(std::vector<int64_t>{1, 2, 3}, {3});
  try {
    (void)ops::exp(ints);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("ops::exp"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("int64"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3]"), std::string::npos) << e.what();
  }
  try {
    (void)ops::clip(Tensor::zeros({2, 2}), 1.0, -1.0);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("ops::clip: expected lo <= hi, got lo = 1 and hi = -1"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)ops::relu(Tensor()), Error);
}

TEST(Unary, ComposedGraphAccumulatesThroughSharedInput) {
  // y = exp(x) + tanh(x) ⇒ dy/dx = eˣ + 1 − tanh²x, summed over both uses of x.
  Tensor x = Tensor::from_vector(std::vector<double>{0.3, -1.2}, {2}).set_requires_grad(true);
  (ops::exp(x) + ops::tanh(x)).backward(Tensor::ones({2}, DType::kFloat64));
  const auto g = x.grad().to_vector<double>();
  for (int i = 0; i < 2; ++i) {
    const double v = i == 0 ? 0.3 : -1.2;
    EXPECT_NEAR(g[i], std::exp(v) + 1.0 - std::tanh(v) * std::tanh(v), 1e-15);
  }
}

TEST(Cast, ValuesBetweenAllDtypes) {
  const Tensor f = Tensor::from_vector(std::vector<float>{-2.7f, -0.5f, 0.0f, 1.5f, 3.9f}, {5});
  EXPECT_EQ(ops::cast(f, DType::kInt64).to_vector<int64_t>(), (std::vector<int64_t>{-2, 0, 0, 1, 3}));
  const Tensor d = ops::cast(f, DType::kFloat64);
  EXPECT_EQ(d.dtype(), DType::kFloat64);
  EXPECT_EQ(d.to_vector<double>()[0], static_cast<double>(-2.7f));
  const Tensor i = Tensor::from_vector(std::vector<int64_t>{-3, 0, 1 << 20}, {3});
  EXPECT_EQ(ops::cast(i, DType::kFloat32).to_vector<float>(), (std::vector<float>{-3, 0, 1 << 20}));
  EXPECT_EQ(i.to(DType::kFloat64).to_vector<double>(), (std::vector<double>{-3, 0, 1 << 20}));
  const Tensor big = Tensor::from_vector(std::vector<double>{1e300, -1e300, NAN, 0.1}, {4});
  EXPECT_EQ(ops::cast(big, DType::kFloat32).to_vector<float>()[0], std::numeric_limits<float>::infinity());
}

TEST(Cast, FloatToInt64SaturatesAndMapsNanToZero) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1e30, -1e30, NAN, -9.99}, {4});
  EXPECT_EQ(ops::cast(x, DType::kInt64).to_vector<int64_t>(),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(), 0, -9}));
}

TEST(Cast, SameDtypeIsTheSameTensor) {
  const Tensor x = Tensor::randn({2, 3}, 1);
  EXPECT_TRUE(ops::cast(x, DType::kFloat32).same(x));
  EXPECT_TRUE(x.to(DType::kFloat32).same(x));
}

TEST(Cast, GradientIsCastBackBetweenFloatTypes) {
  Tensor x = Tensor::from_vector(std::vector<float>{1.0f, -2.0f, 0.25f}, {3}).set_requires_grad(true);
  const Tensor y = ops::cast(x, DType::kFloat64);
  EXPECT_TRUE(y.requires_grad());
  y.backward(Tensor::from_vector(std::vector<double>{0.5, 3.0, -1.0 / 3.0}, {3}));
  ASSERT_EQ(x.grad().dtype(), DType::kFloat32);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0.5f, 3.0f, static_cast<float>(-1.0 / 3.0)}));
  // float64 → float32 → float64 is the identity up to float rounding: check by finite differences
  // with a step far above float32's resolution.
  GradCheckOptions coarse;
  coarse.step = 1e-2;
  coarse.atol = 1e-4;
  coarse.rtol = 1e-4;
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::cast(ops::cast(in[0], DType::kFloat32), DType::kFloat64); },
      {f64({2, 3}, 5)}, coarse));
}

TEST(Cast, ToInt64IsNotRecorded) {
  Tensor x = Tensor::from_vector(std::vector<double>{1.5, 2.5}, {2}).set_requires_grad(true);
  EXPECT_FALSE(ops::cast(x, DType::kInt64).requires_grad());
}

TEST(Cast, SymbolicKeepsShapeAndTakesNewDtype) {
  const Tensor y = ops::cast(Tensor::symbolic({kUnknownDim, 4}), DType::kInt64);
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 4}));
  EXPECT_EQ(y.dtype(), DType::kInt64);
}

}  // namespace
}  // namespace normnet

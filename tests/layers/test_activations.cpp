// Activations by name: values against <cmath> references (including the tails where log(1 + eˣ)
// and eˣ − 1 lose digits), gradients by finite differences and at the kinks, infinities and NaN,
// symbolic inputs, and the error for an unknown name.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "normnet/activations.h"
#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;
using testing::GradCheckOptions;

constexpr double kAlpha = 1.67326324235437728481704299167176;
constexpr double kScale = 1.05070098735548049341933498529460;

double softplus_ref(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double elu_ref(double x) { return x > 0 ? x : std::expm1(x); }
double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

double reference(const std::string& name, double x) {
  if (name == "linear") return x;
  if (name == "relu") return std::max(x, 0.0);
  if (name == "relu6") return std::min(std::max(x, 0.0), 6.0);
  if (name == "leaky_relu") return x > 0 ? x : 0.2 * x;
  if (name == "elu") return elu_ref(x);
  if (name == "selu") return kScale * (x > 0 ? x : kAlpha * std::expm1(x));
  if (name == "sigmoid") return sigmoid_ref(x);
  if (name == "tanh") return std::tanh(x);
  if (name == "softplus") return softplus_ref(x);
  if (name == "softsign") return x / (1.0 + std::abs(x));
  if (name == "silu" || name == "swish") return x * sigmoid_ref(x);
  if (name == "mish") return x * std::tanh(softplus_ref(x));
  if (name == "exponential") return std::exp(x);
  ADD_FAILURE() << "no reference for " << name;
  return 0.0;
}

const std::vector<std::string> kElementwise = {"linear",   "relu", "relu6", "leaky_relu", "elu",   "selu", "sigmoid",
                                               "tanh",     "softplus", "softsign", "silu", "swish", "mish",
                                               "exponential"};

const std::vector<double> kGrid = {-30.0, -7.5, -2.0, -1.0, -0.3, -1e-3, -1e-9, 0.0,
                                   1e-9,  1e-3, 0.4,  1.0,  2.5,  6.0,   7.0,   25.0};

TEST(Activations, ElementwiseValuesMatchReferenceInFloat64) {
  const Tensor x = Tensor::from_vector(kGrid, {static_cast<int64_t>(kGrid.size())});
  for (const auto& name : kElementwise) {
    const auto y = activations::apply(name, x).to_vector<double>();
    for (std::size_t i = 0; i < kGrid.size(); ++i) {
      const double want = reference(name, kGrid[i]);
      EXPECT_NEAR(y[i], want, 4e-16 * std::abs(want) + 1e-300) << name << "(" << kGrid[i] << ")";
    }
  }
}

TEST(Activations, ElementwiseValuesMatchReferenceInFloat32) {
  std::vector<float> grid(kGrid.begin(), kGrid.end());
  const Tensor x = Tensor::from_vector(grid, {static_cast<int64_t>(grid.size())});
  for (const auto& name : kElementwise) {
    const Tensor y = activations::apply(name, x);
    ASSERT_EQ(y.dtype(), DType::kFloat32) << name;
    const auto v = y.to_vector<float>();
    for (std::size_t i = 0; i < grid.size(); ++i) {
      const double want = reference(name, static_cast<double>(grid[i]));
      EXPECT_NEAR(v[i], want, 6e-7 * std::abs(want)) << name << "(" << grid[i] << ")";
    }
  }
}

TEST(Activations, SoftplusAndEluKeepDigitsInTheTails) {
  // Naive log(1 + eˣ) is 0 for x < −37 in float64 (−17 in float32); naive eˣ − 1 keeps no digit of
  // a tiny x. Both must stay relatively exact.
  const std::vector<double> xs = {-700.0, -100.0, -40.0, -36.0, -1e-12, -1e-300};
  const auto sp = activations::apply("softplus", Tensor::from_vector(xs, {6})).to_vector<double>();
  const auto el = activations::apply("elu", Tensor::from_vector(xs, {6})).to_vector<double>();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    EXPECT_NEAR(sp[i], softplus_ref(xs[i]), 1e-15 * softplus_ref(xs[i])) << xs[i];
    EXPECT_NEAR(el[i], std::expm1(xs[i]), 4e-16 * std::abs(std::expm1(xs[i]))) << xs[i];
  }
  const auto sp32 = activations::apply("softplus", Tensor::from_vector(std::vector<float>{-20.f, -80.f}, {2}))
                        .to_vector<float>();
  EXPECT_NEAR(sp32[0], softplus_ref(-20.0), 1e-6 * softplus_ref(-20.0));
  EXPECT_NEAR(sp32[1], softplus_ref(-80.0), 1e-6 * softplus_ref(-80.0));
  const auto el32 = activations::apply("elu", Tensor::from_vector(std::vector<float>{-1e-10f}, {1})).to_vector<float>();
  EXPECT_NEAR(el32[0], std::expm1(static_cast<double>(-1e-10f)), 1e-16);
}

TEST(Activations, InfinitiesAndNaN) {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = Tensor::from_vector(std::vector<double>{-inf, inf, std::nan("")}, {3});
  const auto sp = activations::apply("softplus", x).to_vector<double>();
  EXPECT_EQ(sp[0], 0.0);
  EXPECT_EQ(sp[1], inf);
  EXPECT_TRUE(std::isnan(sp[2]));
  const auto el = activations::apply("elu", x).to_vector<double>();
  EXPECT_EQ(el[0], -1.0);
  EXPECT_EQ(el[1], inf);
  EXPECT_TRUE(std::isnan(el[2]));
  const auto se = activations::apply("selu", x).to_vector<double>();
  EXPECT_DOUBLE_EQ(se[0], -kScale * kAlpha);
  EXPECT_TRUE(std::isnan(se[2]));
}

TEST(Activations, SoftmaxFamilyUsesTheLastAxis) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 0, 0, 0}, {2, 3});
  const auto s = activations::apply("softmax", x).to_vector<double>();
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(s[0], std::exp(1.0) / z, 1e-15);
  EXPECT_NEAR(s[2], std::exp(3.0) / z, 1e-15);
  EXPECT_NEAR(s[4], 1.0 / 3.0, 1e-15);
  const auto ls = activations::apply("log_softmax", x).to_vector<double>();
  EXPECT_NEAR(ls[1], 2.0 - std::log(z), 1e-15);
  EXPECT_NEAR(ls[3], -std::log(3.0), 1e-15);
}

TEST(Activations, GradcheckEveryActivation) {
  // Values away from the kinks at 0 and 6 (checked separately below).
  const Tensor x = Tensor::from_vector(std::vector<double>{-8.0, -3.1, -1.2, -0.4, -0.05, 0.07, 0.6, 1.3, 2.9, 5.5,
                                                           6.4, 9.0},
                                       {3, 4});
  GradCheckOptions opts;
  opts.kinks = {0.0, 6.0};
  for (const auto& name : activations::names()) {
    EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return activations::apply(name, in[0]); }, {x}, opts))
        << name;
  }
}

// d activation / dx at single points, by autograd.
double derivative(const std::string& name, double at) {
  Tensor x = Tensor::from_vector(std::vector<double>{at}, {1});
  x.set_requires_grad(true);
  ops::sum(activations::apply(name, x)).backward();
  return x.grad().item();
}

TEST(Activations, GradientsAtKinksAndInTheTails) {
  EXPECT_DOUBLE_EQ(derivative("softplus", 0.0), 0.5);  // sigmoid(0): smooth, no kink
  EXPECT_DOUBLE_EQ(derivative("relu", 0.0), 0.0);
  EXPECT_DOUBLE_EQ(derivative("relu6", 0.0), 0.0);
  EXPECT_DOUBLE_EQ(derivative("relu6", 6.0), 0.0);
  EXPECT_DOUBLE_EQ(derivative("elu", 0.0), 1.0);       // TensorFlow's EluGrad
  EXPECT_DOUBLE_EQ(derivative("selu", 0.0), kScale);   // TensorFlow's SeluGrad
  EXPECT_DOUBLE_EQ(derivative("leaky_relu", 0.0), 1.0);
  EXPECT_DOUBLE_EQ(derivative("leaky_relu", -1.0), 0.2);
  EXPECT_DOUBLE_EQ(derivative("softsign", 0.0), 1.0);
  EXPECT_DOUBLE_EQ(derivative("silu", 0.0), 0.5);
  for (double at : {-700.0, -40.0, -1e-8, -0.5}) {
    EXPECT_NEAR(derivative("elu", at), std::exp(at), 1e-15 * std::exp(at) + 1e-300) << at;
    EXPECT_NEAR(derivative("softplus", at), sigmoid_ref(at), 1e-14 * sigmoid_ref(at)) << at;
  }
  EXPECT_NEAR(derivative("selu", -2.0), kScale * kAlpha * std::exp(-2.0), 1e-15);
  EXPECT_NEAR(derivative("softplus", 40.0), 1.0, 1e-16);
  EXPECT_EQ(derivative("elu", -1000.0), 0.0);  // e^−1000 underflows anyway
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(derivative("softplus", -inf), 0.0);
  EXPECT_EQ(derivative("elu", -inf), 0.0);
}

TEST(Activations, SymbolicInputsGiveSymbolicOutputs) {
  const Tensor x = Tensor::symbolic({kUnknownDim, 7});
  for (const auto& name : activations::names()) {
    const Tensor y = activations::apply(name, x);
    EXPECT_TRUE(y.is_symbolic()) << name;
    EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 7})) << name;
  }
}

TEST(Activations, LinearIsIdentityUnderEveryName) {
  const Tensor x = Tensor::randn({2, 3}, 1);
  for (const char* name : {"linear", "", "None"}) {
    EXPECT_TRUE(activations::apply(name, x).same(x)) << name;
    EXPECT_NO_THROW(activations::validate(name, "Dense 'dense'"));
  }
}

TEST(Activations, UnknownNameIsAValueErrorNamingTheCaller) {
  EXPECT_FALSE(activations::is_known("gelu"));
  EXPECT_TRUE(activations::is_known("swish"));
  try {
    activations::validate("rellu", "Dense 'dense_3'");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("Dense 'dense_3': unknown activation 'rellu' (expected one of linear, relu, ", 0), 0u)
        << message;
    EXPECT_NE(message.find("softmax"), std::string::npos) << message;
  }
  EXPECT_THROW((void)activations::apply("Relu", Tensor::zeros({2})), ValueError);
}

}  // namespace
}  // namespace normnet

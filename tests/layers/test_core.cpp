// Core layers: Dense, Activation, Flatten, Reshape, Dropout, ActivityRegularization: shapes,
// values by hand, parameter counts, gradients (float64 finite differences), errors.
#include <cmath>

#include <gtest/gtest.h>

#include "normnet/layers.h"
#include "normnet/ops.h"
#include "support/gradcheck.h"
#include "support/layer_harness.h"

namespace normnet {
namespace {

using testing::gradcheck_layer;
using testing::max_abs_diff;

void fill(Tensor& t, const std::vector<float>& values) {
  ASSERT_EQ(static_cast<std::size_t>(t.numel()), values.size());
  std::copy(values.begin(), values.end(), t.data<float>());
}

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- Dense ----

TEST(Dense, ParamCountMatchesKeras) {
  auto dense = layers::Dense(64);
  Tensor y = dense(Tensor::symbolic({kUnknownDim, 784}));
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 64}));
  EXPECT_EQ(dense.count_params(), 50240);
  auto no_bias = layers::Dense(64).use_bias(false);
  (void)no_bias(Tensor::symbolic({kUnknownDim, 784}));
  EXPECT_EQ(no_bias.count_params(), 50176);
}

TEST(Dense, KerasDefaults) {
  auto dense = layers::Dense(8);
  (void)dense(Tensor::zeros({1, 32}));
  const double limit = std::sqrt(6.0 / (32 + 8));  // glorot_uniform
  const auto k = dense->kernel.to_vector<float>();
  double biggest = 0.0;
  for (float v : k) biggest = std::max(biggest, std::abs(static_cast<double>(v)));
  EXPECT_LE(biggest, limit);
  EXPECT_GT(biggest, 0.5 * limit);
  for (float v : dense->bias.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  const Config c = dense.get_config();
  EXPECT_EQ(c["units"], 8);
  EXPECT_EQ(c["activation"], "linear");
  EXPECT_EQ(c["use_bias"], true);
  EXPECT_EQ(c["kernel_initializer"]["class_name"], "GlorotUniform");
  EXPECT_EQ(c["bias_initializer"]["class_name"], "Zeros");
  EXPECT_TRUE(c["kernel_regularizer"].is_null());
  EXPECT_EQ(c["dtype"], "float32");
  EXPECT_EQ(dense.trainable_weights().size(), 2u);
}

TEST(Dense, ValuesByHand) {
  auto dense = layers::Dense(2).activation("relu");
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {1, 3});
  (void)dense(x);
  fill(dense->kernel, {1, -1, 0, 1, 2, -3});  // [[1, -1], [0, 1], [2, -3]]
  fill(dense->bias, {0.5f, 0.25f});
  // x·W + b = [1 + 0 + 6 + 0.5, −1 + 2 − 9 + 0.25] = [7.5, −7.75]; relu → [7.5, 0]
  EXPECT_EQ(dense(x).to_vector<float>(), (std::vector<float>{7.5f, 0.0f}));
}

TEST(Dense, ActsOnTheLastAxisOfAnyRank) {
  auto dense = layers::Dense(5);
  Tensor x = Tensor::randn({2, 3, 4}, 7);
  Tensor y = dense(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
  Tensor rows = dense(ops::reshape(x, {6, 4}));
  EXPECT_LT(max_abs_diff(ops::reshape(y, {6, 5}), rows), 1e-6);
  EXPECT_EQ(dense(Tensor::symbolic({kUnknownDim, 3, 4})).shape(), (Shape{kUnknownDim, 3, 5}));
}

TEST(Dense, LastAxisMismatchNamesLayerAndShapes) {
  auto dense = layers::Dense(64).name("hidden");
  (void)dense(Tensor::symbolic({kUnknownDim, 784}));
  EXPECT_THROW((void)dense(Tensor::zeros({32, 28, 28})), ShapeError);
  EXPECT_EQ(error_of([&] { (void)dense(Tensor::zeros({32, 28, 28})); }),
            "Dense 'hidden': expected input last axis 784, got shape [32, 28, 28]");
}

TEST(Dense, ValidatesOptionsAtConstruction) {
  EXPECT_THROW(layers::Dense(0), ValueError);
  EXPECT_THROW(layers::Dense(3).activation("relu7"), ValueError);
  const std::string msg = error_of([] { layers::Dense(3).name("d").activation("relu7"); });
  EXPECT_NE(msg.find("Dense 'd'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("relu7"), std::string::npos) << msg;
  EXPECT_THROW(layers::Dense(3).dtype(DType::kInt64), ValueError);
}

TEST(Dense, GradientMatchesFiniteDifferences) {
  auto dense = layers::Dense(3).activation("tanh").dtype(DType::kFloat64);
  Tensor x = Tensor::randn({2, 4}, 3, DType::kFloat64);
  EXPECT_TRUE(gradcheck_layer(*dense, {x}, {&dense->kernel, &dense->bias}));
  auto rank3 = layers::Dense(2).dtype(DType::kFloat64);
  EXPECT_TRUE(gradcheck_layer(*rank3, {Tensor::randn({2, 3, 4}, 4, DType::kFloat64)}, {&rank3->kernel, &rank3->bias}));
}

TEST(Dense, Float32InputsAreCastToAFloat64Layer) {
  auto dense = layers::Dense(2).dtype(DType::kFloat64);
  Tensor y = dense(Tensor::ones({1, 3}));
  EXPECT_EQ(y.dtype(), DType::kFloat64);
  EXPECT_EQ(dense->kernel.dtype(), DType::kFloat64);
  EXPECT_EQ(dense.get_config()["dtype"], "float64");
}

TEST(Dense, RegularizersBecomeLossTerms) {
  auto dense = layers::Dense(2).kernel_regularizer(regularizers::L2(0.5)).name("reg_dense");
  (void)dense(Tensor::ones({1, 2}));
  fill(dense->kernel, {1, 2, 3, 4});
  const auto losses = dense->named_losses();
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0].name, "reg_dense/kernel_regularizer");
  EXPECT_NEAR(losses[0].value.item(), 0.5 * (1 + 4 + 9 + 16), 1e-5);
}

TEST(Dense, PassesMasksThrough) {
  auto dense = layers::Dense(2);
  Tensor x = Tensor::randn({2, 3, 4}, 1);
  Tensor mask = Tensor::from_vector(std::vector<float>{1, 1, 0, 1, 0, 0}, {2, 3});
  x.set_mask(mask);
  Tensor y = dense(x);
  ASSERT_TRUE(y.mask().defined());
  EXPECT_EQ(y.mask().to_vector<float>(), mask.to_vector<float>());
}

// ---- Activation ----

TEST(Activation, AppliesByName) {
  Tensor x = Tensor::from_vector(std::vector<float>{-1, 0, 2}, {1, 3});
  EXPECT_EQ(layers::Activation("relu")(x).to_vector<float>(), (std::vector<float>{0, 0, 2}));
  Tensor s = layers::Activation("softmax")(x);
  EXPECT_NEAR(ops::sum(s).item(), 1.0, 1e-6);
  EXPECT_EQ(layers::Activation("tanh").get_config()["activation"], "tanh");
}

TEST(Activation, UnknownNameThrowsAtConstruction) {
  EXPECT_THROW(layers::Activation("sigmod"), ValueError);
  const std::string msg = error_of([] { layers::Activation("sigmod"); });
  EXPECT_NE(msg.find("Activation '"), std::string::npos) << msg;
}

TEST(Activation, GradientMatchesFiniteDifferences) {
  auto act = layers::Activation("sigmoid");
  EXPECT_TRUE(gradcheck_layer(*act, {Tensor::randn({3, 4}, 5, DType::kFloat64)}, {}));
}

// ---- Flatten and Reshape ----

TEST(Flatten, KeepsTheBatchAxis) {
  auto flatten = layers::Flatten();
  EXPECT_EQ(flatten(Tensor::zeros({2, 3, 4})).shape(), (Shape{2, 12}));
  EXPECT_EQ(flatten(Tensor::symbolic({kUnknownDim, 28, 28, 1})).shape(), (Shape{kUnknownDim, 784}));
  EXPECT_EQ(layers::Flatten()(Tensor::zeros({5})).shape(), (Shape{5, 1}));
  Tensor x = Tensor::arange(6);
  EXPECT_EQ(layers::Flatten()(ops::reshape(x, {1, 2, 3})).to_vector<float>(), x.to_vector<float>());
  auto grad_flatten = layers::Flatten();
  EXPECT_TRUE(gradcheck_layer(*grad_flatten, {Tensor::randn({2, 3, 2}, 1, DType::kFloat64)}, {}));
}

TEST(Reshape, InfersOneExtent) {
  auto r = layers::Reshape({3, -1});
  Tensor z = r(ops::reshape(Tensor::arange(24), {2, 12}));
  EXPECT_EQ(z.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(z.to_vector<float>(), Tensor::arange(24).to_vector<float>());
  EXPECT_EQ(layers::Reshape({2, 2, 3})(Tensor::symbolic({kUnknownDim, 12})).shape(), (Shape{kUnknownDim, 2, 2, 3}));
  EXPECT_EQ(r.get_config()["target_shape"], (std::vector<int64_t>{3, -1}));
}

TEST(Reshape, ErrorsNameLayerAndShapes) {
  EXPECT_THROW(layers::Reshape({-1, -1}), ValueError);
  EXPECT_THROW(layers::Reshape({0, 3}), ValueError);
  auto r = layers::Reshape({5}).name("to5");
  const std::string msg = error_of([&] { (void)r(Tensor::symbolic({kUnknownDim, 12})); });
  EXPECT_NE(msg.find("Reshape 'to5'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[None, 12]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[5]"), std::string::npos) << msg;
  auto r7 = layers::Reshape({-1, 7});
  EXPECT_THROW((void)r7(Tensor::symbolic({kUnknownDim, 12})), ShapeError);
}

TEST(Reshape, GradientMatchesFiniteDifferences) {
  auto r = layers::Reshape({2, 3});
  EXPECT_TRUE(gradcheck_layer(*r, {Tensor::randn({2, 6}, 9, DType::kFloat64)}, {}));
}

// ---- Dropout ----

TEST(Dropout, IdentityInInference) {
  auto drop = layers::Dropout(0.5);
  Tensor x = Tensor::randn({4, 8}, 2);
  EXPECT_EQ(drop(x).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(drop(Tensor::symbolic({kUnknownDim, 8}), true).shape(), (Shape{kUnknownDim, 8}));
}

TEST(Dropout, TrainingZeroesAndRescales) {
  set_random_seed(42);
  auto drop = layers::Dropout(0.25);
  Tensor x = Tensor::ones({100, 100});
  const auto y = drop(x, /*training=*/true).to_vector<float>();
  int zeros = 0;
  for (float v : y) {
    if (v == 0.0f) ++zeros;
    else EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
  }
  EXPECT_NEAR(zeros / 10000.0, 0.25, 0.03);
  // Each training call draws a new pattern.
  EXPECT_NE(drop(x, true).to_vector<float>(), y);
}

TEST(Dropout, SameSeedSameMasks) {
  set_random_seed(7);
  const auto a = layers::Dropout(0.5)(Tensor::ones({8, 8}), true).to_vector<float>();
  set_random_seed(7);
  const auto b = layers::Dropout(0.5)(Tensor::ones({8, 8}), true).to_vector<float>();
  EXPECT_EQ(a, b);
  auto s1 = layers::Dropout(0.5).seed(3);
  auto s2 = layers::Dropout(0.5).seed(3);
  EXPECT_EQ(s1(Tensor::ones({8, 8}), true).to_vector<float>(), s2(Tensor::ones({8, 8}), true).to_vector<float>());
}

TEST(Dropout, GradientIsTheMask) {
  auto drop = layers::Dropout(0.5).seed(11);
  Tensor x = Tensor::ones({4, 4}).set_requires_grad(true);
  Tensor y = drop(x, true);
  ops::sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), y.to_vector<float>());  // y = mask·1, dy/dx = mask
}

TEST(Dropout, RateValidatedAtConstruction) {
  EXPECT_THROW(layers::Dropout(1.0), ValueError);
  EXPECT_THROW(layers::Dropout(-0.1), ValueError);
  EXPECT_NE(error_of([] { layers::Dropout(1.5); }).find("Dropout '"), std::string::npos);
}

// ---- ActivityRegularization ----

TEST(ActivityRegularization, IdentityWithPenaltyPerSample) {
  auto reg = layers::ActivityRegularization(0.1, 0.01).name("act_reg");
  Tensor x = Tensor::from_vector(std::vector<float>{1, -2, 3, -4}, {2, 2});
  Tensor y = reg(x);
  EXPECT_EQ(y.to_vector<float>(), x.to_vector<float>());
  const auto losses = reg->named_losses();
  ASSERT_EQ(losses.size(), 1u);
  // (0.1·Σ|x| + 0.01·Σx²) / batch = (0.1·10 + 0.01·30) / 2 = 0.65
  EXPECT_NEAR(losses[0].value.item(), 0.65, 1e-6);
  EXPECT_EQ(losses[0].name, "act_reg/activity_regularizer");
  EXPECT_THROW(layers::ActivityRegularization(-1.0, 0.0), ValueError);
  const Config c = reg.get_config();
  EXPECT_DOUBLE_EQ(c["l1"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(c["l2"].get<double>(), 0.01);
}

TEST(ActivityRegularization, PenaltyGradient) {
  // d/dx [(l1·Σ|x| + l2·Σx²)/N] = (l1·sign(x) + 2·l2·x)/N
  auto reg = layers::ActivityRegularization(0.1, 0.01);
  Tensor x = Tensor::from_vector(std::vector<double>{1, -2, 3, -4}, {2, 2}).set_requires_grad(true);
  (void)reg(x);
  reg.losses()[0].backward();
  const auto g = x.grad().to_vector<double>();
  const double expected[] = {(0.1 + 0.02) / 2, (-0.1 - 0.04) / 2, (0.1 + 0.06) / 2, (-0.1 - 0.08) / 2};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(g[i], expected[i], 1e-15);
}

}  // namespace
}  // namespace normnet

// Losses: values against hand computations (including logits of ±1000), float64 gradient checks,
// Keras's shape rules and errors, reduction of custom per-sample losses, get() and from_config().
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "normnet/losses.h"
#include "normnet/ops.h"
#include "support/expect_throw.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;
using testing::GradCheckOptions;

Tensor f64(std::vector<double> v, Shape s) { return Tensor::from_vector(v, std::move(s)); }
Tensor i64(std::vector<int64_t> v, Shape s) { return Tensor::from_vector(v, std::move(s)); }

double log_sum_exp(const std::vector<double>& x) {
  double m = x[0];
  for (double v : x) m = std::max(m, v);
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  return m + std::log(s);
}

using testing::expect_throw_with;

// ---- SparseCategoricalCrossentropy ------------------------------------------------------------

TEST(SparseCategoricalCrossentropy, FromLogitsMatchesHandComputation) {
  const Tensor logits = f64({1, 2, 3, 1, 0, -1}, {2, 3});
  const Tensor labels = i64({2, 0}, {2});
  const double expected = ((log_sum_exp({1, 2, 3}) - 3) + (log_sum_exp({1, 0, -1}) - 1)) / 2;
  const Tensor loss = losses::SparseCategoricalCrossentropy().from_logits(true)(labels, logits);
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_NEAR(loss.item(), expected, 1e-14);
}

TEST(SparseCategoricalCrossentropy, FromProbabilitiesIsMinusLogOfClippedProbability) {
  const Tensor p = f64({0.2, 0.3, 0.5, 0.7, 0.2, 0.1}, {2, 3});
  const Tensor loss = losses::SparseCategoricalCrossentropy()(i64({2, 0}, {2}), p);
  EXPECT_NEAR(loss.item(), (-std::log(0.5) - std::log(0.7)) / 2, 1e-14);
  // A zero probability on the label is clipped to ε = 1e-7 (Keras's epsilon), not −log 0 = inf.
  const Tensor hard = f64({1, 0}, {1, 2});
  const double got = losses::SparseCategoricalCrossentropy()(i64({1}, {1}), hard).item();
  EXPECT_NEAR(got, -std::log(1e-7), 1e-6);
}

TEST(SparseCategoricalCrossentropy, ExtremeLogitsStayFinite) {
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const Tensor logits = f64({1000, -1000, 0, -1000, 1000, 0}, {2, 3}).to(dt);
    const Tensor labels = i64({1, 1}, {2});
    const Tensor loss = losses::SparseCategoricalCrossentropy().from_logits(true)(labels, logits);
    EXPECT_NEAR(loss.item(), (2000.0 + 0.0) / 2, 1e-9);  // row 0: lse = 1000, x_l = −1000; row 1: 0
  }
}

TEST(SparseCategoricalCrossentropy, AcceptsLabelsWithTrailingOneAndExtraAxes) {
  const Tensor logits = Tensor::randn({4, 5}, 1, DType::kFloat64);
  const Tensor labels = i64({0, 4, 2, 1}, {4});
  const auto loss = losses::SparseCategoricalCrossentropy().from_logits(true);
  const double base = loss(labels, logits).item();
  EXPECT_DOUBLE_EQ(loss(ops::reshape(labels, {4, 1}), logits).item(), base);
  // [2, 2, 5] logits with [2, 2] labels: the mean over all 4 positions.
  EXPECT_DOUBLE_EQ(loss(ops::reshape(labels, {2, 2}), ops::reshape(logits, {2, 2, 5})).item(), base);
  // Float labels are cast (Keras accepts them).
  EXPECT_DOUBLE_EQ(loss(f64({0, 4, 2, 1}, {4}), logits).item(), base);
}

TEST(SparseCategoricalCrossentropy, ShapeAndLabelErrors) {
  const auto loss = losses::SparseCategoricalCrossentropy().from_logits(true);
  expect_throw_with<ShapeError>([&] { (void)loss(Tensor::zeros({32, 3}, DType::kInt64), Tensor::zeros({32, 10})); },
                                {"SparseCategoricalCrossentropy", "[32, 3]", "[32, 10]"});
  expect_throw_with<ShapeError>([&] { (void)loss(Tensor::zeros({16}, DType::kInt64), Tensor::zeros({32, 10})); },
                                {"SparseCategoricalCrossentropy", "[16]", "[32, 10]"});
  // Label range errors come from the op.
  expect_throw_with<ValueError>([&] { (void)loss(i64({0, 10}, {2}), Tensor::zeros({2, 10})); }, {"label 10"});
}

TEST(SparseCategoricalCrossentropy, GradientsAreExact) {
  const Tensor labels = i64({2, 0, 1}, {3});
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) { return losses::SparseCategoricalCrossentropy().from_logits(true)(labels, in[0]); },
      {Tensor::randn({3, 4}, 2, DType::kFloat64)}));
  // From probabilities: values well inside (ε, 1 − ε), away from the clip's kinks.
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) { return losses::SparseCategoricalCrossentropy()(labels, in[0]); },
      {Tensor::uniform({3, 4}, 0.05, 0.9, 3, DType::kFloat64)}));
}

// ---- CategoricalCrossentropy ------------------------------------------------------------------

TEST(CategoricalCrossentropy, FromLogitsAndProbabilitiesMatchHandComputation) {
  const Tensor y = f64({0, 0, 1, 0.5, 0.5, 0}, {2, 3});
  const Tensor logits = f64({1, 2, 3, 1, 0, -1}, {2, 3});
  const double l0 = log_sum_exp({1, 2, 3}), l1 = log_sum_exp({1, 0, -1});
  const double expected = ((l0 - 3) + 0.5 * (l1 - 1) + 0.5 * (l1 - 0)) / 2;
  EXPECT_NEAR(losses::CategoricalCrossentropy().from_logits(true)(y, logits).item(), expected, 1e-14);
  // Probabilities are renormalized along the class axis first, as Keras: [2, 2, 4] → [.25, .25, .5].
  const Tensor p = f64({2, 2, 4, 0.6, 0.3, 0.1}, {2, 3});
  const double expected_p = (-std::log(0.5) - 0.5 * std::log(0.6) - 0.5 * std::log(0.3)) / 2;
  EXPECT_NEAR(losses::CategoricalCrossentropy()(y, p).item(), expected_p, 1e-14);
}

TEST(CategoricalCrossentropy, LabelSmoothing) {
  // s = 0.3, C = 3: [0, 0, 1] → [0.1, 0.1, 0.8].
  const Tensor y = f64({0, 0, 1}, {1, 3});
  const Tensor logits = f64({1, 2, 3}, {1, 3});
  const double l = log_sum_exp({1, 2, 3});
  const double expected = 0.1 * (l - 1) + 0.1 * (l - 2) + 0.8 * (l - 3);
  EXPECT_NEAR(losses::CategoricalCrossentropy().from_logits(true).label_smoothing(0.3)(y, logits).item(), expected, 1e-14);
  EXPECT_THROW(losses::CategoricalCrossentropy().label_smoothing(1.5), ValueError);
  EXPECT_THROW(losses::CategoricalCrossentropy().label_smoothing(-0.1), ValueError);
}

TEST(CategoricalCrossentropy, ExtremeLogitsStayFinite) {
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const Tensor y = f64({0, 1, 0, 1, 0, 0}, {2, 3}).to(dt);
    const Tensor logits = f64({1000, -1000, 0, 1000, -1000, 0}, {2, 3}).to(dt).set_requires_grad(true);
    const Tensor loss = losses::CategoricalCrossentropy().from_logits(true)(y, logits);
    EXPECT_NEAR(loss.item(), 1000.0, 1e-9);  // (2000 + 0)/2
    loss.backward();
    for (double g : logits.grad().to(DType::kFloat64).to_vector<double>()) EXPECT_TRUE(std::isfinite(g));
  }
}

TEST(CategoricalCrossentropy, ShapeErrorNamesBothShapes) {
  expect_throw_with<ShapeError>(
      [] { (void)losses::CategoricalCrossentropy()(Tensor::zeros({32, 3}), Tensor::zeros({32, 10})); },
      {"CategoricalCrossentropy", "[32, 3]", "[32, 10]"});
  // Integer labels belong to the sparse loss.
  expect_throw_with<ShapeError>(
      [] { (void)losses::CategoricalCrossentropy()(Tensor::zeros({32}, DType::kInt64), Tensor::zeros({32, 10})); },
      {"[32]", "[32, 10]"});
}

TEST(CategoricalCrossentropy, GradientsAreExact) {
  const Tensor y = Tensor::uniform({3, 4}, 0, 1, 5, DType::kFloat64);
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) {
        return losses::CategoricalCrossentropy().from_logits(true).label_smoothing(0.1)(in[0], in[1]);
      },
      {y, Tensor::randn({3, 4}, 6, DType::kFloat64)}));
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return losses::CategoricalCrossentropy()(in[0], in[1]); },
                        {y, Tensor::uniform({3, 4}, 0.5, 1.0, 7, DType::kFloat64)}));
}

// ---- BinaryCrossentropy -----------------------------------------------------------------------

TEST(BinaryCrossentropy, FromLogitsMatchesHandComputationAtExtremes) {
  const std::vector<double> x = {2, -1, 0, 1000, -1000, 3};
  const std::vector<double> z = {1, 0, 1, 0, 1, 0.25};
  double expected = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    // −z·log σ(x) − (1 − z)·log(1 − σ(x)), with log σ(x) = −log(1 + e^−x) written stably.
    const double log_sig = x[i] > 0 ? -std::log1p(std::exp(-x[i])) : x[i] - std::log1p(std::exp(x[i]));
    const double log_one_minus = log_sig - x[i];
    expected += -z[i] * log_sig - (1 - z[i]) * log_one_minus;
  }
  expected /= 6;
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const Tensor loss = losses::BinaryCrossentropy().from_logits(true)(f64(z, {3, 2}).to(dt), f64(x, {3, 2}).to(dt));
    EXPECT_TRUE(std::isfinite(loss.item()));
    EXPECT_NEAR(loss.item(), expected, dt == DType::kFloat64 ? 1e-12 : 1e-4);
  }
}

TEST(BinaryCrossentropy, GradientAtZeroLogitIsHalfMinusTarget) {
  // d/dx = σ(x) − z = ½ − z at x = 0 (the composed max(x, 0) would give −z there).
  Tensor x = f64({0, 0}, {2}).set_requires_grad(true);
  losses::BinaryCrossentropy().from_logits(true)(f64({1, 0}, {2}), x).backward();
  const auto g = x.grad().to_vector<double>();
  EXPECT_DOUBLE_EQ(g[0], -0.25);  // (½ − 1)/2
  EXPECT_DOUBLE_EQ(g[1], 0.25);
}

TEST(BinaryCrossentropy, FromProbabilitiesClipsAsKeras) {
  const double eps = 1e-7;
  const std::vector<double> p = {0.9, 0.2, 0.0, 1.0};
  const std::vector<double> z = {1, 0, 1, 0};
  const double expected = (-std::log(0.9) - std::log(0.8) - std::log(eps) - std::log(1.0 - (1.0 - eps))) / 4;
  const Tensor loss = losses::BinaryCrossentropy()(f64(z, {4, 1}), f64(p, {4, 1}));
  EXPECT_NEAR(loss.item(), expected, 1e-12);
  // Integer targets are cast; y_true [N] fits y_pred [N, 1] (Keras squeezes the trailing axis).
  EXPECT_NEAR(losses::BinaryCrossentropy()(i64({1, 0, 1, 0}, {4}), f64(p, {4, 1})).item(), expected, 1e-12);
}

TEST(BinaryCrossentropy, ShapeErrorAndGradients) {
  expect_throw_with<ShapeError>([] { (void)losses::BinaryCrossentropy()(Tensor::zeros({8, 2}), Tensor::zeros({8, 3})); },
                                {"BinaryCrossentropy", "[8, 2]", "[8, 3]"});
  const Tensor z = Tensor::uniform({3, 2}, 0, 1, 8, DType::kFloat64);
  GradCheckOptions opts;
  opts.kinks = {0.0};  // |x| (the formula is smooth there, but a central difference across it is not exact)
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) { return losses::BinaryCrossentropy().from_logits(true)(in[0], in[1]); },
      {z, Tensor::randn({3, 2}, 9, DType::kFloat64)}, opts));
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return losses::BinaryCrossentropy()(in[0], in[1]); },
                        {z, Tensor::uniform({3, 2}, 0.05, 0.95, 10, DType::kFloat64)}));
}

// ---- MSE, MAE, CosineSimilarity ---------------------------------------------------------------

TEST(RegressionLosses, ValuesMatchHandComputation) {
  const Tensor y = f64({1, 2, 3, 4}, {2, 2});
  const Tensor p = f64({1.5, 1, 3, 6}, {2, 2});
  EXPECT_DOUBLE_EQ(losses::MeanSquaredError()(y, p).item(), (0.25 + 1 + 0 + 4) / 4);
  EXPECT_DOUBLE_EQ(losses::MeanAbsoluteError()(y, p).item(), (0.5 + 1 + 0 + 2) / 4);
  EXPECT_DOUBLE_EQ(losses::MeanSquaredError()(i64({1, 2, 3, 4}, {2, 2}), p).item(), 5.25 / 4);
  expect_throw_with<ShapeError>([] { (void)losses::MeanSquaredError()(Tensor::zeros({4, 3}), Tensor::zeros({4, 2})); },
                                {"MeanSquaredError", "[4, 3]", "[4, 2]"});
  EXPECT_THROW((void)losses::MeanAbsoluteError()(Tensor::zeros({4}), Tensor::zeros({4}, DType::kInt64)), ValueError);
}

TEST(RegressionLosses, GradientsAreExact) {
  const Tensor y = Tensor::randn({3, 4}, 11, DType::kFloat64);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return losses::MeanSquaredError()(in[0], in[1]); },
                        {y, Tensor::randn({3, 4}, 12, DType::kFloat64)}));
  // MAE has a kink where y_pred = y_true: keep the points apart (y + a uniform in [0.1, 1)).
  const Tensor p = y + Tensor::uniform({3, 4}, 0.1, 1.0, 13, DType::kFloat64);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return losses::MeanAbsoluteError()(in[0], in[1]); },
                        {y, p}));
}

TEST(CosineSimilarity, ValueIsMinusMeanCosine) {
  // Row 0: parallel → cos 1; row 1: orthogonal → 0; row 2: opposite → −1 ⇒ loss −(1 + 0 − 1)/3 = 0.
  const Tensor y = f64({1, 0, 0, 1, 1, 1}, {3, 2});
  const Tensor p = f64({3, 0, 5, 0, -2, -2}, {3, 2});
  EXPECT_NEAR(losses::CosineSimilarity()(y, p).item(), 0.0, 1e-15);
  // cos([1, 2], [2, 1]) = 4/5.
  EXPECT_NEAR(losses::CosineSimilarity()(f64({1, 2}, {1, 2}), f64({2, 1}, {1, 2})).item(), -0.8, 1e-15);
  // Along axis 0 instead: columns [1, 2]·[2, 1] and [3, 4]·[3, 4].
  const Tensor a = f64({1, 3, 2, 4}, {2, 2});
  const Tensor b = f64({2, 3, 1, 4}, {2, 2});
  EXPECT_NEAR(losses::CosineSimilarity().axis(0)(a, b).item(), -(0.8 + 1.0) / 2, 1e-15);
}

TEST(CosineSimilarity, ZeroVectorGivesZeroAndFiniteGradient) {
  Tensor p = f64({0, 0, 1, 0}, {2, 2}).set_requires_grad(true);
  const Tensor loss = losses::CosineSimilarity()(f64({1, 0, 1, 0}, {2, 2}), p);
  EXPECT_NEAR(loss.item(), -0.5, 1e-15);  // row 0 contributes 0, row 1 contributes −1
  loss.backward();
  for (double g : p.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(g));
}

TEST(CosineSimilarity, GradientsAreExact) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return losses::CosineSimilarity()(in[0], in[1]); },
                        {Tensor::randn({3, 4}, 14, DType::kFloat64), Tensor::randn({3, 4}, 15, DType::kFloat64)}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return losses::CosineSimilarity().axis(0)(in[0], in[1]); },
                        {Tensor::randn({3, 2}, 16, DType::kFloat64), Tensor::randn({3, 2}, 17, DType::kFloat64)}));
}

// ---- Loss wrapper, get, from_config -----------------------------------------------------------

TEST(Loss, CustomPerSampleLossIsAveraged) {
  Loss per_sample([](const Tensor& t, const Tensor& p) { return ops::sum(ops::square(p - t), {1}); }, "sq");
  EXPECT_EQ(per_sample.name(), "sq");
  EXPECT_TRUE(per_sample.get_config().is_null());
  // Rows: (1 + 4) and (0 + 9) → mean 7.
  const Tensor v = per_sample(f64({0, 0, 0, 0}, {2, 2}), f64({1, 2, 0, 3}, {2, 2}));
  EXPECT_EQ(v.shape(), Shape{});
  EXPECT_DOUBLE_EQ(v.item(), 7.0);
  EXPECT_THROW((void)Loss()(Tensor::zeros({1}), Tensor::zeros({1})), Error);
}

TEST(Loss, BuiltInLossCopiedAsLossKeepsNameAndConfig) {
  const Loss loss = losses::SparseCategoricalCrossentropy().from_logits(true);
  EXPECT_EQ(loss.name(), "sparse_categorical_crossentropy");
  EXPECT_EQ(loss.get_config()["class_name"], "SparseCategoricalCrossentropy");
  EXPECT_EQ(loss.get_config()["config"]["from_logits"], true);
}

TEST(Loss, GetByKerasName) {
  EXPECT_EQ(losses::get("mse").name(), "mean_squared_error");
  EXPECT_EQ(losses::get("mean_absolute_error").name(), "mean_absolute_error");
  EXPECT_EQ(losses::get("sparse_categorical_crossentropy").get_config()["config"]["from_logits"], false);
  EXPECT_EQ(losses::get("binary_crossentropy").name(), "binary_crossentropy");
  EXPECT_EQ(losses::get("cosine_similarity").name(), "cosine_similarity");
  expect_throw_with<ValueError>([] { (void)losses::get("hinge_of_doom"); }, {"hinge_of_doom"});
}

TEST(Loss, ConfigRoundTrip) {
  const std::vector<Loss> all = {losses::SparseCategoricalCrossentropy().from_logits(true),
                                 losses::CategoricalCrossentropy().from_logits(true).label_smoothing(0.2),
                                 losses::BinaryCrossentropy().from_logits(true),
                                 losses::MeanSquaredError(),
                                 losses::MeanAbsoluteError(),
                                 losses::CosineSimilarity().axis(0)};
  for (const Loss& loss : all) {
    const Loss back = losses::from_config(loss.get_config());
    EXPECT_EQ(back.get_config(), loss.get_config());
    EXPECT_EQ(back.name(), loss.name());
  }
  // The restored loss computes the same thing.
  const Loss cce = losses::from_config(all[1].get_config());
  const Tensor y = f64({0, 1, 0}, {1, 3}), x = f64({0.5, -1, 2}, {1, 3});
  EXPECT_DOUBLE_EQ(cce(y, x).item(), all[1](y, x).item());
  EXPECT_THROW((void)losses::from_config(Config{{"class_name", "Nope"}}), ValueError);
  EXPECT_THROW((void)losses::from_config(Config::array()), ValueError);
}

}  // namespace
}  // namespace normnet

// Regularizers: values against hand computations (Keras's arithmetic, no ½), gradients by finite
// differences, dtypes, symbolic inputs, configs and from_config, custom callables, errors.
#include <gtest/gtest.h>

#include "normnet/normnet.h"
#include "normnet/regularizers.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;
using testing::GradCheckOptions;

// w = [[1, -2], [3, -4]]: Σ|w| = 10, Σw² = 1 + 4 + 9 + 16 = 30.
Tensor w32() { return Tensor::from_vector(std::vector<float>{1, -2, 3, -4}, {2, 2}); }

TEST(Regularizers, ValuesMatchHandComputation) {
  EXPECT_FLOAT_EQ(regularizers::L1(0.01)(w32()).item(), 0.1f);   // 0.01·10
  EXPECT_FLOAT_EQ(regularizers::L2(0.01)(w32()).item(), 0.3f);   // 0.01·30 (no ½)
  EXPECT_FLOAT_EQ(regularizers::L1L2(0.01, 0.02)(w32()).item(), 0.7f);  // 0.1 + 0.02·30
  EXPECT_FLOAT_EQ(regularizers::L1L2(0.5, 0.0)(w32()).item(), 5.0f);
  EXPECT_FLOAT_EQ(regularizers::L1L2(0.0, 0.5)(w32()).item(), 15.0f);
  EXPECT_EQ(regularizers::L1L2()(w32()).item(), 0.0);  // Keras's defaults are 0 and 0
  // Keras's defaults: L1() = L1(0.01), L2() = L2(0.01).
  EXPECT_FLOAT_EQ(regularizers::L1()(w32()).item(), 0.1f);
  EXPECT_FLOAT_EQ(regularizers::L2()(w32()).item(), 0.3f);
}

TEST(Regularizers, PenaltyIsAScalarOfTheInputDtype) {
  const Tensor p32 = regularizers::L2(0.01)(w32());
  EXPECT_EQ(p32.shape(), Shape{});
  EXPECT_EQ(p32.dtype(), DType::kFloat32);
  const Tensor w64 = Tensor::from_vector(std::vector<double>{0.1, 0.2, -0.3}, {3});
  const Tensor p64 = regularizers::L1L2(1e-3, 2e-3)(w64);
  EXPECT_EQ(p64.dtype(), DType::kFloat64);
  // 1e-3·0.6 + 2e-3·(0.01 + 0.04 + 0.09)
  EXPECT_NEAR(p64.item(), 6e-4 + 2.8e-4, 1e-16);
  EXPECT_EQ(regularizers::L1L2()(w64).dtype(), DType::kFloat64);
}

TEST(Regularizers, SymbolicInputGivesSymbolicScalar) {
  const Tensor h = Tensor::symbolic({kUnknownDim, 64});
  for (const Regularizer& r : {regularizers::L1(), regularizers::L2(), regularizers::L1L2(0.1, 0.2), regularizers::L1L2()}) {
    const Tensor p = r(h);
    EXPECT_TRUE(p.is_symbolic());
    EXPECT_EQ(p.shape(), Shape{});
  }
}

TEST(Regularizers, GradientsAreExactDerivatives) {
  // d/dw l·Σw² = 2l·w, d/dw l·Σ|w| = l·sign(w).
  Tensor w = w32();
  w.set_requires_grad(true);
  regularizers::L1L2(0.1, 0.01)(w).backward();
  const std::vector<float> expected = {0.1f + 0.02f, -0.1f - 0.04f, 0.1f + 0.06f, -0.1f - 0.08f};
  const auto got = w.grad().to_vector<float>();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], expected[i]);
}

TEST(Regularizers, GradcheckEveryRegularizer) {
  const Tensor x = Tensor::randn({3, 4}, 5, DType::kFloat64);
  GradCheckOptions opts;
  opts.kinks = {0.0};  // |w| at 0
  for (const Regularizer& r : {regularizers::L1(0.3), regularizers::L2(0.7), regularizers::L1L2(0.2, 0.5)}) {
    EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return r(in[0]); }, {x}, opts))
        << r.get_config().dump();
  }
}

TEST(Regularizers, ConfigsAreKeras) {
  EXPECT_EQ(regularizers::L1(0.5).get_config(), Config::parse(R"({"class_name": "L1", "config": {"l1": 0.5}})"));
  EXPECT_EQ(regularizers::L2().get_config(), Config::parse(R"({"class_name": "L2", "config": {"l2": 0.01}})"));
  EXPECT_EQ(regularizers::L1L2(0.0, 0.01).get_config(),
            Config::parse(R"({"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}})"));
}

TEST(Regularizers, FromConfigRoundTrips) {
  for (const Regularizer& r : {regularizers::L1(0.25), regularizers::L2(0.125), regularizers::L1L2(0.5, 0.75)}) {
    const Regularizer back = regularizers::from_config(r.get_config());
    EXPECT_EQ(back.get_config(), r.get_config());
    EXPECT_EQ(back(w32()).item(), r(w32()).item());
  }
  // A Keras-saved config may omit factors (class defaults) or carry extra keys.
  const Regularizer partial = regularizers::from_config(
      Config::parse(R"({"module": "keras.regularizers", "class_name": "L1L2", "config": {"l2": 0.5}})"));
  EXPECT_FLOAT_EQ(partial(w32()).item(), 15.0f);
  EXPECT_EQ(regularizers::from_config(Config("l2")).get_config(), regularizers::L2().get_config());
  EXPECT_EQ(regularizers::from_config(Config("l1")).get_config(), regularizers::L1().get_config());
}

TEST(Regularizers, CustomCallable) {
  const Regularizer r([](const Tensor& x) { return 3.0 * ops::sum(x); });
  EXPECT_TRUE(r.get_config().is_null());
  EXPECT_FLOAT_EQ(r(w32()).item(), -6.0f);
  EXPECT_TRUE(static_cast<bool>(r));
}

TEST(Regularizers, Errors) {
  EXPECT_FALSE(static_cast<bool>(Regularizer()));
  EXPECT_THROW((void)Regularizer()(w32()), Error);
  EXPECT_THROW((void)regularizers::L2(0.1)(Tensor()), Error);
  const Regularizer not_scalar([](const Tensor& x) { return x; });
  EXPECT_THROW((void)not_scalar(w32()), ValueError);
  EXPECT_THROW((void)regularizers::L1(-0.1), ValueError);
  EXPECT_THROW((void)regularizers::L2(std::nan("")), ValueError);
  EXPECT_THROW((void)regularizers::L1L2(0.1, INFINITY), ValueError);
  EXPECT_THROW((void)regularizers::from_config(Config::parse(R"({"class_name": "Orthogonal", "config": {}})")),
               ValueError);
  EXPECT_THROW((void)regularizers::from_config(Config::parse(R"({"class_name": "L2", "config": {"l2": "big"}})")),
               ValueError);
  EXPECT_THROW((void)regularizers::from_config(Config("l3")), ValueError);
  try {
    (void)regularizers::L1(-1.0);
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("regularizers::L1: expected l1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace normnet

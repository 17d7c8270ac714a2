// Reductions: sum/mean/max over axis lists with keepdims, argmax, errors, gradient checks.
#include <gtest/gtest.h>

#include <cmath>

#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;

Tensor f64(Shape shape, uint64_t seed) { return Tensor::randn(std::move(shape), seed, DType::kFloat64); }

TEST(Reduce, SumOverAxesAndKeepdims) {
  const Tensor x = Tensor::arange(24).to(DType::kFloat32);
  const Tensor t = ops::reshape(x, {2, 3, 4});
  EXPECT_EQ(ops::sum(t).item(), 276.0);
  EXPECT_EQ(ops::sum(t).shape(), Shape{});
  EXPECT_EQ(ops::sum(t, {0}).to_vector<float>(),
            (std::vector<float>{12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34}));
  EXPECT_EQ(ops::sum(t, {-1}).to_vector<float>(), (std::vector<float>{6, 22, 38, 54, 70, 86}));
  EXPECT_EQ(ops::sum(t, {0, 2}).to_vector<float>(), (std::vector<float>{60, 92, 124}));
  EXPECT_EQ(ops::sum(t, {0, 2}, true).shape(), (Shape{1, 3, 1}));
  EXPECT_EQ(ops::sum(t, {1, 2}).to_vector<float>(), (std::vector<float>{66, 210}));
  EXPECT_EQ(ops::mean(t, {1}).to_vector<float>(), (std::vector<float>{4, 5, 6, 7, 16, 17, 18, 19}));
  EXPECT_DOUBLE_EQ(ops::mean(t).item(), 11.5);
}

TEST(Reduce, FloatSumOfManyElementsIsAccurate) {
  // 1e6 copies of 0.1f: float accumulation would drift by ~1e-3 relative; double accumulation is exact to float.
  const Tensor x = Tensor::full({1000000}, 0.1);
  EXPECT_NEAR(ops::sum(x).item(), 1e6 * static_cast<double>(0.1f), 1e-1);
}

TEST(Reduce, MaxAndArgmax) {
  const Tensor t = Tensor::from_vector(std::vector<float>{1, 7, 3, 9, 2, 9}, {2, 3});
  EXPECT_EQ(ops::max(t).item(), 9.0);
  EXPECT_EQ(ops::max(t, {1}).to_vector<float>(), (std::vector<float>{7, 9}));
  EXPECT_EQ(ops::max(t, {0}, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(ops::argmax(t, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));  // first of the tie
  EXPECT_EQ(ops::argmax(t, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  const Tensor with_nan = Tensor::from_vector(std::vector<float>{1, NAN, 3}, {3});
  EXPECT_TRUE(std::isnan(ops::max(with_nan).item()));
}

TEST(Reduce, MaxGradientGoesToFirstMaximum) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 5, 5, 2}, {4}).set_requires_grad(true);
  ops::max(x).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 0, 0}));
}

TEST(Reduce, ErrorsNameOpAxisAndShape) {
  const Tensor t = Tensor::zeros({2, 5});
  try {
    (void)ops::sum(t, {3});
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "ops::sum: axis 3 out of range for shape [2, 5]");
  }
  EXPECT_THROW((void)ops::sum(t, {1, -1}), ValueError);
  EXPECT_THROW((void)ops::max(Tensor::zeros({0, 3}), {0}), ValueError);
}

TEST(Reduce, SymbolicShapes) {
  const Tensor x = Tensor::symbolic({kUnknownDim, 4, 5});
  EXPECT_EQ(ops::sum(x, {1}).shape(), (Shape{kUnknownDim, 5}));
  EXPECT_EQ(ops::mean(x, {-1}, true).shape(), (Shape{kUnknownDim, 4, 1}));
  EXPECT_EQ(ops::max(x, {1, 2}).shape(), (Shape{kUnknownDim}));
  EXPECT_EQ(ops::argmax(x, -1).dtype(), DType::kInt64);
  EXPECT_TRUE(ops::sum(x, {0}).is_symbolic());
}

TEST(ReduceGrad, SumMeanMaxOverSeveralAxisLists) {
  for (const std::vector<int>& axes : {std::vector<int>{0}, {1}, {-1}, {0, 2}, {1, 2}, {0, 1, 2}}) {
    SCOPED_TRACE(::testing::PrintToString(axes));
    EXPECT_TRUE(gradcheck([axes](const std::vector<Tensor>& v) { return ops::sum(v[0], axes); }, {f64({2, 3, 4}, 1)}));
    EXPECT_TRUE(gradcheck([axes](const std::vector<Tensor>& v) { return ops::mean(v[0], axes, true); }, {f64({2, 3, 4}, 2)}));
    EXPECT_TRUE(gradcheck([axes](const std::vector<Tensor>& v) { return ops::max(v[0], axes); }, {f64({2, 3, 4}, 3)}));
  }
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return ops::sum(v[0]); }, {f64({3, 2}, 4)}));
}

}  // namespace
}  // namespace normnet

// Broadcasting binary ops: values, broadcasting rules, errors, and float64 gradient checks.
#include <gtest/gtest.h>

#include <cmath>

#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;
using testing::GradCheckOptions;

Tensor f64(Shape shape, uint64_t seed) { return Tensor::randn(std::move(shape), seed, DType::kFloat64); }

TEST(Binary, AddBroadcastsRowsAndColumns) {
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor row = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
  const Tensor col = Tensor::from_vector(std::vector<float>{100, 200}, {2, 1});
  EXPECT_EQ((a + row).to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ((a + col).to_vector<float>(), (std::vector<float>{101, 102, 103, 204, 205, 206}));
  const Tensor outer = row + col;  // [3] + [2, 1] -> [2, 3]
  EXPECT_EQ(outer.shape(), (Shape{2, 3}));
  EXPECT_EQ(outer.to_vector<float>(), (std::vector<float>{110, 120, 130, 210, 220, 230}));
}

TEST(Binary, ArithmeticValuesAndScalars) {
  const Tensor a = Tensor::from_vector(std::vector<double>{1, -2, 3}, {3});
  const Tensor b = Tensor::from_vector(std::vector<double>{4, 5, -6}, {3});
  EXPECT_EQ((a - b).to_vector<double>(), (std::vector<double>{-3, -7, 9}));
  EXPECT_EQ((a * b).to_vector<double>(), (std::vector<double>{4, -10, -18}));
  EXPECT_EQ((a / b).to_vector<double>(), (std::vector<double>{0.25, -0.4, -0.5}));
  EXPECT_EQ((2.0 * a + 1.0).to_vector<double>(), (std::vector<double>{3, -3, 7}));
  EXPECT_EQ((1.0 - a).to_vector<double>(), (std::vector<double>{0, 3, -2}));
  EXPECT_EQ((6.0 / b).to_vector<double>(), (std::vector<double>{1.5, 1.2, -1}));
  EXPECT_EQ(ops::maximum(a, b).to_vector<double>(), (std::vector<double>{4, 5, 3}));
  EXPECT_EQ(ops::minimum(a, b).to_vector<double>(), (std::vector<double>{1, -2, -6}));
  const Tensor p = ops::pow(Tensor::from_vector(std::vector<double>{2, 3}, {2}), Tensor::from_vector(std::vector<double>{3, 0.5}, {2}));
  EXPECT_DOUBLE_EQ(p.to_vector<double>()[0], 8.0);
  EXPECT_DOUBLE_EQ(p.to_vector<double>()[1], std::sqrt(3.0));
}

TEST(Binary, Int64Arithmetic) {
  const Tensor a = Tensor::from_vector(std::vector<int64_t>{1, 2, 3}, {3});
  EXPECT_EQ((a + a).to_vector<int64_t>(), (std::vector<int64_t>{2, 4, 6}));
  EXPECT_EQ(ops::maximum(a, Tensor::from_vector(std::vector<int64_t>{2}, {1})).to_vector<int64_t>(),
            (std::vector<int64_t>{2, 2, 3}));
}

TEST(Binary, LargeBroadcastMatchesScalarLoop) {
  // Large enough to take the parallel strided path: [64, 1, 300] * [1, 50, 300].
  const Tensor a = Tensor::randn({64, 1, 300}, 1);
  const Tensor b = Tensor::randn({1, 50, 300}, 2);
  const Tensor y = a * b;
  ASSERT_EQ(y.shape(), (Shape{64, 50, 300}));
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const float* py = y.data<float>();
  for (int i = 0; i < 64; i += 7)
    for (int j = 0; j < 50; j += 3)
      for (int k = 0; k < 300; k += 11) ASSERT_EQ(py[(i * 50 + j) * 300 + k], pa[i * 300 + k] * pb[j * 300 + k]);
}

TEST(Binary, BroadcastErrorNamesOpAndShapes) {
  const Tensor a = Tensor::zeros({2, 3});
  const Tensor b = Tensor::zeros({4});
  try {
    (void)ops::add(a, b);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "ops::add: shapes [2, 3] and [4] cannot be broadcast (axis -1: 3 vs 4)");
  }
  EXPECT_THROW((void)ops::mul(Tensor::zeros({3}), Tensor::zeros({3}, DType::kFloat64)), ValueError);
}

TEST(Binary, SymbolicShapes) {
  const Tensor x = Tensor::symbolic({kUnknownDim, 5});
  const Tensor y = x + Tensor::zeros({5});
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 5}));
  EXPECT_EQ(shape_to_string((x * Tensor::symbolic({kUnknownDim, 1})).shape()), "[None, 5]");
}

TEST(Binary, BroadcastToAndItsGradient) {
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2}, {2, 1});
  EXPECT_EQ(ops::broadcast_to(x, {2, 3}).to_vector<float>(), (std::vector<float>{1, 1, 1, 2, 2, 2}));
  EXPECT_THROW((void)ops::broadcast_to(Tensor::zeros({2, 3}), {3}), ShapeError);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::broadcast_to(in[0], {4, 2, 3}); },
                        {f64({2, 1}, 3)}));
}

TEST(BinaryGrad, AddSubMulDivWithBroadcasting) {
  const std::vector<Tensor> in = {f64({3, 4}, 1), f64({4}, 2)};
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return v[0] + v[1]; }, in));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return v[0] - v[1]; }, in));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return v[0] * v[1]; }, in));
  const std::vector<Tensor> pos = {f64({2, 3, 1}, 4), ops::add(ops::abs(f64({1, 3, 5}, 5)), 0.5)};
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return v[0] / v[1]; }, pos));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return v[1] / v[0]; }, {ops::add(ops::abs(f64({3, 1}, 6)), 1.0), pos[1]}));
}

TEST(BinaryGrad, MaximumMinimumAndPow) {
  const std::vector<Tensor> in = {f64({3, 4}, 7), f64({3, 4}, 8)};  // no ties with random data
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return ops::maximum(v[0], v[1]); }, in));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return ops::minimum(v[0], v[1]); }, in));
  const std::vector<Tensor> pw = {ops::add(ops::abs(f64({2, 3}, 9)), 0.5), f64({3}, 10)};
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& v) { return ops::pow(v[0], v[1]); }, pw));
}

TEST(BinaryGrad, SameTensorOnBothSides) {
  // y = x·x must give 2x: both inputs are the same leaf, gradients must add.
  Tensor x = Tensor::from_vector(std::vector<double>{1.5, -2.0}, {2}).set_requires_grad(true);
  ops::sum(x * x).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3.0, -4.0}));
}

}  // namespace
}  // namespace normnet

// max_pool2d and avg_pool2d: values (valid/same, Keras's count for same), tie and NaN rules of
// the max gradient, float64 gradient checks, shape inference and errors.
#include <gtest/gtest.h>

#include <cmath>

#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using ops::Padding;
using testing::gradcheck;
using testing::max_abs_diff;

Tensor f64(Shape shape, uint64_t seed) { return Tensor::randn(std::move(shape), seed, DType::kFloat64); }

// 0, 1, ..., n−1 laid out as [1, h, w, 1].
Tensor ramp(int64_t h, int64_t w) { return ops::reshape(Tensor::arange(h * w), {1, h, w, 1}); }

template <class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(MaxPool2d, ValidWindowsWithDefaultStrides) {
  const Tensor y = ops::max_pool2d(ramp(4, 4), {2, 2});
  ASSERT_EQ(y.shape(), (Shape{1, 2, 2, 1}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{5, 7, 13, 15}));
  const Tensor z = ops::max_pool2d(ramp(4, 5), {2, 3}, {1, 2});  // rows 0..2, cols {0..2, 2..4}
  ASSERT_EQ(z.shape(), (Shape{1, 3, 2, 1}));
  EXPECT_EQ(z.to_vector<float>(), (std::vector<float>{7, 9, 12, 14, 17, 19}));
}

TEST(AvgPool2d, ValidWindowsWithDefaultStrides) {
  const Tensor y = ops::avg_pool2d(ramp(4, 4), {2, 2});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2.5, 4.5, 10.5, 12.5}));
}

TEST(Pool2d, SamePaddingCountsOnlyRealElements) {
  // 3×3 image, 2×2 pool, stride 2, same: out 2×2, padding 1 at the bottom/right (TensorFlow).
  // Windows: {0,1,3,4}, {2,5}, {6,7}, {8}; Keras divides by these counts, not by 4.
  const Tensor avg = ops::avg_pool2d(ramp(3, 3), {2, 2}, {2, 2}, Padding::kSame);
  ASSERT_EQ(avg.shape(), (Shape{1, 2, 2, 1}));
  EXPECT_EQ(avg.to_vector<float>(), (std::vector<float>{2, 3.5, 6.5, 8}));
  const Tensor max = ops::max_pool2d(ramp(3, 3) - 100.0, {2, 2}, {2, 2}, Padding::kSame);  // padding is not a 0
  EXPECT_EQ(max.to_vector<float>(), (std::vector<float>{-96, -95, -93, -92}));
}

TEST(AvgPool2d, SamePaddingGradientUsesTheSameCounts) {
  Tensor x = ramp(3, 3).set_requires_grad(true);
  ops::sum(ops::avg_pool2d(x, {2, 2}, {2, 2}, Padding::kSame)).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 1}));
}

TEST(MaxPool2d, TiesSendTheGradientToTheFirstElement) {
  Tensor x = Tensor::ones({1, 2, 2, 1}).set_requires_grad(true);
  ops::sum(ops::max_pool2d(x, {2, 2})).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 0, 0, 0}));
  // Overlapping windows (stride 1) add at a shared maximum.
  Tensor r = Tensor::from_vector(std::vector<float>{0, 0, 0, 0, 9, 0, 0, 0, 0}, {1, 3, 3, 1}).set_requires_grad(true);
  ops::sum(ops::max_pool2d(r, {2, 2}, {1, 1})).backward();
  EXPECT_EQ(r.grad().to_vector<float>(), (std::vector<float>{0, 0, 0, 0, 4, 0, 0, 0, 0}));
}

TEST(MaxPool2d, NaNPropagatesAndTakesTheGradient) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, NAN, 3, 2}, {1, 2, 2, 1}).set_requires_grad(true);
  const Tensor y = ops::max_pool2d(x, {2, 2});
  EXPECT_TRUE(std::isnan(y.to_vector<float>()[0]));
  y.backward(Tensor::ones({1, 1, 1, 1}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0, 1, 0, 0}));
}

TEST(MaxPool2d, GradCheckValidAndSame) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], {2, 2}); },
                        {f64({2, 4, 6, 3}, 1)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], {3, 3}, {2, 2}, Padding::kSame); },
      {f64({2, 5, 6, 2}, 2)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], {3, 2}, {1, 1}, Padding::kValid); },
      {f64({1, 5, 4, 2}, 3)}));
}

TEST(MaxPool2d, GradCheckManyChannels) {
  // More channels than one kernel channel block (64).
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], {2, 2}, {1, 1}); },
                        {f64({1, 3, 3, 70}, 4)}));
}

TEST(MaxPool2d, GradCheckWindowsTooLargeToRecordTheArgmax) {
  // 17×16 = 272 window positions do not fit the byte the recorded path keeps per output: this
  // pool finds the argmax again from x in backward.
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], {17, 16}); },
                        {f64({2, 17, 32, 2}, 96)}));
}

TEST(AvgPool2d, GradCheckValidAndSame) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], {2, 2}); },
                        {f64({2, 4, 6, 3}, 5)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], {3, 3}, {2, 2}, Padding::kSame); },
      {f64({2, 5, 6, 2}, 6)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], {2, 3}, {1, 2}, Padding::kSame); },
      {f64({1, 4, 5, 67}, 7)}));
}

TEST(Pool2d, Float32MatchesFloat64) {
  for (bool is_max : {true, false}) {
    Tensor x = Tensor::randn({3, 9, 7, 5}, 8).set_requires_grad(true);
    Tensor x64 = x.to(DType::kFloat64).detach().set_requires_grad(true);
    auto pool = [is_max](const Tensor& t) {
      return is_max ? ops::max_pool2d(t, {3, 3}, {2, 2}, Padding::kSame)
                    : ops::avg_pool2d(t, {3, 3}, {2, 2}, Padding::kSame);
    };
    const Tensor y = pool(x), y64 = pool(x64);
    EXPECT_LT(max_abs_diff(y, y64), 1e-6);
    const Tensor u = Tensor::randn(y.shape(), 9);
    y.backward(u);
    y64.backward(u.to(DType::kFloat64));
    EXPECT_LT(max_abs_diff(x.grad(), x64.grad()), 1e-6);
  }
}

TEST(Pool2d, ShapeInference) {
  const Tensor y = ops::max_pool2d(Tensor::symbolic({kUnknownDim, 26, 26, 32}), {2, 2});
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 13, 13, 32}));
  EXPECT_EQ(ops::avg_pool2d(Tensor::symbolic({4, 7, 5, 3}), {2, 2}, {2, 2}, Padding::kSame).shape(),
            (Shape{4, 4, 3, 3}));
  EXPECT_EQ(ops::avg_pool2d(Tensor::symbolic({4, 7, 5, 3}), {3, 2}, {1, 1}).shape(), (Shape{4, 5, 4, 3}));
}

TEST(Pool2d, ErrorsNameTheOpAndShapes) {
  EXPECT_EQ(message_of([] { (void)ops::max_pool2d(Tensor::zeros({26, 26, 32}), {2, 2}); }),
            "ops::max_pool2d: expected x of rank 4 [N, H, W, C], got shape [26, 26, 32]");
  EXPECT_EQ(message_of([] { (void)ops::avg_pool2d(Tensor::zeros({1, 3, 3, 1}), {4, 4}); }),
            "ops::avg_pool2d: pool_size [4, 4] is larger than the image of x shape [1, 3, 3, 1] with valid padding");
  EXPECT_THROW((void)ops::max_pool2d(Tensor::zeros({1, 4, 4, 1}), {0, 2}), ValueError);
  EXPECT_THROW((void)ops::max_pool2d(Tensor::zeros({1, 4, 4, 1}), {2, 2}, {-1, 1}), ValueError);
  EXPECT_THROW((void)ops::max_pool2d(Tensor::zeros({1, 4, 4, 1}, DType::kInt64), {2, 2}), ValueError);
}

}  // namespace
}  // namespace normnet

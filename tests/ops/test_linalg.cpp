// matmul and linear: values, broadcasting of batch axes, float64 gradient checks, float32
// (oneDNN) against float64, shape inference and error messages.
#include <gtest/gtest.h>

#include <cmath>

#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;
using testing::max_abs_diff;

Tensor f64(Shape shape, uint64_t seed) { return Tensor::randn(std::move(shape), seed, DType::kFloat64); }

template <class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Matmul, TwoByThreeTimesThreeByTwo) {
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = Tensor::from_vector(std::vector<float>{7, 8, 9, 10, 11, 12}, {3, 2});
  const Tensor c = ops::matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 2}));
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{58, 64, 139, 154}));
  const Tensor c64 = ops::matmul(a.to(DType::kFloat64), b.to(DType::kFloat64));
  EXPECT_EQ(c64.to_vector<double>(), (std::vector<double>{58, 64, 139, 154}));
}

TEST(Matmul, BatchedBroadcastsBatchAxes) {
  // a [2, 1, 2, 2] · b [3, 2, 1] -> [2, 3, 2, 1]: result (i, j) = a[i, 0] · b[j].
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 0, 0, 1, 2, 0, 0, 2}, {2, 1, 2, 2});
  const Tensor b = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2, 1});
  const Tensor c = ops::matmul(a, b);
  ASSERT_EQ(c.shape(), (Shape{2, 3, 2, 1}));
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6, 2, 4, 6, 8, 10, 12}));
}

TEST(Matmul, GradCheck2d) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
                        {f64({3, 4}, 1), f64({4, 5}, 2)}));
}

TEST(Matmul, GradCheckBatched) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
                        {f64({2, 3, 4}, 3), f64({2, 4, 5}, 4)}));
}

TEST(Matmul, GradCheckBatchedTimesMatrix) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
                        {f64({2, 3, 3, 4}, 5), f64({4, 2}, 6)}));
}

TEST(Matmul, GradCheckMatrixTimesBatched) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
                        {f64({3, 4}, 7), f64({2, 4, 5}, 8)}));
}

TEST(Matmul, GradCheckBroadcastBatch) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
                        {f64({2, 1, 3, 4}, 9), f64({3, 4, 2}, 10)}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
                        {f64({1, 3, 4}, 11), f64({2, 1, 4, 2}, 12)}));
}

TEST(Matmul, Float32MatchesFloat64ForwardAndBackward) {
  // Odd shapes, broadcast batch: oneDNN (float32) against the reference loops (float64).
  const Shape shapes[][2] = {{{37, 53}, {53, 19}}, {{3, 5, 17}, {17, 7}}, {{2, 1, 5, 9}, {3, 9, 4}}, {{1, 13}, {13, 1}}};
  for (const auto& s : shapes) {
    Tensor a = Tensor::randn(s[0], 21).set_requires_grad(true);
    Tensor b = Tensor::randn(s[1], 22).set_requires_grad(true);
    Tensor a64 = a.to(DType::kFloat64).detach().set_requires_grad(true);
    Tensor b64 = b.to(DType::kFloat64).detach().set_requires_grad(true);
    const Tensor y = ops::matmul(a, b);
    const Tensor y64 = ops::matmul(a64, b64);
    EXPECT_LT(max_abs_diff(y, y64), 1e-4) << shape_to_string(s[0]) << " x " << shape_to_string(s[1]);
    const Tensor u = Tensor::randn(y.shape(), 23);
    y.backward(u);
    y64.backward(u.to(DType::kFloat64));
    EXPECT_LT(max_abs_diff(a.grad(), a64.grad()), 1e-4);
    EXPECT_LT(max_abs_diff(b.grad(), b64.grad()), 1e-4);
  }
}

TEST(Matmul, GradientsAreExactForKnownValues) {
  // y = a·b, upstream ones: da = 1·bᵀ (row sums of b), db = aᵀ·1 (column sums of a).
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector(std::vector<float>{5, 6, 7, 8}, {2, 2}).set_requires_grad(true);
  ops::sum(ops::matmul(a, b)).backward();
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{11, 15, 11, 15}));
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{4, 4, 6, 6}));
}

TEST(Matmul, InnerDimensionMismatchMessage) {
  const std::string msg = message_of([] { (void)ops::matmul(Tensor::zeros({32, 784}), Tensor::zeros({128, 10})); });
  EXPECT_EQ(msg, "ops::matmul: shapes [32, 784] and [128, 10] do not match on the inner dimension (784 vs 128)");
  EXPECT_THROW((void)ops::matmul(Tensor::zeros({32, 784}), Tensor::zeros({128, 10})), ShapeError);
}

TEST(Matmul, RejectsBadRanksBatchesAndDtypes) {
  EXPECT_THROW((void)ops::matmul(Tensor::zeros({4}), Tensor::zeros({4, 2})), ShapeError);
  const std::string msg =
      message_of([] { (void)ops::matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({5, 4, 6})); });
  EXPECT_NE(msg.find("[2, 3, 4] and [5, 4, 6]"), std::string::npos) << msg;
  EXPECT_THROW((void)ops::matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, DType::kFloat64)), ValueError);
  EXPECT_THROW((void)ops::matmul(Tensor::zeros({2, 3}, DType::kInt64), Tensor::zeros({3, 2}, DType::kInt64)),
               ValueError);
}

TEST(Matmul, SymbolicBatchGivesSymbolicResult) {
  const Tensor y = ops::matmul(Tensor::symbolic({kUnknownDim, 784}), Tensor::zeros({784, 10}));
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 10}));
  const Tensor z = ops::matmul(Tensor::symbolic({kUnknownDim, 5, 3}), Tensor::symbolic({3, 2}));
  EXPECT_EQ(z.shape(), (Shape{kUnknownDim, 5, 2}));
  EXPECT_THROW((void)ops::matmul(Tensor::symbolic({kUnknownDim, 784}), Tensor::zeros({128, 10})), ShapeError);
}

TEST(Matmul, EmptyInnerDimensionGivesZeros) {
  const Tensor y = ops::matmul(Tensor::zeros({3, 0}), Tensor::zeros({0, 2}));
  EXPECT_EQ(y.to_vector<float>(), std::vector<float>(6, 0.0f));
}

TEST(Linear, MatchesMatmulPlusBias) {
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor w = Tensor::from_vector(std::vector<float>{1, 0, 0, 1, 1, 1}, {3, 2});
  const Tensor b = Tensor::from_vector(std::vector<float>{10, 20}, {2});
  EXPECT_EQ(ops::linear(x, w, b).to_vector<float>(), (std::vector<float>{14, 25, 20, 31}));
  EXPECT_EQ(ops::linear(x, w, Tensor()).to_vector<float>(), (std::vector<float>{4, 5, 10, 11}));
}

TEST(Linear, GradCheckWithBias) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); },
                        {f64({4, 3}, 31), f64({3, 5}, 32), f64({5}, 33)}));
}

TEST(Linear, GradCheckWithoutBiasOnRank3Input) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], Tensor()); },
                        {f64({2, 3, 4}, 34), f64({4, 2}, 35)}));
}

TEST(Linear, Float32MatchesFloat64ForwardAndBackward) {
  Tensor x = Tensor::randn({33, 71}, 41).set_requires_grad(true);
  Tensor w = Tensor::randn({71, 13}, 42).set_requires_grad(true);
  Tensor b = Tensor::randn({13}, 43).set_requires_grad(true);
  Tensor x64 = x.to(DType::kFloat64).detach().set_requires_grad(true);
  Tensor w64 = w.to(DType::kFloat64).detach().set_requires_grad(true);
  Tensor b64 = b.to(DType::kFloat64).detach().set_requires_grad(true);
  const Tensor y = ops::linear(x, w, b);
  const Tensor y64 = ops::linear(x64, w64, b64);
  EXPECT_LT(max_abs_diff(y, y64), 1e-4);
  const Tensor u = Tensor::randn(y.shape(), 44);
  y.backward(u);
  y64.backward(u.to(DType::kFloat64));
  EXPECT_LT(max_abs_diff(x.grad(), x64.grad()), 1e-4);
  EXPECT_LT(max_abs_diff(w.grad(), w64.grad()), 1e-4);
  EXPECT_LT(max_abs_diff(b.grad(), b64.grad()), 1e-4);
}

TEST(Linear, ShapeInferenceAndErrors) {
  const Tensor y = ops::linear(Tensor::symbolic({kUnknownDim, 784}), Tensor::zeros({784, 128}), Tensor::zeros({128}));
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 128}));
  EXPECT_EQ(message_of([] { (void)ops::linear(Tensor::zeros({32, 784}), Tensor::zeros({128, 10}), Tensor()); }),
            "ops::linear: shapes [32, 784] and [128, 10] do not match on the inner dimension (784 vs 128)");
  EXPECT_EQ(message_of([] { (void)ops::linear(Tensor::zeros({2, 3}), Tensor::zeros({3, 4}), Tensor::zeros({5})); }),
            "ops::linear: bias shape [5] does not match kernel shape [3, 4] (expected [4])");
  EXPECT_THROW((void)ops::linear(Tensor::zeros({2, 3}), Tensor::zeros({3}), Tensor()), ShapeError);
}

}  // namespace
}  // namespace normnet

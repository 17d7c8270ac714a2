// conv2d: values, TensorFlow's same padding, float64 gradient checks (valid/same, stride 1/2,
// with/without bias), float32 (oneDNN) against float64, shape inference and error messages;
// conv2d_relu against relu(conv2d) bit for bit, NaN included, and its gradient checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using ops::Padding;
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

// x [1, 4, 4, 1] = 0..15 row-major; kernel 2×2 of ones sums each window.
Tensor ramp_image() { return Tensor::arange(16); }

TEST(Conv2d, ValidWindowSums) {
  const Tensor x = ops::reshape(ramp_image(), {1, 4, 4, 1});
  const Tensor k = Tensor::ones({2, 2, 1, 1});
  const Tensor y = ops::conv2d(x, k, Tensor::from_vector(std::vector<float>{0.5f}, {1}));
  ASSERT_EQ(y.shape(), (Shape{1, 3, 3, 1}));
  // window at (p, q) sums x[p..p+1, q..q+1] = 4·(4p + q) + 10
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{10.5, 14.5, 18.5, 26.5, 30.5, 34.5, 42.5, 46.5, 50.5}));
}

TEST(Conv2d, SamePaddingPutsTheExtraRowAtTheBottomRight) {
  // 4×4 input, 2×2 kernel, stride 1: total padding 1, all of it after (TensorFlow's rule).
  const Tensor x = ops::reshape(ramp_image(), {1, 4, 4, 1});
  const Tensor y = ops::conv2d(x, Tensor::ones({2, 2, 1, 1}), Tensor(), {1, 1}, Padding::kSame);
  ASSERT_EQ(y.shape(), (Shape{1, 4, 4, 1}));
  const auto v = y.to_vector<float>();
  EXPECT_EQ(v[0], 0 + 1 + 4 + 5);
  EXPECT_EQ(v[3], 3 + 7);     // last column: the right neighbour is padding
  EXPECT_EQ(v[15], 15);       // bottom-right corner
  // 3×3 kernel, stride 2 on 4×4: out 2, total padding (2−1)·2 + 3 − 4 = 1 → bottom/right only.
  const Tensor z = ops::conv2d(x, Tensor::ones({3, 3, 1, 1}), Tensor(), {2, 2}, Padding::kSame);
  ASSERT_EQ(z.shape(), (Shape{1, 2, 2, 1}));
  EXPECT_EQ(z.to_vector<float>()[0], 0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10);
  EXPECT_EQ(z.to_vector<float>()[3], 10 + 11 + 14 + 15);
}

TEST(Conv2d, OutputShapes) {
  auto shape_of = [](Shape x, Shape k, std::array<int, 2> s, Padding p) {
    return ops::conv2d(Tensor::symbolic(x), Tensor::symbolic(k), Tensor(), s, p).shape();
  };
  EXPECT_EQ(shape_of({kUnknownDim, 28, 28, 1}, {3, 3, 1, 32}, {1, 1}, Padding::kValid),
            (Shape{kUnknownDim, 26, 26, 32}));
  EXPECT_EQ(shape_of({8, 28, 28, 1}, {3, 3, 1, 32}, {1, 1}, Padding::kSame), (Shape{8, 28, 28, 32}));
  EXPECT_EQ(shape_of({8, 7, 6, 2}, {3, 3, 2, 4}, {2, 2}, Padding::kSame), (Shape{8, 4, 3, 4}));
  EXPECT_EQ(shape_of({8, 7, 6, 2}, {3, 2, 2, 4}, {2, 3}, Padding::kValid), (Shape{8, 3, 2, 4}));
  const Tensor y = ops::conv2d(Tensor::symbolic({kUnknownDim, 28, 28, 1}), Tensor::zeros({3, 3, 1, 32}),
                               Tensor::zeros({32}));
  EXPECT_TRUE(y.is_symbolic());
}

TEST(Conv2d, GradCheckValidStride1WithBias) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], {1, 1}, Padding::kValid); },
      {f64({2, 5, 4, 3}, 1), f64({3, 2, 3, 2}, 2), f64({2}, 3)}));
}

TEST(Conv2d, GradCheckSameStride2WithoutBias) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], Tensor(), {2, 2}, Padding::kSame); },
      {f64({2, 5, 6, 2}, 4), f64({3, 3, 2, 3}, 5)}));
}

TEST(Conv2d, GradCheckSameStride1EvenKernelWithBias) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], {1, 1}, Padding::kSame); },
      {f64({1, 4, 5, 2}, 6), f64({2, 2, 2, 3}, 7), f64({3}, 8)}));
}

TEST(Conv2d, GradCheckValidStride2AndPointwise) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], {2, 1}, Padding::kValid); },
      {f64({2, 7, 5, 2}, 9), f64({3, 2, 2, 2}, 10), f64({2}, 11)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], {1, 1}, Padding::kValid); },
      {f64({2, 3, 3, 4}, 12), f64({1, 1, 4, 3}, 13), f64({3}, 14)}));
}

TEST(Conv2d, Float32MatchesFloat64ForwardAndBackward) {
  struct Case {
    Shape x, k;
    std::array<int, 2> s;
    Padding p;
  };
  const Case cases[] = {{{3, 9, 8, 3}, {3, 3, 3, 5}, {1, 1}, Padding::kValid},
                        {{1, 9, 8, 3}, {3, 3, 3, 5}, {2, 2}, Padding::kSame},
                        {{2, 8, 7, 4}, {4, 2, 4, 6}, {2, 1}, Padding::kSame},
                        {{2, 6, 6, 8}, {1, 1, 8, 4}, {2, 2}, Padding::kValid}};
  for (const Case& c : cases) {
    Tensor x = Tensor::randn(c.x, 21).set_requires_grad(true);
    Tensor k = Tensor::randn(c.k, 22).set_requires_grad(true);
    Tensor b = Tensor::randn({c.k[3]}, 23).set_requires_grad(true);
    Tensor x64 = x.to(DType::kFloat64).detach().set_requires_grad(true);
    Tensor k64 = k.to(DType::kFloat64).detach().set_requires_grad(true);
    Tensor b64 = b.to(DType::kFloat64).detach().set_requires_grad(true);
    const Tensor y = ops::conv2d(x, k, b, c.s, c.p);
    const Tensor y64 = ops::conv2d(x64, k64, b64, c.s, c.p);
    const std::string what = shape_to_string(c.x) + " * " + shape_to_string(c.k);
    EXPECT_LT(max_abs_diff(y, y64), 1e-4) << what;
    const Tensor u = Tensor::randn(y.shape(), 24);
    y.backward(u);
    y64.backward(u.to(DType::kFloat64));
    EXPECT_LT(max_abs_diff(x.grad(), x64.grad()), 1e-4) << what;
    EXPECT_LT(max_abs_diff(k.grad(), k64.grad()), 1e-3) << what;
    EXPECT_LT(max_abs_diff(b.grad(), b64.grad()), 1e-3) << what;
  }
}

// The float32 bit patterns of t (NaN compares equal to the same NaN).
std::vector<uint32_t> bits_of(const Tensor& t) {
  std::vector<uint32_t> out;
  for (float v : t.to_vector<float>()) out.push_back(std::bit_cast<uint32_t>(v));
  return out;
}

TEST(Conv2dRelu, EqualsReluOfConv2dBitForBit) {
  struct Case {
    Shape x, k;
    std::array<int, 2> s;
    Padding p;
  };
  // The second case is the Fashion-MNIST CNN's second layer at a small batch (the fused path's
  // oneDNN primitives); the last has more channels than the fused bias sum keeps on its stack.
  const Case cases[] = {{{3, 9, 8, 3}, {3, 3, 3, 5}, {1, 1}, Padding::kValid},
                        {{4, 26, 26, 32}, {3, 3, 32, 64}, {1, 1}, Padding::kValid},
                        {{2, 8, 7, 4}, {4, 2, 4, 6}, {2, 1}, Padding::kSame},
                        {{1, 5, 5, 8}, {1, 1, 8, 300}, {1, 1}, Padding::kValid}};
  for (const Case& c : cases) {
    const std::string what = shape_to_string(c.x) + " * " + shape_to_string(c.k);
    Tensor x = Tensor::randn(c.x, 31).set_requires_grad(true);
    Tensor k = Tensor::randn(c.k, 32).set_requires_grad(true);
    Tensor b = Tensor::randn({c.k[3]}, 33).set_requires_grad(true);
    Tensor x2 = x.detach().clone().set_requires_grad(true);
    Tensor k2 = k.detach().clone().set_requires_grad(true);
    Tensor b2 = b.detach().clone().set_requires_grad(true);
    const Tensor fused = ops::conv2d_relu(x, k, b, c.s, c.p);
    const Tensor plain = ops::relu(ops::conv2d(x2, k2, b2, c.s, c.p));
    EXPECT_EQ(bits_of(fused), bits_of(plain)) << what;
    const Tensor u = Tensor::randn(fused.shape(), 34);
    fused.backward(u);
    plain.backward(u);
    // The same dz reaches the same oneDNN primitives; only the bias sum is ordered differently
    // (chunks of rows, then the chunk sums, all in double), so it may differ in the last bit.
    EXPECT_EQ(bits_of(x.grad()), bits_of(x2.grad())) << what;
    EXPECT_EQ(bits_of(k.grad()), bits_of(k2.grad())) << what;
    const auto db = b.grad().to_vector<float>(), db2 = b2.grad().to_vector<float>();
    for (std::size_t i = 0; i < db.size(); ++i) EXPECT_NEAR(db[i], db2[i], 1e-6 * (1.0 + std::abs(db2[i]))) << what;
  }
}

TEST(Conv2dRelu, OverwritesOnlyAGradientNobodyElseHolds) {
  // Under max pooling (the CNN's shape at batch 2), conv2d_relu's backward receives a gradient made
  // for it alone and computes dz in its buffer; the results must be those of the unfused chain.
  Tensor x = Tensor::randn({2, 26, 26, 32}, 61).set_requires_grad(true);
  Tensor k = Tensor::randn({3, 3, 32, 64}, 62).set_requires_grad(true);
  Tensor b = Tensor::randn({64}, 63).set_requires_grad(true);
  Tensor x2 = x.detach().clone().set_requires_grad(true);
  Tensor k2 = k.detach().clone().set_requires_grad(true);
  Tensor b2 = b.detach().clone().set_requires_grad(true);
  const Tensor u = Tensor::randn({2, 12, 12, 64}, 64);
  ops::max_pool2d(ops::conv2d_relu(x, k, b), {2, 2}).backward(u);
  ops::max_pool2d(ops::relu(ops::conv2d(x2, k2, b2)), {2, 2}).backward(u);
  EXPECT_EQ(bits_of(x.grad()), bits_of(x2.grad()));
  EXPECT_EQ(bits_of(k.grad()), bits_of(k2.grad()));
  const auto db = b.grad().to_vector<float>(), db2 = b2.grad().to_vector<float>();
  for (std::size_t i = 0; i < db.size(); ++i) EXPECT_NEAR(db[i], db2[i], 1e-6 * (1.0 + std::abs(db2[i])));

  // A gradient the caller still holds is read, never written.
  Tensor z = Tensor::randn({1, 6, 6, 3}, 65).set_requires_grad(true);
  const Tensor y = ops::conv2d_relu(z, Tensor::randn({3, 3, 3, 4}, 66), Tensor::randn({4}, 67));
  const Tensor held = Tensor::randn(y.shape(), 68);
  const auto before = bits_of(held);
  y.backward(held);
  EXPECT_EQ(bits_of(held), before);
}

TEST(Conv2dRelu, PassesNaNThrough) {
  // ops::relu keeps NaN so that TerminateOnNaN sees a diverged model; oneDNN's relu post-op
  // would map it to 0, so the fused op must not use it.
  Tensor x = Tensor::randn({2, 6, 6, 3}, 41);
  x.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();
  const Tensor k = Tensor::randn({3, 3, 3, 4}, 42);
  const Tensor b = Tensor::randn({4}, 43);
  const Tensor fused = ops::conv2d_relu(x, k, b);
  const auto v = fused.to_vector<float>();
  EXPECT_TRUE(std::any_of(v.begin(), v.end(), [](float f) { return std::isnan(f); }));
  EXPECT_EQ(bits_of(fused), bits_of(ops::relu(ops::conv2d(x, k, b))));
}

TEST(Conv2dRelu, GradCheck) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::conv2d_relu(in[0], in[1], in[2], {1, 1}, Padding::kValid); },
      {f64({2, 5, 4, 3}, 51), f64({3, 2, 3, 2}, 52), f64({2}, 53)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::conv2d_relu(in[0], in[1], Tensor(), {2, 2}, Padding::kSame); },
      {f64({2, 5, 6, 2}, 54), f64({3, 3, 2, 3}, 55)}));
}

TEST(Conv2dRelu, SymbolicShapeAndErrorsNameTheOp) {
  const Tensor y = ops::conv2d_relu(Tensor::symbolic({kUnknownDim, 28, 28, 1}), Tensor::zeros({3, 3, 1, 32}),
                                    Tensor::zeros({32}));
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 26, 26, 32}));
  EXPECT_EQ(message_of([] { (void)ops::conv2d_relu(Tensor::zeros({28, 28, 1}), Tensor::zeros({3, 3, 1, 4}), Tensor()); }),
            "ops::conv2d_relu: expected x of rank 4 [N, H, W, Cin], got shape [28, 28, 1]");
}

TEST(Conv2d, ErrorsNameTheOpAndShapes) {
  EXPECT_EQ(message_of([] { (void)ops::conv2d(Tensor::zeros({2, 8, 8, 3}), Tensor::zeros({3, 3, 1, 4}), Tensor()); }),
            "ops::conv2d: x shape [2, 8, 8, 3] has 3 channels but kernel shape [3, 3, 1, 4] expects 1 "
            "(kernel layout [kh, kw, Cin, Cout])");
  EXPECT_EQ(message_of([] { (void)ops::conv2d(Tensor::zeros({2, 4, 4, 1}), Tensor::zeros({5, 5, 1, 4}), Tensor()); }),
            "ops::conv2d: kernel shape [5, 5, 1, 4] is larger than the image of x shape [2, 4, 4, 1] with valid "
            "padding");
  EXPECT_EQ(message_of([] { (void)ops::conv2d(Tensor::zeros({28, 28, 1}), Tensor::zeros({3, 3, 1, 4}), Tensor()); }),
            "ops::conv2d: expected x of rank 4 [N, H, W, Cin], got shape [28, 28, 1]");
  EXPECT_THROW((void)ops::conv2d(Tensor::zeros({2, 8, 8, 1}), Tensor::zeros({3, 3, 1}), Tensor()), ShapeError);
  EXPECT_THROW((void)ops::conv2d(Tensor::zeros({2, 8, 8, 1}), Tensor::zeros({3, 3, 1, 4}), Tensor::zeros({3})),
               ShapeError);
  EXPECT_THROW((void)ops::conv2d(Tensor::zeros({2, 8, 8, 1}), Tensor::zeros({3, 3, 1, 4}), Tensor(), {0, 1}),
               ValueError);
  // same padding accepts a kernel larger than the image
  EXPECT_EQ(ops::conv2d(Tensor::zeros({1, 2, 2, 1}), Tensor::zeros({3, 3, 1, 1}), Tensor(), {1, 1}, Padding::kSame)
                .shape(),
            (Shape{1, 2, 2, 1}));
}

}  // namespace
}  // namespace normnet

// conv2d_relu_max_pool2d against max_pool2d(conv2d_relu(...)): values and the x and kernel
// gradients bit for bit (NaN, ties and windows without a positive element included) — within
// rounding where float32's backward sums only the pooled terms (conv2d_pooled_backward) —, the bias
// gradient within rounding, float32 through the direct kernel and oneDNN, float64; the fallback
// for windows that do not tile; gradients only for the inputs that want them; a float64 gradient
// check; shapes and error messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_pooled_backward.h"
#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using ops::Padding;
using testing::gradcheck;

Tensor f64(Shape shape, uint64_t seed) { return Tensor::randn(std::move(shape), seed, DType::kFloat64); }

// Bit patterns of a float32 or float64 tensor (NaN compares equal to the same NaN).
std::vector<uint64_t> bits_of(const Tensor& t) {
  std::vector<uint64_t> out;
  if (t.dtype() == DType::kFloat32) {
    for (float v : t.to_vector<float>()) out.push_back(std::bit_cast<uint32_t>(v));
  } else {
    for (double v : t.to_vector<double>()) out.push_back(std::bit_cast<uint64_t>(v));
  }
  return out;
}

template <class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

struct Case {
  Shape x, k;
  std::array<int, 2> s;
  Padding p;
  std::array<int, 2> pool, pool_strides;
  Padding pool_padding;
  DType dtype;
};

// Whether the fused op's backward runs conv2d_pooled_backward for this case: float32, a shape its
// kernels take, and not oneDNN's Winograd kernels' blocked path (AVX-512 only, for shapes that
// the direct kernels do not take).
bool sums_only_the_pooled_terms(const Case& c) {
  if (c.dtype != DType::kFloat32 || c.p != Padding::kValid) return false;
  const int64_t oh = (c.x[1] - c.k[0]) / c.s[0] + 1, ow = (c.x[2] - c.k[1]) / c.s[1] + 1;
  const auto rows = kernels::cpu::window_axis(oh, c.pool[0], c.pool[0], c.pool_padding == Padding::kSame);
  const auto cols = kernels::cpu::window_axis(ow, c.pool[1], c.pool[1], c.pool_padding == Padding::kSame);
  const kernels::cpu::Conv2dDims d{c.x[0], c.x[1], c.x[2], c.x[3], c.k[0], c.k[1],
                                   c.k[3], oh,     ow,     c.s[0], c.s[1]};
  const kernels::cpu::Pool2dDims pd{
      c.x[0],   oh,       ow,        c.k[3],    c.pool[0],       c.pool[1],
      rows.out, cols.out, c.pool[0], c.pool[1], rows.pad_before, cols.pad_before};
  if (kernels::cpu::conv2d_forward_may_use_winograd(d) && __builtin_cpu_supports("avx512f")) return false;
  const bool default_strides = c.pool_strides == std::array<int, 2>{0, 0} || c.pool_strides == c.pool;
  return default_strides && kernels::cpu::conv2d_pooled_backward_supported(d, pd);
}

// float32 gradients summed in another order than the two ops' (conv2d_pooled_backward: only the
// terms of the dense passes whose gradient is not 0): within 1e-5 of the largest magnitude
// (rounding is ~1e-7 of it here; the kernel tests bound it term by term), NaN only where the two
// ops have NaN. The converse does not hold: a NaN input makes its windows' outputs NaN, ReLU's
// gradient there is 0, and the dense chain's 0 · NaN terms are the only ones that carry it, which
// the fused op leaves out (`input_nan`: then exactly the kernel taps that meet x[0, 0, 0, 5]).
void expect_close_to(const Tensor& fused, const Tensor& plain, const std::string& what, bool input_nan) {
  const auto a = fused.to_vector<float>(), b = plain.to_vector<float>();
  ASSERT_EQ(a.size(), b.size()) << what;
  float largest = 0;
  for (float v : b) largest = std::isfinite(v) ? std::max(largest, std::abs(v)) : largest;
  ASSERT_GT(largest, 0.0f) << what;
  std::size_t left_out = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(b[i]) && !std::isnan(a[i]) && input_nan) {
      ++left_out;
      continue;
    }
    ASSERT_EQ(std::isnan(a[i]), std::isnan(b[i])) << what << " at " << i << ": " << a[i] << " vs " << b[i];
    if (!std::isnan(b[i])) {
      ASSERT_NEAR(a[i], b[i], 1e-5f * largest) << what << " at " << i;
    }
  }
  if (input_nan && what.ends_with("dkernel")) {
    // x[0, 0, 0, 5] meets only kernel tap (0, 0) of input channel 5, for every output channel.
    const int64_t out_channels = fused.shape().back();
    EXPECT_EQ(left_out, static_cast<std::size_t>(out_channels)) << what;
    for (int64_t o = 0; o < out_channels; ++o)
      EXPECT_FALSE(std::isnan(a[5 * out_channels + o])) << what << " " << o;
  } else {
    EXPECT_EQ(left_out, 0u) << what;
  }
}

// Runs the fused op and the two ops on copies of the same inputs, forward and backward with the
// same upstream gradient, and compares.
void expect_same_as_two_ops(const Case& c, bool with_nan) {
  const std::string what = shape_to_string(c.x) + " * " + shape_to_string(c.k) + " pool " +
                           std::to_string(c.pool[0]) + "x" + std::to_string(c.pool[1]);
  Tensor x0 = Tensor::randn(c.x, 71, c.dtype);
  if (with_nan) {
    if (c.dtype == DType::kFloat32) x0.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
    else x0.data<double>()[5] = std::numeric_limits<double>::quiet_NaN();
  }
  const Tensor k0 = Tensor::randn(c.k, 72, c.dtype), b0 = Tensor::randn({c.k[3]}, 73, c.dtype);
  Tensor x = x0.clone().set_requires_grad(true), k = k0.clone().set_requires_grad(true);
  Tensor b = b0.clone().set_requires_grad(true);
  Tensor x2 = x0.clone().set_requires_grad(true), k2 = k0.clone().set_requires_grad(true);
  Tensor b2 = b0.clone().set_requires_grad(true);
  const Tensor fused = ops::conv2d_relu_max_pool2d(x, k, b, c.s, c.p, c.pool, c.pool_strides, c.pool_padding);
  const Tensor plain = ops::max_pool2d(ops::conv2d_relu(x2, k2, b2, c.s, c.p), c.pool, c.pool_strides, c.pool_padding);
  ASSERT_EQ(fused.shape(), plain.shape()) << what;
  EXPECT_EQ(bits_of(fused), bits_of(plain)) << what;
  {
    NoGradGuard no_grad;  // the unrecorded path computes the same values
    EXPECT_EQ(bits_of(ops::conv2d_relu_max_pool2d(x0, k0, b0, c.s, c.p, c.pool, c.pool_strides, c.pool_padding)),
              bits_of(plain))
        << what;
  }
  const Tensor u = Tensor::randn(fused.shape(), 74, c.dtype);
  fused.backward(u);
  plain.backward(u);
  if (sums_only_the_pooled_terms(c)) {
    expect_close_to(x.grad(), x2.grad(), what + ": dx", with_nan);
    expect_close_to(k.grad(), k2.grad(), what + ": dkernel", with_nan);
  } else {
    EXPECT_EQ(bits_of(x.grad()), bits_of(x2.grad())) << what;
    EXPECT_EQ(bits_of(k.grad()), bits_of(k2.grad())) << what;
  }
  // Summed over the pooled elements instead of all conv outputs (the others are zeros): the
  // same terms in another grouping, so within a few ulps of the sum's magnitude.
  const auto db = b.grad().to(DType::kFloat64).to_vector<double>();
  const auto db2 = b2.grad().to(DType::kFloat64).to_vector<double>();
  const double eps = c.dtype == DType::kFloat32 ? 1e-6 : 1e-14;
  for (std::size_t i = 0; i < db.size(); ++i) {
    if (std::isnan(db2[i])) EXPECT_TRUE(std::isnan(db[i])) << what;
    else EXPECT_NEAR(db[i], db2[i], eps * (1.0 + std::abs(db2[i]))) << what;
  }
}

TEST(Conv2dReluMaxPool2d, EqualsTheTwoOps) {
  const auto f32 = DType::kFloat32, f64t = DType::kFloat64;
  const Case cases[] = {
      // the Fashion-MNIST CNN's second layer: batch 2 (direct forward kernel), batch 8 (oneDNN)
      {{2, 26, 26, 32}, {3, 3, 32, 64}, {1, 1}, Padding::kValid, {2, 2}, {0, 0}, Padding::kValid, f32},
      {{8, 26, 26, 32}, {3, 3, 32, 64}, {1, 1}, Padding::kValid, {2, 2}, {0, 0}, Padding::kValid, f32},
      // same padding on both, partial windows at the edges; strided convolution; 3x3 windows
      {{2, 9, 7, 3}, {3, 3, 3, 5}, {1, 1}, Padding::kSame, {2, 2}, {2, 2}, Padding::kSame, f32},
      {{2, 13, 12, 4}, {3, 2, 4, 6}, {2, 1}, Padding::kValid, {3, 3}, {0, 0}, Padding::kValid, f32},
      // more filters than one kernel channel block and than the bias sum's stack (256)
      {{1, 6, 6, 2}, {1, 1, 2, 300}, {1, 1}, Padding::kValid, {2, 2}, {0, 0}, Padding::kValid, f32},
      {{2, 8, 7, 3}, {3, 3, 3, 4}, {1, 1}, Padding::kSame, {2, 2}, {0, 0}, Padding::kSame, f64t},
  };
  for (const Case& c : cases) {
    expect_same_as_two_ops(c, /*with_nan=*/false);
    expect_same_as_two_ops(c, /*with_nan=*/true);
  }
}

// Under Winograd the fused op keeps the convolution's output and its gradient in oneDNN's blocked
// layout (no reorders), the two ops reorder them: the same kernels on the same values, so the
// same bits as the two ops under Winograd.
TEST(Conv2dReluMaxPool2d, EqualsTheTwoOpsUnderWinograd) {
  const auto f32 = DType::kFloat32;
  const Case cnn{{8, 26, 26, 32}, {3, 3, 32, 64}, {1, 1}, Padding::kValid, {2, 2}, {0, 0}, Padding::kValid, f32};
  const Case cases[] = {
      cnn,
      // same padding on both, partial 4×4 tiles and partial pooling windows at the edges
      {{8, 15, 15, 16}, {3, 3, 16, 32}, {1, 1}, Padding::kSame, {2, 2}, {0, 0}, Padding::kSame, f32},
      // a shape Winograd does not take (5 filters): the direct kernels
      {{2, 9, 7, 3}, {3, 3, 3, 5}, {1, 1}, Padding::kSame, {2, 2}, {2, 2}, Padding::kSame, f32},
  };
  const Tensor x = Tensor::randn(cnn.x, 75), k = Tensor::randn(cnn.k, 76), b = Tensor::randn({64}, 77);
  const Tensor direct = ops::conv2d_relu_max_pool2d(x, k, b, cnn.s, cnn.p, cnn.pool);
  ops::set_conv2d_algorithm(ops::Conv2dAlgorithm::kWinograd);
  struct Restore {
    ~Restore() { ops::set_conv2d_algorithm(ops::Conv2dAlgorithm::kDirect); }
  } restore;
  EXPECT_EQ(ops::get_conv2d_algorithm(), ops::Conv2dAlgorithm::kWinograd);
  for (const Case& c : cases) {
    expect_same_as_two_ops(c, /*with_nan=*/false);
    expect_same_as_two_ops(c, /*with_nan=*/true);
  }
  // Winograd really ran (its rounding differs from the direct convolution's; oneDNN's kernels on
  // AVX-512, normnet's own F(4×4, 3×3) forward in other builds), within the error the docs state:
  // K·u·Σ|terms| of the exact (float64) result, Σ|terms| taken as the largest of the window's
  // (relu and max move a value by at most the largest error of the window's elements). The
  // element-relative 1e-4·(1 + |v|) that stood here before normnet had its own Winograd kernel is
  // not that model: an output near 0 with Σ|terms| ≈ 180 may be 3.6e-4 off (0.11 of the bound).
  const Tensor winograd = ops::conv2d_relu_max_pool2d(x, k, b, cnn.s, cnn.p, cnn.pool);
  EXPECT_NE(bits_of(winograd), bits_of(direct));
  const Tensor exact = ops::conv2d_relu_max_pool2d(x.to(DType::kFloat64), k.to(DType::kFloat64),
                                                   b.to(DType::kFloat64), cnn.s, cnn.p, cnn.pool);
  const Tensor sum_abs =
      ops::max_pool2d(ops::conv2d(ops::abs(x.to(DType::kFloat64)), ops::abs(k.to(DType::kFloat64)),
                                  ops::abs(b.to(DType::kFloat64)), cnn.s, cnn.p),
                      cnn.pool);
  const auto w = winograd.to_vector<float>();
  const auto e = exact.to_vector<double>(), bound = sum_abs.to_vector<double>();
  const double gamma = (3 * 3 * 32 + 1) * 0x1p-24;
  for (std::size_t i = 0; i < w.size(); ++i) ASSERT_LE(std::abs(double(w[i]) - e[i]), gamma * bound[i]) << i;
}

TEST(Conv2dReluMaxPool2d, SetConv2dAlgorithmRefusesUnknownValues) {
  EXPECT_EQ(ops::get_conv2d_algorithm(), ops::Conv2dAlgorithm::kDirect);
  const std::string message = message_of([] { ops::set_conv2d_algorithm(static_cast<ops::Conv2dAlgorithm>(7)); });
  EXPECT_NE(message.find("ops::set_conv2d_algorithm: unknown algorithm 7"), std::string::npos) << message;
  EXPECT_EQ(ops::get_conv2d_algorithm(), ops::Conv2dAlgorithm::kDirect);
}

TEST(Conv2dReluMaxPool2d, WindowsWithoutAPositiveElementPassNoGradient) {
  // All-negative bias: most windows pool only negative values, where the two ops' argmaxes differ
  // (relu makes the window all +0, so the first element) but the gradient is 0 either way.
  Tensor x = Tensor::randn({2, 10, 10, 3}, 81).set_requires_grad(true);
  Tensor k = Tensor::randn({3, 3, 3, 4}, 82).set_requires_grad(true);
  Tensor b = Tensor::full({4}, -2.5).set_requires_grad(true);
  Tensor x2 = x.detach().clone().set_requires_grad(true), k2 = k.detach().clone().set_requires_grad(true);
  Tensor b2 = b.detach().clone().set_requires_grad(true);
  const Tensor fused = ops::conv2d_relu_max_pool2d(x, k, b, {1, 1}, Padding::kValid, {2, 2});
  const Tensor plain = ops::max_pool2d(ops::conv2d_relu(x2, k2, b2), {2, 2});
  const auto v = fused.to_vector<float>();
  EXPECT_GT(std::count(v.begin(), v.end(), 0.0f), 0);
  EXPECT_EQ(bits_of(fused), bits_of(plain));
  ops::sum(fused).backward();
  ops::sum(plain).backward();
  EXPECT_EQ(bits_of(x.grad()), bits_of(x2.grad()));
  EXPECT_EQ(bits_of(k.grad()), bits_of(k2.grad()));
}

TEST(Conv2dReluMaxPool2d, NonTilingWindowsRunTheTwoOps) {
  // Overlapping windows (3x3, stride 2) and a window larger than the recorded byte can index.
  expect_same_as_two_ops({{2, 9, 9, 3}, {3, 3, 3, 4}, {1, 1}, Padding::kValid, {3, 3}, {2, 2}, Padding::kValid,
                          DType::kFloat32},
                         false);
  expect_same_as_two_ops({{1, 19, 18, 2}, {3, 3, 2, 3}, {1, 1}, Padding::kValid, {17, 16}, {0, 0}, Padding::kValid,
                          DType::kFloat32},
                         false);
}

// For each subset of wanted gradients (a frozen layer: x only; a fixed input: kernel and bias
// only; the bias alone: no dz at all), the fused op gives exactly those, as the two ops do. With
// `x_used_again`, x also feeds x · 3, so x's gradient is added to what that use contributes.
void expect_each_wanted_gradient(const Case& c, bool x_used_again) {
  const int64_t o = c.k[3];
  const Tensor x0 = Tensor::randn(c.x, 101, c.dtype), k0 = Tensor::randn(c.k, 102, c.dtype);
  const Tensor b0 = Tensor::randn({o}, 103, c.dtype), v = Tensor::randn(c.x, 105, c.dtype);
  const bool pooled_terms = sums_only_the_pooled_terms(c);
  for (int wanted = 1; wanted < 8; ++wanted) {
    const std::string what = shape_to_string(c.x) + ", wanted " + std::to_string(wanted);
    Tensor x = x0.clone(), k = k0.clone(), b = b0.clone();
    Tensor x2 = x0.clone(), k2 = k0.clone(), b2 = b0.clone();
    if (wanted & 1) x.set_requires_grad(true), x2.set_requires_grad(true);
    if (wanted & 2) k.set_requires_grad(true), k2.set_requires_grad(true);
    if (wanted & 4) b.set_requires_grad(true), b2.set_requires_grad(true);
    const Tensor y = ops::conv2d_relu_max_pool2d(x, k, b, c.s, c.p, c.pool);
    const Tensor y2 = ops::max_pool2d(ops::conv2d_relu(x2, k2, b2, c.s, c.p), c.pool);
    const Tensor u = Tensor::randn(y.shape(), 104, c.dtype);
    const auto loss = [&](const Tensor& out, const Tensor& xs) {
      const Tensor l = ops::sum(ops::mul(out, u));
      return x_used_again ? ops::add(l, ops::sum(ops::mul(ops::mul(xs, 3.0), v))) : l;
    };
    loss(y, x).backward();
    loss(y2, x2).backward();
    EXPECT_EQ(x.grad().defined(), (wanted & 1) != 0) << what;
    EXPECT_EQ(k.grad().defined(), (wanted & 2) != 0) << what;
    EXPECT_EQ(b.grad().defined(), (wanted & 4) != 0) << what;
    if (wanted & 1) {
      if (pooled_terms)
        expect_close_to(x.grad(), x2.grad(), what + ": dx", false);
      else
        EXPECT_EQ(bits_of(x.grad()), bits_of(x2.grad())) << what;
    }
    if (wanted & 2) {
      if (pooled_terms)
        expect_close_to(k.grad(), k2.grad(), what + ": dkernel", false);
      else
        EXPECT_EQ(bits_of(k.grad()), bits_of(k2.grad())) << what;
    }
    if (wanted & 4) {
      EXPECT_LT(testing::max_abs_diff(b.grad(), b2.grad()), 1e-5) << what;
    }
  }
}

TEST(Conv2dReluMaxPool2d, GradientsOnlyForTheInputsThatWantThem) {
  expect_each_wanted_gradient(
      {{2, 8, 8, 3}, {3, 3, 3, 4}, {1, 1}, Padding::kValid, {2, 2}, {0, 0}, Padding::kValid, DType::kFloat32},
      false);
  expect_each_wanted_gradient(
      {{2, 8, 8, 3}, {3, 3, 3, 4}, {1, 1}, Padding::kValid, {2, 2}, {0, 0}, Padding::kValid, DType::kFloat32},
      true);
}

// The float32 backward that sums only the pooled terms (conv2d_pooled_backward), likewise.
TEST(Conv2dReluMaxPool2d, PooledTermsBackwardGivesEachWantedGradientAndAddsIntoOthers) {
  const Case c{{2, 10, 10, 16}, {3, 3, 16, 8}, {1, 1},          Padding::kValid,
               {2, 2},          {0, 0},        Padding::kValid, DType::kFloat32};
  if (!sums_only_the_pooled_terms(c)) GTEST_SKIP() << "this build has no conv2d_pooled_backward kernels";
  expect_each_wanted_gradient(c, false);
  expect_each_wanted_gradient(c, true);
}

TEST(Conv2dReluMaxPool2d, GradCheck) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return ops::conv2d_relu_max_pool2d(in[0], in[1], in[2], {1, 1}, Padding::kValid, {2, 2});
      },
      {f64({2, 7, 6, 3}, 91), f64({2, 3, 3, 4}, 92), f64({4}, 93)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return ops::conv2d_relu_max_pool2d(in[0], in[1], Tensor(), {2, 1}, Padding::kSame, {2, 3}, {0, 0},
                                           Padding::kSame);
      },
      {f64({1, 7, 8, 2}, 94), f64({3, 3, 2, 3}, 95)}));
}

TEST(Conv2dReluMaxPool2d, SymbolicShapeAndErrorsNameTheOp) {
  const Tensor y = ops::conv2d_relu_max_pool2d(Tensor::symbolic({kUnknownDim, 26, 26, 32}), Tensor::zeros({3, 3, 32, 64}),
                                               Tensor::zeros({64}), {1, 1}, Padding::kValid, {2, 2});
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 12, 12, 64}));
  EXPECT_EQ(message_of([] {
              (void)ops::conv2d_relu_max_pool2d(Tensor::zeros({28, 28, 1}), Tensor::zeros({3, 3, 1, 4}), Tensor(),
                                                {1, 1}, Padding::kValid, {2, 2});
            }),
            "ops::conv2d_relu_max_pool2d: expected x of rank 4 [N, H, W, Cin], got shape [28, 28, 1]");
  EXPECT_EQ(message_of([] {
              (void)ops::conv2d_relu_max_pool2d(Tensor::zeros({1, 5, 5, 1}), Tensor::zeros({3, 3, 1, 4}), Tensor(),
                                                {1, 1}, Padding::kValid, {4, 4});
            }),
            "ops::conv2d_relu_max_pool2d: pool_size [4, 4] is larger than the image of the convolution's output "
            "shape [1, 3, 3, 4] with valid padding");
}

}  // namespace
}  // namespace normnet

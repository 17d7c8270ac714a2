// The direct AVX-512 / AVX2 convolution forward against its naive twin: every tile shape (1–14
// pixels, 1, 2 and 4 vectors of channels; AVX2 builds tile 1–12 pixels with 1 or 2 vectors),
// kernel-row grouping, bias, fused ReLU (NaN kept, −0 → +0 as ops::relu), bits independent of the
// thread count, conv2d_forward's routing rule, and the convolution pooled in one pass.
// (Built without AVX-512 or AVX2, the direct kernel does not exist and these tests skip.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_direct.h"
#include "kernels/cpu/dnnl_context.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cpu/unary.h"

namespace normnet::kernels::cpu {
namespace {

Conv2dDims valid_dims(int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t o) {
  return Conv2dDims{n, h, w, c, kh, kw, o, h - kh + 1, w - kw + 1, 1, 1, 0, 0, 0, 0};
}

std::string describe(const Conv2dDims& d) {
  return "x [" + std::to_string(d.n) + ", " + std::to_string(d.h) + ", " + std::to_string(d.w) + ", " +
         std::to_string(d.c) + "], kernel [" + std::to_string(d.kh) + ", " + std::to_string(d.kw) + ", " +
         std::to_string(d.c) + ", " + std::to_string(d.o) + "]";
}

std::vector<float> abs_of(std::vector<float> v) {
  for (float& e : v) e = std::abs(e);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// How many elements of y lie outside |y − exact| ≤ K·2⁻²⁴·Σ|terms| (Higham's bound for sums of
// K = taps·C + 1 float32 terms, the bias included, in any order).
int64_t outside_rounding(const std::vector<float>& x, const std::vector<float>& k, const float* bias,
                         const std::vector<float>& y, const Conv2dDims& d) {
  std::vector<float> exact(y.size()), bound(y.size()), ab;
  conv2d_forward_reference(x.data(), k.data(), bias, exact.data(), d);
  if (bias) ab = abs_of(std::vector<float>(bias, bias + d.o));
  conv2d_forward_reference(abs_of(x).data(), abs_of(k).data(), bias ? ab.data() : nullptr, bound.data(), d);
  const double gamma = static_cast<double>(d.kh * d.kw * d.c + 1) * 0x1p-24;
  int64_t bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (!(std::abs(double(y[i]) - double(exact[i])) <= gamma * double(bound[i]) + 1e-30)) ++bad;
  }
  return bad;
}

void expect_forward_within_rounding(const Conv2dDims& d, bool with_bias) {
  const auto x = random_values<float>(d.n * d.h * d.w * d.c, 31, 1.0);
  const auto k = random_values<float>(d.kh * d.kw * d.c * d.o, 32, 1.0);
  const auto b = random_values<float>(d.o, 33, 1.0);
  const float* bias = with_bias ? b.data() : nullptr;
  std::vector<float> y(d.n * d.oh * d.ow * d.o, NAN);
  conv2d_direct_forward(x.data(), k.data(), bias, y.data(), d, false);
  EXPECT_EQ(outside_rounding(x, k, bias, y, d), 0) << describe(d) << (with_bias ? " with bias" : " without bias");
}

TEST(Conv2dDirect, SupportsStrideOneUnpaddedWithSixteenChannelMultiples) {
  if (!conv2d_direct_forward_supported(valid_dims(1, 5, 5, 3, 3, 3, 16))) GTEST_SKIP() << "built without AVX-512 or AVX2";
  EXPECT_TRUE(conv2d_direct_forward_supported(valid_dims(1, 28, 28, 1, 3, 3, 32)));
  EXPECT_FALSE(conv2d_direct_forward_supported(valid_dims(1, 5, 5, 3, 3, 3, 20)));  // O not a multiple of 16
  Conv2dDims strided = valid_dims(1, 9, 9, 3, 3, 3, 16);
  strided.stride_h = 2;
  strided.oh = 4;
  EXPECT_FALSE(conv2d_direct_forward_supported(strided));
  Conv2dDims padded = valid_dims(1, 5, 5, 3, 3, 3, 16);
  padded.pad_top = padded.pad_bottom = 1;
  padded.oh = 5;
  EXPECT_FALSE(conv2d_direct_forward_supported(padded));
  EXPECT_FALSE(conv2d_direct_forward_supported(valid_dims(1, 12, 12, 1, 9, 9, 16)));  // 81 taps
}

TEST(Conv2dDirect, MatchesReferenceOnTileShapesAndEdges) {
  if (!conv2d_direct_forward_supported(valid_dims(1, 5, 5, 3, 3, 3, 16))) GTEST_SKIP() << "built without AVX-512 or AVX2";
  const Conv2dDims shapes[] = {
      valid_dims(2, 28, 28, 1, 3, 3, 32),   // the CNN's first layer: 26 pixels in tiles of 9, 9, 8
      valid_dims(2, 26, 26, 32, 3, 3, 64),  // its second: 4 vectors, weights grouped by kernel row
      valid_dims(1, 3, 3, 5, 3, 3, 16),     // a single output pixel
      valid_dims(3, 6, 20, 7, 2, 3, 48),    // 2 + 1 vectors, 18 pixels
      valid_dims(1, 4, 35, 3, 1, 5, 80),    // 4 + 1 vectors, 31 pixels
      valid_dims(2, 9, 16, 17, 5, 2, 16),   // 1 vector, 15 pixels: tiles of 7 and 8
      valid_dims(1, 3, 16, 2, 3, 3, 16),    // 1 vector, one tile of 14 (the most)
      valid_dims(1, 3, 14, 2, 3, 3, 32),    // 2 vectors, one tile of 12 (the most)
      valid_dims(1, 2, 7, 64, 1, 1, 128),   // 1×1 kernel, 2 blocks of 4 vectors
      valid_dims(1, 6, 11, 40, 3, 3, 96)};  // 4 + 2 vectors, grouped
  for (const Conv2dDims& d : shapes) {
    ASSERT_TRUE(conv2d_direct_forward_supported(d)) << describe(d);
    expect_forward_within_rounding(d, true);
    expect_forward_within_rounding(d, false);
  }
}

TEST(Conv2dDirect, FusedReluIsReluOfTheConvolutionBitForBit) {
  const Conv2dDims d = valid_dims(2, 8, 9, 32, 3, 3, 64);
  if (!conv2d_direct_forward_supported(d)) GTEST_SKIP() << "built without AVX-512 or AVX2";
  auto x = random_values<float>(d.n * d.h * d.w * d.c, 41, 1.0);
  const auto k = random_values<float>(d.kh * d.kw * d.c * d.o, 42, 1.0);
  auto b = random_values<float>(d.o, 43, 1.0);
  x[5] = NAN;        // poisons the outputs that read input pixel 0
  b[7] = -INFINITY;  // channel 7: −inf everywhere, relu 0
  std::vector<float> plain(d.n * d.oh * d.ow * d.o), fused = plain;
  conv2d_direct_forward(x.data(), k.data(), b.data(), plain.data(), d, false);
  conv2d_direct_forward(x.data(), k.data(), b.data(), fused.data(), d, true);
  relu_forward(plain.data(), plain.data(), static_cast<int64_t>(plain.size()));
  EXPECT_TRUE(same_bits(plain, fused));
  EXPECT_TRUE(std::isnan(fused[0])) << "NaN must pass through relu, as ops::relu";
  const std::size_t far = 5 * 64 + 7;  // output pixel (0, 0, 5) does not read input column 0
  EXPECT_EQ(fused[far], 0.0f);
  EXPECT_FALSE(std::signbit(fused[far]));
}

// The CNN's second layer at batch 3, and its first at batch 1 (0.39 MFLOP: split between threads
// since the parallel threshold went down to 2^18 FLOP).
TEST(Conv2dDirect, SameBitsOnOneAndTwoThreads) {
  for (const Conv2dDims& d : {valid_dims(3, 26, 26, 32, 3, 3, 64), valid_dims(1, 28, 28, 1, 3, 3, 32)}) {
    if (!conv2d_direct_forward_supported(d)) GTEST_SKIP() << "built without AVX-512 or AVX2";
    const auto x = random_values<float>(d.n * d.h * d.w * d.c, 51);
    const auto k = random_values<float>(d.kh * d.kw * d.c * d.o, 52);
    const auto b = random_values<float>(d.o, 53);
    std::vector<float> one(d.n * d.oh * d.ow * d.o), two = one, again = one;
    with_threads(1, [&] { conv2d_direct_forward(x.data(), k.data(), b.data(), one.data(), d, true); });
    with_threads(2, [&] { conv2d_direct_forward(x.data(), k.data(), b.data(), two.data(), d, true); });
    with_threads(2, [&] { conv2d_direct_forward(x.data(), k.data(), b.data(), again.data(), d, true); });
    EXPECT_TRUE(same_bits(one, two)) << "C = " << d.c;
    EXPECT_TRUE(same_bits(two, again)) << "C = " << d.c;
  }
}

// conv2d_forward: the direct kernel for one image and for batches of 8 images with kernel rows of
// 1·3, 16·3 and 32·3 floats, in AVX-512 and AVX2 builds alike, within the rounding bound.
TEST(Conv2dDirect, ConvForwardRoutesEveryBatchToTheDirectKernel) {
  const Conv2dDims small = valid_dims(1, 26, 26, 32, 3, 3, 64);
  if (!conv2d_direct_forward_supported(small)) GTEST_SKIP() << "built without AVX-512 or AVX2";
  const auto x = random_values<float>(8 * 28 * 28 * 32, 61, 1.0);
  const auto k = random_values<float>(3 * 3 * 32 * 64, 62, 1.0);
  const auto b = random_values<float>(64, 63, 1.0);

  std::vector<float> routed(small.n * small.oh * small.ow * small.o), direct = routed;
  dnnl_clear_last_impl();
  conv2d_forward(x.data(), k.data(), b.data(), routed.data(), small, true);
  EXPECT_EQ(dnnl_last_impl(), "") << "batch 1 ran a oneDNN primitive";
  conv2d_direct_forward(x.data(), k.data(), b.data(), direct.data(), small, true);
  EXPECT_TRUE(same_bits(routed, direct));

  for (const Conv2dDims& batch : {valid_dims(8, 28, 28, 1, 3, 3, 32), valid_dims(8, 26, 26, 16, 3, 3, 64),
                                  valid_dims(8, 26, 26, 32, 3, 3, 64)}) {
    SCOPED_TRACE(testing::Message() << "C = " << batch.c);
    const bool direct_route = conv2d_forward_runs_direct(batch);
    EXPECT_TRUE(direct_route) << "a batch of 8 went to oneDNN";
    std::vector<float> y(batch.n * batch.oh * batch.ow * batch.o), from_direct = y;
    dnnl_clear_last_impl();
    conv2d_forward(x.data(), k.data(), b.data(), y.data(), batch);
    EXPECT_EQ(dnnl_last_impl().empty(), direct_route)
        << "conv2d_forward_runs_direct disagrees with conv2d_forward";
    if (direct_route) {
      conv2d_direct_forward(x.data(), k.data(), b.data(), from_direct.data(), batch, false);
      EXPECT_TRUE(same_bits(y, from_direct));
    }
    EXPECT_EQ(outside_rounding(x, k, b.data(), y, batch), 0);
  }
}

// Conv, pool and ReLU in one pass == the direct convolution, then max_pool2d_relu_forward, bit
// for bit: the CNN's conv2 + 2×2 pool at batch 1 and 3, 3×3 and 3×2 windows that leave rows and
// columns out (26 = 8·3 + 2), one vector of channels, NaN inputs (a NaN window must stay NaN),
// one and two threads, with and without the argmax bytes (training); and
// conv2d_forward_max_pool_relu takes a batch exactly where conv2d_forward runs it direct (builds
// without AVX-512), and refuses it (false, nothing written) where oneDNN runs it.
TEST(Conv2dDirect, ConvPoolReluInOnePassEqualsTheThreeKernels) {
  struct Case {
    Conv2dDims d;
    int64_t ph, pw;
  };
  for (const Case& c : {Case{valid_dims(1, 26, 26, 32, 3, 3, 64), 2, 2}, Case{valid_dims(3, 26, 26, 32, 3, 3, 64), 2, 2},
                        Case{valid_dims(2, 28, 28, 1, 3, 3, 32), 3, 3}, Case{valid_dims(1, 12, 9, 5, 3, 3, 16), 3, 2}}) {
    const Conv2dDims& d = c.d;
    const Pool2dDims pd = tiling_pool(d, c.ph, c.pw);
    if (!conv2d_direct_forward_supported(d)) GTEST_SKIP() << "built without AVX-512 or AVX2";
    ASSERT_TRUE(conv2d_direct_forward_max_pool_relu_supported(d, pd)) << describe(d);
    auto x = random_values<float>(d.n * d.h * d.w * d.c, 71, 1.0);
    for (std::size_t i = 3; i < x.size(); i += 211) x[i] = NAN;
    const auto k = random_values<float>(d.kh * d.kw * d.c * d.o, 72, 1.0);
    const auto b = random_values<float>(d.o, 73, 1.0);
    std::vector<float> z(d.n * d.oh * d.ow * d.o);
    conv2d_direct_forward(x.data(), k.data(), b.data(), z.data(), d, false);
    const PooledReference reference = pooled_reference(z, pd);
    const std::vector<float>& want = reference.y;
    const std::vector<uint8_t>& want_argmax = reference.argmax;
    EXPECT_GT(reference.nans, 0) << describe(d);
    EXPECT_GT(reference.zeros, 0) << describe(d);
    for (int threads : {1, 2}) {
      std::vector<float> got(want.size(), 7.0f);
      with_threads(threads, [&] {
        EXPECT_TRUE(conv2d_forward_max_pool_relu(x.data(), k.data(), b.data(), got.data(), d, pd));
      });
      EXPECT_TRUE(same_bits(got, want)) << describe(d) << " pool " << c.ph << "x" << c.pw << ", " << threads
                                        << " thread(s)";
      // Training: the same values and the argmax bytes of max_pool2d_forward_argmax.
      std::vector<float> got_training(want.size(), 7.0f);
      std::vector<uint8_t> argmax(want.size(), 0xEE);
      with_threads(threads, [&] {
        EXPECT_TRUE(conv2d_forward_max_pool_relu(x.data(), k.data(), b.data(), got_training.data(), d, pd,
                                                 argmax.data()));
      });
      EXPECT_TRUE(same_bits(got_training, want)) << describe(d) << ", with argmax";
      EXPECT_EQ(argmax, want_argmax) << describe(d) << " pool " << c.ph << "x" << c.pw << ", " << threads
                                     << " thread(s)";
    }
  }
  const Conv2dDims batch = valid_dims(16, 26, 26, 16, 3, 3, 64), small = valid_dims(1, 26, 26, 32, 3, 3, 64);
  const Pool2dDims batch_pool = tiling_pool(batch, 2, 2);
  const auto bx = random_values<float>(batch.n * batch.h * batch.w * batch.c, 74, 1.0);
  const auto bk = random_values<float>(batch.kh * batch.kw * batch.c * batch.o, 75, 1.0);
  std::vector<float> fused(batch_pool.n * batch_pool.oh * batch_pool.ow * batch_pool.c, 7.0f), want = fused;
  std::vector<float> z(batch.n * batch.oh * batch.ow * batch.o);
  EXPECT_EQ(conv2d_forward_max_pool_relu(bx.data(), bk.data(), nullptr, fused.data(), batch, batch_pool),
            conv2d_forward_runs_direct(batch));
  if (conv2d_forward_runs_direct(batch)) {
    conv2d_direct_forward(bx.data(), bk.data(), nullptr, z.data(), batch, false);
    max_pool2d_relu_forward(z.data(), want.data(), batch_pool);
  }
  EXPECT_TRUE(same_bits(fused, want)) << "a batch's pooled output (all 7 where refused)";
  // Not taken: pool padding, stride ≠ window.
  Pool2dDims padded = tiling_pool(small, 2, 2);
  padded.pad_top = 1;
  EXPECT_FALSE(conv2d_direct_forward_max_pool_relu_supported(small, padded));
  Pool2dDims overlapping = tiling_pool(small, 3, 3);
  overlapping.stride_h = overlapping.stride_w = 2;
  EXPECT_FALSE(conv2d_direct_forward_max_pool_relu_supported(small, overlapping));
}

}  // namespace
}  // namespace normnet::kernels::cpu

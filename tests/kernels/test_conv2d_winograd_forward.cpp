// normnet's own Winograd F(4×4, 3×3) forward (conv2d_winograd.h) against the naive twin: its
// error within the direct kernels' bound K·u·Σ|terms| on the shapes it takes (full and partial
// tiles, valid and same padding, 1, 2 and 4 vectors of output channels), bits independent of the
// thread count, the fused ReLU, the pooled epilogue against the two kernels bit for bit (argmax
// bytes included), the transformed-filter cache keyed by the kernel's values, NaN and Inf, and
// conv2d_forward's routing under set_conv2d_winograd. (Built without AVX-512 or AVX2, the kernel
// does not exist and these tests skip.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_direct.h"
#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cpu/unary.h"

namespace normnet::kernels::cpu {
namespace {

// The error as a fraction of K·u·Σ|terms|. Not a theorem (the transforms scale values by up to
// 8 and 25 and add roundings per tile), but with 3×3×16 terms or more it stays well inside it:
// measured 0.0x–0.2 on the shapes below (the tests print it).
constexpr double kErrorFactor = 1.0;

Conv2dDims dims3x3(int64_t n, int64_t h, int64_t w, int64_t c, int64_t o, bool same) {
  const int64_t pad = same ? 1 : 0;
  return Conv2dDims{n, h, w, c, 3, 3, o, same ? h : h - 2, same ? w : w - 2, 1, 1, pad, pad, pad, pad};
}

std::string describe(const Conv2dDims& d) {
  return "x [" + std::to_string(d.n) + ", " + std::to_string(d.h) + ", " + std::to_string(d.w) + ", " +
         std::to_string(d.c) + "] -> " + std::to_string(d.o) + (d.pad_top ? " same" : " valid");
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool available() { return conv2d_winograd_forward_supported(dims3x3(1, 6, 6, 16, 16, false)); }

// Sets the algorithm for one scope and restores the default.
struct WinogradOn {
  WinogradOn() { set_conv2d_winograd(true); }
  ~WinogradOn() { set_conv2d_winograd(false); }
  WinogradOn(const WinogradOn&) = delete;
  WinogradOn& operator=(const WinogradOn&) = delete;
};

TEST(Conv2dWinogradForward, TakesThreeByThreeStrideOneWithSixteenChannelMultiples) {
  if (!available()) GTEST_SKIP() << "built without AVX-512 or AVX2";
  EXPECT_TRUE(conv2d_winograd_forward_supported(dims3x3(1, 26, 26, 32, 64, false)));
  EXPECT_TRUE(conv2d_winograd_forward_supported(dims3x3(2, 15, 9, 16, 48, true)));
  EXPECT_FALSE(conv2d_winograd_forward_supported(dims3x3(1, 28, 28, 1, 32, false)));   // C = 1
  EXPECT_FALSE(conv2d_winograd_forward_supported(dims3x3(1, 26, 26, 32, 40, false)));  // O = 40
  Conv2dDims strided = dims3x3(1, 13, 13, 16, 16, false);
  strided.stride_h = strided.stride_w = 2;
  strided.oh = strided.ow = 6;
  EXPECT_FALSE(conv2d_winograd_forward_supported(strided));
  const Conv2dDims five{1, 20, 20, 16, 5, 5, 16, 16, 16, 1, 1, 0, 0, 0, 0};
  EXPECT_FALSE(conv2d_winograd_forward_supported(five));
}

TEST(Conv2dWinogradForward, MatchesReferenceWithinTheBound) {
  if (!available()) GTEST_SKIP() << "built without AVX-512 or AVX2";
  for (const Conv2dDims& d : {dims3x3(1, 26, 26, 32, 64, false),   // the CNN's conv2 at batch 1
                              dims3x3(3, 26, 26, 32, 64, false),   // at batch 3: 108 tiles
                              dims3x3(2, 15, 9, 16, 48, true),     // partial tiles, 3 vectors (AVX-512)
                              dims3x3(1, 7, 6, 48, 16, false),     // 5×4 outputs: one tile and a cut one
                              dims3x3(1, 3, 3, 16, 32, false)}) {  // a single output pixel
    for (const bool with_bias : {true, false}) {
      const auto x = random_values<float>(d.n * d.h * d.w * d.c, 31, 1.0);
      const auto k = random_values<float>(9 * d.c * d.o, 32, 1.0);
      const auto b = random_values<float>(d.o, 33, 1.0);
      const float* bias = with_bias ? b.data() : nullptr;
      std::vector<float> y(d.n * d.oh * d.ow * d.o, NAN), exact = y, bound = y;
      conv2d_winograd_forward(x.data(), k.data(), bias, y.data(), d, false);
      const auto ab = abs_of(b);
      conv2d_forward_reference(x.data(), k.data(), bias, exact.data(), d);
      conv2d_forward_reference(abs_of(x).data(), abs_of(k).data(), with_bias ? ab.data() : nullptr,
                               bound.data(), d);
      const double error = error_over_bound(y, exact, bound, 9 * d.c + 1);
      EXPECT_LE(error, kErrorFactor) << describe(d);
      EXPECT_GT(error, 0.0) << describe(d) << ": the reference itself ran";
      std::printf("[ winograd forward ] %s%s: |error| / (K·u·Σ|terms|) %.3g\n", describe(d).c_str(),
                  with_bias ? ", bias" : "", error);
    }
  }
}

TEST(Conv2dWinogradForward, SameBitsOnOneAndTwoThreadsAndReluOfTheConvolution) {
  if (!available()) GTEST_SKIP() << "built without AVX-512 or AVX2";
  for (const Conv2dDims& d : {dims3x3(1, 26, 26, 32, 64, false), dims3x3(3, 15, 9, 16, 48, true)}) {
    const auto x = random_values<float>(d.n * d.h * d.w * d.c, 41);
    const auto k = random_values<float>(9 * d.c * d.o, 42);
    const auto b = random_values<float>(d.o, 43);
    std::vector<float> one(d.n * d.oh * d.ow * d.o), two = one, relu = one, want_relu = one;
    with_threads(1, [&] { conv2d_winograd_forward(x.data(), k.data(), b.data(), one.data(), d, false); });
    with_threads(2, [&] { conv2d_winograd_forward(x.data(), k.data(), b.data(), two.data(), d, false); });
    EXPECT_TRUE(same_bits(one, two)) << describe(d);
    with_threads(2, [&] { conv2d_winograd_forward(x.data(), k.data(), b.data(), relu.data(), d, true); });
    relu_forward(two.data(), want_relu.data(), static_cast<int64_t>(two.size()));
    EXPECT_TRUE(same_bits(relu, want_relu)) << describe(d);
  }
}

// The transformed filters are cached per thread by the kernel's values: a kernel changed in place
// (as an optimizer does), and more kernels than cache entries in turn, still give fresh results.
TEST(Conv2dWinogradForward, FilterCacheFollowsTheKernelsValues) {
  if (!available()) GTEST_SKIP() << "built without AVX-512 or AVX2";
  const Conv2dDims d = dims3x3(1, 10, 10, 16, 32, false);
  const auto x = random_values<float>(d.n * d.h * d.w * d.c, 51, 1.0);
  auto k = random_values<float>(9 * d.c * d.o, 52, 1.0);
  const auto fresh = [&](const std::vector<float>& kernel) {
    std::vector<float> y(d.n * d.oh * d.ow * d.o);
    conv2d_winograd_forward(x.data(), kernel.data(), nullptr, y.data(), d, false);
    return y;
  };
  const auto first = fresh(k);
  k[9 * d.c * d.o - 1] += 1.0f;  // the last tap of the last filter, in place
  const auto changed = fresh(k);
  EXPECT_FALSE(same_bits(first, changed));
  std::vector<float> exact(changed.size()), bound(changed.size());
  conv2d_forward_reference<float>(x.data(), k.data(), nullptr, exact.data(), d);
  conv2d_forward_reference<float>(abs_of(x).data(), abs_of(k).data(), nullptr, bound.data(), d);
  EXPECT_LE(error_over_bound(changed, exact, bound, 9 * d.c), kErrorFactor);
  std::vector<std::vector<float>> kernels, results;
  for (int i = 0; i < 6; ++i) kernels.push_back(random_values<float>(9 * d.c * d.o, 60 + i, 1.0));
  for (const auto& kernel : kernels) results.push_back(fresh(kernel));
  for (int round = 0; round < 2; ++round) {
    for (int i = 5; i >= 0; --i) EXPECT_TRUE(same_bits(fresh(kernels[i]), results[i])) << "kernel " << i;
  }
}

// The cache keeps at most 16 MiB per thread: a kernel whose transform alone exceeds that (352 → 352
// channels: 17.8 MB) is transformed on every call, correctly, without being kept; small kernels
// are kept again afterwards.
TEST(Conv2dWinogradForward, FilterCacheStaysWithinItsBudget) {
  if (!available()) GTEST_SKIP() << "built without AVX-512 or AVX2";
  constexpr std::size_t kBudget = std::size_t{16} << 20;
  const Conv2dDims big = dims3x3(1, 5, 5, 352, 352, false), small = dims3x3(1, 6, 6, 16, 32, false);
  const auto x = random_values<float>(big.n * big.h * big.w * big.c, 101, 1.0);
  auto k = random_values<float>(9 * big.c * big.o, 102, 1.0);
  const auto check = [&](const Conv2dDims& d) {
    std::vector<float> y(d.n * d.oh * d.ow * d.o), exact(y.size()), bound(y.size());
    conv2d_winograd_forward(x.data(), k.data(), nullptr, y.data(), d, false);
    conv2d_forward_reference<float>(x.data(), k.data(), nullptr, exact.data(), d);
    conv2d_forward_reference<float>(abs_of(x).data(), abs_of(k).data(), nullptr, bound.data(), d);
    EXPECT_LE(error_over_bound(y, exact, bound, 9 * d.c), kErrorFactor) << describe(d);
    EXPECT_LE(conv2d_winograd_cached_filter_bytes(), kBudget) << describe(d);
  };
  check(small);
  const std::size_t small_bytes = conv2d_winograd_cached_filter_bytes();
  EXPECT_GE(small_bytes, (9 + 36) * 16 * 32 * sizeof(float));
  check(big);
  k[0] += 1.0f;  // the big kernel changed in place: transformed again
  check(big);
  EXPECT_EQ(conv2d_winograd_cached_filter_bytes(), small_bytes) << "the big kernel is not kept";
  // Kernels of 9 MB of transforms each (C = O = 256 → 9.4 + 2.4 MB): one at a time fits.
  const Conv2dDims mid = dims3x3(1, 5, 5, 256, 256, false);
  check(mid);
  EXPECT_LE(conv2d_winograd_cached_filter_bytes(), kBudget);
  k[1] += 1.0f;
  check(mid);
  EXPECT_LE(conv2d_winograd_cached_filter_bytes(), kBudget);
}

// A NaN input makes NaN in the outputs that read it; an Inf makes them non-finite (NaN where the
// transforms meet Inf − Inf, where the direct kernel gives ±Inf); outputs whose tiles do not
// read either stay finite.
TEST(Conv2dWinogradForward, NanAndInfInputs) {
  if (!available()) GTEST_SKIP() << "built without AVX-512 or AVX2";
  const Conv2dDims d = dims3x3(1, 14, 14, 16, 16, false);  // 12×12 outputs, 3×3 tiles
  for (const float bad : {NAN, INFINITY}) {
    auto x = random_values<float>(d.n * d.h * d.w * d.c, 71, 1.0);
    x[(5 * d.w + 6) * d.c + 3] = bad;  // row 5, column 6: read by outputs rows 3–5, columns 4–6
    const auto k = random_values<float>(9 * d.c * d.o, 72, 1.0);
    std::vector<float> y(d.oh * d.ow * d.o);
    conv2d_winograd_forward(x.data(), k.data(), nullptr, y.data(), d, false);
    for (int64_t p = 0; p < d.oh; ++p) {
      for (int64_t q = 0; q < d.ow; ++q) {
        const bool reads = p >= 3 && p <= 5 && q >= 4 && q <= 6;
        // Tiles whose 6×6 patch (rows 4·ty .. 4·ty + 5) holds row 5, column 6: ty 0 or 1, tx 1.
        const bool tile_reads = (p / 4 == 0 || p / 4 == 1) && q / 4 == 1;
        for (int64_t o = 0; o < d.o; ++o) {
          const float v = y[(p * d.ow + q) * d.o + o];
          if (reads) {
            EXPECT_FALSE(std::isfinite(v)) << p << ", " << q << ", " << o;
          }
          if (std::isnan(bad) && reads) {
            EXPECT_TRUE(std::isnan(v)) << p << ", " << q << ", " << o;
          }
          if (!tile_reads) {
            EXPECT_TRUE(std::isfinite(v)) << p << ", " << q << ", " << o;
          }
        }
      }
    }
  }
}

// Conv, pool and ReLU in one pass == conv2d_winograd_forward, then max_pool2d_relu_forward, bit for
// bit, with the argmax bytes of max_pool2d_forward_argmax: 2×2 windows (the CNN), 4×4 and 1×2,
// outputs cut by the tiles and by the pooling (15×15 → 7×7), NaN inputs, 1 and 2 threads. Windows
// that straddle tiles (3×3) or overlap (stride 1) are refused: false, nothing written.
TEST(Conv2dWinogradForward, PooledInRegistersEqualsTheTwoKernels) {
  if (!available()) GTEST_SKIP() << "built without AVX-512 or AVX2";
  struct Case {
    Conv2dDims d;
    int64_t ph, pw;
  };
  for (const Case& c :
       {Case{dims3x3(1, 26, 26, 32, 64, false), 2, 2}, Case{dims3x3(3, 26, 26, 32, 64, false), 2, 2},
        Case{dims3x3(2, 15, 15, 16, 32, true), 2, 2}, Case{dims3x3(1, 18, 18, 16, 16, false), 4, 4},
        Case{dims3x3(1, 11, 9, 16, 48, false), 1, 2}}) {
    const Conv2dDims& d = c.d;
    const Pool2dDims pd = tiling_pool(d, c.ph, c.pw);
    ASSERT_TRUE(conv2d_winograd_forward_max_pool_relu_supported(d, pd)) << describe(d);
    auto x = random_values<float>(d.n * d.h * d.w * d.c, 81, 1.0);
    for (std::size_t i = 3; i < x.size(); i += 997) x[i] = NAN;
    const auto k = random_values<float>(9 * d.c * d.o, 82, 1.0);
    const auto b = random_values<float>(d.o, 83, 1.0);
    std::vector<float> z(d.n * d.oh * d.ow * d.o);
    conv2d_winograd_forward(x.data(), k.data(), b.data(), z.data(), d, false);
    const PooledReference reference = pooled_reference(z, pd);
    const std::vector<float>& want = reference.y;
    const std::vector<uint8_t>& want_argmax = reference.argmax;
    EXPECT_GT(reference.nans, 0) << describe(d);
    if (c.ph * c.pw <= 4) {  // windows of 16 random values: hardly ever all negative
      EXPECT_GT(reference.zeros, 0) << describe(d);
    }
    for (int threads : {1, 2}) {
      std::vector<float> got(want.size(), 7.0f), got_training(want.size(), 7.0f);
      std::vector<uint8_t> argmax(want.size(), 0xEE);
      with_threads(threads, [&] {
        EXPECT_TRUE(conv2d_winograd_forward_max_pool_relu(x.data(), k.data(), b.data(), got.data(), d, pd));
        EXPECT_TRUE(conv2d_winograd_forward_max_pool_relu(x.data(), k.data(), b.data(), got_training.data(),
                                                          d, pd, argmax.data()));
      });
      const std::string what = describe(d) + " pool " + std::to_string(c.ph) + "x" + std::to_string(c.pw) +
                               ", " + std::to_string(threads) + " thread(s)";
      EXPECT_TRUE(same_bits(got, want)) << what;
      EXPECT_TRUE(same_bits(got_training, want)) << what << ", with argmax";
      EXPECT_EQ(argmax, want_argmax) << what;
    }
  }
  const Conv2dDims d = dims3x3(1, 14, 14, 16, 16, false);
  const auto x = random_values<float>(d.n * d.h * d.w * d.c, 84, 1.0);
  const auto k = random_values<float>(9 * d.c * d.o, 85, 1.0);
  Pool2dDims overlapping = tiling_pool(d, 2, 2);
  overlapping.stride_h = overlapping.stride_w = 1;
  overlapping.oh = overlapping.ow = d.oh - 1;
  for (const Pool2dDims& pd : {tiling_pool(d, 3, 3), overlapping}) {
    std::vector<float> y(pd.n * pd.oh * pd.ow * pd.c, 7.0f);
    EXPECT_FALSE(conv2d_winograd_forward_max_pool_relu(x.data(), k.data(), nullptr, y.data(), d, pd));
    for (float v : y) ASSERT_EQ(v, 7.0f);
  }
}

// Under set_conv2d_winograd, conv2d_forward and conv2d_forward_max_pool_relu run this kernel
// wherever they would run the direct one (a few images; every batch in builds without AVX-512),
// for the shapes it takes; other shapes keep the direct kernel's bits.
TEST(Conv2dWinogradForward, ConvForwardRunsItUnderWinogradWhereTheDirectKernelWouldRun) {
  if (!available()) GTEST_SKIP() << "built without AVX-512 or AVX2";
  const Conv2dDims d = dims3x3(1, 26, 26, 32, 64, false), other = dims3x3(1, 26, 26, 8, 64, false);  // C = 8
  ASSERT_TRUE(conv2d_forward_runs_direct(d));
  const auto x = random_values<float>(d.n * d.h * d.w * d.c, 91, 1.0);
  const auto k = random_values<float>(9 * d.c * d.o, 92, 1.0);
  const auto b = random_values<float>(d.o, 93, 1.0);
  std::vector<float> want(d.n * d.oh * d.ow * d.o), direct = want, routed = want, routed_default = want;
  conv2d_winograd_forward(x.data(), k.data(), b.data(), want.data(), d, true);
  conv2d_direct_forward(x.data(), k.data(), b.data(), direct.data(), d, true);
  EXPECT_FALSE(same_bits(want, direct));
  conv2d_forward(x.data(), k.data(), b.data(), routed_default.data(), d, true);
  EXPECT_TRUE(same_bits(routed_default, direct)) << "the default is the direct kernel";
  const Pool2dDims pd = tiling_pool(d, 2, 2);
  std::vector<float> pooled_want(pd.n * pd.oh * pd.ow * pd.c), pooled = pooled_want;
  ASSERT_TRUE(conv2d_winograd_forward_max_pool_relu(x.data(), k.data(), b.data(), pooled_want.data(), d, pd));
  std::vector<float> y_other(other.n * other.oh * other.ow * other.o), direct_other = y_other;
  conv2d_direct_forward(x.data(), k.data(), b.data(), direct_other.data(), other, false);
  {
    const WinogradOn winograd;
    conv2d_forward(x.data(), k.data(), b.data(), routed.data(), d, true);
    EXPECT_TRUE(conv2d_forward_max_pool_relu(x.data(), k.data(), b.data(), pooled.data(), d, pd));
    conv2d_forward(x.data(), k.data(), b.data(), y_other.data(), other, false);
  }
  EXPECT_TRUE(same_bits(routed, want));
  EXPECT_TRUE(same_bits(pooled, pooled_want));
  EXPECT_TRUE(same_bits(y_other, direct_other)) << "C = 8 is not taken by the Winograd kernel";
}

}  // namespace
}  // namespace normnet::kernels::cpu

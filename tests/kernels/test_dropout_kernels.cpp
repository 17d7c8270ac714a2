// The counter-based dropout kernels: forward equals its one-element-at-a-time twin, the mask
// depends on (seed, index) only, backward recomputes the same mask (adding or writing), and
// the drop rate and the mean are what inverted dropout promises.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/dropout.h"
#include "kernels/kernel_test_util.h"

namespace normnet::kernels::cpu {
namespace {

// Past the parallel grain (65536) and not a multiple of any vector width.
constexpr int64_t kN = 200003;

TEST(DropoutKernels, ForwardMatchesReferenceAndThreadCount) {
  const auto x = random_values<float>(kN, 1);
  std::vector<float> y1(kN), y3(kN), ref(kN);
  with_threads(1, [&] { dropout_forward(x.data(), 0.3, 42, y1.data(), kN); });
  with_threads(3, [&] { dropout_forward(x.data(), 0.3, 42, y3.data(), kN); });
  dropout_forward_reference(x.data(), 0.3, 42, ref.data(), kN);
  EXPECT_EQ(y1, ref);
  EXPECT_EQ(y3, ref);
  const auto xd = random_values<double>(1000, 2);
  std::vector<double> yd(1000), refd(1000);
  dropout_forward(xd.data(), 0.6, 7, yd.data(), 1000);
  dropout_forward_reference(xd.data(), 0.6, 7, refd.data(), 1000);
  EXPECT_EQ(yd, refd);
}

TEST(DropoutKernels, MaskIsZeroOrScaleAndYIsXTimesMask) {
  const auto x = random_values<double>(kN, 3);
  std::vector<double> y(kN), mask(kN);
  dropout_forward(x.data(), 0.3, 9, y.data(), kN);
  dropout_mask(0.3, 9, mask.data(), kN);
  int64_t dropped = 0;
  for (int64_t i = 0; i < kN; ++i) {
    ASSERT_TRUE(mask[i] == 0.0 || mask[i] == 1.0 / 0.7) << i;
    EXPECT_EQ(y[i], x[i] * mask[i]);
    dropped += mask[i] == 0.0;
  }
  // Binomial(kN, 0.3): standard deviation 205, so ±1500 is a 7σ band.
  EXPECT_NEAR(static_cast<double>(dropped), 0.3 * kN, 1500.0);
}

TEST(DropoutKernels, SeedsGiveIndependentMasks) {
  // The Dropout layer's per-call seeds differ by multiples of splitmix64's increment: a stream
  // keyed by the raw seed would repeat the previous call's mask shifted by one element.
  constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;
  std::vector<float> a(kN), b(kN);
  dropout_mask(0.5, 100, a.data(), kN);
  dropout_mask(0.5, 100 + kGamma, b.data(), kN);
  int64_t same = 0, same_shifted = 0;
  for (int64_t i = 0; i + 1 < kN; ++i) {
    same += a[i] == b[i];
    same_shifted += a[i + 1] == b[i];
  }
  // Independent masks agree on about half the elements (σ ≈ 224).
  EXPECT_NEAR(static_cast<double>(same), 0.5 * kN, 2000.0);
  EXPECT_NEAR(static_cast<double>(same_shifted), 0.5 * kN, 2000.0);
}

TEST(DropoutKernels, BackwardAddsOrWritesDyTimesTheForwardMask) {
  const auto dy = random_values<float>(kN, 4);
  std::vector<float> mask(kN), added(kN, 1.0f), written(kN, std::numeric_limits<float>::quiet_NaN());
  dropout_mask(0.25, 11, mask.data(), kN);
  dropout_backward(0.25, 11, dy.data(), added.data(), kN);
  dropout_backward_write(0.25, 11, dy.data(), written.data(), kN);
  for (int64_t i = 0; i < kN; ++i) {
    ASSERT_EQ(written[i], dy[i] * mask[i]) << i;
    // Within rounding of the exact 1 + dy·mask (the kernel may fuse the multiply-add).
    const double product = static_cast<double>(dy[i]) * mask[i];
    ASSERT_NEAR(added[i], 1.0 + product, 1.2e-7 * (1.0 + 2.0 * std::abs(product))) << i;
  }
}

TEST(DropoutKernels, DroppedNaNStaysNaN) {
  // y = x·0 for a dropped element, as before the counter-based mask: NaN and inf still show.
  std::vector<float> x(64, std::numeric_limits<float>::quiet_NaN()), y(64);
  dropout_forward(x.data(), 0.5, 1, y.data(), 64);
  for (float v : y) EXPECT_TRUE(std::isnan(v));
}

}  // namespace
}  // namespace normnet::kernels::cpu

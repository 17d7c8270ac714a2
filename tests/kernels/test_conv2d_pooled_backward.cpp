// conv2d_pooled_backward (the backward of a convolution followed by a tiling max pool, one term
// per window and channel) against its twin, the dense chain run by the naive kernels: dz from
// max_pool2d_backward_write_argmax, then conv2d_backward_data_reference and
// conv2d_backward_weights_reference. The same terms in another order, so within K·u·Σ|terms|.
// Also: adding into an existing dx, writing a dx full of NaN, one output without the other,
// results independent of the thread count, and the shapes the kernels refuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_pooled_backward.h"
#include "kernels/cpu/pool2d.h"

namespace normnet::kernels::cpu {
namespace {

struct Case {
  Conv2dDims d;
  Pool2dDims pd;
  std::string what;
};

// A convolution with valid padding and a max pool over its output.
Case make_case(int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t o, int64_t sh,
               int64_t sw, int64_t ph, int64_t pw, bool pool_same) {
  Conv2dDims d{n, h, w, c, kh, kw, o, (h - kh) / sh + 1, (w - kw) / sw + 1, sh, sw, 0, 0, 0, 0};
  const WindowAxis rows = window_axis(d.oh, ph, ph, pool_same), cols = window_axis(d.ow, pw, pw, pool_same);
  Pool2dDims pd{n, d.oh, d.ow, o, ph, pw, rows.out, cols.out, ph, pw, rows.pad_before, cols.pad_before};
  const std::string what = "x [" + std::to_string(n) + ", " + std::to_string(h) + ", " + std::to_string(w) +
                           ", " + std::to_string(c) + "] kernel " + std::to_string(kh) + "x" +
                           std::to_string(kw) + " -> " + std::to_string(o) + " stride " + std::to_string(sh) +
                           "x" + std::to_string(sw) + " pool " + std::to_string(ph) + "x" +
                           std::to_string(pw) + (pool_same ? " same" : "");
  return {d, pd, what};
}

std::vector<Case> cases() {
  return {
      make_case(3, 26, 26, 32, 3, 3, 64, 1, 1, 2, 2, false),  // the Fashion-MNIST CNN's conv2
      make_case(2, 9, 10, 16, 3, 3, 32, 1, 1, 2, 2, true),    // odd output: partial windows at the end
      make_case(1, 9, 9, 16, 3, 3, 16, 1, 1, 3, 3, true),     // 7 → 3 windows of 3: partial at both ends
      make_case(2, 13, 13, 8, 3, 2, 24, 2, 2, 3, 3, false),   // strided, 3×3 windows, O not a multiple of 16
      make_case(2, 8, 8, 16, 1, 1, 5, 1, 1, 2, 2, false),     // 1×1 kernel
      make_case(1, 12, 7, 16, 5, 1, 17, 1, 1, 2, 1, false),   // five kernel rows of one vector
      make_case(2, 10, 10, 48, 3, 1, 16, 1, 1, 2, 2, false),  // rows of three vectors
      make_case(2, 8, 8, 64, 3, 3, 16, 1, 1, 2, 2, false),    // 36 vectors of taps (AVX-512): several blocks
      make_case(2, 6, 6, 16, 3, 3, 100, 1, 1, 2, 2, false),   // 100 channels: argmax masks of 64 + 36 bits
  };
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Inputs of one case: x, kernel, the pool's argmax over a random z and a pooled gradient with
// some zeros (ReLU's), and the twin's dx and dk on them and on their absolute values.
struct Data {
  std::vector<float> x, k, dp;
  std::vector<uint8_t> argmax;
  std::vector<float> dx_ref, dx_abs, dk_ref, dk_abs;

  explicit Data(const Case& c) {
    const Conv2dDims& d = c.d;
    const Pool2dDims& pd = c.pd;
    x = random_values<float>(d.n * d.h * d.w * d.c, 81, 1.0);
    k = random_values<float>(d.kh * d.kw * d.c * d.o, 82, 1.0);
    const auto z = random_values<float>(d.n * d.oh * d.ow * d.o, 83, 1.0);
    dp = random_values<float>(pd.n * pd.oh * pd.ow * pd.c, 84, 1.0);
    for (std::size_t i = 0; i < dp.size(); i += 3) dp[i] = 0.0f;
    argmax.assign(dp.size(), 0);
    std::vector<float> pooled(dp.size());
    max_pool2d_forward_argmax(z.data(), pooled.data(), argmax.data(), pd);
    const auto twin = [&](const std::vector<float>& xs, const std::vector<float>& ks,
                          const std::vector<float>& g, std::vector<float>& dx, std::vector<float>& dk) {
      std::vector<float> dz(z.size(), NAN), db(d.o);
      max_pool2d_backward_write_argmax(argmax.data(), g.data(), dz.data(), pd);
      dx.assign(xs.size(), NAN);
      dk.assign(ks.size(), NAN);
      conv2d_backward_data_reference(dz.data(), ks.data(), dx.data(), d);
      conv2d_backward_weights_reference(xs.data(), dz.data(), dk.data(), db.data(), d);
    };
    twin(x, k, dp, dx_ref, dk_ref);
    twin(abs_of(x), abs_of(k), abs_of(dp), dx_abs, dk_abs);
  }
};

bool built() { return conv2d_pooled_backward_supported(cases()[0].d, cases()[0].pd); }

TEST(Conv2dPooledBackward, MatchesTheDenseChainWithinTheBound) {
  if (!built()) GTEST_SKIP() << "this build has no conv2d_pooled_backward kernels (x86-64 vector builds only)";
  for (const Case& c : cases()) {
    ASSERT_TRUE(conv2d_pooled_backward_supported(c.d, c.pd)) << c.what;
    const Data in(c);
    std::vector<float> dx(in.x.size(), NAN), dk(in.k.size(), NAN);  // NaN: every element must be written
    conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), in.dp.data(), dx.data(), true,
                           dk.data(), c.d, c.pd);
    // dx: at most KH·KW·O terms per element (one per tap and channel); dk: one per window.
    const double data = error_over_bound(dx, in.dx_ref, in.dx_abs, c.d.kh * c.d.kw * c.d.o);
    const double weights = error_over_bound(dk, in.dk_ref, in.dk_abs, c.pd.n * c.pd.oh * c.pd.ow);
    EXPECT_LE(data, 1.0) << c.what << ": dx";
    EXPECT_LE(weights, 1.0) << c.what << ": dkernel";
    std::printf("[ pooled ] %s: |error| / (K·u·Σ|terms|) dx %.3g, dkernel %.3g\n", c.what.c_str(), data,
                weights);
  }
}

TEST(Conv2dPooledBackward, AddsIntoAnExistingGradient) {
  if (!built()) GTEST_SKIP() << "this build has no conv2d_pooled_backward kernels (x86-64 vector builds only)";
  for (const Case& c : cases()) {
    const Data in(c);
    const auto before = random_values<float>(in.x.size(), 85, 1.0);
    std::vector<float> dx = before;
    conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), in.dp.data(), dx.data(), false,
                           nullptr, c.d, c.pd);
    std::vector<float> expected(dx.size()), magnitude(dx.size());
    for (std::size_t i = 0; i < dx.size(); ++i) {
      expected[i] = static_cast<float>(double(before[i]) + double(in.dx_ref[i]));
      magnitude[i] = std::abs(before[i]) + in.dx_abs[i];
    }
    EXPECT_LE(error_over_bound(dx, expected, magnitude, c.d.kh * c.d.kw * c.d.o + 1), 1.0) << c.what;
  }
}

TEST(Conv2dPooledBackward, EitherOutputAloneGivesTheBitsOfBoth) {
  if (!built()) GTEST_SKIP() << "this build has no conv2d_pooled_backward kernels (x86-64 vector builds only)";
  const Case c = cases()[0];
  const Data in(c);
  std::vector<float> dx(in.x.size(), NAN), dk(in.k.size(), NAN);
  conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), in.dp.data(), dx.data(), true, dk.data(),
                         c.d, c.pd);
  std::vector<float> dx_alone(in.x.size(), NAN), dk_alone(in.k.size(), NAN);
  conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), in.dp.data(), dx_alone.data(), true,
                         nullptr, c.d, c.pd);
  conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), in.dp.data(), nullptr, true,
                         dk_alone.data(), c.d, c.pd);
  EXPECT_TRUE(same_bits(dx, dx_alone));
  EXPECT_TRUE(same_bits(dk, dk_alone));
}

TEST(Conv2dPooledBackward, ResultsDoNotDependOnTheThreadCount) {
  if (!built()) GTEST_SKIP() << "this build has no conv2d_pooled_backward kernels (x86-64 vector builds only)";
  for (const Case& c : {cases()[0], cases()[2], cases()[4]}) {
    const Data in(c);
    std::vector<float> dx1(in.x.size(), NAN), dk1(in.k.size(), NAN);
    with_threads(1, [&] {
      conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), in.dp.data(), dx1.data(), true,
                             dk1.data(), c.d, c.pd);
    });
    for (int threads : {2, 3}) {
      std::vector<float> dx(in.x.size(), NAN), dk(in.k.size(), NAN);
      with_threads(threads, [&] {
        conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), in.dp.data(), dx.data(), true,
                               dk.data(), c.d, c.pd);
      });
      EXPECT_TRUE(same_bits(dx, dx1)) << c.what << ", " << threads << " threads";
      EXPECT_TRUE(same_bits(dk, dk1)) << c.what << ", " << threads << " threads";
    }
  }
}

TEST(Conv2dPooledBackward, RefusesShapesItDoesNotTake) {
  if (!built()) GTEST_SKIP() << "this build has no conv2d_pooled_backward kernels (x86-64 vector builds only)";
  const Case cnn = cases()[0];
  Conv2dDims padded = cnn.d;
  padded.pad_top = padded.pad_bottom = padded.pad_left = padded.pad_right = 1;
  EXPECT_FALSE(conv2d_pooled_backward_supported(padded, cnn.pd));
  Pool2dDims overlapping = cnn.pd;  // 2×2 windows at stride 1 do not tile
  overlapping.stride_h = overlapping.stride_w = 1;
  overlapping.oh = overlapping.ow = cnn.d.oh - 1;
  EXPECT_FALSE(conv2d_pooled_backward_supported(cnn.d, overlapping));
  // kernel rows of KW·C = 3·3 floats: not whole vectors
  const Case narrow = make_case(1, 8, 8, 3, 3, 3, 16, 1, 1, 2, 2, false);
  EXPECT_FALSE(conv2d_pooled_backward_supported(narrow.d, narrow.pd));
  // a pool that is not over the convolution's output
  Pool2dDims other = cnn.pd;
  other.c = cnn.d.o + 1;
  EXPECT_FALSE(conv2d_pooled_backward_supported(cnn.d, other));
}

}  // namespace
}  // namespace normnet::kernels::cpu

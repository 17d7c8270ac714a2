// conv2d_pooled_backward (the backward of a convolution followed by a tiling max pool, one term
// per window and channel) against its twin, the dense chain run by the naive kernels: dz from
// max_pool2d_backward_write_argmax, then conv2d_backward_data_reference and
// conv2d_backward_weights_reference. The same terms in another order, so within K·u·Σ|terms|.
// Also: a pooled gradient mostly 0 (as in training), terms under a zero gradient left out (NaN and
// Inf included), adding into an existing dx, writing a dx full of NaN, one output without the
// other, results independent of the thread count, and the shapes the kernels refuse.
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
      make_case(1, 70, 71, 16, 3, 3, 16, 1, 1, 2, 2, true),   // 34 window columns: masks of 32 + 2 columns
  };
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The dense chain on the naive kernels: dz from dp at the argmax, then the reference backward
// data and weights passes.
void dense_chain(const Case& c, const std::vector<uint8_t>& argmax, const std::vector<float>& x,
                 const std::vector<float>& k, const std::vector<float>& dp, std::vector<float>& dx,
                 std::vector<float>& dk) {
  const Conv2dDims& d = c.d;
  std::vector<float> dz(static_cast<std::size_t>(d.n * d.oh * d.ow * d.o), NAN), db(d.o);
  max_pool2d_backward_write_argmax(argmax.data(), dp.data(), dz.data(), c.pd);
  dx.assign(x.size(), NAN);
  dk.assign(k.size(), NAN);
  conv2d_backward_data_reference(dz.data(), k.data(), dx.data(), d);
  conv2d_backward_weights_reference(x.data(), dz.data(), dk.data(), db.data(), d);
}

// Inputs of one case: x, kernel, the pool's argmax over a random z and a pooled gradient with
// zeros (ReLU's and Dropout's: every third, or with `sparse` all but every seventh, as in
// training), and the twin's dx and dk on them and on their absolute values.
struct Data {
  std::vector<float> x, k, dp;
  std::vector<uint8_t> argmax;
  std::vector<float> dx_ref, dx_abs, dk_ref, dk_abs;

  explicit Data(const Case& c, bool sparse = false) {
    const Conv2dDims& d = c.d;
    const Pool2dDims& pd = c.pd;
    x = random_values<float>(d.n * d.h * d.w * d.c, 81, 1.0);
    k = random_values<float>(d.kh * d.kw * d.c * d.o, 82, 1.0);
    const auto z = random_values<float>(d.n * d.oh * d.ow * d.o, 83, 1.0);
    dp = random_values<float>(pd.n * pd.oh * pd.ow * pd.c, 84, 1.0);
    for (std::size_t i = 0; i < dp.size(); ++i) {
      if (sparse ? i % 7 != 0 : i % 3 == 0) dp[i] = 0.0f;
    }
    argmax.assign(dp.size(), 0);
    std::vector<float> pooled(dp.size());
    max_pool2d_forward_argmax(z.data(), pooled.data(), argmax.data(), pd);
    dense_chain(c, argmax, x, k, dp, dx_ref, dk_ref);
    dense_chain(c, argmax, abs_of(x), abs_of(k), abs_of(dp), dx_abs, dk_abs);
  }
};

bool built() { return conv2d_pooled_backward_supported(cases()[0].d, cases()[0].pd); }

TEST(Conv2dPooledBackward, MatchesTheDenseChainWithinTheBound) {
  if (!built()) GTEST_SKIP() << "this build has no conv2d_pooled_backward kernels (x86-64 vector builds only)";
  for (const bool sparse : {false, true})
    for (const Case& c : cases()) {
      ASSERT_TRUE(conv2d_pooled_backward_supported(c.d, c.pd)) << c.what;
      const Data in(c, sparse);
      std::vector<float> dx(in.x.size(), NAN), dk(in.k.size(), NAN);  // NaN: every element must be written
      conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), in.dp.data(), dx.data(), true,
                             dk.data(), c.d, c.pd);
      // dx: at most KH·KW·O terms per element (one per tap and channel); dk: one per window.
      const double data = error_over_bound(dx, in.dx_ref, in.dx_abs, c.d.kh * c.d.kw * c.d.o);
      const double weights = error_over_bound(dk, in.dk_ref, in.dk_abs, c.pd.n * c.pd.oh * c.pd.ow);
      EXPECT_LE(data, 1.0) << c.what << (sparse ? ", sparse dp" : "") << ": dx";
      EXPECT_LE(weights, 1.0) << c.what << (sparse ? ", sparse dp" : "") << ": dkernel";
      std::printf("[ pooled ] %s%s: |error| / (K·u·Σ|terms|) dx %.3g, dkernel %.3g\n", c.what.c_str(),
                  sparse ? ", sparse dp" : "", data, weights);
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
  for (const bool sparse : {false, true})
    for (const Case& c : {cases()[0], cases()[2], cases()[4]}) {
      const Data in(c, sparse);
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

// Terms whose dp is 0 are left out, so an infinite or NaN input or weight that only such terms
// touch does not reach the gradients (the dense chain would make NaN of 0 · Inf): the results
// equal the twin's with those values replaced by 0. A NaN dp is not 0: it reaches its terms.
TEST(Conv2dPooledBackward, TermsUnderAZeroGradientAreLeftOut) {
  if (!built())
    GTEST_SKIP() << "this build has no conv2d_pooled_backward kernels (x86-64 vector builds only)";
  const Case c = cases()[0];
  const Conv2dDims& d = c.d;
  const Pool2dDims& pd = c.pd;
  Data in(c, true);
  // Channel 3's gradient all 0, and an infinite weight of channel 3.
  const int64_t o_inf = 3, k_inf = ((1 * d.kw + 2) * d.c + 5) * d.o + o_inf;
  for (std::size_t t = o_inf; t < in.dp.size(); t += d.o) in.dp[t] = 0.0f;
  // Every term whose chosen pixel's taps cover x[1, 7, 8, 9] gets dp 0; that input becomes NaN.
  const int64_t xn = 1, xh = 7, xw = 8, xc = 9;
  for (int64_t i = 0; i < pd.oh; ++i) {
    for (int64_t j = 0; j < pd.ow; ++j) {
      for (int64_t o = 0; o < d.o; ++o) {
        const int64_t t = ((xn * pd.oh + i) * pd.ow + j) * d.o + o;
        const int64_t p = std::max<int64_t>(i * pd.stride_h - pd.pad_top, 0) + in.argmax[t] / pd.pw;
        const int64_t q = std::max<int64_t>(j * pd.stride_w - pd.pad_left, 0) + in.argmax[t] % pd.pw;
        if (xh >= p * d.stride_h && xh < p * d.stride_h + d.kh && xw >= q * d.stride_w &&
            xw < q * d.stride_w + d.kw)
          in.dp[t] = 0.0f;
      }
    }
  }
  std::vector<float> dx_want, dk_want, dx_abs, dk_abs;
  dense_chain(c, in.argmax, in.x, in.k, in.dp, dx_want, dk_want);  // x and k finite here
  dense_chain(c, in.argmax, abs_of(in.x), abs_of(in.k), abs_of(in.dp), dx_abs, dk_abs);
  std::vector<float> x = in.x, k = in.k;
  const int64_t x_nan = ((xn * d.h + xh) * d.w + xw) * d.c + xc;
  x[x_nan] = NAN;
  k[k_inf] = INFINITY;
  {
    std::vector<float> dx_chain, dk_chain;  // what the dense chain makes of them
    dense_chain(c, in.argmax, x, k, in.dp, dx_chain, dk_chain);
    ASSERT_TRUE(std::isnan(dk_chain[((0 * d.kw + 0) * d.c + xc) * d.o])) << "the NaN input should matter";
    ASSERT_TRUE(std::isnan(dx_chain[x_nan - xc + 5 - (1 * d.w + 2) * d.c]))
        << "the infinite weight should matter";
  }
  std::vector<float> dx(x.size(), NAN), dk(k.size(), NAN);
  conv2d_pooled_backward(x.data(), k.data(), in.argmax.data(), in.dp.data(), dx.data(), true, dk.data(), d,
                         pd);
  EXPECT_LE(error_over_bound(dx, dx_want, dx_abs, d.kh * d.kw * d.o), 1.0) << "dx";
  EXPECT_LE(error_over_bound(dk, dk_want, dk_abs, pd.n * pd.oh * pd.ow), 1.0) << "dkernel";
  // One NaN gradient (image 0, window (2, 3), channel 7): channel 7's dk all NaN, and dx NaN at
  // the chosen pixel's taps of channel 0 (every tap meets a finite weight of channel 7).
  std::vector<float> dp = in.dp;
  const int64_t t_nan = ((0 * pd.oh + 2) * pd.ow + 3) * d.o + 7;
  dp[t_nan] = NAN;
  conv2d_pooled_backward(in.x.data(), in.k.data(), in.argmax.data(), dp.data(), dx.data(), true, dk.data(), d,
                         pd);
  for (int64_t tap = 0; tap < d.kh * d.kw * d.c; ++tap) EXPECT_TRUE(std::isnan(dk[tap * d.o + 7])) << tap;
  const int64_t p = 2 * pd.stride_h + in.argmax[t_nan] / pd.pw,
                q = 3 * pd.stride_w + in.argmax[t_nan] % pd.pw;
  for (int64_t a = 0; a < d.kh; ++a) {
    for (int64_t b = 0; b < d.kw; ++b) {
      EXPECT_TRUE(std::isnan(dx[((0 * d.h + p + a) * d.w + q + b) * d.c])) << a << ", " << b;
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

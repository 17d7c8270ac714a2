// Max pooling's write-once backward for tiling windows: which dims tile, and that it writes what
// max_pool2d_backward adds into zeros (its reference twin), ties and NaN included, on every element,
// whether it finds the argmax again from x or reads the one the forward pass recorded.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/random.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cpu/unary.h"

namespace normnet::kernels::cpu {
namespace {

// Dims of a pool over x [n, h, w, c] with stride = pool (valid or TensorFlow's same padding).
Pool2dDims dims(int64_t n, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw, bool same,
                int64_t sh = 0, int64_t sw = 0) {
  Pool2dDims d;
  d.n = n, d.h = h, d.w = w, d.c = c, d.ph = ph, d.pw = pw;
  d.stride_h = sh ? sh : ph;
  d.stride_w = sw ? sw : pw;
  const WindowAxis rows = window_axis(h, ph, d.stride_h, same);
  const WindowAxis cols = window_axis(w, pw, d.stride_w, same);
  d.oh = rows.out, d.ow = cols.out, d.pad_top = rows.pad_before, d.pad_left = cols.pad_before;
  return d;
}

TEST(MaxPoolKernels, WhichWindowsTile) {
  EXPECT_TRUE(pool_windows_tile(dims(2, 24, 24, 64, 2, 2, false)));   // the Fashion-MNIST CNN
  EXPECT_TRUE(pool_windows_tile(dims(1, 25, 7, 3, 2, 3, true)));      // same: padding completes
  EXPECT_TRUE(pool_windows_tile(dims(1, 6, 6, 3, 3, 2, false)));
  EXPECT_FALSE(pool_windows_tile(dims(1, 25, 24, 3, 2, 2, false)));   // the last row is in no window
  EXPECT_FALSE(pool_windows_tile(dims(1, 8, 8, 3, 3, 3, false, 2, 2)));  // overlapping windows
  EXPECT_FALSE(pool_windows_tile(dims(1, 8, 8, 3, 2, 2, false, 3, 3)));  // gaps between windows
}

// Values drawn from a few levels, so that windows have ties; some NaN.
std::vector<float> tie_heavy_values(std::size_t n, uint64_t seed) {
  detail::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.below(4)) - 1.5f;
  for (std::size_t i = 5; i < n; i += 97) v[i] = std::numeric_limits<float>::quiet_NaN();
  return v;
}

// Standard normal values: upstream gradients.
std::vector<float> normal_values(std::size_t n, uint64_t seed) {
  detail::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& g : v) g = static_cast<float>(rng.normal());
  return v;
}

TEST(MaxPoolKernels, BackwardWriteEqualsAddingIntoZeros) {
  for (const Pool2dDims& d : {dims(3, 24, 24, 64, 2, 2, false), dims(2, 7, 9, 70, 2, 2, true),
                              dims(2, 6, 9, 5, 3, 3, false), dims(4, 5, 5, 130, 2, 3, true)}) {
    const auto nx = static_cast<std::size_t>(d.n * d.h * d.w * d.c);
    const auto ny = static_cast<std::size_t>(d.n * d.oh * d.ow * d.c);
    ASSERT_TRUE(pool_windows_tile(d));
    const auto x = tie_heavy_values(nx, 1);
    const auto dy = normal_values(ny, 2);
    std::vector<float> added(nx, 0.0f), written(nx, std::numeric_limits<float>::quiet_NaN());
    max_pool2d_backward(x.data(), dy.data(), added.data(), d);
    max_pool2d_backward_write(x.data(), dy.data(), written.data(), d);
    EXPECT_EQ(written, added) << d.h << "x" << d.w << "x" << d.c << " pool " << d.ph << "x" << d.pw;
  }
}

TEST(MaxPoolKernels, RecordedArgmaxGivesTheSameForwardAndBackward) {
  // Tiling windows of every kind the recorded path takes: the CNN's, same padding with partial
  // windows at the edges, 3×3 windows, more channels than one block, and 16×16 = 256 positions.
  for (const Pool2dDims& d : {dims(3, 24, 24, 64, 2, 2, false), dims(2, 7, 9, 70, 2, 2, true),
                              dims(2, 6, 9, 5, 3, 3, false), dims(4, 5, 5, 130, 2, 3, true),
                              dims(1, 32, 16, 3, 16, 16, false)}) {
    ASSERT_TRUE(pool_windows_tile(d));
    ASSERT_TRUE(max_pool2d_argmax_fits(d));
    const auto nx = static_cast<std::size_t>(d.n * d.h * d.w * d.c);
    const auto ny = static_cast<std::size_t>(d.n * d.oh * d.ow * d.c);
    const auto x = tie_heavy_values(nx, 3);
    std::vector<float> y(ny), y_recorded(ny, -7.0f);
    std::vector<uint8_t> argmax(ny, 255);
    max_pool2d_forward(x.data(), y.data(), d);
    max_pool2d_forward_argmax(x.data(), y_recorded.data(), argmax.data(), d);
    const auto bits = [](const std::vector<float>& v) {
      std::vector<uint32_t> b(v.size());
      std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
      return b;
    };
    const std::string what = std::to_string(d.h) + "x" + std::to_string(d.w) + "x" + std::to_string(d.c) +
                             " pool " + std::to_string(d.ph) + "x" + std::to_string(d.pw);
    EXPECT_EQ(bits(y_recorded), bits(y)) << what;  // NaN included
    const auto dy = normal_values(ny, 4);
    std::vector<float> added(nx, 0.0f), written(nx, std::numeric_limits<float>::quiet_NaN());
    max_pool2d_backward(x.data(), dy.data(), added.data(), d);
    max_pool2d_backward_write_argmax(argmax.data(), dy.data(), written.data(), d);
    EXPECT_EQ(written, added) << what;
  }
  EXPECT_FALSE(max_pool2d_argmax_fits(dims(1, 17, 16, 1, 17, 16, false)));  // 272 positions
}

// Pool and ReLU in one pass == the pool, then relu_forward over its output, bit for bit: NaN
// (first NaN of a window wins), ±0 (relu(-0) = +0 either way), negative windows, partial
// windows of same padding, overlapping and gapped windows.
TEST(MaxPoolKernels, PoolWithReluEqualsPoolThenRelu) {
  for (const Pool2dDims& d : {dims(3, 24, 24, 64, 2, 2, false), dims(2, 7, 9, 70, 2, 2, true),
                              dims(2, 8, 8, 5, 3, 3, false, 2, 2), dims(1, 8, 8, 3, 2, 2, false, 3, 3)}) {
    const auto nx = static_cast<std::size_t>(d.n * d.h * d.w * d.c);
    const auto ny = static_cast<std::size_t>(d.n * d.oh * d.ow * d.c);
    auto x = tie_heavy_values(nx, 9);
    for (float& v : x) v -= 1.0f;  // levels -2.5, -1.5, -0.5, 0.5: many windows without a positive
    for (std::size_t i = 11; i < nx; i += 41) x[i] = -0.0f;
    for (std::size_t i = 13; i < nx; i += 43) x[i] = 0.0f;
    std::vector<float> pooled(ny), fused(ny, 7.0f);
    max_pool2d_forward(x.data(), pooled.data(), d);
    relu_forward(pooled.data(), pooled.data(), static_cast<int64_t>(ny));
    max_pool2d_relu_forward(x.data(), fused.data(), d);
    std::vector<uint32_t> a(ny), b(ny);
    std::memcpy(a.data(), pooled.data(), ny * sizeof(float));
    std::memcpy(b.data(), fused.data(), ny * sizeof(float));
    EXPECT_EQ(b, a) << d.h << "x" << d.w << "x" << d.c << " pool " << d.ph << "x" << d.pw;
    std::size_t zeros = 0, nans = 0;
    for (float v : fused) zeros += v == 0.0f, nans += std::isnan(v);
    EXPECT_GT(zeros, 0u);  // the ReLU did clamp something
    EXPECT_GT(nans, 0u);
  }
}

// [n, h, w, c] (c a multiple of 16) in oneDNN's nChw16c layout, and back.
std::vector<float> to_blocked16(const std::vector<float>& v, int64_t n, int64_t h, int64_t w, int64_t c) {
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < h * w; ++p)
      for (int64_t ch = 0; ch < c; ++ch)
        out[static_cast<std::size_t>(((i * (c / 16) + ch / 16) * h * w + p) * 16 + ch % 16)] =
            v[static_cast<std::size_t>((i * h * w + p) * c + ch)];
  return out;
}

TEST(MaxPoolKernels, Blocked16KernelsEqualTheNhwcOnesOnTheReorderedInput) {
  // The CNN's pooling, same padding with partial windows, 3×3 windows, overlapping windows
  // (forward only: the write-once backward needs tiling ones), several channel blocks.
  const Pool2dDims cases[] = {dims(3, 24, 24, 64, 2, 2, false), dims(2, 7, 9, 32, 2, 2, true),
                              dims(2, 6, 9, 16, 3, 3, false), dims(2, 8, 8, 48, 3, 3, false, 2, 2)};
  for (const Pool2dDims& d : cases) {
    const auto nx = static_cast<std::size_t>(d.n * d.h * d.w * d.c);
    const auto ny = static_cast<std::size_t>(d.n * d.oh * d.ow * d.c);
    const std::string what = std::to_string(d.h) + "x" + std::to_string(d.w) + "x" + std::to_string(d.c) +
                             " pool " + std::to_string(d.ph) + "x" + std::to_string(d.pw) + " stride " +
                             std::to_string(d.stride_h);
    auto x = tie_heavy_values(nx, 5);
    x[7] = -0.0f, x[7 + static_cast<std::size_t>(d.c)] = 0.0f;  // −0 and +0 tie in one window
    std::vector<float> y(ny), y_blocked(ny, -7.0f);
    std::vector<uint8_t> argmax(ny, 255), argmax_blocked(ny, 254);
    max_pool2d_forward_argmax(x.data(), y.data(), argmax.data(), d);
    max_pool2d_forward_argmax_blocked16(to_blocked16(x, d.n, d.h, d.w, d.c).data(), y_blocked.data(),
                                        argmax_blocked.data(), d);
    std::vector<uint32_t> bits(ny), bits_blocked(ny);
    std::memcpy(bits.data(), y.data(), ny * sizeof(float));
    std::memcpy(bits_blocked.data(), y_blocked.data(), ny * sizeof(float));
    EXPECT_EQ(bits_blocked, bits) << what;  // NaN and the sign of zero included
    EXPECT_EQ(argmax_blocked, argmax) << what;
    if (!pool_windows_tile(d)) continue;
    const auto dy = normal_values(ny, 6);
    std::vector<float> dx(nx, NAN), dx_blocked(nx, NAN);
    max_pool2d_backward_write_argmax(argmax.data(), dy.data(), dx.data(), d);
    max_pool2d_backward_write_argmax_blocked16(argmax.data(), dy.data(), dx_blocked.data(), d);
    EXPECT_EQ(dx_blocked, to_blocked16(dx, d.n, d.h, d.w, d.c)) << what;
  }
}

TEST(MaxPoolKernels, RecordedArgmaxOfOneWindow) {
  // Channel 0 ties at the top row (position 0 wins), channel 1 has NaN at the bottom right
  // (position 3), channel 2 peaks at the bottom left (position 2).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x{5, 1, 0, 5, 2, 1, 0, 3, 7, 1, nan, 2};
  std::vector<float> y(3);
  std::vector<uint8_t> argmax(3);
  max_pool2d_forward_argmax(x.data(), y.data(), argmax.data(), dims(1, 2, 2, 3, 2, 2, false));
  EXPECT_EQ(argmax, (std::vector<uint8_t>{0, 3, 2}));
  EXPECT_EQ(y[0], 5.0f);
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_EQ(y[2], 7.0f);
  const std::vector<float> dy{10, 20, 30};
  std::vector<float> dx(12, -1.0f);
  max_pool2d_backward_write_argmax(argmax.data(), dy.data(), dx.data(), dims(1, 2, 2, 3, 2, 2, false));
  EXPECT_EQ(dx, (std::vector<float>{10, 0, 0, 0, 0, 0, 0, 0, 30, 0, 20, 0}));
}

TEST(MaxPoolKernels, BackwardWriteRoutesToTheForwardArgmax) {
  // One 2×2 window, two channels: channel 0 ties at the top row (first wins), channel 1 has NaN
  // at the bottom right (NaN wins). Pixels in row-major order, channels innermost.
  const std::vector<float> x{5, 1, 5, 2, 0, 3, 1, std::numeric_limits<float>::quiet_NaN()};
  const std::vector<float> dy{10, 20};
  std::vector<float> dx(8, -1.0f);
  max_pool2d_backward_write(x.data(), dy.data(), dx.data(), dims(1, 2, 2, 2, 2, 2, false));
  EXPECT_EQ(dx, (std::vector<float>{10, 0, 0, 0, 0, 0, 0, 20}));
}

}  // namespace
}  // namespace normnet::kernels::cpu

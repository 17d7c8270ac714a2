// The opt-in Winograd convolutions (ops::set_conv2d_algorithm(kWinograd)) against the naive twins:
// oneDNN's F(4×4, 3×3) kernels really run where they exist (3×3, stride 1, channels multiples of
// 16, AVX-512; the forward pass runs normnet's own (conv2d_winograd.h) where it takes the shape),
// their error on these shapes stays within the direct kernels' bound K·u·Σ|terms|,
// and shapes that Winograd does not take give the direct kernels' bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/dnnl_context.h"

namespace normnet::kernels::cpu {
namespace {

// The Winograd kernels' error as a fraction of the direct kernels' bound K·u·Σ|terms|. Not a
// theorem: the transforms scale the data by constants up to 8 (A^T of F(4×4, 3×3)) and add a few
// roundings per tile, so with few channels or cancelling data it can exceed that bound; with K in
// the hundreds (3×3×16 and more) it stays far inside it. Measured on the shapes below (printed by
// the tests): forward 0.03–0.14, backward data 0.03–0.10, backward weights 0.0005 of the bound.
constexpr double kWinogradErrorFactor = 1.0;

// Sets the algorithm for one scope and restores the default.
struct WinogradOn {
  WinogradOn() { set_conv2d_winograd(true); }
  ~WinogradOn() { set_conv2d_winograd(false); }
  WinogradOn(const WinogradOn&) = delete;
  WinogradOn& operator=(const WinogradOn&) = delete;
};

bool cpu_has_avx512() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }

Conv2dDims dims3x3(int64_t n, int64_t hw, int64_t c, int64_t o, bool same) {
  const int64_t out = same ? hw : hw - 2;
  const int64_t pad = same ? 1 : 0;
  return Conv2dDims{n, hw, hw, c, 3, 3, o, out, out, 1, 1, pad, pad, pad, pad};
}

// oneDNN's implementation of the cached primitive of `kind` for this shape ("" if none was made).
std::string cached_impl(int64_t kind, const Conv2dDims& d) {
  const std::string prefix = "kind " + std::to_string(kind) + " [" + std::to_string(d.n) + ", " +
                             std::to_string(d.h) + ", " + std::to_string(d.w) + ", " + std::to_string(d.c) + ", ";
  for (const std::string& line : dnnl_cached_impls()) {
    if (line.rfind(prefix, 0) == 0) return line.substr(line.find("]: ") + 3);
  }
  return "";
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void expect_winograd_within_bound(const Conv2dDims& d, const std::string& what) {
  const auto x = random_values<float>(d.n * d.h * d.w * d.c, 41, 1.0);
  const auto k = random_values<float>(d.kh * d.kw * d.c * d.o, 42, 1.0);
  const auto b = random_values<float>(d.o, 43, 1.0);
  const auto dy = random_values<float>(d.n * d.oh * d.ow * d.o, 44, 1.0);
  const auto ax = abs_of(x), ak = abs_of(k), ab = abs_of(b), ady = abs_of(dy);
  const WinogradOn winograd;

  std::vector<float> y(d.n * d.oh * d.ow * d.o, NAN), y_ref = y, y_abs = y;
  conv2d_forward(x.data(), k.data(), b.data(), y.data(), d);
  conv2d_forward_reference(x.data(), k.data(), b.data(), y_ref.data(), d);
  conv2d_forward_reference(ax.data(), ak.data(), ab.data(), y_abs.data(), d);
  const double forward = error_over_bound(y, y_ref, y_abs, d.kh * d.kw * d.c + 1);
  EXPECT_LE(forward, kWinogradErrorFactor) << what << ": forward";

  // conv2d_backward (both at once, dy reordered once) and the two single passes agree to the bit.
  std::vector<float> dx(x.size(), NAN), dk(k.size(), NAN);
  conv2d_backward(x.data(), dy.data(), k.data(), dx.data(), dk.data(), d);
  std::vector<float> dx_alone(x.size(), NAN), dk_alone(k.size(), NAN), db(d.o, NAN);
  conv2d_backward_data(dy.data(), k.data(), dx_alone.data(), d);
  conv2d_backward_weights(x.data(), dy.data(), dk_alone.data(), db.data(), d);
  // The forward pass runs normnet's own Winograd kernel wherever the direct kernels would run
  // (conv2d.cpp), and then oneDNN makes no forward primitive for this shape.
  const bool own_forward = conv2d_forward_runs_direct(d) && conv2d_winograd_forward_supported(d);
  for (int64_t kind : {kDnnlConvWinogradForward, kDnnlConvWinogradBackwardData, kDnnlConvWinogradBackwardWeights}) {
    if (kind == kDnnlConvWinogradForward && own_forward) {
      EXPECT_EQ(cached_impl(kind, d), "") << what << ": normnet's own Winograd forward runs";
      continue;
    }
    EXPECT_NE(cached_impl(kind, d).find("jit_wino"), std::string::npos) << what << ": kind " << kind;
  }
  EXPECT_TRUE(same_bits(dx, dx_alone)) << what;
  EXPECT_TRUE(same_bits(dk, dk_alone)) << what;

  std::vector<float> dx_ref(x.size()), dx_abs = dx_ref;
  conv2d_backward_data_reference(dy.data(), k.data(), dx_ref.data(), d);
  conv2d_backward_data_reference(ady.data(), ak.data(), dx_abs.data(), d);
  const double data = error_over_bound(dx, dx_ref, dx_abs, d.kh * d.kw * d.o);
  EXPECT_LE(data, kWinogradErrorFactor) << what << ": backward data";

  std::vector<float> dk_ref(k.size()), dk_abs = dk_ref, db_ref(d.o), db_abs = db_ref;
  conv2d_backward_weights_reference(x.data(), dy.data(), dk_ref.data(), db_ref.data(), d);
  conv2d_backward_weights_reference(ax.data(), ady.data(), dk_abs.data(), db_abs.data(), d);
  const double weights = error_over_bound(dk, dk_ref, dk_abs, d.n * d.oh * d.ow);
  EXPECT_LE(weights, kWinogradErrorFactor) << what << ": backward weights";
  // The bias gradient is a plain column sum under either algorithm.
  EXPECT_LE(error_over_bound(db, db_ref, db_abs, d.n * d.oh * d.ow), 1.0) << what << ": backward bias";
  std::printf("[ winograd ] %s: |error| / (K·u·Σ|terms|) forward %.3g, backward data %.3g, weights %.3g\n",
              what.c_str(), forward, data, weights);
}

TEST(Conv2dWinograd, OffByDefault) { EXPECT_FALSE(conv2d_winograd()); }

TEST(Conv2dWinograd, MatchesReferenceWithinItsBoundAtCnnShape) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "oneDNN has Winograd kernels for AVX-512 CPUs only";
  // The Fashion-MNIST CNN's second convolution (32 → 64 channels, 26×26 → 24×24), 8 images: the
  // forward pass on normnet's own Winograd kernel, the backward passes on oneDNN's.
  expect_winograd_within_bound(dims3x3(8, 26, 32, 64, false), "valid 8x26x26x32 -> 64");
}

TEST(Conv2dWinograd, MatchesReferenceWithinItsBoundWithSamePaddingAndPartialTiles) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "oneDNN has Winograd kernels for AVX-512 CPUs only";
  // 'same' padding, 15×15 outputs (the last 4×4 tiles are partial), 16 → 48 channels.
  expect_winograd_within_bound(dims3x3(24, 15, 16, 48, true), "same 24x15x15x16 -> 48");
}

// Shapes oneDNN has no Winograd kernel for run the direct kernels: the same bits as without it.
TEST(Conv2dWinograd, ShapesWithoutAWinogradKernelKeepTheDirectBits) {
  const Conv2dDims cases[] = {
      dims3x3(8, 28, 1, 32, false),                                   // one input channel (conv1)
      Conv2dDims{8, 13, 13, 16, 3, 3, 16, 6, 6, 2, 2, 0, 0, 0, 0},    // stride 2
      Conv2dDims{8, 20, 20, 16, 5, 5, 16, 16, 16, 1, 1, 0, 0, 0, 0},  // 5×5
      dims3x3(8, 20, 12, 20, false),                                  // channels not multiples of 16
  };
  for (const Conv2dDims& d : cases) {
    const auto x = random_values<float>(d.n * d.h * d.w * d.c, 51, 1.0);
    const auto k = random_values<float>(d.kh * d.kw * d.c * d.o, 52, 1.0);
    const auto dy = random_values<float>(d.n * d.oh * d.ow * d.o, 53, 1.0);
    auto run = [&] {
      std::vector<float> y(d.n * d.oh * d.ow * d.o, NAN), dx(x.size(), NAN), dk(k.size(), NAN);
      conv2d_forward(x.data(), k.data(), nullptr, y.data(), d);
      conv2d_backward(x.data(), dy.data(), k.data(), dx.data(), dk.data(), d);
      return std::vector<std::vector<float>>{y, dx, dk};
    };
    const auto direct = run();
    std::vector<std::vector<float>> chosen;
    {
      const WinogradOn winograd;
      chosen = run();
    }
    const std::string what = "C " + std::to_string(d.c) + ", O " + std::to_string(d.o) + ", kernel " +
                             std::to_string(d.kh) + ", stride " + std::to_string(d.stride_h);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(same_bits(direct[i], chosen[i])) << what << ", output " << i;
  }
}

// Calls from several threads at once (each with its own scratch buffers, sharing the primitive
// cache) give the bits of a call made alone.
TEST(Conv2dWinograd, ConcurrentCallsGiveTheBitsOfOneCall) {
  const Conv2dDims d = dims3x3(8, 26, 32, 64, false);
  const auto x = random_values<float>(d.n * d.h * d.w * d.c, 61, 1.0);
  const auto k = random_values<float>(d.kh * d.kw * d.c * d.o, 62, 1.0);
  const auto dy = random_values<float>(d.n * d.oh * d.ow * d.o, 63, 1.0);
  const WinogradOn winograd;
  auto run = [&] {
    std::vector<float> y(dy.size(), NAN), dx(x.size(), NAN), dk(k.size(), NAN);
    conv2d_forward(x.data(), k.data(), nullptr, y.data(), d);
    conv2d_backward(x.data(), dy.data(), k.data(), dx.data(), dk.data(), d);
    return std::vector<std::vector<float>>{y, dx, dk};
  };
  const auto alone = run();
  constexpr int kThreads = 3;
  std::vector<int> mismatches(kThreads, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      int bad = 0;
      for (int rep = 0; rep < 4; ++rep) {
        const auto got = run();
        for (int j = 0; j < 3; ++j) bad += same_bits(got[j], alone[j]) ? 0 : 1;
      }
      mismatches[i] = bad;
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(mismatches[i], 0) << "thread " << i;
}

}  // namespace
}  // namespace normnet::kernels::cpu

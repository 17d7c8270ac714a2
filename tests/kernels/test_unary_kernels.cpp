// Raw kernels of the unary, softmax and embedding families: backward kernels add into dx,
// optimized kernels equal their naive `_reference` twins, and results do not depend on the
// thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/embedding.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/unary.h"
#include "kernels/kernel_test_util.h"

namespace normnet::kernels::cpu {
namespace {

TEST(UnaryKernels, BackwardAddsIntoDx) {
  const std::vector<double> x{0.5, -1.5, 2.0};
  const std::vector<double> dy{1.0, 2.0, -3.0};
  std::vector<double> y(3), dx(3, 10.0);
  tanh_forward(x.data(), y.data(), 3);
  tanh_backward(y.data(), dy.data(), dx.data(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(dx[i], 10.0 + dy[i] * (1.0 - std::tanh(x[i]) * std::tanh(x[i])), 1e-15);
  std::fill(dx.begin(), dx.end(), 10.0);
  neg_backward(dy.data(), dx.data(), 3);
  EXPECT_EQ(dx, (std::vector<double>{9.0, 8.0, 13.0}));
  std::fill(dx.begin(), dx.end(), 10.0);
  clip_backward(x.data(), -1.0, 1.0, dy.data(), dx.data(), 3);
  EXPECT_EQ(dx, (std::vector<double>{11.0, 10.0, 10.0}));
  std::fill(dx.begin(), dx.end(), 10.0);
  pow_backward(x.data(), 0.0, dy.data(), dx.data(), 3);
  EXPECT_EQ(dx, (std::vector<double>{10.0, 10.0, 10.0}));
}

TEST(UnaryKernels, ParallelEqualsSingleThread) {
  const std::size_t n = 300000;  // past every grain
  const auto x = random_values<float>(n, 1);
  std::vector<float> serial(n), parallel(n);
  using Kernel = void (*)(const float*, float*, int64_t);
  for (Kernel k : {static_cast<Kernel>(exp_forward<float>), static_cast<Kernel>(tanh_forward<float>),
                   static_cast<Kernel>(sigmoid_forward<float>), static_cast<Kernel>(relu_forward<float>)}) {
    with_threads(1, [&] { k(x.data(), serial.data(), static_cast<int64_t>(n)); });
    with_threads(4, [&] { k(x.data(), parallel.data(), static_cast<int64_t>(n)); });
    EXPECT_EQ(serial, parallel);
  }
}

// relu_backward_write overwrites whatever dx held with what relu_backward adds to zeros, on
// both the serial and the parallel path (y from relu_forward: zeros, positives, NaN).
TEST(UnaryKernels, ReluBackwardWriteEqualsAddingIntoZeros) {
  for (const std::size_t n : {std::size_t{1000}, std::size_t{300000}}) {
    auto x = random_values<float>(n, 3);
    x[0] = 0.0f;
    x[1] = std::numeric_limits<float>::quiet_NaN();
    const auto dy = random_values<float>(n, 4);
    std::vector<float> y(n), added(n, 0.0f), written(n, std::numeric_limits<float>::quiet_NaN());
    relu_forward(x.data(), y.data(), static_cast<int64_t>(n));
    relu_backward(y.data(), dy.data(), added.data(), static_cast<int64_t>(n));
    relu_backward_write(y.data(), dy.data(), written.data(), static_cast<int64_t>(n));
    EXPECT_EQ(written, added) << "n = " << n;
    EXPECT_EQ(written[0], 0.0f);
    EXPECT_EQ(written[1], 0.0f);
  }
}

// y from relu_forward with exact zeros and NaN; [rows, channels] shapes with rows not a multiple
// of the pieces, fewer rows than pieces, channel counts below, at and above one vector, and past
// the kernel's stack limit (600 > 256 channels).
TEST(UnaryKernels, ReluBiasBackwardMatchesReference) {
  struct Case {
    int64_t rows, channels;
  };
  for (const Case c : {Case{1, 3}, Case{1000, 64}, Case{3 * kReluBiasPieces + 7, 32}, Case{20, 8}, Case{300, 17},
                       Case{40, 600}, Case{0, 5}}) {
    const auto n = static_cast<std::size_t>(c.rows * c.channels);
    auto x = random_values<float>(n, 5);
    if (n > 2) {
      x[0] = 0.0f;
      x[1] = std::numeric_limits<float>::quiet_NaN();
    }
    const auto dy = random_values<float>(n, 6);
    std::vector<float> y(n), dz(n, NAN), dz_ref(n, NAN);
    std::vector<float> db(static_cast<std::size_t>(c.channels), NAN), db_ref(db.size(), NAN);
    relu_forward(x.data(), y.data(), static_cast<int64_t>(n));
    relu_bias_backward(y.data(), dy.data(), dz.data(), db.data(), c.rows, c.channels);
    relu_bias_backward_reference(y.data(), dy.data(), dz_ref.data(), db_ref.data(), c.rows, c.channels);
    EXPECT_EQ(dz, dz_ref) << c.rows << "x" << c.channels;
    for (std::size_t j = 0; j < db.size(); ++j) {
      // Both sum in double (in another order), then round: at most one float ulp apart.
      EXPECT_NEAR(db[j], db_ref[j], 1e-6 * (1.0 + std::abs(db_ref[j]))) << c.rows << "x" << c.channels;
    }
    if (n > 2) {
      EXPECT_EQ(dz[0], 0.0f);  // y = 0: gradient 0
      EXPECT_EQ(dz[1], 0.0f);  // y = NaN: gradient 0, as relu_backward
    }
    std::vector<float> dz_only(n, NAN);
    relu_bias_backward(y.data(), dy.data(), dz_only.data(), static_cast<float*>(nullptr), c.rows, c.channels);
    EXPECT_EQ(dz_only, dz_ref);
    // In place (dz = dy), as ops::conv2d_relu runs it on a gradient nobody else holds.
    std::vector<float> in_place = dy, db_in_place(db.size(), NAN);
    relu_bias_backward(y.data(), in_place.data(), in_place.data(), db_in_place.data(), c.rows, c.channels);
    EXPECT_EQ(in_place, dz_ref);
    EXPECT_EQ(db_in_place, db);
  }
}

TEST(UnaryKernels, ReluBiasBackwardDoesNotDependOnThreads) {
  const int64_t rows = 12803, channels = 64;
  const auto n = static_cast<std::size_t>(rows * channels);
  const auto y = random_values<float>(n, 7);
  const auto dy = random_values<float>(n, 8, 1e3);
  std::vector<float> dz1(n), dz3(n), db1(channels), db3(channels);
  with_threads(1, [&] { relu_bias_backward(y.data(), dy.data(), dz1.data(), db1.data(), rows, channels); });
  with_threads(3, [&] { relu_bias_backward(y.data(), dy.data(), dz3.data(), db3.data(), rows, channels); });
  EXPECT_EQ(dz1, dz3);
  EXPECT_EQ(db1, db3);
}

TEST(UnaryKernels, SigmoidMatchesDoubleAcrossRange) {
  const auto x = random_values<float>(5000, 2, 30.0);
  std::vector<float> y(x.size());
  sigmoid_forward(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])));
    EXPECT_NEAR(y[i], want, 6e-7 * want + 1.5e-45) << "x = " << x[i];
  }
}

// Largest error of a float32 kernel against the double function ref, in units of the float
// spacing at the correctly rounded result, over every `stride`-th float bit pattern in [lo, hi].
// Runs the library's compiled kernel (built -march=native), not the header inline as built here.
template <class Ref>
double max_ulp_error(void (*kernel)(const float*, float*, int64_t), const Ref& ref, float lo, float hi,
                     uint32_t stride) {
  std::vector<float> xs;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += stride) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (x >= lo && x <= hi) xs.push_back(x);
  }
  std::vector<float> ys(xs.size());
  kernel(xs.data(), ys.data(), static_cast<int64_t>(xs.size()));
  double worst = 0.0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double want = ref(static_cast<double>(xs[i]));
    const float rounded = static_cast<float>(want);
    if (std::isinf(rounded)) {
      if (ys[i] != rounded) return INFINITY;
      continue;
    }
    const float mag = std::abs(rounded);
    const double spacing = static_cast<double>(std::nextafter(mag, INFINITY)) - mag;
    worst = std::max(worst, std::abs(static_cast<double>(ys[i]) - want) / spacing);
  }
  return worst;
}

TEST(SimdMath, ExpWithinOneUlpAcrossTheWholeRange) {
  // ~1M samples spread over every exponent, subnormal results and overflow included.
  const double ulps = max_ulp_error(exp_forward<float>, [](double x) { return std::exp(x); }, -110.0f, 95.0f, 4099);
  EXPECT_LE(ulps, 1.02);
}

TEST(SimdMath, ExpSpecialValues) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(simd_exp(0.0f), 1.0f);
  EXPECT_EQ(simd_exp(-0.0f), 1.0f);
  EXPECT_EQ(simd_exp(kInf), kInf);
  EXPECT_EQ(simd_exp(-kInf), 0.0f);
  EXPECT_TRUE(std::isnan(simd_exp(NAN)));
  EXPECT_EQ(simd_exp(88.72f), std::exp(88.72f));     // just below FLT_MAX
  EXPECT_EQ(simd_exp(88.73f), kInf);                 // overflow
  EXPECT_EQ(simd_exp(-103.97f), 0x1p-149f);          // the smallest subnormal
  EXPECT_EQ(simd_exp(-104.0f), 0.0f);
  EXPECT_EQ(simd_exp(-1000.0f), 0.0f);
  EXPECT_EQ(simd_exp(1.0), std::exp(1.0));           // float64 is libm's
}

TEST(SimdMath, TanhWithinOneAndAHalfUlp) {
  const double ulps = max_ulp_error(tanh_forward<float>, [](double x) { return std::tanh(x); }, -20.0f, 20.0f, 4099);
  EXPECT_LE(ulps, 1.5);
  EXPECT_TRUE(std::signbit(simd_tanh(-0.0f)));
  EXPECT_EQ(simd_tanh(1e-30f), 1e-30f);
  EXPECT_EQ(simd_tanh(std::numeric_limits<float>::infinity()), 1.0f);
  EXPECT_EQ(simd_tanh(-std::numeric_limits<float>::infinity()), -1.0f);
  EXPECT_TRUE(std::isnan(simd_tanh(NAN)));
}

TEST(CastKernels, SaturatingFloatToInt64) {
  // 2⁶³ itself is out of range; −2⁶³ is exactly INT64_MIN.
  const std::vector<float> x{NAN, 1e20f, -1e20f, 0x1p63f, -0x1p63f, -3.99f, 3.99f};
  std::vector<int64_t> y(x.size());
  cast_forward(x.data(), y.data(), static_cast<int64_t>(x.size()));
  constexpr auto kMax = std::numeric_limits<int64_t>::max();
  constexpr auto kMin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(y, (std::vector<int64_t>{0, kMax, kMin, kMax, kMin, -3, 3}));
}

// [outer, K, inner] layouts covering rows (inner = 1), a partial tile, exactly one tile, and
// several tiles with a remainder.
struct Layout {
  int64_t outer, K, inner;
};
const Layout kLayouts[] = {{7, 13, 1}, {3, 5, 3}, {2, 9, 64}, {4, 6, 130}, {1, 1, 1}, {40, 700, 1}, {9, 40, 70}};

TEST(SoftmaxKernels, ForwardMatchesReference) {
  for (const Layout& l : kLayouts) {
    const std::size_t n = static_cast<std::size_t>(l.outer * l.K * l.inner);
    const auto x = random_values<double>(n, 4);
    std::vector<double> fast(n), ref(n);
    softmax_forward(x.data(), fast.data(), l.outer, l.K, l.inner);
    softmax_reference(x.data(), ref.data(), l.outer, l.K, l.inner);
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(fast[i], ref[i], 1e-15) << l.outer << "x" << l.K << "x" << l.inner;
    log_softmax_forward(x.data(), fast.data(), l.outer, l.K, l.inner);
    log_softmax_reference(x.data(), ref.data(), l.outer, l.K, l.inner);
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(fast[i], ref[i], 1e-13) << l.outer << "x" << l.K << "x" << l.inner;
  }
}

TEST(SoftmaxKernels, Float32ForwardMatchesDoubleReference) {
  const Layout l{6, 50, 70};
  const std::size_t n = static_cast<std::size_t>(l.outer * l.K * l.inner);
  const auto x = random_values<float>(n, 5);
  std::vector<float> fast(n), ref(n);
  softmax_forward(x.data(), fast.data(), l.outer, l.K, l.inner);
  softmax_reference(x.data(), ref.data(), l.outer, l.K, l.inner);
  // float32 arithmetic rounds x − m to 2⁻²⁴ relative, which exp turns into an absolute error of
  // the exponent: |x − m| ≤ ~20 here, so the relative error stays below ~1.2e-6 plus a few ulps.
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(fast[i], ref[i], 2e-6 * ref[i] + 1e-30);
}

TEST(SoftmaxKernels, BackwardAddsClosedFormOnEveryLayout) {
  for (const Layout& l : kLayouts) {
    const std::size_t n = static_cast<std::size_t>(l.outer * l.K * l.inner);
    const auto x = random_values<double>(n, 6);
    const auto dy = random_values<double>(n, 7);
    std::vector<double> y(n), ly(n), dx(n, 1.0), ldx(n, 1.0);
    softmax_reference(x.data(), y.data(), l.outer, l.K, l.inner);
    log_softmax_reference(x.data(), ly.data(), l.outer, l.K, l.inner);
    softmax_backward(y.data(), dy.data(), dx.data(), l.outer, l.K, l.inner);
    log_softmax_backward(ly.data(), dy.data(), ldx.data(), l.outer, l.K, l.inner);
    for (int64_t o = 0; o < l.outer; ++o) {
      for (int64_t j = 0; j < l.inner; ++j) {
        auto at = [&](int64_t k) { return static_cast<std::size_t>((o * l.K + k) * l.inner + j); };
        double dot = 0.0, total = 0.0;
        for (int64_t k = 0; k < l.K; ++k) {
          dot += dy[at(k)] * y[at(k)];
          total += dy[at(k)];
        }
        for (int64_t k = 0; k < l.K; ++k) {
          EXPECT_NEAR(dx[at(k)], 1.0 + y[at(k)] * (dy[at(k)] - dot), 1e-13);
          EXPECT_NEAR(ldx[at(k)], 1.0 + dy[at(k)] - y[at(k)] * total, 1e-12);
        }
      }
    }
  }
}

TEST(SoftmaxKernels, CrossEntropyForwardAndBackward) {
  const int64_t N = 5, C = 4;
  const auto x = random_values<double>(static_cast<std::size_t>(N * C), 8);
  const std::vector<int64_t> labels{3, 0, 1, 1, 2};
  std::vector<double> lse(N), row(N), p(static_cast<std::size_t>(N * C));
  const double total = sparse_softmax_cross_entropy_forward(x.data(), labels.data(), N, C, lse.data(), row.data());
  softmax_reference(x.data(), p.data(), N, C, 1);
  double want = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    const double r = -std::log(p[static_cast<std::size_t>(n * C + labels[static_cast<std::size_t>(n)])]);
    EXPECT_NEAR(row[static_cast<std::size_t>(n)], r, 1e-14);
    want += r;
  }
  EXPECT_NEAR(total, want, 1e-13);
  std::vector<double> dx(static_cast<std::size_t>(N * C), 0.5);
  sparse_softmax_cross_entropy_backward(x.data(), labels.data(), lse.data(), 2.0, N, C, dx.data());
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const std::size_t i = static_cast<std::size_t>(n * C + c);
      const double onehot = c == labels[static_cast<std::size_t>(n)] ? 1.0 : 0.0;
      EXPECT_NEAR(dx[i], 0.5 + 2.0 * (p[i] - onehot), 1e-15);
    }
  }
}

TEST(EmbeddingKernels, BackwardEqualsReferenceForAnyThreadCount) {
  const int64_t n = 3000, V = 11, D = 48;  // n·D past the grain
  std::vector<int64_t> idx(static_cast<std::size_t>(n));
  detail::Rng rng(9);
  for (auto& i : idx) i = static_cast<int64_t>(rng.below(V));
  const auto dy = random_values<float>(static_cast<std::size_t>(n * D), 10);
  std::vector<float> ref(static_cast<std::size_t>(V * D), 1.0f), two(ref), three(ref);
  embedding_backward_reference(idx.data(), dy.data(), n, D, ref.data());
  with_threads(2, [&] { embedding_backward(idx.data(), dy.data(), n, D, two.data()); });
  with_threads(3, [&] { embedding_backward(idx.data(), dy.data(), n, D, three.data()); });
  EXPECT_EQ(two, ref);
  EXPECT_EQ(three, ref);
}

TEST(EmbeddingKernels, ForwardCopiesRows) {
  const std::vector<double> table{1, 2, 3, 4, 5, 6};  // [3, 2]
  const std::vector<int64_t> idx{2, 2, 0};
  std::vector<double> y(6);
  embedding_forward(table.data(), idx.data(), 3, 2, y.data());
  EXPECT_EQ(y, (std::vector<double>{5, 6, 5, 6, 1, 2}));
}

}  // namespace
}  // namespace normnet::kernels::cpu

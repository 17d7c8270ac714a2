// Our packed AVX-512 SGEMM (sgemm.h) against matmul_reference on shapes that reach every edge
// path (rows and columns short of a 14×32 tile, K short of and across a 256 block, transposes,
// bias), the same bits on every call and thread count, and the products matmul_forward routes to it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/sgemm.h"

namespace normnet::kernels::cpu {
namespace {

MatmulDims dims(int64_t m, int64_t k, int64_t n, bool ta, bool tb) {
  return {.m = m, .k = k, .n = n, .transpose_a = ta, .transpose_b = tb};
}

using MatmulFn = void (*)(const float*, const float*, const float*, float*, const MatmulDims&);

struct Operands {
  std::vector<float> a, b, bias;
};

Operands operands(const MatmulDims& d) {
  return {random_values<float>(d.m * d.k, 1, 1.0), random_values<float>(d.k * d.n, 2, 1.0),
          random_values<float>(d.n, 3, 1.0)};
}

std::vector<float> absolute(std::vector<float> v) {
  for (float& x : v) x = std::abs(x);
  return v;
}

// How far rows [row0, row0 + rows) of c = fn(...) lie from the exact result, as a fraction of the
// bound that any order of float32 sums must meet (Higham, "Accuracy and Stability of Numerical
// Algorithms", §3.1): |fl(bias + Σ_k a_k·b_k) − exact| ≤ γ_{K+1}·(|bias| + Σ_k |a_k·b_k|),
// γ_n ≈ n·2⁻²⁴, plus one rounding of the double reference. At K ≈ 1000 the float32 rounding of
// any summation (oneDNN's too) exceeds 1e-5 of 1 + |c| on some elements, so the bound scales
// with K and the magnitudes; losing one product or one K block typically exceeds it many times.
double rows_error_over_bound(const std::vector<float>& c, const MatmulDims& d, const Operands& x, bool with_bias,
                             int64_t row0, int64_t rows) {
  MatmulDims sub = d;  // the rows' own product: a row range of an untransposed a is contiguous
  sub.m = rows;
  const int64_t offset = row0 * d.k;
  const auto abs_a = absolute(x.a), abs_b = absolute(x.b), abs_bias = absolute(x.bias);
  std::vector<float> exact(rows * d.n, NAN), magnitude(rows * d.n, NAN);
  matmul_reference(x.a.data() + offset, x.b.data(), with_bias ? x.bias.data() : nullptr, exact.data(), sub);
  matmul_reference(abs_a.data() + offset, abs_b.data(), with_bias ? abs_bias.data() : nullptr, magnitude.data(), sub);
  const double unit = std::ldexp(1.0, -24), gamma = (d.k + 1) * unit / (1 - (d.k + 1) * unit);
  double worst = 0.0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    const double fast = c[row0 * d.n + i], bound = gamma * magnitude[i] + unit * std::abs(exact[i]) + 1e-30;
    const double ratio = std::abs(fast - exact[i]) / bound;
    if (std::isnan(ratio)) return INFINITY;
    worst = std::max(worst, ratio);
  }
  return worst;
}

// Checks every row, or for a large untransposed a the first and last `sampled` rows (the
// reference loop is slow): the last ones reach the edge tiles.
void expect_matches_reference(MatmulFn fn, const MatmulDims& d, bool with_bias, int64_t sampled = 0) {
  const Operands x = operands(d);
  std::vector<float> c(d.m * d.n, NAN);
  fn(x.a.data(), x.b.data(), with_bias ? x.bias.data() : nullptr, c.data(), d);
  const bool sample = sampled > 0 && !d.transpose_a && 2 * sampled < d.m;  // else rows 0..M: offset 0
  double worst = rows_error_over_bound(c, d, x, with_bias, 0, sample ? sampled : d.m);
  if (sample) worst = std::max(worst, rows_error_over_bound(c, d, x, with_bias, d.m - sampled, sampled));
  EXPECT_LT(worst, 1.0) << "m " << d.m << " k " << d.k << " n " << d.n << " ta " << d.transpose_a << " tb "
                        << d.transpose_b << " bias " << with_bias;
}

class Sgemm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sgemm_available()) GTEST_SKIP() << "built without AVX-512: every product runs on oneDNN";
  }
};

TEST_F(Sgemm, MatchesReferenceOnEdgeShapes) {
  // (M, K, N): a single element, K = 1, rows and columns short of a tile, exactly one tile, K
  // across one and two 256 blocks, N across a 2048 column block, a row block of 336 and a rest.
  const int64_t shapes[][3] = {{1, 1, 1},    {1, 7, 1},     {5, 1, 9},      {14, 256, 32}, {13, 255, 31},
                               {15, 257, 33}, {29, 513, 65}, {37, 53, 19},  {3, 40, 2100}, {341, 300, 45},
                               {700, 17, 70}, {2, 600, 1}};
  for (const auto& s : shapes) {
    for (int t = 0; t < 4; ++t) {
      const MatmulDims d = dims(s[0], s[1], s[2], t & 1, t & 2);
      expect_matches_reference(sgemm_forward, d, t % 2 == 0);
      expect_matches_reference(sgemm_forward, d, t % 2 == 1);
    }
  }
}

TEST_F(Sgemm, MatchesReferenceAt1024) {
  expect_matches_reference(sgemm_forward, dims(1024, 1024, 1024, false, false), true, 40);
  expect_matches_reference(sgemm_forward, dims(1030, 1100, 1027, false, true), false, 40);
  expect_matches_reference(sgemm_forward, dims(300, 1100, 270, true, true), false);
}

// Writes c in full: nothing of what was there before survives, with or without a bias.
TEST_F(Sgemm, OverwritesTheResult) {
  const MatmulDims d = dims(20, 300, 40, false, false);
  const Operands x = operands(d);
  std::vector<float> clean(d.m * d.n, 0.0f), dirty(d.m * d.n, 1e30f);
  sgemm_forward(x.a.data(), x.b.data(), nullptr, clean.data(), d);
  sgemm_forward(x.a.data(), x.b.data(), nullptr, dirty.data(), d);
  EXPECT_EQ(clean, dirty);
}

TEST_F(Sgemm, SameBitsOnEveryCallAndThreadCount) {
  for (const MatmulDims& d : {dims(1024, 1024, 1024, false, false), dims(30, 700, 3000, false, true),
                              dims(517, 600, 77, true, false)}) {
    const Operands x = operands(d);
    std::vector<float> first(d.m * d.n, NAN);
    with_threads(1, [&] { sgemm_forward(x.a.data(), x.b.data(), x.bias.data(), first.data(), d); });
    for (int threads : {1, 2, 3}) {
      for (int call = 0; call < 2; ++call) {
        std::vector<float> c(d.m * d.n, NAN);
        with_threads(threads, [&] { sgemm_forward(x.a.data(), x.b.data(), x.bias.data(), c.data(), d); });
        EXPECT_EQ(c, first) << "m " << d.m << ", " << threads << " thread(s), call " << call;
      }
    }
  }
}

// The routed path: matmul_forward on the shapes it sends to sgemm_forward gives sgemm_forward's bits.
TEST_F(Sgemm, MatmulForwardRoutesLargeProductsHere) {
  for (const MatmulDims& d : {dims(1024, 1024, 1024, false, false), dims(1100, 300, 700, true, false)}) {
    const Operands x = operands(d);
    std::vector<float> routed(d.m * d.n, NAN), own(d.m * d.n, NAN);
    matmul_forward(x.a.data(), x.b.data(), x.bias.data(), routed.data(), d);
    sgemm_forward(x.a.data(), x.b.data(), x.bias.data(), own.data(), d);
    EXPECT_EQ(routed, own) << "m " << d.m;
    expect_matches_reference(matmul_forward, d, true, 40);
  }
}

}  // namespace
}  // namespace normnet::kernels::cpu

// The packed AVX2 matrix product (kernels/cpu/matmul_packed.h): the same bits as a scalar
// emulation of its summation order on edge shapes, transposes and biases, split by rows or by
// columns; the same bits on one and two threads; within the K·u·Σ|terms| bound of the double-precision twin;
// and matmul_forward's routing (large products in builds without AVX-512 take it, and give its bits).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_packed.h"

namespace normnet::kernels::cpu {
namespace {

struct Case {
  int64_t m, k, n;
  bool ta, tb, bias;
};

// Random a, b and bias for a case (seeds seed, seed + 1, seed + 2); `bias()` is null without one.
struct Operands {
  std::vector<float> a, b, bias_values;
  bool with_bias;
  Operands(const Case& s, uint64_t seed)
      : a(random_values<float>(static_cast<std::size_t>(s.m * s.k), seed)),
        b(random_values<float>(static_cast<std::size_t>(s.k * s.n), seed + 1)),
        bias_values(random_values<float>(static_cast<std::size_t>(s.n), seed + 2)),
        with_bias(s.bias) {}
  const float* bias() const { return with_bias ? bias_values.data() : nullptr; }
};

// c[i, j] = bias[j] (or 0), then for each block of kMatmulPackedBlockK values of k: a chain of
// fused multiply-adds from 0 in k order, added to c. Storage as matmul_packed_forward's.
std::vector<float> emulate(const Case& s, const std::vector<float>& a, const std::vector<float>& b,
                           const float* bias) {
  std::vector<float> c(static_cast<std::size_t>(s.m * s.n));
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      float sum = bias ? bias[j] : 0.0f;
      for (int64_t p0 = 0; p0 < s.k; p0 += kMatmulPackedBlockK) {
        float block = 0.0f;
        for (int64_t p = p0; p < std::min(s.k, p0 + kMatmulPackedBlockK); ++p) {
          const float aip = s.ta ? a[p * s.m + i] : a[i * s.k + p];
          const float bpj = s.tb ? b[j * s.k + p] : b[p * s.n + j];
          block = std::fma(aip, bpj, block);
        }
        sum += block;
      }
      c[i * s.n + j] = sum;
    }
  }
  return c;
}

std::vector<float> packed(const Case& s, const std::vector<float>& a, const std::vector<float>& b,
                          const float* bias, MatmulPackedSplit split = MatmulPackedSplit::kAuto) {
  std::vector<float> c(static_cast<std::size_t>(s.m * s.n), NAN);
  matmul_packed_forward(a.data(), b.data(), bias, c.data(), s.m, s.k, s.n, s.ta, s.tb, split);
  return c;
}

constexpr MatmulPackedSplit kSplits[] = {MatmulPackedSplit::kAuto, MatmulPackedSplit::kRows,
                                         MatmulPackedSplit::kColumns};

// Tile edges (M mod 6, N mod 16), k across blocks (257, 600), a single row or column, every
// combination of transposes, with and without a bias.
const Case kCases[] = {
    {1, 1, 1, false, false, true},     {5, 7, 3, false, false, false},     {6, 16, 16, false, false, true},
    {7, 17, 17, true, false, true},    {13, 257, 33, false, true, false},  {12, 600, 32, true, true, true},
    {61, 300, 70, false, false, true}, {100, 9, 1, true, false, false},    {1, 64, 200, false, true, true},
    {150, 513, 45, true, true, false}, {97, 256, 129, false, false, false}};

TEST(MatmulPacked, SameBitsAsItsSummationOrder) {
  if (!matmul_packed_supported()) GTEST_SKIP() << "built without AVX2 and FMA: no packed kernel";
  for (const Case& s : kCases) {
    const Operands o(s, 1);
    const auto expected = emulate(s, o.a, o.b, o.bias());
    for (const MatmulPackedSplit split : kSplits) {
      EXPECT_EQ(packed(s, o.a, o.b, o.bias(), split), expected)
          << "m " << s.m << " k " << s.k << " n " << s.n << " ta " << s.ta << " tb " << s.tb << " split "
          << static_cast<int>(split);
    }
  }
}

TEST(MatmulPacked, WithinRoundingOfTheReference) {
  if (!matmul_packed_supported()) GTEST_SKIP() << "built without AVX2 and FMA: no packed kernel";
  for (const Case& s : kCases) {
    const Operands o(s, 4);
    MatmulDims d;
    d.m = s.m, d.k = s.k, d.n = s.n, d.transpose_a = s.ta, d.transpose_b = s.tb;
    std::vector<float> exact(static_cast<std::size_t>(s.m * s.n)), abs_exact = exact;
    matmul_reference(o.a.data(), o.b.data(), o.bias(), exact.data(), d);
    const auto abs_bias = abs_of(o.bias_values);
    matmul_reference(abs_of(o.a).data(), abs_of(o.b).data(), s.bias ? abs_bias.data() : nullptr,
                     abs_exact.data(), d);
    const double ratio = error_over_bound(packed(s, o.a, o.b, o.bias()), exact, abs_exact, s.k + 1);
    EXPECT_LE(ratio, 1.0) << "m " << s.m << " k " << s.k << " n " << s.n;
    if (s.m * s.n >= 100) {
      EXPECT_GT(ratio, 0.0) << "no rounding at all: compared with itself?";
    }
  }
}

// An Inf or NaN reaches exactly the outputs whose sums contain it (the zero padding of the edge
// tiles never meets it: 0·Inf would make NaN, but only in padding that is not copied out).
TEST(MatmulPacked, NonFiniteValuesReachOnlyTheirRowsAndColumns) {
  if (!matmul_packed_supported()) GTEST_SKIP() << "built without AVX2 and FMA: no packed kernel";
  const Case s{13, 20, 21, false, false, true};  // edge tiles on both axes
  Operands o(s, 13);
  o.a[2 * s.k + 5] = INFINITY;  // row 2 of a
  o.b[7 * s.n + 20] = NAN;      // column 20 of b (the last, in an edge tile)
  const auto c = packed(s, o.a, o.b, o.bias()), expected = emulate(s, o.a, o.b, o.bias());
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      const float got = c[i * s.n + j], want = expected[i * s.n + j];
      if (j == 20) {
        EXPECT_TRUE(std::isnan(got)) << i << ", " << j;
      } else if (i == 2) {
        EXPECT_TRUE(std::isinf(got) || std::isnan(got)) << i << ", " << j;
        EXPECT_EQ(std::isnan(got), std::isnan(want)) << i << ", " << j;
      } else {
        EXPECT_EQ(got, want) << i << ", " << j;
        EXPECT_TRUE(std::isfinite(got)) << i << ", " << j;
      }
    }
  }
}

TEST(MatmulPacked, SameBitsOnOneAndTwoThreads) {
  if (!matmul_packed_supported()) GTEST_SKIP() << "built without AVX2 and FMA: no packed kernel";
  // Large enough for two threads (M·K·N ≥ 2^20), with edges, blocks of k and both transposes;
  // both splits on each.
  const Case cases[] = {{203, 300, 77, false, false, true},
                        {130, 520, 100, true, true, false},
                        {300, 100, 90, true, false, true}};
  for (const Case& s : cases) {
    const Operands o(s, 7);
    const auto expected = emulate(s, o.a, o.b, o.bias());
    for (const MatmulPackedSplit split : kSplits) {
      std::vector<float> one, two;
      with_threads(1, [&] { one = packed(s, o.a, o.b, o.bias(), split); });
      with_threads(2, [&] { two = packed(s, o.a, o.b, o.bias(), split); });
      EXPECT_EQ(one, two) << "m " << s.m << " k " << s.k << " n " << s.n << " split "
                          << static_cast<int>(split);
      EXPECT_EQ(two, expected) << "m " << s.m << " k " << s.k << " n " << s.n;
    }
  }
}

TEST(MatmulPacked, LargeProductsRouteHereWithoutAvx512) {
  MatmulDims large;
  large.m = 300, large.k = 200, large.n = 100;  // M·K·N = 6·10^6 ≥ 2^22
  MatmulDims long_k = large;
  long_k.k = 2000;  // K > 4·max(M, N): oneDNN
  MatmulDims small = large;
  small.m = 128;  // M < 256 with N < 1024
  MatmulDims short_m = large;
  short_m.m = 64, short_m.n = 4096;  // M < 128
  MatmulDims wide = large;
  wide.m = 128, wide.n = 2048;  // 128 ≤ M < 256, N ≥ 1024: split by columns
  EXPECT_FALSE(matmul_forward_runs_packed(long_k));
  EXPECT_FALSE(matmul_forward_runs_packed(small));
  EXPECT_FALSE(matmul_forward_runs_packed(short_m));
  EXPECT_EQ(matmul_forward_runs_packed(wide), matmul_forward_runs_packed(large));
  // The library's own flags decide (-march=native), not this file's.
  if (matmul_built_for_avx512()) {
    EXPECT_FALSE(matmul_forward_runs_packed(large)) << "AVX-512 builds keep oneDNN's brgemm";
  } else {
    EXPECT_EQ(matmul_forward_runs_packed(large), matmul_packed_supported());
  }
  // A batch of a folded into rows ([3, 100, 200]·[200, 100]) is one large product too.
  MatmulDims batched = large;
  batched.batch_rank = 1;
  batched.a_batch[0] = 3, batched.b_batch[0] = 1, batched.m = 100;
  EXPECT_EQ(matmul_forward_runs_packed(batched), matmul_forward_runs_packed(large));
  if (!matmul_forward_runs_packed(large)) return;
  const Case s{300, 200, 100, false, true, true};
  const Operands o(s, 10);
  large.transpose_b = true;
  std::vector<float> c(300 * 100, NAN);
  matmul_forward(o.a.data(), o.b.data(), o.bias(), c.data(), large);
  EXPECT_EQ(c, packed(s, o.a, o.b, o.bias()));
}

}  // namespace
}  // namespace normnet::kernels::cpu

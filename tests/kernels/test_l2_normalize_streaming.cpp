// Non-temporal ("streaming") stores in the float32 row kernels of L2 normalization
// (kernels/cpu/l2_normalize_rows.h): the same bits as ordinary stores, in the kernels directly on
// every row length and through l2_normalize_forward / _backward on a tensor large enough to stream.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/l2_normalize.h"
#include "kernels/cpu/l2_normalize_rows.h"

namespace normnet::kernels::cpu {
namespace {

// count floats aligned to 64 bytes (std::vector's large blocks sit 16 bytes past a page).
struct AlignedFloats {
  std::unique_ptr<float, decltype(&std::free)> p;
  explicit AlignedFloats(std::size_t count)
      : p(static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64)), &std::free) {}
  float* data() const { return p.get(); }
};

// rows × n values, with a zero row, a huge one and a tiny one among them (the general path).
void fill_rows(float* x, int64_t rows, int64_t n, uint64_t seed) {
  const auto v = random_values<float>(static_cast<std::size_t>(rows * n), seed);
  std::copy(v.begin(), v.end(), x);
  for (int64_t r = 0; r < n; ++r) {
    x[1 * n + r] = 0.0f;
    x[2 * n + r] *= 1e30f;
    x[3 * n + r] *= 1e-30f;
  }
}

// An l2_rows::Rest that sets bit `row` of *bits for each row the kernels leave.
struct RowBits {
  static l2_rows::Rest rest(unsigned& bits) {
    return {[](void* ctx, int64_t row) { *static_cast<unsigned*>(ctx) |= 1u << row; }, &bits};
  }
};

TEST(L2NormalizeStreaming, RowKernelsWriteTheSameBits) {
  if (!l2_rows::streams_available())
    GTEST_SKIP() << "this build does not stream (AVX2 and AVX-512 builds do)";
  for (const int64_t n : {8, 16, 32, 64, 72, 200}) {
    SCOPED_TRACE(::testing::Message() << "n = " << n);
    const int rows = l2_rows::kGroup;
    AlignedFloats x(rows * n), dy(rows * n), y0(rows * n), y1(rows * n), dx0(rows * n), dx1(rows * n);
    fill_rows(x.data(), rows, n, 1);
    fill_rows(dy.data(), rows, n, 2);
    ASSERT_TRUE(l2_rows::stream_aligned(y1.data(), n));
    double d0[l2_rows::kGroup], d1[l2_rows::kGroup];
    unsigned left0 = 0, left1 = 0;
    l2_rows::exact_forward(x.data(), y0.data(), d0, rows, n, false, RowBits::rest(left0));
    l2_rows::exact_forward(x.data(), y1.data(), d1, rows, n, true, RowBits::rest(left1));
    l2_rows::stream_fence();
    ASSERT_EQ(left0, left1);
    EXPECT_EQ(left0, 6u) << "the zero row and the one of norm above 2^100 are left to the general loop";
    for (int g = 0; g < rows; ++g) {
      if ((left0 >> g) & 1u) continue;
      EXPECT_EQ(d0[g], d1[g]) << "row " << g;
      for (int64_t r = 0; r < n; ++r) ASSERT_EQ(y0.data()[g * n + r], y1.data()[g * n + r]) << "row " << g;
    }
    d0[1] = d1[1] = 0.0;  // the zero row's denominator, as the general loop would give
    unsigned back0 = 0, back1 = 0;
    l2_rows::backward(x.data(), dy.data(), d0, dx0.data(), rows, n, EpsilonMode::kExact, true, false,
                      RowBits::rest(back0));
    l2_rows::backward(x.data(), dy.data(), d1, dx1.data(), rows, n, EpsilonMode::kExact, true, true,
                      RowBits::rest(back1));
    l2_rows::stream_fence();
    ASSERT_EQ(back0, back1);
    for (int g = 0; g < rows; ++g) {
      if ((back0 >> g) & 1u) continue;
      for (int64_t r = 0; r < n; ++r) ASSERT_EQ(dx0.data()[g * n + r], dx1.data()[g * n + r]) << "row " << g;
    }
  }
}

// 65,536 rows of 64: x and y are 16 MiB each, together kStreamBytes, so the forward and the
// overwriting backward stream (in AVX2 builds). Each group of eight rows must equal what a call
// on those rows alone (too small to stream) gives.
TEST(L2NormalizeStreaming, LargeTensorsGiveWhatSmallCallsGive) {
  constexpr int64_t kRows = 65536, kN = 64;
  ASSERT_GE(2 * kRows * kN * int64_t{sizeof(float)}, l2_rows::kStreamBytes);
  AlignedFloats x(kRows * kN), dy(kRows * kN), y(kRows * kN), dx(kRows * kN);
  if (l2_rows::streams_available()) {
    ASSERT_TRUE(l2_rows::stream_aligned(y.data(), kN) && l2_rows::stream_aligned(dx.data(), kN));
  }
  fill_rows(x.data(), kRows, kN, 3);
  fill_rows(dy.data(), kRows, kN, 4);
  std::vector<double> denom(kRows);
  l2_normalize_forward(x.data(), y.data(), denom.data(), kRows, kN, 1, EpsilonMode::kExact, 0.0);
  l2_normalize_backward(x.data(), dy.data(), denom.data(), dx.data(), kRows, kN, 1, EpsilonMode::kExact,
                        true);
  std::vector<float> y8(8 * kN), dx8(8 * kN);
  double d8[8];
  for (int64_t o = 0; o < kRows; o += 8) {
    l2_normalize_forward(x.data() + o * kN, y8.data(), d8, 8, kN, 1, EpsilonMode::kExact, 0.0);
    l2_normalize_backward(x.data() + o * kN, dy.data() + o * kN, d8, dx8.data(), 8, kN, 1,
                          EpsilonMode::kExact, true);
    for (int64_t j = 0; j < 8 * kN; ++j) {
      ASSERT_EQ(y.data()[o * kN + j], y8[j]) << "row " << o + j / kN;
      ASSERT_EQ(dx.data()[o * kN + j], dx8[j]) << "row " << o + j / kN;
    }
  }
  EXPECT_EQ(y.data()[kN], 0.0f) << "the zero row";
  EXPECT_NEAR(std::abs(y.data()[2 * kN]), std::abs(x.data()[2 * kN]) / float(denom[2]), 1e-6f);
}

}  // namespace
}  // namespace normnet::kernels::cpu

// The fused and strided L2-normalization kernels against their naive twin (long double exact
// mode, sequential sums), over every layout path: rows, long rows, inner blocks, gathered vectors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/random.h"
#include "kernels/cpu/l2_normalize.h"
#include "normnet/threading.h"

namespace normnet {
namespace {

using kernels::cpu::l2_normalize_backward;
using kernels::cpu::l2_normalize_backward_reference;
using kernels::cpu::l2_normalize_backward_strided;
using kernels::cpu::l2_normalize_forward;
using kernels::cpu::l2_normalize_forward_reference;
using kernels::cpu::l2_normalize_forward_strided;

constexpr EpsilonMode kModes[] = {EpsilonMode::kExact, EpsilonMode::kTensorFlow, EpsilonMode::kPyTorch,
                                  EpsilonMode::kAdditive};

// A problem in both forms: (O, R, I) and the equivalent base/offset lists.
struct Problem {
  int64_t outer, reduced, inner;
  std::vector<int64_t> bases, offsets;
  int64_t numel() const { return outer * reduced * inner; }
};

Problem fused_problem(int64_t outer, int64_t reduced, int64_t inner) {
  Problem p{outer, reduced, inner, {}, {}};
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) p.bases.push_back(o * reduced * inner + i);
  for (int64_t r = 0; r < reduced; ++r) p.offsets.push_back(r * inner);
  return p;
}

// Vector k is scaled by scales[k % size] (0 makes a zero vector).
template <class T>
std::vector<T> vector_data(const Problem& p, const std::vector<double>& scales, uint64_t seed) {
  detail::Rng rng(seed);
  std::vector<T> x(p.numel());
  for (std::size_t k = 0; k < p.bases.size(); ++k) {
    for (int64_t off : p.offsets)
      x[p.bases[k] + off] = static_cast<T>(rng.normal() * scales[k % scales.size()]);
  }
  return x;
}

template <class T>
std::vector<T> random_data(int64_t n, uint64_t seed) {
  detail::Rng rng(seed);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(rng.normal());
  return v;
}

// Within each vector k: |a − b| <= rtol·(|b| + max_k|b|), equal infinities allowed, NaN only where
// b is NaN. (The vector's largest value bounds the cancellation error of dy − y·⟨dy, y⟩.)
template <class T>
::testing::AssertionResult all_close(const std::vector<T>& a, const std::vector<T>& b, const Problem& p,
                                     double rtol) {
  for (int64_t base : p.bases) {
    double scale = 0.0;
    for (int64_t off : p.offsets) {
      if (std::isfinite(b[base + off])) scale = std::max(scale, std::abs(static_cast<double>(b[base + off])));
    }
    for (int64_t off : p.offsets) {
      const std::size_t j = base + off;
      if (a[j] == b[j] || (std::isnan(a[j]) && std::isnan(b[j]))) continue;
      const double err = std::abs(static_cast<double>(a[j]) - static_cast<double>(b[j]));
      if (!(err <= rtol * (std::abs(static_cast<double>(b[j])) + scale))) {
        return ::testing::AssertionFailure() << "element " << j << ": " << a[j] << " vs reference " << b[j]
                                             << " (rtol " << rtol << ", vector scale " << scale << ")";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// Compatibility modes in float32 sum in float in a different order than the reference.
template <class T>
double tolerance(EpsilonMode mode) {
  if (sizeof(T) == 8) return 1e-14;
  return mode == EpsilonMode::kExact ? 1.5e-7 : 1e-5;
}

// Runs fused (or strided) forward and backward and the reference on the same data, then checks
// that a second backward adds into dx.
template <class T>
void check_against_reference(const Problem& p, bool strided, const std::vector<double>& scales,
                             EpsilonMode mode, double eps = 1e-12) {
  SCOPED_TRACE(::testing::Message() << "O=" << p.outer << " R=" << p.reduced << " I=" << p.inner
                                    << (strided ? " strided" : " fused") << " mode "
                                    << epsilon_mode_name(mode) << " "
                                    << (sizeof(T) == 4 ? "float32" : "float64"));
  const std::vector<T> x = vector_data<T>(p, scales, 7);
  const std::vector<T> dy = random_data<T>(p.numel(), 8);
  const int64_t count = static_cast<int64_t>(p.bases.size());
  std::vector<T> y(p.numel()), y_ref(p.numel());
  std::vector<double> denom(count);
  if (strided) {
    l2_normalize_forward_strided(x.data(), y.data(), denom.data(), p.bases.data(), count, p.offsets.data(),
                                 p.reduced, mode, eps);
  } else {
    l2_normalize_forward(x.data(), y.data(), denom.data(), p.outer, p.reduced, p.inner, mode, eps);
  }
  l2_normalize_forward_reference(x.data(), y_ref.data(), p.bases.data(), count, p.offsets.data(), p.reduced,
                                 mode, eps);
  EXPECT_TRUE(all_close(y, y_ref, p, tolerance<T>(mode)));

  std::vector<T> dx(p.numel(), T(0)), dx_ref(p.numel(), T(0));
  const auto backward = [&] {
    if (strided) {
      l2_normalize_backward_strided(x.data(), dy.data(), denom.data(), dx.data(), p.bases.data(), count,
                                    p.offsets.data(), p.reduced, mode);
    } else {
      l2_normalize_backward(x.data(), dy.data(), denom.data(), dx.data(), p.outer, p.reduced, p.inner, mode);
    }
  };
  backward();
  l2_normalize_backward_reference(x.data(), dy.data(), dx_ref.data(), p.bases.data(), count, p.offsets.data(),
                                  p.reduced, mode, eps);
  EXPECT_TRUE(all_close(dx, dx_ref, p, 10 * tolerance<T>(mode)));
  // A second backward adds: g + g is exact in floating point, so dx must be exactly 2g.
  const std::vector<T> once = dx;
  backward();
  for (std::size_t j = 0; j < dx.size(); ++j) {
    if (std::isnan(once[j])) continue;
    ASSERT_EQ(dx[j], once[j] + once[j]) << "element " << j;
  }
}

// Ordinary, clamped-in-TF (1e-8), clamped-in-PyTorch (1e-14) and zero vectors.
const std::vector<double> kMixedScales = {1.0, 1e-3, 1e-8, 1e-14, 0.0, 3.0};

TEST(L2NormalizeKernels, RowsMatchReference) {
  for (EpsilonMode mode : kModes) {
    check_against_reference<float>(fused_problem(12, 37, 1), false, kMixedScales, mode);
    check_against_reference<double>(fused_problem(12, 37, 1), false, kMixedScales, mode);
    check_against_reference<float>(fused_problem(64, 1100, 1), false, kMixedScales, mode);  // parallel rows
  }
}

// Short float32 rows (on AVX-512 and AVX2 the one-lane-per-row kernels of l2_normalize_rows.h): lengths
// around the 16-float vector and its masked tail, 32 and 64 (the unrolled copies); 27 rows (three
// groups of eight and a tail), in every group ordinary rows beside rows that the fast formulas
// leave to the general loop: zero, components of 1e-42 (subnormal: 1/‖v‖ overflows float), norms
// of 1e-20, 1e30 and 3e37.
TEST(L2NormalizeKernels, ShortRowsMixingEveryScaleMatchReference) {
  const std::vector<double> scales = {1.0, 1e-20, 0.0, 1e-42, 1e30, 3e37, 1e-3, 7.0, 1e-8, 1e-14, 2.0};
  for (EpsilonMode mode : kModes) {
    for (int64_t n : {2, 3, 15, 16, 17, 32, 64, 100}) {
      check_against_reference<float>(fused_problem(27, n, 1), false, scales, mode);
    }
  }
}

// Rows of one element: y = sign(v) exactly, and the gradient, mathematically 0, is dy·a − v·b
// with a = 1/|v| and b = a²·⟨dy, y⟩·... rounded to float: within a few float ulps of |dy|/|v|
// (the precision the float form of the backward promises), where the reference gives exactly 0.
TEST(L2NormalizeKernels, OneElementRowsGiveTheSignAndANearZeroGradient) {
  const Problem p = fused_problem(11, 1, 1);
  const std::vector<float> x = vector_data<float>(p, {1.0, 1e-20, 1e30, 3.0, 1e-3}, 31);
  const std::vector<float> dy = random_data<float>(11, 32);
  std::vector<float> y(11), dx(11, 0.0f);
  std::vector<double> denom(11);
  l2_normalize_forward(x.data(), y.data(), denom.data(), 11, 1, 1, EpsilonMode::kExact, 0.0);
  l2_normalize_backward(x.data(), dy.data(), denom.data(), dx.data(), 11, 1, 1, EpsilonMode::kExact);
  for (int j = 0; j < 11; ++j) {
    EXPECT_EQ(y[j], x[j] > 0 ? 1.0f : -1.0f) << j;
    EXPECT_LE(std::abs(dx[j]), 0x1p-22 * std::abs(dy[j]) / std::abs(x[j])) << j;
  }
}

TEST(L2NormalizeKernels, LongRowsSplitAcrossThreadsMatchReference) {
  for (EpsilonMode mode : kModes) {
    check_against_reference<float>(fused_problem(2, 70001, 1), false, {1.0, 1e-9}, mode);
    check_against_reference<double>(fused_problem(1, 40000, 1), false, {2.0}, mode);
  }
}

TEST(L2NormalizeKernels, InnerBlocksMatchReference) {
  for (EpsilonMode mode : kModes) {
    check_against_reference<float>(fused_problem(6, 9, 40), false, kMixedScales, mode);  // narrow blocks
    check_against_reference<float>(fused_problem(6, 9, 70), false, kMixedScales, mode);  // a partial wide one
    check_against_reference<float>(fused_problem(3, 7, 1100), false, kMixedScales, mode);  // 512 + 512 + 76
    check_against_reference<double>(fused_problem(6, 5, 3), false, kMixedScales, mode);
    check_against_reference<float>(fused_problem(2, 300, 130), false, kMixedScales, mode);  // parallel blocks
  }
}

TEST(L2NormalizeKernels, GatheredVectorsMatchReference) {
  // Axes {0, 2} of a [4, 5, 6] tensor: vector j has elements (i, j, k).
  Problem p{0, 24, 0, {}, {}};
  for (int64_t j = 0; j < 5; ++j) p.bases.push_back(j * 6);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t k = 0; k < 6; ++k) p.offsets.push_back(i * 30 + k);
  p.outer = 1, p.inner = 5;  // numel() = 120
  for (EpsilonMode mode : kModes) {
    check_against_reference<float>(p, true, kMixedScales, mode);
    check_against_reference<double>(p, true, kMixedScales, mode);
  }
}

// Exact mode, float64: rescaling keeps every scale exact, subnormal to DBL_MAX, where a plain sum
// of squares would under- or overflow. The reference works in long double.
TEST(L2NormalizeKernels, ExactFloat64AtExtremeScalesMatchesLongDouble) {
  const std::vector<double> scales = {1e-320, 1e-310, 1e-200, 1e-160, 1.0, 1e160, 1e200, 1e300};
  check_against_reference<double>(fused_problem(8, 20, 1), false, scales, EpsilonMode::kExact);
  check_against_reference<double>(fused_problem(8, 20, 3), false, scales, EpsilonMode::kExact);
  check_against_reference<double>(fused_problem(8, 40000, 1), false, scales, EpsilonMode::kExact);
  // One component at DBL_MAX: ‖v‖ itself overflows, y must not.
  std::vector<double> x = {std::numeric_limits<double>::max(), std::numeric_limits<double>::max()}, y(2);
  double d = 0;
  l2_normalize_forward(x.data(), y.data(), &d, 1, 2, 1, EpsilonMode::kExact, 0.0);
  EXPECT_DOUBLE_EQ(y[0], std::sqrt(0.5));
  EXPECT_DOUBLE_EQ(y[1], std::sqrt(0.5));
}

TEST(L2NormalizeKernels, NonFiniteComponentMakesItsVectorNaN) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {1, inf, 2, 3, nan, 4, 3, 4, 0};  // rows: Inf, NaN, finite
  std::vector<float> y(9);
  std::vector<double> denom(3);
  l2_normalize_forward(x.data(), y.data(), denom.data(), 3, 3, 1, EpsilonMode::kExact, 0.0);
  for (int j = 0; j < 6; ++j) EXPECT_TRUE(std::isnan(y[j])) << j;
  EXPECT_FLOAT_EQ(y[6], 0.6f);
  EXPECT_FLOAT_EQ(y[7], 0.8f);
  EXPECT_EQ(y[8], 0.0f);
}

// Forward and backward of `rows` rows of n floats on 1, 2 and 3 threads agree bit for bit.
void check_thread_independence(int64_t rows, int64_t n, uint64_t seed) {
  const int saved = get_num_threads();
  const std::vector<float> x = random_data<float>(rows * n, seed),
                           dy = random_data<float>(rows * n, seed + 1);
  std::vector<std::vector<float>> ys, dxs;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::vector<float> y(x.size()), dx(x.size(), 0.0f);
    std::vector<double> denom(rows);
    l2_normalize_forward(x.data(), y.data(), denom.data(), rows, n, 1, EpsilonMode::kExact, 0.0);
    l2_normalize_backward(x.data(), dy.data(), denom.data(), dx.data(), rows, n, 1, EpsilonMode::kExact);
    ys.push_back(y);
    dxs.push_back(dx);
  }
  set_num_threads(saved);
  EXPECT_EQ(ys[0], ys[1]);
  EXPECT_EQ(ys[0], ys[2]);
  EXPECT_EQ(dxs[0], dxs[1]);
  EXPECT_EQ(dxs[0], dxs[2]);
}

TEST(L2NormalizeKernels, ResultsDoNotDependOnThreadCount) {
  check_thread_independence(3, 50000, 3);  // long rows, reduced in chunks by all threads
}

TEST(L2NormalizeKernels, ShortRowResultsDoNotDependOnThreadCount) {
  check_thread_independence(5003, 64, 5);  // row groups split between threads
}

// A row's values do not depend on the rows around it (its group of eight, the batch size, the
// forward's pipeline that sums one group while it writes the one before): the batch of 29 (three
// groups of eight and a tail, a zero and a tiny row in each, which the row kernels leave to the
// general loop) and each row alone agree bit for bit, forward and backward, in every mode, at a
// runtime row length and at the unrolled lengths 32 and 64.
template <class T>
void check_rows_independent_of_neighbours(EpsilonMode mode, int64_t kN) {
  SCOPED_TRACE(::testing::Message() << epsilon_mode_name(mode) << (sizeof(T) == 4 ? " float32" : " float64")
                                    << " n = " << kN);
  constexpr int64_t kRows = 29;
  const Problem p = fused_problem(kRows, kN, 1);
  const std::vector<T> x = vector_data<T>(p, {1.0, 1e-3, 1e-8, 0.0, 1e-20, 5.0}, 11);
  const std::vector<T> dy = random_data<T>(p.numel(), 12);
  std::vector<T> y(p.numel()), dx(p.numel(), T(0));
  std::vector<double> denom(kRows);
  l2_normalize_forward(x.data(), y.data(), denom.data(), kRows, kN, 1, mode, 1e-12);
  l2_normalize_backward(x.data(), dy.data(), denom.data(), dx.data(), kRows, kN, 1, mode);
  for (int64_t o = 0; o < kRows; ++o) {
    std::vector<T> y1(kN), dx1(kN, T(0));
    double d1 = 0;
    l2_normalize_forward(x.data() + o * kN, y1.data(), &d1, 1, kN, 1, mode, 1e-12);
    l2_normalize_backward(x.data() + o * kN, dy.data() + o * kN, &d1, dx1.data(), 1, kN, 1, mode);
    EXPECT_EQ(d1, denom[o]) << "row " << o;
    EXPECT_EQ(y1, std::vector<T>(y.begin() + o * kN, y.begin() + (o + 1) * kN)) << "row " << o;
    EXPECT_EQ(dx1, std::vector<T>(dx.begin() + o * kN, dx.begin() + (o + 1) * kN)) << "row " << o;
  }
}

TEST(L2NormalizeKernels, RowResultsDoNotDependOnNeighbours) {
  for (EpsilonMode mode : kModes) {
    for (int64_t n : {37, 32, 64}) {
      check_rows_independent_of_neighbours<float>(mode, n);
      check_rows_independent_of_neighbours<double>(mode, n);
    }
  }
}

// overwrite = true writes every element of dx (here filled with NaN beforehand) with what adding
// into zeros gives, on every layout path: short rows (zero and tiny vectors among them), long
// rows, inner blocks, gathered vectors.
template <class T>
void check_overwrite(const Problem& p, bool strided, EpsilonMode mode,
                     const std::vector<double>& scales = kMixedScales) {
  SCOPED_TRACE(::testing::Message() << "O=" << p.outer << " R=" << p.reduced << " I=" << p.inner
                                    << (strided ? " strided" : " fused") << " mode "
                                    << epsilon_mode_name(mode) << (sizeof(T) == 4 ? " float32" : " float64"));
  const std::vector<T> x = vector_data<T>(p, scales, 21);
  const std::vector<T> dy = random_data<T>(p.numel(), 22);
  const int64_t count = static_cast<int64_t>(p.bases.size());
  std::vector<T> y(p.numel());
  std::vector<double> denom(count);
  if (strided) {
    l2_normalize_forward_strided(x.data(), y.data(), denom.data(), p.bases.data(), count, p.offsets.data(),
                                 p.reduced, mode, 1e-12);
  } else {
    l2_normalize_forward(x.data(), y.data(), denom.data(), p.outer, p.reduced, p.inner, mode, 1e-12);
  }
  std::vector<T> added(p.numel(), T(0)), written(p.numel(), std::numeric_limits<T>::quiet_NaN());
  for (auto [dx, overwrite] : {std::pair{&added, false}, std::pair{&written, true}}) {
    if (strided) {
      l2_normalize_backward_strided(x.data(), dy.data(), denom.data(), dx->data(), p.bases.data(), count,
                                    p.offsets.data(), p.reduced, mode, overwrite);
    } else {
      l2_normalize_backward(x.data(), dy.data(), denom.data(), dx->data(), p.outer, p.reduced, p.inner, mode,
                            overwrite);
    }
  }
  for (std::size_t j = 0; j < added.size(); ++j) ASSERT_EQ(written[j], added[j]) << "element " << j;
}

TEST(L2NormalizeKernels, OverwriteWritesWhatAddingIntoZerosGives) {
  Problem gathered{0, 24, 0, {}, {}};  // axes {0, 2} of [4, 5, 6], as GatheredVectorsMatchReference
  for (int64_t j = 0; j < 5; ++j) gathered.bases.push_back(j * 6);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t k = 0; k < 6; ++k) gathered.offsets.push_back(i * 30 + k);
  gathered.outer = 1, gathered.inner = 5;  // numel() = 120
  for (EpsilonMode mode : kModes) {
    check_overwrite<float>(fused_problem(27, 64, 1), false, mode);
    check_overwrite<float>(fused_problem(13, 21, 1), false, mode);
    check_overwrite<double>(fused_problem(13, 21, 1), false, mode);
    check_overwrite<float>(fused_problem(2, 40000, 1), false, mode);
    check_overwrite<float>(fused_problem(6, 9, 70), false, mode);
    check_overwrite<double>(fused_problem(6, 5, 3), false, mode);
    check_overwrite<float>(fused_problem(3, 7, 1100), false, mode);
    check_overwrite<float>(fused_problem(5, 7, 40), false, mode);
    check_overwrite<float>(gathered, true, mode);
  }
  // float64 vectors that take the rescaled path (subnormal and huge norms), rows and inner blocks.
  const std::vector<double> extremes = {1e-320, 1.0, 1e300, 0.0};
  check_overwrite<double>(fused_problem(8, 20, 1), false, EpsilonMode::kExact, extremes);
  check_overwrite<double>(fused_problem(8, 20, 3), false, EpsilonMode::kExact, extremes);
}

TEST(L2NormalizeKernels, ForwardWithoutDenominatorBufferGivesSameValues) {
  const std::vector<float> x = random_data<float>(6 * 70, 5);
  std::vector<float> a(x.size()), b(x.size());
  std::vector<double> denom(6 * 70);
  for (auto [o, r, i] : {std::tuple<int64_t, int64_t, int64_t>{6, 70, 1}, {6, 7, 10}}) {
    l2_normalize_forward(x.data(), a.data(), denom.data(), o, r, i, EpsilonMode::kExact, 0.0);
    l2_normalize_forward(x.data(), b.data(), nullptr, o, r, i, EpsilonMode::kExact, 0.0);
    EXPECT_EQ(a, b);
  }
}

}  // namespace
}  // namespace normnet

// ops::l2_normalize: gradients (finite differences, float64) for every mode and axis layout, unit
// norms from subnormal to near-overflow float32 rows, zero vectors, each mode against its formula
// (including the frameworks' failures), errors, symbolic shapes and gradient accumulation.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/random.h"
#include "normnet/autograd.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/l2_normalize.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using normnet::testing::gradcheck;
using normnet::testing::GradCheckOptions;

constexpr EpsilonMode kModes[] = {EpsilonMode::kExact, EpsilonMode::kTensorFlow, EpsilonMode::kPyTorch,
                                  EpsilonMode::kAdditive};

// Rows [rows, cols] of standard normal values, row k scaled by scales[k].
template <class T>
Tensor scaled_rows(const std::vector<double>& scales, int64_t cols, uint64_t seed) {
  detail::Rng rng(seed);
  std::vector<T> v;
  for (double s : scales)
    for (int64_t j = 0; j < cols; ++j) v.push_back(static_cast<T>(rng.normal() * s));
  return Tensor::from_vector(v, {static_cast<int64_t>(scales.size()), cols});
}

struct AxisCase {
  const char* name;
  Shape shape;
  L2NormalizeOptions opts;
};

std::vector<AxisCase> axis_cases() {
  return {
      {"last axis", {3, 5}, L2NormalizeOptions()},
      {"axis 1 of 3-d", {2, 4, 3}, L2NormalizeOptions().axis({1})},
      {"H,W of NHWC", {2, 3, 3, 2}, L2NormalizeOptions().axis({1, 2})},
      {"channels of NHWC", {2, 2, 2, 3}, L2NormalizeOptions().axis({-1})},
      {"all_axes", {2, 3, 4}, L2NormalizeOptions().all_axes()},
      {"whole tensor", {3, 4}, L2NormalizeOptions().whole_tensor()},
      {"{0, 2} (strided)", {3, 2, 4}, L2NormalizeOptions().axis({0, -1})},
      {"{0, 2} of 4-d (strided)", {2, 3, 2, 2}, L2NormalizeOptions().axis({2, 0})},
  };
}

TEST(L2Normalize, GradcheckEveryModeAndAxisLayout) {
  for (EpsilonMode mode : kModes) {
    for (const AxisCase& c : axis_cases()) {
      SCOPED_TRACE(::testing::Message() << epsilon_mode_name(mode) << ", " << c.name);
      L2NormalizeOptions opts = c.opts;
      opts.mode(mode).epsilon(mode == EpsilonMode::kAdditive ? 0.25 : 1e-12);  // additive: ε visible
      const Tensor x = Tensor::randn(c.shape, 11, DType::kFloat64);
      EXPECT_TRUE(
          gradcheck([opts](const std::vector<Tensor>& in) { return ops::l2_normalize(in[0], opts); }, {x}));
    }
  }
}

// Rows 0 and 2 inside the ε region, rows 1 and 3 outside, in one batch.
TEST(L2Normalize, GradcheckClampedRegionsOfCompatibilityModes) {
  const Tensor x = scaled_rows<double>({0.05, 2.0, 0.1, 1.0}, 4, 5);
  const auto tf = L2NormalizeOptions().mode(EpsilonMode::kTensorFlow).epsilon(0.5);  // Σv² < 0.5 clamps
  const auto pt = L2NormalizeOptions().mode(EpsilonMode::kPyTorch).epsilon(0.5);     // ‖v‖ < 0.5 clamps
  for (const auto& opts : {tf, pt}) {
    EXPECT_TRUE(
        gradcheck([opts](const std::vector<Tensor>& in) { return ops::l2_normalize(in[0], opts); }, {x}));
  }
  // In the clamped rows the forward is linear: y = v/√ε (TF), y = v/ε (PyTorch).
  const auto vx = x.to_vector<double>();
  const auto y_tf = ops::l2_normalize(x, tf).to_vector<double>();
  const auto y_pt = ops::l2_normalize(x, pt).to_vector<double>();
  for (int j = 0; j < 4; ++j) {
    EXPECT_DOUBLE_EQ(y_tf[j], vx[j] / std::sqrt(0.5));
    EXPECT_DOUBLE_EQ(y_pt[j], vx[j] / 0.5);
  }
}

// The gradient of the exact mode, computed independently: (dy − y⟨dy, y⟩)/‖x‖, in long double so
// that float64 rows at 1e±200 neither underflow nor overflow.
std::vector<double> expected_grad(const std::vector<double>& x, const std::vector<double>& dy, int64_t cols) {
  std::vector<double> g(x.size());
  for (std::size_t b = 0; b < x.size(); b += cols) {
    long double s = 0, t = 0;
    for (int64_t j = 0; j < cols; ++j) s += static_cast<long double>(x[b + j]) * x[b + j];
    const long double n = std::sqrt(s);
    for (int64_t j = 0; j < cols; ++j) t += dy[b + j] * (x[b + j] / n);
    for (int64_t j = 0; j < cols; ++j) g[b + j] = static_cast<double>((dy[b + j] - x[b + j] / n * t) / n);
  }
  return g;
}

template <class T>
void check_unit_rows_and_grad(const std::vector<double>& scales, const std::vector<bool>& check_grad) {
  const int64_t cols = 16;
  const double tol = sizeof(T) == 4 ? 2e-6 : 1e-14;  // the contract for float32; float64 near its precision
  Tensor x = scaled_rows<T>(scales, cols, 3).set_requires_grad(true);
  const Tensor dy = scaled_rows<T>(std::vector<double>(scales.size(), 1.0), cols, 4);
  const Tensor y = ops::l2_normalize(x);
  y.backward(dy);
  const auto vy = y.template to_vector<double>();
  const auto vx = x.template to_vector<double>();
  const auto vg = x.grad().template to_vector<double>();
  const auto want = expected_grad(vx, dy.template to_vector<double>(), cols);
  for (std::size_t k = 0; k < scales.size(); ++k) {
    SCOPED_TRACE(::testing::Message()
                 << "row scale " << scales[k] << (sizeof(T) == 4 ? " float32" : " float64"));
    double norm2 = 0, gscale = 0;
    for (int64_t j = 0; j < cols; ++j) {
      norm2 += vy[k * cols + j] * vy[k * cols + j];
      gscale = std::max(gscale, std::abs(want[k * cols + j]));
    }
    EXPECT_NEAR(std::sqrt(norm2), 1.0, tol);
    if (!check_grad[k]) continue;
    ASSERT_TRUE(std::isfinite(gscale) && gscale > 0);
    for (int64_t j = 0; j < cols; ++j) {
      EXPECT_NEAR(vg[k * cols + j], want[k * cols + j], tol * gscale) << "element " << j;
    }
  }
}

TEST(L2Normalize, ExactModeGivesUnitRowsFromSubnormalToOverflowingSquares) {
  const std::vector<double> scales = {1e-40, 1e-30, 1e-20, 1e-7, 1.0, 1e20, 1e30, 1e37};
  // float32: the gradient (~dy/‖x‖) of the 1e-40 row is ~1e40, beyond FLT_MAX; it is checked in float64.
  check_unit_rows_and_grad<float>(scales, {false, true, true, true, true, true, true, true});
  check_unit_rows_and_grad<double>(scales, std::vector<bool>(scales.size(), true));
  // float64 far beyond float32's range.
  check_unit_rows_and_grad<double>({1e-310, 1e-200, 1e200, 1e300}, {false, true, true, true});
}

TEST(L2Normalize, ZeroVectorGivesZeroAndFiniteGrad) {
  // Rows 1 and 3 are zero; rows 0, 2, 4 are not.
  const std::vector<float> v = {3, 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, -6, 8, 0, 0};
  Tensor x = Tensor::from_vector(v, {5, 4}).set_requires_grad(true);
  const Tensor dy = Tensor::randn({5, 4}, 9);
  const Tensor y = ops::l2_normalize(x);
  y.backward(dy);
  const auto vy = y.to_vector<float>();
  const auto vg = x.grad().to_vector<float>();
  for (int j = 0; j < 20; ++j) {
    EXPECT_TRUE(std::isfinite(vy[j]) && std::isfinite(vg[j])) << j;
    if ((j / 4) % 2 == 1) {
      EXPECT_EQ(vy[j], 0.0f) << j;
      EXPECT_EQ(vg[j], 0.0f) << j;
    }
  }
  // The non-zero rows are exactly what they are on their own.
  std::vector<float> v_alone, dy_alone;
  const auto dyv = dy.to_vector<float>();
  for (int row : {0, 2, 4}) {
    v_alone.insert(v_alone.end(), v.begin() + 4 * row, v.begin() + 4 * row + 4);
    dy_alone.insert(dy_alone.end(), dyv.begin() + 4 * row, dyv.begin() + 4 * row + 4);
  }
  Tensor alone = Tensor::from_vector(v_alone, {3, 4}).set_requires_grad(true);
  const Tensor ya = ops::l2_normalize(alone);
  ya.backward(Tensor::from_vector(dy_alone, {3, 4}));
  const auto va = ya.to_vector<float>();
  const auto ga = alone.grad().to_vector<float>();
  for (int k = 0; k < 3; ++k) {
    for (int j = 0; j < 4; ++j) {
      EXPECT_EQ(vy[8 * k + j], va[4 * k + j]);
      EXPECT_EQ(vg[8 * k + j], ga[4 * k + j]);
    }
  }
  EXPECT_FLOAT_EQ(vy[0], 0.6f);
  EXPECT_FLOAT_EQ(vy[1], 0.8f);
  EXPECT_FLOAT_EQ(vy[8], 1.0f);
}

// Each mode's formula in double, from the row's sum of squares s.
double formula_denominator(EpsilonMode mode, double s, double eps) {
  switch (mode) {
    case EpsilonMode::kExact:
      return std::sqrt(s);
    case EpsilonMode::kTensorFlow:
      return std::sqrt(std::max(s, eps));  // y = v·rsqrt(max(s, ε))
    case EpsilonMode::kPyTorch:
      return std::max(std::sqrt(s), eps);  // y = v/max(‖v‖, ε)
    case EpsilonMode::kAdditive:
      return std::sqrt(s + eps);  // y = v/sqrt(s + ε)
  }
  return 0;
}

TEST(L2Normalize, EveryModeMatchesItsFormula) {
  // Scales where the modes agree (1), where ε matters (1e-4 .. 1e-8) and where it dominates.
  const std::vector<double> scales = {1.0, 1e-4, 1e-6, 1e-7, 1e-8, 1e-13, 1e3};
  for (EpsilonMode mode : kModes) {
    for (double eps : {1e-12, 1e-6}) {
      const auto opts = L2NormalizeOptions().mode(mode).epsilon(eps);
      for (bool f32 : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << epsilon_mode_name(mode) << " eps " << eps << (f32 ? " float32" : ""));
        const Tensor x = f32 ? scaled_rows<float>(scales, 8, 21) : scaled_rows<double>(scales, 8, 21);
        const auto vx = x.to_vector<double>();
        const auto vy = ops::l2_normalize(x, opts).to_vector<double>();
        for (std::size_t k = 0; k < scales.size(); ++k) {
          double s = 0;
          for (int j = 0; j < 8; ++j) s += vx[k * 8 + j] * vx[k * 8 + j];
          // ε is converted to the input's dtype, as the frameworks do.
          const double e = f32 ? static_cast<double>(static_cast<float>(eps)) : eps;
          const double d = formula_denominator(mode, s, e);
          for (int j = 0; j < 8; ++j) {
            EXPECT_NEAR(vy[k * 8 + j], vx[k * 8 + j] / d, (f32 ? 1e-6 : 1e-15) * std::abs(vx[k * 8 + j] / d))
                << "row " << k;
          }
        }
      }
    }
  }
}

// Float32 rows at 1e20 and 1e-20, ε = 1e-12: the compatibility modes sum squares in float32 as
// TensorFlow and PyTorch do, so they reproduce those frameworks' results exactly.
TEST(L2Normalize, CompatibilityModesReproduceFrameworkFailuresInFloat32) {
  const Tensor big = scaled_rows<float>({1e20}, 8, 31);
  const Tensor tiny = scaled_rows<float>({1e-20}, 8, 31);
  const auto vt = tiny.to_vector<double>();
  double s = 0;
  for (double v : vt) s += v * v;
  for (EpsilonMode mode : {EpsilonMode::kTensorFlow, EpsilonMode::kPyTorch, EpsilonMode::kAdditive}) {
    SCOPED_TRACE(epsilon_mode_name(mode));
    const auto opts = L2NormalizeOptions().mode(mode).epsilon(1e-12);
    // Σv² ≈ 8e40 overflows float32 to Inf: y = v/Inf = 0.
    for (float e : ops::l2_normalize(big, opts).to_vector<float>()) EXPECT_EQ(e, 0.0f);
    // At 1e-20 the ε rule wins: y = v/d with d = √ε (TF, additive) or ε (PyTorch), far from unit.
    const double d = mode == EpsilonMode::kPyTorch ? 1e-12 : 1e-6;
    const auto y = ops::l2_normalize(tiny, opts).to_vector<double>();
    double norm2 = 0;
    for (std::size_t j = 0; j < y.size(); ++j) {
      EXPECT_NEAR(y[j], vt[j] / d, 1e-5 * std::abs(vt[j] / d));
      norm2 += y[j] * y[j];
    }
    EXPECT_NEAR(std::sqrt(norm2), std::sqrt(s) / d, 1e-5 * std::sqrt(s) / d);
    EXPECT_LT(std::sqrt(norm2), 1e-5);
  }
  // The exact mode gives unit vectors at both scales.
  for (const Tensor& x : {big, tiny}) {
    double n2 = 0;
    for (float e : ops::l2_normalize(x).to_vector<float>()) n2 += static_cast<double>(e) * e;
    EXPECT_NEAR(std::sqrt(n2), 1.0, 2e-6);
  }
}

TEST(L2Normalize, ChannelsOfNhwcAreUnitVectors) {
  const Tensor x = Tensor::randn({2, 3, 3, 5}, 41);
  const auto vx = x.to_vector<double>();
  const auto vy = ops::l2_normalize(x, L2NormalizeOptions().axis({3})).to_vector<double>();
  for (std::size_t p = 0; p < vx.size(); p += 5) {
    double s = 0;
    for (int c = 0; c < 5; ++c) s += vx[p + c] * vx[p + c];
    for (int c = 0; c < 5; ++c) EXPECT_NEAR(vy[p + c], vx[p + c] / std::sqrt(s), 1e-6) << p;
  }
}

TEST(L2Normalize, HeightWidthOfNhwcNormalizesEachChannelMap) {
  const Tensor x = Tensor::randn({2, 3, 4, 5}, 43, DType::kFloat64);
  const auto vx = x.to_vector<double>();
  const auto vy = ops::l2_normalize(x, L2NormalizeOptions().axis({1, 2})).to_vector<double>();
  for (int n = 0; n < 2; ++n) {
    for (int c = 0; c < 5; ++c) {
      double s = 0;
      for (int hw = 0; hw < 12; ++hw) s += vx[(n * 12 + hw) * 5 + c] * vx[(n * 12 + hw) * 5 + c];
      for (int hw = 0; hw < 12; ++hw) {
        const int j = (n * 12 + hw) * 5 + c;
        EXPECT_NEAR(vy[j], vx[j] / std::sqrt(s), 1e-15);
      }
    }
  }
}

TEST(L2Normalize, WholeTensorAndAllAxesDiffer) {
  const Tensor x = Tensor::from_vector(std::vector<double>{3, 4, 0, 5}, {2, 2});
  const auto per_sample = ops::l2_normalize(x, L2NormalizeOptions().all_axes()).to_vector<double>();
  const std::vector<double> want = {0.6, 0.8, 0, 1};
  for (int j = 0; j < 4; ++j) EXPECT_DOUBLE_EQ(per_sample[j], want[j]);
  const auto whole = ops::l2_normalize(x, L2NormalizeOptions().whole_tensor()).to_vector<double>();
  const std::vector<double> values = {3, 4, 0, 5};
  for (int j = 0; j < 4; ++j) EXPECT_DOUBLE_EQ(whole[j], values[j] / std::sqrt(50.0));
}

TEST(L2Normalize, NaNOrInfPoisonsOnlyItsVector) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const Tensor x = Tensor::from_vector(std::vector<float>{1, nan, inf, 1, 3, 4}, {3, 2});
  const auto y = ops::l2_normalize(x).to_vector<float>();
  for (int j = 0; j < 4; ++j) EXPECT_TRUE(std::isnan(y[j])) << j;
  EXPECT_FLOAT_EQ(y[4], 0.6f);
  EXPECT_FLOAT_EQ(y[5], 0.8f);
}

TEST(L2Normalize, ErrorsNameTheOpAndShape) {
  const Tensor x = Tensor::zeros({2, 5});
  const auto message = [&](const L2NormalizeOptions& opts) {
    try {
      (void)ops::l2_normalize(x, opts);
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no ValueError");
  };
  EXPECT_EQ(message(L2NormalizeOptions().axis({3})),
            "ops::l2_normalize: axis 3 out of range for shape [2, 5]");
  EXPECT_EQ(message(L2NormalizeOptions().axis({-3})),
            "ops::l2_normalize: axis -3 out of range for shape [2, 5]");
  EXPECT_EQ(message(L2NormalizeOptions().axis({1, -1})),
            "ops::l2_normalize: axis -1 repeated in axes [1, -1] for shape [2, 5]");
  EXPECT_EQ(message(L2NormalizeOptions().epsilon(-1e-3)),
            "ops::l2_normalize: epsilon must be >= 0, got -0.001");
  EXPECT_THROW((void)ops::l2_normalize(Tensor::zeros({2}, DType::kInt64)), ValueError);
  EXPECT_THROW((void)ops::l2_normalize(Tensor::scalar(1.0), L2NormalizeOptions().all_axes()), ValueError);
  // Symbolic inputs are checked just the same.
  EXPECT_THROW((void)ops::l2_normalize(Tensor::symbolic({-1, 5}), L2NormalizeOptions().axis({2})),
               ValueError);
}

TEST(L2Normalize, SymbolicInputGivesSymbolicOutputOfSameShape) {
  const Tensor x = Tensor::symbolic({kUnknownDim, 28, 28, 3}, DType::kFloat64);
  for (const auto& opts : {L2NormalizeOptions(), L2NormalizeOptions().axis({1, 2}),
                           L2NormalizeOptions().all_axes(), L2NormalizeOptions().whole_tensor()}) {
    const Tensor y = ops::l2_normalize(x, opts);
    EXPECT_TRUE(y.is_symbolic());
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_EQ(y.dtype(), DType::kFloat64);
  }
}

TEST(L2Normalize, BackwardAddsIntoExistingGradient) {
  Tensor x = Tensor::randn({3, 4}, 51, DType::kFloat64).set_requires_grad(true);
  const Tensor u = Tensor::randn({3, 4}, 52, DType::kFloat64);
  ops::l2_normalize(x).backward(u);
  const auto rows = x.grad().to_vector<double>();
  x.zero_grad();
  ops::l2_normalize(x, L2NormalizeOptions().axis({0})).backward(u);
  const auto cols = x.grad().to_vector<double>();
  // Both uses in one graph: the second backward adds into the buffer the first one filled.
  x.zero_grad();
  ops::add(ops::l2_normalize(x), ops::l2_normalize(x, L2NormalizeOptions().axis({0}))).backward(u);
  const auto both = x.grad().to_vector<double>();
  for (int j = 0; j < 12; ++j) EXPECT_NEAR(both[j], rows[j] + cols[j], 1e-14) << j;
  // And across backward calls, into the leaf's gradient.
  ops::l2_normalize(x).backward(u);
  const auto again = x.grad().to_vector<double>();
  for (int j = 0; j < 12; ++j) EXPECT_NEAR(again[j], 2 * rows[j] + cols[j], 1e-14) << j;
}

// The backward writes a new gradient buffer instead of zero-filling it and adding; where x already
// has a gradient from another use (an alias, or a buffer a kernel filled) it must still add.
// float32 rows of 64: the short-row kernels.
TEST(L2Normalize, Float32RowsAddIntoGradientsOfOtherUses) {
  Tensor x = Tensor::randn({20, 64}, 53).set_requires_grad(true);
  const Tensor u = Tensor::randn({20, 64}, 54);
  ops::l2_normalize(x).backward(u);
  const auto alone = x.grad().to_vector<float>();
  const auto upstream = u.to_vector<float>();
  for (bool l2_first : {true, false}) {
    x.zero_grad();
    const Tensor l2 = ops::l2_normalize(x), scaled = x * 2.0;
    (l2_first ? ops::add(l2, scaled) : ops::add(scaled, l2)).backward(u);
    const auto both = x.grad().to_vector<float>();
    for (int j = 0; j < 20 * 64; ++j) EXPECT_FLOAT_EQ(both[j], alone[j] + 2 * upstream[j]) << j;
  }
  x.zero_grad();
  ops::add(ops::l2_normalize(x), ops::l2_normalize(x)).backward(u);
  const auto twice = x.grad().to_vector<float>();
  for (int j = 0; j < 20 * 64; ++j) EXPECT_EQ(twice[j], alone[j] + alone[j]) << j;
}

TEST(L2Normalize, ZeroUpstreamGivesZeroGradient) {
  for (EpsilonMode mode : kModes) {
    Tensor x = scaled_rows<float>({1.0, 0.0, 1e-9, 1e30}, 6, 61).set_requires_grad(true);
    ops::l2_normalize(x, L2NormalizeOptions().mode(mode)).backward(Tensor::zeros({4, 6}));
    for (float g : x.grad().to_vector<float>()) EXPECT_EQ(g, 0.0f) << epsilon_mode_name(mode);
  }
}

TEST(L2Normalize, EmptyAxisListNormalizesEachElementAlone) {
  const Tensor x = Tensor::from_vector(std::vector<float>{-2, 0, 5e-30f}, {3});
  EXPECT_EQ(ops::l2_normalize(x, L2NormalizeOptions().axis({})).to_vector<float>(),
            (std::vector<float>{-1, 0, 1}));
}

TEST(L2Normalize, EpsilonModeNamesRoundTrip) {
  for (EpsilonMode mode : kModes) EXPECT_EQ(epsilon_mode_from_name(epsilon_mode_name(mode)), mode);
  EXPECT_STREQ(epsilon_mode_name(EpsilonMode::kTensorFlow), "tensorflow");
  try {
    (void)epsilon_mode_from_name("keras");
    ADD_FAILURE() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()),
              "epsilon_mode_from_name: unknown epsilon mode 'keras' (expected exact, tensorflow, pytorch or "
              "additive)");
  }
}

TEST(L2Normalize, NoGradModeRecordsNothing) {
  Tensor x = Tensor::randn({2, 3}, 71).set_requires_grad(true);
  NoGradGuard guard;
  EXPECT_FALSE(ops::l2_normalize(x).requires_grad());
}

}  // namespace
}  // namespace normnet

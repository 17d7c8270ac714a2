// L2Normalization / UnitNormalization: every option of ops::l2_normalize, the learnable scale
// (scalar and per channel, gradient checked with unequal scales), masks, config, errors.
#include <cmath>

#include <gtest/gtest.h>

#include "normnet/layers.h"
#include "normnet/ops.h"
#include "support/gradcheck.h"
#include "support/layer_harness.h"

namespace normnet {
namespace {

using testing::gradcheck_layer;
using testing::max_abs_diff;

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(L2Normalization, UnitVectorsAlongTheLastAxis) {
  auto l2 = layers::L2Normalization();
  Tensor y = l2(Tensor::from_vector(std::vector<float>{3, 4, 0, 0, 1e-30f, 0}, {3, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0.6f, 0.8f, 0, 0, 1, 0}));  // 0 ↦ 0; exact at 1e-30
  EXPECT_EQ(l2(Tensor::symbolic({kUnknownDim, 5, 7})).shape(), (Shape{kUnknownDim, 5, 7}));
  EXPECT_EQ(l2.count_params(), 0);
  EXPECT_EQ(l2->class_name(), "L2Normalization");
}

TEST(L2Normalization, EveryOptionMatchesTheOp) {
  Tensor x = Tensor::randn({2, 3, 4, 5}, 1, DType::kFloat64);
  struct Case {
    layers::L2Normalization layer;
    L2NormalizeOptions opts;
  };
  std::vector<Case> cases;
  cases.push_back({layers::L2Normalization().axis({1, 2}), L2NormalizeOptions().axis({1, 2})});
  cases.push_back({layers::L2Normalization().axis(-3), L2NormalizeOptions().axis({-3})});
  cases.push_back({layers::L2Normalization().all_axes(), L2NormalizeOptions().all_axes()});
  cases.push_back({layers::L2Normalization().whole_tensor(), L2NormalizeOptions().whole_tensor()});
  cases.push_back({layers::L2Normalization().epsilon(1e3).mode(EpsilonMode::kTensorFlow),
                   L2NormalizeOptions().epsilon(1e3).mode(EpsilonMode::kTensorFlow)});
  cases.push_back({layers::L2Normalization().epsilon(10.0).mode("pytorch"),
                   L2NormalizeOptions().epsilon(10.0).mode(EpsilonMode::kPyTorch)});
  cases.push_back({layers::L2Normalization().epsilon(5.0).mode("additive"),
                   L2NormalizeOptions().epsilon(5.0).mode(EpsilonMode::kAdditive)});
  for (auto& c : cases) {
    EXPECT_LE(max_abs_diff(c.layer(x), ops::l2_normalize(x, c.opts)), 0.0) << c.layer.get_config().dump();
  }
}

TEST(L2Normalization, KeepsTheInputDtype) {
  auto l2 = layers::L2Normalization();
  EXPECT_EQ(l2(Tensor::ones({1, 3}, DType::kFloat64)).dtype(), DType::kFloat64);
  EXPECT_EQ(l2(Tensor::ones({1, 3})).dtype(), DType::kFloat32);
}

TEST(L2Normalization, GradientInEveryMode) {
  for (EpsilonMode mode : {EpsilonMode::kExact, EpsilonMode::kTensorFlow, EpsilonMode::kPyTorch, EpsilonMode::kAdditive}) {
    auto l2 = layers::L2Normalization().axis({1, 2}).epsilon(0.5).mode(mode);
    EXPECT_TRUE(gradcheck_layer(*l2, {Tensor::randn({2, 3, 2, 2}, 3, DType::kFloat64)}, {})) << epsilon_mode_name(mode);
  }
}

TEST(L2Normalization, PerChannelScaleAsInParseNet) {
  auto l2 = layers::L2Normalization().learnable_scale(20.0);
  Tensor x = Tensor::from_vector(std::vector<float>{3, 4, 0, 0, 0, 5}, {1, 2, 3});  // NHWC-like, C = 3
  Tensor y = l2(x);
  ASSERT_EQ(l2->scale.shape(), (Shape{3}));
  EXPECT_EQ(l2.count_params(), 3);
  EXPECT_EQ(l2.trainable_weights().size(), 1u);
  EXPECT_EQ(l2->scale.to_vector<float>(), (std::vector<float>{20, 20, 20}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{12, 16, 0, 0, 0, 20}));
  // y_c = s_c · x_c/‖x‖ with unequal scales.
  std::vector<float> s = {1, 2, 3};
  std::copy(s.begin(), s.end(), l2->scale.data<float>());
  EXPECT_EQ(l2(x).to_vector<float>(), (std::vector<float>{0.6f, 1.6f, 0, 0, 0, 3}));
}

TEST(L2Normalization, ScalarScale) {
  auto l2 = layers::L2Normalization().learnable_scale(2.0, /*per_channel=*/false);
  Tensor y = l2(Tensor::from_vector(std::vector<float>{3, 4}, {1, 2}));
  EXPECT_EQ(l2->scale.shape(), Shape{});
  EXPECT_EQ(l2.count_params(), 1);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1.2f, 1.6f}));
}

// Caffe-SSD's Normalize backward is not right when the per-channel scales differ: check ours
// against finite differences, for the input and for the scale, with distinct scale values.
TEST(L2Normalization, GradientWithUnequalPerChannelScales) {
  const std::vector<double> scales = {0.5, -2.0, 7.0, 3.25};
  auto over_channels = layers::L2Normalization().learnable_scale(1.0).dtype(DType::kFloat64);
  (void)over_channels(Tensor::zeros({1, 2, 2, 4}, DType::kFloat64));
  std::copy(scales.begin(), scales.end(), over_channels->scale.data<double>());
  EXPECT_TRUE(gradcheck_layer(*over_channels, {Tensor::randn({2, 3, 3, 4}, 11, DType::kFloat64)}, {&over_channels->scale}));

  auto across_space = layers::L2Normalization().all_axes().learnable_scale(1.0).dtype(DType::kFloat64);
  (void)across_space(Tensor::zeros({1, 2, 2, 4}, DType::kFloat64));
  std::copy(scales.begin(), scales.end(), across_space->scale.data<double>());
  EXPECT_TRUE(gradcheck_layer(*across_space, {Tensor::randn({2, 2, 3, 4}, 12, DType::kFloat64)}, {&across_space->scale}));

  auto scalar = layers::L2Normalization().learnable_scale(3.0, false).dtype(DType::kFloat64);
  EXPECT_TRUE(gradcheck_layer(*scalar, {Tensor::randn({3, 5}, 13, DType::kFloat64)}, {&scalar->scale}));
}

// The gradient by hand for one vector: y = s ⊙ v/n  ⇒  dv = (g − u·⟨g, u⟩)/n with g = s ⊙ dy,
// u = v/n; ds = u ⊙ dy.
TEST(L2Normalization, ScaleGradientByHand) {
  auto l2 = layers::L2Normalization().learnable_scale(1.0).dtype(DType::kFloat64);
  Tensor v = Tensor::from_vector(std::vector<double>{3, 4}, {1, 2}).set_requires_grad(true);
  (void)l2(v.detach());
  l2->scale.data<double>()[0] = 2.0;
  l2->scale.data<double>()[1] = 5.0;
  Tensor dy = Tensor::from_vector(std::vector<double>{1, 1}, {1, 2});
  l2(v).backward(dy);
  // u = (0.6, 0.8), g = (2, 5), ⟨g, u⟩ = 5.2, dv = ((2, 5) − 5.2·(0.6, 0.8))/5 = (−0.224, 0.168)
  const auto dv = v.grad().to_vector<double>();
  EXPECT_NEAR(dv[0], -0.224, 1e-15);
  EXPECT_NEAR(dv[1], 0.168, 1e-15);
  const auto ds = l2->scale.grad().to_vector<double>();
  EXPECT_NEAR(ds[0], 0.6, 1e-15);
  EXPECT_NEAR(ds[1], 0.8, 1e-15);
}

TEST(L2Normalization, MaskedStepsAreZeroWithZeroGradient) {
  auto l2 = layers::L2Normalization().learnable_scale(2.0);
  Tensor x = Tensor::randn({2, 3, 4}, 4);
  const Tensor mask = Tensor::from_vector(std::vector<float>{1, 0, 1, 0, 1, 1}, {2, 3});
  x.set_mask(mask);
  Tensor y = l2(x);
  ASSERT_TRUE(y.mask().defined());
  EXPECT_EQ(y.mask().to_vector<float>(), mask.to_vector<float>());
  const auto out = y.to_vector<float>();
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(out[1 * 4 + c], 0.0f);
    EXPECT_EQ(out[3 * 4 + c], 0.0f);
  }
  auto l64 = layers::L2Normalization().learnable_scale(1.5).dtype(DType::kFloat64);
  EXPECT_TRUE(gradcheck_layer(*l64, {Tensor::randn({2, 3, 4}, 5, DType::kFloat64)}, {&l64->scale}, {}, {mask}));
  Tensor x64 = Tensor::randn({2, 3, 4}, 5, DType::kFloat64).set_requires_grad(true);
  x64.set_mask(mask);
  ops::sum(l64(x64) * Tensor::randn({2, 3, 4}, 6, DType::kFloat64)).backward();
  const auto g = x64.grad().to_vector<double>();
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(g[1 * 4 + c], 0.0);
    EXPECT_EQ(g[3 * 4 + c], 0.0);
  }
}

TEST(L2Normalization, MaskedStepsLeaveANormOverTime) {
  // Normalizing over the time axis: masked steps take no part in the norm.
  auto l2 = layers::L2Normalization().axis(1);
  Tensor x = Tensor::from_vector(std::vector<float>{3, 1, 100, 1, 4, 1}, {1, 3, 2});
  x.set_mask(Tensor::from_vector(std::vector<float>{1, 0, 1}, {1, 3}));
  // channel 0 over kept steps: (3, 4)/5; channel 1: (1, 1)/√2
  const auto y = l2(x).to_vector<float>();
  EXPECT_FLOAT_EQ(y[0], 0.6f);
  EXPECT_FLOAT_EQ(y[4], 0.8f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 0.0f);
  EXPECT_FLOAT_EQ(y[1], 1.0f / std::sqrt(2.0f));
}

TEST(L2Normalization, ConfigHasEveryOption) {
  auto l2 = layers::L2Normalization().axis({1, 2}).epsilon(1e-6).mode(EpsilonMode::kPyTorch).learnable_scale(20.0);
  const Config c = l2.get_config();
  EXPECT_EQ(c["axis"], (std::vector<int>{1, 2}));
  EXPECT_EQ(c["epsilon"], 1e-6);
  EXPECT_EQ(c["mode"], "pytorch");
  EXPECT_EQ(c["learnable_scale"], true);
  EXPECT_EQ(c["scale_init"], 20.0);
  EXPECT_EQ(c["per_channel"], true);
  auto copy = layers::from_config({{"class_name", "L2Normalization"}, {"config", c}});
  EXPECT_EQ(copy->get_config(), c);
  EXPECT_EQ(layers::L2Normalization().get_config()["axis"], -1);
}

TEST(L2Normalization, ErrorsNameTheLayer) {
  EXPECT_THROW(layers::L2Normalization().epsilon(-1.0), ValueError);
  EXPECT_THROW(layers::L2Normalization().axis(std::vector<int>{}), ValueError);
  EXPECT_THROW(layers::L2Normalization().axis({1, 1}), ValueError);
  EXPECT_THROW(layers::L2Normalization().mode("tf"), ValueError);
  EXPECT_NE(error_of([] { layers::L2Normalization().name("n").mode("tf"); }).find("L2Normalization 'n'"),
            std::string::npos);
  auto l2 = layers::L2Normalization().axis(3).name("norm");
  EXPECT_EQ(error_of([&] { (void)l2(Tensor::symbolic({kUnknownDim, 5})); }),
            "L2Normalization 'norm': axis 3 out of range for input shape [None, 5]");
  auto dup = layers::L2Normalization().axis({1, -1}).name("dup");
  const std::string msg = error_of([&] { (void)dup(Tensor::symbolic({kUnknownDim, 5})); });
  EXPECT_NE(msg.find("L2Normalization 'dup'"), std::string::npos) << msg;
  auto ints = layers::L2Normalization().name("ints");
  EXPECT_NE(error_of([&] { (void)ints(Tensor::from_vector(std::vector<int64_t>{1, 2}, {1, 2})); }).find("int64"),
            std::string::npos);
}

TEST(UnitNormalization, IsTheSameLayerUnderKeras3sName) {
  auto unit = layers::UnitNormalization();
  EXPECT_EQ(unit->class_name(), "UnitNormalization");
  EXPECT_EQ(unit.name().rfind("unit_normalization", 0), 0u) << unit.name();
  const Config c = unit.get_config();
  EXPECT_EQ(c["axis"], -1);
  EXPECT_EQ(c["mode"], "exact");
  Tensor x = Tensor::randn({3, 4}, 2);
  EXPECT_LE(max_abs_diff(unit(x), ops::l2_normalize(x)), 0.0);
  auto copy = layers::from_config({{"class_name", "UnitNormalization"}, {"config", c}});
  EXPECT_EQ(copy->class_name(), "UnitNormalization");
  // Keras 3's arithmetic on request: x / max(‖x‖, 1e-12).
  auto keras3 = layers::UnitNormalization().mode(EpsilonMode::kPyTorch);
  EXPECT_EQ(keras3(Tensor::full({1, 2}, 1e-20, DType::kFloat64)).to_vector<double>()[0], 1e-8);
}

}  // namespace
}  // namespace normnet

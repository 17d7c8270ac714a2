// Rescaling: values and dtypes (uint8 → float32, float64 kept), symbolic inputs, the layer
// contract (config and save/load round trips, with a uint8 Input), summary, gradient (float64),
// and argument errors.
#include <gtest/gtest.h>

#include <cmath>

#include "normnet/layers.h"
#include "normnet/model.h"
#include "normnet/ops.h"
#include "support/expect_throw.h"
#include "support/gradcheck.h"
#include "support/layer_harness.h"

namespace normnet {
namespace {

using testing::check_layer_contract;
using testing::expect_throw_with;
using testing::gradcheck_layer;

TEST(Rescaling, Uint8BytesBecomeFloat32ScaledAndOffset) {
  const Tensor x = Tensor::from_vector(std::vector<uint8_t>{0, 1, 128, 255}, {2, 2});
  const Tensor y = layers::Rescaling(1.0 / 255)(x);
  ASSERT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  const std::vector<float> v = y.to_vector<float>();
  const float s = static_cast<float>(1.0 / 255);  // the scale rounded to float32, as Keras casts it
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[1], s);
  EXPECT_EQ(v[2], 128.0f * s);
  EXPECT_FLOAT_EQ(v[3], 1.0f);
  // Keras's [-1, 1] recipe: Rescaling(1/127.5, offset=-1).
  const std::vector<float> w = layers::Rescaling(1.0 / 127.5, -1.0)(x).to_vector<float>();
  EXPECT_FLOAT_EQ(w[0], -1.0f);
  EXPECT_FLOAT_EQ(w[3], 1.0f);
  EXPECT_NEAR(w[2], 128.0 / 127.5 - 1.0, 1e-6);
}

TEST(Rescaling, FloatInputsKeepTheirDtypeAndIntegersBecomeFloat32) {
  const Tensor x64 = Tensor::from_vector(std::vector<double>{2.0, -4.0}, {2});
  const Tensor y64 = layers::Rescaling(0.5, 1.0)(x64);
  EXPECT_EQ(y64.dtype(), DType::kFloat64);
  EXPECT_EQ(y64.to_vector<double>(), (std::vector<double>{2.0, -1.0}));
  const Tensor y32 = layers::Rescaling(2.0)(Tensor::from_vector(std::vector<float>{1.5f}, {1}));
  EXPECT_EQ(y32.dtype(), DType::kFloat32);
  EXPECT_EQ(y32.item(), 3.0);
  const Tensor yi = layers::Rescaling(0.5)(Tensor::from_vector(std::vector<int64_t>{3, -3}, {2}));
  EXPECT_EQ(yi.dtype(), DType::kFloat32);
  EXPECT_EQ(yi.to_vector<float>(), (std::vector<float>{1.5f, -1.5f}));
}

TEST(Rescaling, SymbolicUint8InputGivesAFloat32SymbolicOutput) {
  const Tensor in = Input({28, 28, 1}, DType::kUInt8);
  const Tensor y = layers::Rescaling(1.0 / 255)(in);
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 28, 28, 1}));
}

// A LayerCase for Rescaling(scale, offset) on `input`, with `mask` when given.
testing::LayerCase rescaling_case(const std::string& label, double scale, double offset, Tensor input, Tensor mask = {}) {
  testing::LayerCase c;
  c.label = label;
  c.make = [scale, offset] { return LayerRef(layers::Rescaling(scale, offset)); };
  c.inputs = {std::move(input)};
  if (mask.defined()) {
    c.masks = {mask};
    c.output_has_mask = true;
    c.expected_output_mask = mask;
  }
  return c;
}

TEST(Rescaling, LayerContractOnBytesAndOnFloats) {
  const Tensor bytes = Tensor::from_vector(std::vector<uint8_t>{0, 7, 200, 255, 3, 9}, {2, 3});
  EXPECT_TRUE(check_layer_contract(rescaling_case("Rescaling(uint8)", 1.0 / 255, 0.0, bytes)));
  EXPECT_TRUE(check_layer_contract(rescaling_case("Rescaling(float32)", 0.25, -2.0, Tensor::randn({3, 4}, 5))));
  EXPECT_TRUE(check_layer_contract(rescaling_case("Rescaling(masked)", 2.0, 0.0, Tensor::randn({2, 3, 4}, 6),
                                                  Tensor::from_vector(std::vector<float>{1, 1, 0, 1, 0, 0}, {2, 3}))));
}

TEST(Rescaling, ConfigRoundTripKeepsScaleOffsetAndName) {
  auto layer = layers::Rescaling(1.0 / 255, 0.5).name("pixels");
  const Config c = layer->get_config();
  EXPECT_EQ(c["scale"].get<double>(), 1.0 / 255);
  EXPECT_EQ(c["offset"].get<double>(), 0.5);
  const auto copy = layers::from_config(Config{{"class_name", "Rescaling"}, {"config", c}});
  EXPECT_EQ(copy->class_name(), "Rescaling");
  EXPECT_EQ(copy->name(), "pixels");
  EXPECT_EQ(copy->get_config(), c);
  // Keras writes offset; a config without it means 0.
  const auto plain = layers::from_config(Config{{"class_name", "Rescaling"}, {"config", {{"scale", 2.0}}}});
  EXPECT_EQ(dynamic_cast<const layers::RescalingLayer&>(*plain).offset, 0.0);
}

TEST(Rescaling, GradientIsScaleForFloat64) {
  layers::RescalingLayer layer(0.37, -1.25);
  EXPECT_TRUE(gradcheck_layer(layer, {Tensor::randn({3, 4}, 11, DType::kFloat64)}, {}));
}

TEST(Rescaling, SummaryShowsAFloatRowWithoutParameters) {
  const Tensor in = Input({4}, DType::kUInt8);
  const Tensor h = layers::Rescaling(1.0 / 255).name("rescale")(in);
  Model model({in}, {layers::Dense(2)(h)});
  const std::string text = model.summary_string();
  EXPECT_NE(text.find("rescale (Rescaling)"), std::string::npos) << text;
  EXPECT_NE(text.find("Total params: 10"), std::string::npos) << text;
}

TEST(Rescaling, RejectsNonFiniteArgumentsAndBadConfigs) {
  expect_throw_with<ValueError>([] { (void)layers::Rescaling(std::nan("")); }, {"Rescaling", "finite", "nan"});
  expect_throw_with<ValueError>([] { (void)layers::Rescaling(1.0, INFINITY); }, {"offset = inf"});
  expect_throw_with<ValueError>(
      [] { (void)layers::from_config(Config{{"class_name", "Rescaling"}, {"config", {{"scale", "x"}}}}); },
      {"Rescaling config", "scale", "\"x\""});
}

TEST(Rescaling, Uint8WithoutRescalingIsATypeErrorAtModelBuild) {
  const Tensor in = Input({4}, DType::kUInt8);
  expect_throw_with<TypeError>([&] { (void)layers::Dense(2)(in); },
                               {"uint8", "storage dtype", "ops::cast", "layers::Rescaling"});
}

}  // namespace
}  // namespace normnet

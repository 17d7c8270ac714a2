// The layer contract (STYLE.md, Keras's layer_test) over every built-in layer and a custom one:
// output shape = symbolic shape, config round trip through layers::from_config, masking,
// gradients reaching the weights.
#include <set>

#include <gtest/gtest.h>

#include "normnet/layers.h"
#include "normnet/ops.h"
#include "support/layer_harness.h"

namespace normnet {
namespace {

using testing::LayerCase;

Tensor fv(std::vector<float> v, Shape s) { return Tensor::from_vector(v, std::move(s)); }

const Tensor kSeqMask = fv({1, 1, 0, 1, 0, 0}, {2, 3});  // for [2, 3, C] inputs

// A custom layer with masking support, registered for from_config.
class Scale : public Layer {
 public:
  explicit Scale(double init = 1.0) : Layer("ContractScale"), init_(init) { set_supports_masking(true); }
  void build(const std::vector<Shape>& shapes) override {
    gamma_ = add_weight("gamma", {shapes[0].back()}, initializers::Constant(init_));
  }
  Tensor call(const Tensor& x, const CallArgs&) override { return x * gamma_; }
  Config get_config() const override {
    Config c = Layer::get_config();
    c["init"] = init_;
    return c;
  }

 private:
  double init_;
  Tensor gamma_;
};

std::vector<LayerCase> all_cases() {
  layers::register_lambda("contract_square", [](const Tensor& x) { return ops::square(x); },
                          [](const Tensor&, const Tensor& m) { return m; });
  layers::register_class("ContractScale", [](const Config& c) {
    auto layer = std::make_shared<Scale>(c.value("init", 1.0));
    layer->set_name(c.at("name").get<std::string>());
    return layer;
  });
  const Tensor seq = Tensor::randn({2, 3, 4}, 1);
  const Tensor image = Tensor::randn({2, 7, 7, 3}, 2);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 1, 0, 7, 0, 0}, {2, 3});
  std::vector<LayerCase> cases;
  auto add = [&](std::string label, std::function<LayerRef()> make, std::vector<Tensor> inputs,
                 std::vector<Tensor> masks = {}, bool out_mask = false, Tensor expected = Tensor()) {
    LayerCase c;
    c.label = std::move(label);
    c.make = std::move(make);
    c.inputs = std::move(inputs);
    c.masks = std::move(masks);
    c.output_has_mask = out_mask;
    c.expected_output_mask = expected;
    cases.push_back(c);
  };
  add("Dense", [] { return LayerRef(layers::Dense(3)); }, {Tensor::randn({2, 4}, 3)});
  add("Dense/options+mask",
      [] {
        return LayerRef(layers::Dense(5)
                            .activation("relu")
                            .use_bias(false)
                            .kernel_initializer("he_normal")
                            .kernel_regularizer(regularizers::L2(0.01))
                            .activity_regularizer(regularizers::L1(0.1)));
      },
      {seq}, {kSeqMask}, true, kSeqMask);
  add("Dense/float64", [] { return LayerRef(layers::Dense(2).dtype(DType::kFloat64)); }, {Tensor::randn({2, 4}, 3)});
  add("Activation", [] { return LayerRef(layers::Activation("softmax")); }, {seq}, {kSeqMask}, true, kSeqMask);
  add("Flatten", [] { return LayerRef(layers::Flatten()); }, {seq}, {kSeqMask}, false);
  add("Reshape", [] { return LayerRef(layers::Reshape({2, -1})); }, {seq});
  add("Dropout", [] { return LayerRef(layers::Dropout(0.3).seed(5)); }, {seq}, {kSeqMask}, true, kSeqMask);
  add("Conv2D", [] { return LayerRef(layers::Conv2D(4, {3, 3}).padding("same").strides({2, 2}).activation("relu")); },
      {image});
  add("Conv2D/valid", [] { return LayerRef(layers::Conv2D(2, {2, 3}).use_bias(false).bias_regularizer(regularizers::L1())); },
      {image});
  add("MaxPooling2D", [] { return LayerRef(layers::MaxPooling2D({2, 2})); }, {image});
  add("AveragePooling2D", [] { return LayerRef(layers::AveragePooling2D({3, 3}).strides({2, 2}).padding("same")); },
      {image});
  add("GlobalAveragePooling2D", [] { return LayerRef(layers::GlobalAveragePooling2D().keepdims(true)); }, {image});
  add("Embedding", [] { return LayerRef(layers::Embedding(10, 4)); }, {ids});
  add("Embedding/mask_zero", [] { return LayerRef(layers::Embedding(10, 4).mask_zero(true)); }, {ids}, {}, true,
      fv({1, 1, 0, 1, 0, 0}, {2, 3}));
  add("Masking", [] { return LayerRef(layers::Masking(0.0)); }, {fv({1, 2, 0, 0, 3, 0, 0, 0, 0, 0, 5, 5}, {2, 3, 2})},
      {}, true, fv({1, 0, 1, 0, 0, 1}, {2, 3}));
  add("GlobalAveragePooling1D", [] { return LayerRef(layers::GlobalAveragePooling1D()); }, {seq}, {kSeqMask}, false);
  add("GlobalAveragePooling1D/keepdims", [] { return LayerRef(layers::GlobalAveragePooling1D().keepdims(true)); }, {seq});
  add("L2Normalization", [] { return LayerRef(layers::L2Normalization()); }, {seq}, {kSeqMask}, true, kSeqMask);
  add("L2Normalization/options",
      [] {
        return LayerRef(
            layers::L2Normalization().axis({1, 2}).epsilon(1e-6).mode(EpsilonMode::kTensorFlow).learnable_scale(20.0));
      },
      {image});
  add("L2Normalization/scalar", [] { return LayerRef(layers::L2Normalization().all_axes().learnable_scale(2.0, false)); },
      {image});
  add("UnitNormalization", [] { return LayerRef(layers::UnitNormalization().mode("pytorch")); }, {seq}, {kSeqMask}, true,
      kSeqMask);
  add("ActivityRegularization", [] { return LayerRef(layers::ActivityRegularization(0.01, 0.02)); }, {seq}, {kSeqMask},
      true, kSeqMask);
  add("Lambda", [] { return LayerRef(layers::Lambda::from_registry("contract_square")); }, {seq}, {kSeqMask}, true,
      kSeqMask);
  add("Concatenate", [] { return LayerRef(layers::Concatenate()); }, {seq, Tensor::randn({2, 3, 2}, 4)}, {kSeqMask},
      true, kSeqMask);
  add("Concatenate/time", [] { return LayerRef(layers::Concatenate(1)); }, {seq, Tensor::randn({2, 5, 4}, 5)});
  add("Add", [] { return LayerRef(layers::Add()); }, {seq, Tensor::randn({2, 3, 4}, 6)}, {kSeqMask, kSeqMask}, true,
      kSeqMask);
  add("custom ContractScale", [] { return LayerRef(make_layer<Scale>(0.5)); }, {seq}, {kSeqMask}, true, kSeqMask);
  return cases;
}

TEST(LayerContract, EveryLayer) {
  for (const LayerCase& c : all_cases()) {
    SCOPED_TRACE(c.label);
    EXPECT_TRUE(testing::check_layer_contract(c));
  }
}

// Every class the registry knows at start-up has a case above.
TEST(LayerContract, EveryRegisteredBuiltinIsCovered) {
  std::set<std::string> covered;
  for (const LayerCase& c : all_cases()) covered.insert(c.make()->class_name());
  for (const char* name : {"Dense", "Activation", "Flatten", "Reshape", "Dropout", "Lambda", "Conv2D", "MaxPooling2D",
                           "AveragePooling2D", "GlobalAveragePooling2D", "Embedding", "Masking",
                           "GlobalAveragePooling1D", "L2Normalization", "UnitNormalization", "ActivityRegularization",
                           "Concatenate", "Add"}) {
    EXPECT_TRUE(layers::is_registered_class(name)) << name;
    EXPECT_TRUE(covered.count(name)) << name << " has no contract case";
  }
}

// The harness itself fails when a layer breaks the contract.
TEST(LayerContract, HarnessCatchesBrokenLayers) {
  (void)all_cases();  // registers ContractScale
  LayerCase wrong_mask;
  wrong_mask.label = "wrong mask";
  wrong_mask.make = [] { return LayerRef(layers::Dense(2)); };
  wrong_mask.inputs = {Tensor::randn({2, 3, 4}, 1)};
  wrong_mask.masks = {kSeqMask};
  wrong_mask.output_has_mask = true;
  wrong_mask.expected_output_mask = fv({1, 1, 1, 1, 1, 1}, {2, 3});
  EXPECT_FALSE(testing::check_layer_contract(wrong_mask));
  wrong_mask.output_has_mask = false;
  EXPECT_FALSE(testing::check_layer_contract(wrong_mask));

  LayerCase lossy;
  lossy.label = "lossy config";
  lossy.make = [] { return LayerRef(make_layer<Scale>(0.5)); };
  lossy.inputs = {Tensor::randn({2, 4}, 1)};
  EXPECT_TRUE(testing::check_layer_contract(lossy));
  layers::register_class("ContractScale", [](const Config& c) {
    auto layer = std::make_shared<Scale>();  // forgets "init"
    layer->set_name(c.at("name").get<std::string>());
    return layer;
  });
  EXPECT_FALSE(testing::check_layer_contract(lossy));
  (void)all_cases();  // restores the faithful factory
}

// A custom layer that overrides neither call nor call_multi: calling it is an error naming the
// class, the layer and what to override (Layer::call's default).
class NoCall : public Layer {
 public:
  NoCall() : Layer("NoCall") { set_name("forgetful"); }
};

TEST(LayerContract, LayerWithoutCallSaysWhatToOverride) {
  NoCall layer;
  try {
    (void)layer(Tensor::randn({2, 3}, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("NoCall 'forgetful'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("override call or call_multi"), std::string::npos) << msg;
  }
}

TEST(LayerContract, UnknownClassNamesTheClassAndLayer) {
  try {
    (void)layers::from_config({{"class_name", "Dense2"}, {"config", {{"name", "mystery"}}}});
    FAIL() << "no error";
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'Dense2'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'mystery'"), std::string::npos) << msg;
  }
  EXPECT_THROW((void)layers::from_config({{"config", {}}}), ValueError);
  EXPECT_THROW((void)layers::from_config({{"class_name", "Dense"}, {"config", {{"name", "d"}}}}), ValueError);
}

// Found by fuzz_config: a name of the wrong type used to escape as nlohmann's type_error while
// the error message itself was being built.
TEST(LayerContract, ConfigWithANonStringNameIsAValueError) {
  const Config bad = Config::parse(R"({"class_name": "Conv2D", "config": {"name": 2, "kernel_size": [0, 3]}})");
  try {
    (void)layers::from_config(bad);
    FAIL() << "no error";
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Conv2D '2'"), std::string::npos) << msg;
  }
  EXPECT_THROW((void)layers::from_config(Config::parse(R"({"class_name": "Nope", "config": {"name": [1]}})")),
               ValueError);
}

// Found by fuzz_config (UBSan): "filters": 2e109 went through get<int64_t>(), a float-to-integer
// conversion out of range (undefined behaviour). Integer fields now take JSON integers only.
TEST(LayerContract, IntegerFieldsRefuseFloatsAndOutOfRangeValues) {
  struct Case {
    const char* config;
    const char* message;  // a part of the ValueError's text
  };
  const Case cases[] = {
      {R"({"class_name": "Conv2D", "config": {"filters": 2e109, "kernel_size": [3, 3]}})",
       "Conv2D config 'filters' must be an integer, got 2e+109"},
      {R"({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": [3, 3.5]}})",
       "Conv2D config 'kernel_size' must be an integer, got 3.5"},
      {R"({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": [3, 3, 3]}})",
       "Conv2D config 'kernel_size' must be a pair of integers [a, b], got [3,3,3]"},
      {R"({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": [3, 3], "strides": [4294967297, 1]}})",
       "config 'strides' must be within [-2147483648, 2147483647], got 4294967297"},
      {R"({"class_name": "MaxPooling2D", "config": {"pool_size": [1e300, 2]}})", "config 'pool_size'"},
      {R"({"class_name": "Dense", "config": {"units": 3.0}})", "Dense config 'units' must be an integer, got 3.0"},
      {R"({"class_name": "Dense", "config": {"units": 18446744073709551615}})", "Dense config 'units' must be an integer"},
      {R"({"class_name": "Embedding", "config": {"input_dim": 10, "output_dim": -1e40}})",
       "Embedding config 'output_dim' must be an integer"},
      {R"({"class_name": "L2Normalization", "config": {"axis": [1, 9e99]}})", "config 'axis'"},
      {R"({"class_name": "Concatenate", "config": {"axis": -1e300}})", "Concatenate config 'axis' must be an integer"},
  };
  for (const Case& c : cases) {
    std::string got = "(no ValueError)";
    try {
      (void)layers::from_config(Config::parse(c.config));
    } catch (const ValueError& e) {
      got = e.what();
    }
    EXPECT_NE(got.find(c.message), std::string::npos) << c.config << "\n  gave: " << got;
  }
  // Integers still work.
  EXPECT_NO_THROW((void)layers::from_config(
      Config::parse(R"({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": [3, 3], "strides": [1, 1]}})")));
}

}  // namespace
}  // namespace normnet

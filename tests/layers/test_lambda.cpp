// Lambda (shape inference, gradients, several inputs/outputs, masks, the registry) and a custom
// layer by subclassing: the seed question's L2Layer, with masking, in a functional model.
#include <gtest/gtest.h>

#include "normnet/layers.h"
#include "normnet/model.h"
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

Tensor tokens(const std::vector<int64_t>& ids, Shape shape) { return Tensor::from_vector(ids, std::move(shape)); }

// ---- Lambda ----

TEST(Lambda, OutputShapeFromASymbolicRun) {
  auto sum_time = layers::Lambda([](const Tensor& x) { return ops::sum(x, {1}); });
  EXPECT_EQ(sum_time(Tensor::symbolic({kUnknownDim, 3, 4})).shape(), (Shape{kUnknownDim, 4}));
  auto l2 = layers::Lambda([](const Tensor& x) { return ops::l2_normalize(x); }).name("l2");
  EXPECT_EQ(l2.name(), "l2");
  Tensor x = Tensor::randn({2, 5}, 1);
  EXPECT_LE(max_abs_diff(l2(x), ops::l2_normalize(x)), 0.0);
  EXPECT_EQ(l2->class_name(), "Lambda");
}

TEST(Lambda, GradientFromAutograd) {
  auto f = layers::Lambda([](const Tensor& x) { return ops::l2_normalize(x) * ops::tanh(x); });
  EXPECT_TRUE(gradcheck_layer(*f, {Tensor::randn({3, 4}, 2, DType::kFloat64)}, {}));
}

TEST(Lambda, SeveralInputsAndOutputs) {
  auto prod = layers::Lambda([](const std::vector<Tensor>& xs) { return std::vector<Tensor>{xs[0] * xs[1], xs[0] + xs[1]}; });
  Tensor a = Input({3}), b = Input({3});
  std::vector<Tensor> outs = prod(std::vector<Tensor>{a, b});
  ASSERT_EQ(outs.size(), 2u);
  Model model({a, b}, outs);
  std::vector<Tensor> ys = model(std::vector<Tensor>{Tensor::full({1, 3}, 2.0), Tensor::full({1, 3}, 5.0)});
  EXPECT_EQ(ys[0].to_vector<float>(), (std::vector<float>{10, 10, 10}));
  EXPECT_EQ(ys[1].to_vector<float>(), (std::vector<float>{7, 7, 7}));
  auto single = layers::Lambda([](const Tensor& x) { return x; }).name("single");
  EXPECT_THROW((void)single(std::vector<Tensor>{Tensor::ones({1}), Tensor::ones({1})}), ShapeError);
}

TEST(Lambda, DropsAMaskWithOneWarningNamingTheLayer) {
  auto f = layers::Lambda([](const Tensor& x) { return x * 2.0; }).name("doubler");
  Tensor x = Tensor::ones({1, 3, 2});
  x.set_mask(Tensor::from_vector(std::vector<float>{1, 0, 1}, {1, 3}));
  ::testing::internal::CaptureStderr();
  Tensor y1 = f(x);
  Tensor y2 = f(x);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(y1.mask().defined());
  EXPECT_FALSE(y2.mask().defined());
  EXPECT_NE(err.find("Lambda 'doubler'"), std::string::npos) << err;
  EXPECT_NE(err.find("tensorflow#28143"), std::string::npos) << err;
  EXPECT_EQ(err.find("Lambda 'doubler'"), err.rfind("Lambda 'doubler'")) << "warned twice: " << err;
  // No mask in: no warning.
  auto quiet = layers::Lambda([](const Tensor& x) { return x; });
  ::testing::internal::CaptureStderr();
  (void)quiet(Tensor::ones({1, 2}));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(Lambda, MaskFunctionPropagatesMasks) {
  auto f = layers::Lambda([](const Tensor& x) { return ops::l2_normalize(x); })
               .mask_fn([](const Tensor&, const Tensor& mask) { return mask; });
  Tensor x = Tensor::randn({1, 3, 2}, 3);
  const Tensor mask = Tensor::from_vector(std::vector<float>{1, 0, 1}, {1, 3});
  x.set_mask(mask);
  ::testing::internal::CaptureStderr();
  Tensor y = f(x);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_TRUE(y.mask().defined());
  EXPECT_EQ(y.mask().to_vector<float>(), mask.to_vector<float>());
  // And through a model: Embedding(mask_zero) → Lambda → GlobalAveragePooling1D ignores padding.
  auto emb = layers::Embedding(10, 4).mask_zero(true);
  auto gap = layers::GlobalAveragePooling1D();
  auto model_of = [&](int64_t steps) {
    Tensor in = Input({steps}, DType::kInt64);
    return Model({in}, {gap(f(emb(in)))});
  };
  Model m3 = model_of(3), m6 = model_of(6);
  EXPECT_LE(max_abs_diff(m3(tokens({4, 2, 0}, {1, 3})), m6(tokens({4, 2, 0, 0, 0, 0}, {1, 6}))), 1e-7);
}

TEST(Lambda, RegistryMakesItSerializable) {
  layers::register_lambda("times_three", [](const Tensor& x) { return x * 3.0; });
  auto f = layers::Lambda::from_registry("times_three").name("t3");
  EXPECT_TRUE(f.registered());
  const Config c = f.get_config();
  EXPECT_EQ(c["function"], "times_three");
  auto copy = layers::from_config({{"class_name", "Lambda"}, {"config", c}});
  EXPECT_EQ(copy->name(), "t3");
  EXPECT_EQ((*copy)(Tensor::ones({1, 2})).to_vector<float>(), (std::vector<float>{3, 3}));

  auto bare = layers::Lambda([](const Tensor& x) { return x; }).name("bare");
  EXPECT_FALSE(bare.registered());
  EXPECT_TRUE(bare.get_config()["function"].is_null());
  EXPECT_EQ(bare.get_config()["registered"], false);
  const std::string msg = error_of([&] { (void)layers::from_config({{"class_name", "Lambda"}, {"config", bare.get_config()}}); });
  EXPECT_NE(msg.find("Lambda 'bare'"), std::string::npos) << msg;
  EXPECT_THROW((void)layers::Lambda::from_registry("never_registered"), ValueError);

  layers::register_lambda("pair_sum", [](const std::vector<Tensor>& xs) { return std::vector<Tensor>{xs[0] + xs[1]}; },
                          [](const std::vector<Tensor>&, const std::vector<Tensor>& masks) {
                            return std::vector<Tensor>{masks.empty() ? Tensor() : masks[0]};
                          });
  auto pair = layers::Lambda::from_registry("pair_sum");
  EXPECT_EQ(pair(std::vector<Tensor>{Tensor::ones({1, 2}), Tensor::ones({1, 2})})[0].to_vector<float>(),
            (std::vector<float>{2, 2}));
}

// A small functional model: Dense → L2Normalization(scale) → Lambda → ActivityRegularization.
// The checked function is the output and the total regularization loss, so the activity
// penalty's gradient is checked too; weights are swapped in through the layers' public fields.
TEST(Lambda, GradientThroughAModelWithL2NormalizationAndAnActivityRegularizer) {
  auto dense = layers::Dense(3).activation("tanh").dtype(DType::kFloat64);
  auto l2 = layers::L2Normalization().learnable_scale(1.0).dtype(DType::kFloat64);
  auto lambda = layers::Lambda([](const Tensor& x) { return x * ops::sigmoid(x); });
  auto act = layers::ActivityRegularization(0.0, 0.3);
  Tensor in = Input({4}, DType::kFloat64);
  Model model({in}, {act(lambda(l2(dense(in))))});
  (void)model(Tensor::zeros({1, 4}, DType::kFloat64));
  const std::vector<double> scales = {0.5, 2.0, -1.5};
  std::copy(scales.begin(), scales.end(), l2->scale.data<double>());
  const std::vector<Tensor> start = {Tensor::randn({3, 4}, 21, DType::kFloat64), dense->kernel.detach().clone(),
                                     Tensor::randn({3}, 22, DType::kFloat64), l2->scale.detach().clone()};
  const Tensor kernel = dense->kernel, bias = dense->bias, scale = l2->scale;
  auto f = [&](const std::vector<Tensor>& v) {
    dense->kernel = v[1];
    dense->bias = v[2];
    l2->scale = v[3];
    Tensor y = model(v[0]);
    Tensor penalty = Tensor::zeros({}, DType::kFloat64);
    for (const Tensor& loss : model.losses()) penalty = penalty + loss;
    return ops::concat({ops::reshape(y, {-1}), ops::reshape(penalty, {1})}, 0);
  };
  // The penalty is live: it changes with the input (so its gradient is really checked).
  ASSERT_EQ(model.losses().size(), 1u);
  const double p1 = f(start).to_vector<double>().back();
  std::vector<Tensor> moved = start;
  moved[0] = start[0] * 2.0;
  EXPECT_NE(f(moved).to_vector<double>().back(), p1);
  EXPECT_GT(p1, 0.0);
  EXPECT_TRUE(testing::gradcheck(f, start));
  dense->kernel = kernel;
  dense->bias = bias;
  l2->scale = scale;
}

// ---- a custom layer by subclassing: the seed question's L2Layer ----

// L2-normalizes along `axis`; supports masking: zero at masked steps (mask [N, T] for x
// [N, T, C]), and passes the mask on so later layers ignore those steps too.
class L2Layer : public Layer {
 public:
  explicit L2Layer(int axis = -1) : Layer("L2Layer"), axis_(axis) { set_supports_masking(true); }

  Tensor call(const Tensor& x, const CallArgs& args) override {
    Tensor y = ops::l2_normalize(x, L2NormalizeOptions().axis({axis_}));
    if (args.mask.defined()) y = y * ops::unsqueeze(ops::cast(args.mask, y.dtype()), -1);
    return y;
  }
  std::vector<Tensor> compute_mask(const std::vector<Tensor>&, const std::vector<Tensor>& masks) override {
    return {masks.empty() ? Tensor() : masks[0]};
  }
  Config get_config() const override {
    Config c = Layer::get_config();
    c["axis"] = axis_;
    return c;
  }

 private:
  int axis_;
};

TEST(CustomLayer, L2LayerWithMaskingInAFunctionalModel) {
  layers::register_class("L2Layer", [](const Config& c) {
    auto layer = std::make_shared<L2Layer>(c.value("axis", -1));
    layer->set_name(c.at("name").get<std::string>());
    return layer;
  });
  auto emb = layers::Embedding(12, 5).mask_zero(true);
  auto l2 = make_layer<L2Layer>();
  auto gap = layers::GlobalAveragePooling1D();
  auto head = layers::Dense(3);
  auto model_of = [&](int64_t steps) {
    Tensor in = Input({steps}, DType::kInt64);
    return Model({in}, {head(gap(l2(emb(in))))});
  };
  Model m4 = model_of(4), m7 = model_of(7);
  const Tensor a = m4(tokens({5, 9, 0, 0, /**/ 1, 0, 0, 0}, {2, 4}));
  const Tensor b = m7(tokens({5, 9, 0, 0, 0, 0, 0, /**/ 1, 0, 0, 0, 0, 0, 0}, {2, 7}));
  EXPECT_LE(max_abs_diff(a, b), 1e-6);
  // Same numbers as the built-in layer in its place.
  auto builtin = layers::L2Normalization();
  Tensor t = tokens({5, 9, 0, 0, 1, 0, 0, 0}, {2, 4});
  EXPECT_LE(max_abs_diff(a, head(gap(builtin(emb(t))))), 1e-6);
  // Masked steps: zero output, mask passed on.
  Tensor e = emb(t);
  Tensor y = l2(e);
  ASSERT_TRUE(y.mask().defined());
  const auto v = y.to_vector<float>();
  for (int c = 0; c < 5; ++c) EXPECT_EQ(v[2 * 5 + c], 0.0f);
  // Rebuilt from its config through the registry.
  auto copy = layers::from_config({{"class_name", "L2Layer"}, {"config", l2.get_config()}});
  EXPECT_EQ(copy->get_config(), l2.get_config());
  // And it trains: the gradient reaches the embedding table.
  emb->embeddings.zero_grad();
  ops::sum(m4(tokens({5, 9, 0, 0, 1, 0, 0, 0}, {2, 4}))).backward();
  EXPECT_TRUE(emb->embeddings.grad().defined());
}

TEST(CustomLayer, L2LayerGradient) {
  auto l2 = make_layer<L2Layer>();
  const Tensor mask = Tensor::from_vector(std::vector<float>{1, 0, 1, 1}, {2, 2});
  EXPECT_TRUE(gradcheck_layer(*l2, {Tensor::randn({2, 2, 3}, 4, DType::kFloat64)}, {}, {}, {mask}));
}

}  // namespace
}  // namespace normnet

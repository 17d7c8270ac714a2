// Functional models, Sequential, nesting, sub-models, losses and graph errors, using small
// custom layers so that these tests depend only on the Layer base.
#include <gtest/gtest.h>

#include "normnet/model.h"
#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

// y = x·W + b with W [in, units]; DType selectable so gradients can be checked in float64.
class Affine : public Layer {
 public:
  explicit Affine(int64_t units, DType dtype = DType::kFloat32) : Layer("Affine"), units_(units), dtype_(dtype) {}
  void build(const std::vector<Shape>& shapes) override {
    kernel_ = add_weight("kernel", {shapes[0].back(), units_}, initializers::GlorotUniform(), true, {}, dtype_);
    bias_ = add_weight("bias", {units_}, initializers::RandomNormal(0.0, 0.5), true, {}, dtype_);
  }
  Tensor call(const Tensor& x, const CallArgs&) override { return ops::matmul(x, kernel_) + bias_; }
  Tensor kernel_, bias_;

 private:
  int64_t units_;
  DType dtype_;
};

// Adds 0.5·Σx² as a loss from inside call (Keras's add_loss in a custom layer).
class Penalize : public Layer {
 public:
  Penalize() : Layer("Penalize") { set_supports_masking(true); }
  Tensor call(const Tensor& x, const CallArgs&) override {
    add_loss(0.5 * ops::sum(ops::square(x)));
    return x;
  }
};

class SumSquares : public Layer {
 public:
  SumSquares() : Layer("SumSquares") {}
  Tensor call(const Tensor& x, const CallArgs&) override { return ops::sum(ops::square(x)); }
};

Tensor affine_ref(const Tensor& x, const Affine& a) { return ops::matmul(x, a.kernel_) + a.bias_; }

TEST(Functional, RunsLayersInGraphOrder) {
  auto in = Input({4});
  auto a1 = make_layer<Affine>(3);
  auto a2 = make_layer<Affine>(2);
  auto h = a1(in);
  auto out = a2(h);
  EXPECT_TRUE(out.is_symbolic());
  EXPECT_EQ(out.shape(), (Shape{kUnknownDim, 2}));
  Model model({in}, {out});
  const Tensor x = Tensor::randn({5, 4}, 1);
  const Tensor y = model(x);
  EXPECT_EQ(y.shape(), (Shape{5, 2}));
  EXPECT_EQ(y.to_vector<float>(), affine_ref(affine_ref(x, *a1), *a2).to_vector<float>());
  EXPECT_EQ(model.count_params(), 4 * 3 + 3 + 3 * 2 + 2);
  EXPECT_EQ(model.layers().size(), 3u);  // InputLayer, two Affine
  EXPECT_EQ(model.layers()[0]->class_name(), "InputLayer");
}

TEST(Functional, SeveralInputsAndOutputs) {
  auto a = Input({3});
  auto b = Input({3});
  auto add = make_layer<Affine>(2);
  auto ha = add(a);
  auto hb = add(b);  // a shared layer: same weights on both inputs
  Model model({a, b}, {ha, hb});
  const Tensor xa = Tensor::randn({2, 3}, 1), xb = Tensor::randn({2, 3}, 2);
  auto ys = model(std::vector<Tensor>{xa, xb});
  ASSERT_EQ(ys.size(), 2u);
  EXPECT_EQ(ys[0].to_vector<float>(), affine_ref(xa, *add).to_vector<float>());
  EXPECT_EQ(ys[1].to_vector<float>(), affine_ref(xb, *add).to_vector<float>());
  EXPECT_EQ(model.count_params(), 3 * 2 + 2);
  EXPECT_EQ(add->inbound_node_count(), 2u);
}

TEST(Functional, NestedAutoencoderSharesWeightsWithEncoder) {
  auto x_in = Input({6});
  auto enc_layer = make_layer<Affine>(2);
  Model encoder({x_in}, {enc_layer(x_in)});
  encoder.name("encoder");
  auto code_in = Input({2});
  auto dec_layer = make_layer<Affine>(6);
  Model decoder({code_in}, {dec_layer(code_in)});
  decoder.name("decoder");
  auto ae_in = Input({6});
  Model autoencoder({ae_in}, {decoder(encoder(ae_in))});
  EXPECT_EQ(autoencoder.layers().size(), 3u);
  EXPECT_EQ(autoencoder.get_layer("encoder")->class_name(), "Functional");
  EXPECT_EQ(autoencoder.count_params(), encoder.count_params() + decoder.count_params());

  const Tensor x = Tensor::randn({3, 6}, 4);
  EXPECT_EQ(autoencoder(x).to_vector<float>(), decoder(encoder(x)).to_vector<float>());
  // Training the whole changes what the encoder computes: the weights are the same tensors.
  const auto ae_weights = autoencoder.weights();
  const auto enc_weights = encoder.weights();
  ASSERT_EQ(enc_weights.size(), 2u);
  EXPECT_TRUE(ae_weights[0].same(enc_weights[0]));
  const Tensor before = encoder(x);
  enc_layer->kernel_.data<float>()[0] += 1.0f;
  EXPECT_NE(encoder(x).to_vector<float>(), before.to_vector<float>());
  EXPECT_EQ(autoencoder(x).to_vector<float>(), decoder(encoder(x)).to_vector<float>());
}

TEST(Functional, SubModelFromIntermediateOutput) {
  auto in = Input({4});
  auto first = make_layer<Affine>(3);
  auto out = make_layer<Affine>(1)(first(in));
  Model model({in}, {out});
  Model features({in}, {model.get_layer(first.name()).output()});
  const Tensor x = Tensor::randn({2, 4}, 5);
  EXPECT_EQ(features(x).to_vector<float>(), affine_ref(x, *first).to_vector<float>());
  EXPECT_THROW((void)model.get_layer("nope"), ValueError);
}

TEST(Sequential, DeferredAndWithInput) {
  Sequential seq;
  auto a = make_layer<Affine>(3);
  auto b = make_layer<Affine>(2);
  seq.add(a).add(b);
  const Tensor x = Tensor::randn({4, 5}, 6);
  const Tensor y = seq(x);  // builds the layers
  EXPECT_EQ(y.to_vector<float>(), affine_ref(affine_ref(x, *a), *b).to_vector<float>());
  EXPECT_EQ(seq.layers().size(), 2u);
  EXPECT_EQ(seq.count_params(), 5 * 3 + 3 + 3 * 2 + 2);

  Sequential with_input;
  with_input.add(Input({5})).add(make_layer<Affine>(7));
  EXPECT_EQ(with_input.outputs()[0].shape(), (Shape{kUnknownDim, 7}));
  EXPECT_EQ(with_input.layers().size(), 1u);
}

TEST(Losses, AddLossInCallIsPerForwardPass) {
  auto in = Input({2});
  auto pen = make_layer<Penalize>();
  Model model({in}, {pen(in)});
  (void)model(Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2}));
  auto losses = model.named_losses();
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0].name, pen.name() + "/add_loss");
  EXPECT_DOUBLE_EQ(losses[0].value.item(), 0.5 * 30.0);
  (void)model(Tensor::from_vector(std::vector<float>{1, 1}, {1, 2}));
  ASSERT_EQ(model.losses().size(), 1u);  // replaced, not accumulated
  EXPECT_DOUBLE_EQ(model.losses()[0].item(), 1.0);
}

TEST(Losses, ActivityRegularizerIsDividedByBatch) {
  auto in = Input({2});
  auto layer = make_layer<Affine>(2);
  layer->set_activity_regularizer(Regularizer([](const Tensor& h) { return ops::sum(ops::square(h)); }));
  Model model({in}, {layer(in)});
  const Tensor x = Tensor::randn({4, 2}, 7);
  const Tensor y = model(x);
  ASSERT_EQ(model.losses().size(), 1u);
  EXPECT_NEAR(model.losses()[0].item(), ops::sum(ops::square(y)).item() / 4.0, 1e-5);
}

TEST(Losses, ModelAddLossOfSymbolicTensor) {
  auto in = Input({3});
  auto layer = make_layer<Affine>(2);
  auto h = layer(in);
  Model model({in}, {h});
  model.add_loss(make_layer<SumSquares>()(h), "h_penalty");
  const Tensor x = Tensor::randn({2, 3}, 8);
  const Tensor y = model(x);
  auto losses = model.named_losses();
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_NE(losses[0].name.find("h_penalty"), std::string::npos);
  EXPECT_NEAR(losses[0].value.item(), ops::sum(ops::square(y)).item(), 1e-5);
  EXPECT_THROW(model.add_loss(Tensor::zeros({})), ValueError);
}

TEST(Errors, GraphMistakesAreNamed) {
  auto in = Input({3});
  auto other = Input({3});
  auto layer = make_layer<Affine>(2);
  auto out = layer(ops::concat({in, other}, 0));
  EXPECT_THROW(Model({in}, {out}), ValueError);  // raw op on symbolic tensors: not a layer
  auto out2 = make_layer<Affine>(2)(other);
  try {
    Model({in}, {out2});
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("not among the model's inputs"), std::string::npos);
  }
  Model ok({in}, {layer(in)});
  try {
    (void)ok(Tensor::zeros({2, 4}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("expects shape [None, 3], got [2, 4]"), std::string::npos) << e.what();
  }
  auto x = make_layer<Affine>(2);
  x->set_name("dup");
  auto y = make_layer<Affine>(2);
  y->set_name("dup");
  EXPECT_THROW(Model({in}, {y(x(in))}), ValueError);
}

TEST(Trainable, FreezingMovesWeightsToNonTrainable) {
  auto in = Input({3});
  auto layer = make_layer<Affine>(2);
  Model model({in}, {layer(in)});
  EXPECT_EQ(model.trainable_weights().size(), 2u);
  layer->set_trainable(false);
  EXPECT_EQ(model.trainable_weights().size(), 0u);
  EXPECT_EQ(model.non_trainable_weights().size(), 2u);
  EXPECT_FALSE(layer->kernel_.requires_grad());
}

TEST(ModelGrad, WholeModelGradientMatchesFiniteDifferences) {
  auto in = Input({3}, DType::kFloat64);
  auto a = make_layer<Affine>(4, DType::kFloat64);
  auto b = make_layer<Affine>(2, DType::kFloat64);
  Model model({in}, {b(a(in))});
  // Gradient with respect to the input through the whole graph.
  EXPECT_TRUE(testing::gradcheck([&](const std::vector<Tensor>& v) { return ops::tanh(model(v[0])); },
                                 {Tensor::randn({2, 3}, 9, DType::kFloat64)}));
  // Gradient with respect to a weight: the model reads the weight tensor itself.
  const Tensor x = Tensor::randn({2, 3}, 10, DType::kFloat64);
  a->kernel_.zero_grad();  // the check above accumulated into the weights' gradients too
  Tensor y = ops::sum(ops::square(model(x)));
  y.backward();
  const Tensor g = a->kernel_.grad();
  ASSERT_TRUE(g.defined());
  const double h = 1e-6;
  double* w = a->kernel_.data<double>();
  const double w0 = w[1];
  NoGradGuard guard;
  w[1] = w0 + h;
  const double plus = ops::sum(ops::square(model(x))).item();
  w[1] = w0 - h;
  const double minus = ops::sum(ops::square(model(x))).item();
  w[1] = w0;
  EXPECT_NEAR(g.to_vector<double>()[1], (plus - minus) / (2 * h), 1e-6);
}

}  // namespace
}  // namespace normnet

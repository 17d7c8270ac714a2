// Layer fusion in functional and Sequential models: a Conv2D(relu) read only by a MaxPooling2D
// runs as ops::conv2d_relu_max_pool2d, with the values and gradients of the two layers; every
// case that must not fuse (other readers, model outputs, activity regularizers, other
// activations, average pooling, custom subclasses) runs the layers; inputs that do not qualify
// at run time fall back to the layers, with the layers' own error messages.
#include <gtest/gtest.h>

#include <bit>
#include <string>

#include "autograd/node.h"
#include "normnet/model.h"
#include "normnet/normnet.h"

namespace normnet {
namespace {

using layers::Conv2D;
using layers::MaxPooling2D;

// The op that produced t in a recorded forward pass.
std::string op_of(const Tensor& t) { return t.impl()->grad_fn ? t.impl()->grad_fn->op : "(none)"; }

std::vector<uint32_t> bits_of(const Tensor& t) {
  std::vector<uint32_t> out;
  for (float v : t.to_vector<float>()) out.push_back(std::bit_cast<uint32_t>(v));
  return out;
}

TEST(LayerFusion, SequentialConvReluPoolRunsFusedWithTheLayersValuesAndGradients) {
  Conv2D conv(8, {3, 3});
  conv.activation("relu");
  layers::Dense dense(4);
  Sequential model;
  model.add(Input({10, 10, 3})).add(conv).add(MaxPooling2D({2, 2})).add(layers::Flatten()).add(dense);
  const Tensor x = Tensor::randn({3, 10, 10, 3}, 1);

  const Tensor y = model(x, /*training=*/true);
  ops::sum(ops::square(y)).backward();
  const Tensor dk = conv->kernel.grad().clone(), db = conv->bias.grad().clone();
  conv->kernel.zero_grad();
  conv->bias.zero_grad();

  // The same network spelled out with the layers' weights and unfused ops.
  const Tensor h = ops::max_pool2d(ops::conv2d_relu(x, conv->kernel, conv->bias), {2, 2});
  const Tensor ref = ops::linear(ops::reshape(h, {3, 4 * 4 * 8}), dense->kernel, dense->bias);
  EXPECT_EQ(bits_of(y), bits_of(ref));
  ops::sum(ops::square(ref)).backward();
  EXPECT_EQ(bits_of(dk), bits_of(conv->kernel.grad()));
  const auto a = db.to_vector<float>(), b = conv->bias.grad().to_vector<float>();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6 * (1.0 + std::abs(b[i])));

  // Inference gives the same values too.
  EXPECT_EQ(bits_of(model(x)), bits_of(ref));
}

TEST(LayerFusion, TheFusedOpRecordsThePair) {
  auto in = Input({9, 9, 2});
  auto conv = Conv2D(4, {2, 2}).activation("relu");
  auto out = MaxPooling2D({2, 2})(conv(in));
  Model model({in}, {out});
  const Tensor x = Tensor::randn({2, 9, 9, 2}, 2);
  EXPECT_EQ(op_of(model(x, true)), "ops::conv2d_relu_max_pool2d");
  EXPECT_EQ(bits_of(model(x, true)), bits_of(ops::max_pool2d(ops::conv2d_relu(x, conv->kernel, conv->bias), {2, 2})));
}

TEST(LayerFusion, PairsThatMustNotFuseRunTheLayers) {
  const Tensor x = Tensor::randn({2, 9, 9, 2}, 3);
  {  // the convolution's output is also a model output
    auto in = Input({9, 9, 2});
    auto h = Conv2D(4, {2, 2}).activation("relu")(in);
    Model model({in}, {MaxPooling2D({2, 2})(h), h});
    const auto outs = model(std::vector<Tensor>{x}, true);
    EXPECT_EQ(op_of(outs[0]), "ops::max_pool2d");
    EXPECT_EQ(op_of(outs[1]), "ops::conv2d_relu");
  }
  {  // another layer reads it too
    auto in = Input({9, 9, 2});
    auto h = Conv2D(4, {2, 2}).activation("relu")(in);
    auto a = layers::Flatten()(MaxPooling2D({2, 2})(h));
    auto b = layers::Flatten()(layers::AveragePooling2D({2, 2})(h));
    Model model({in}, {layers::Concatenate()(std::vector<Tensor>{a, b})[0]});
    const Tensor y = model(x, true);
    EXPECT_EQ(op_of(y), "ops::concat");
    EXPECT_EQ(op_of(Tensor(y.impl()->grad_fn->inputs[0].impl()->grad_fn->inputs[0].impl())), "ops::max_pool2d");
  }
  {  // an activity regularizer needs the convolution's own output
    auto in = Input({9, 9, 2});
    auto out = MaxPooling2D({2, 2})(Conv2D(4, {2, 2}).activation("relu").activity_regularizer(regularizers::L2(0.1))(in));
    Model model({in}, {out});
    EXPECT_EQ(op_of(model(x, true)), "ops::max_pool2d");
  }
  {  // no ReLU, or average pooling
    auto in = Input({9, 9, 2});
    Model tanh_model({in}, {MaxPooling2D({2, 2})(Conv2D(4, {2, 2}).activation("tanh")(in))});
    EXPECT_EQ(op_of(tanh_model(x, true)), "ops::max_pool2d");
    Model avg_model({in}, {layers::AveragePooling2D({2, 2})(Conv2D(4, {2, 2}).activation("relu")(in))});
    EXPECT_EQ(op_of(avg_model(x, true)), "ops::avg_pool2d");
  }
}

TEST(LayerFusion, InputsThatDoNotQualifyAtRunTimeFallBackToTheLayers) {
  // float64 images into a float32 Conv2D: the layer casts them, so the pair runs unfused, with
  // the same values as the layers.
  auto in = Input({8, 8, 1}, DType::kFloat64);
  auto conv = Conv2D(2, {3, 3}).activation("relu");
  Model model({in}, {MaxPooling2D({2, 2})(conv(in))});
  const Tensor x64 = Tensor::randn({1, 8, 8, 1}, 6, DType::kFloat64);
  const Tensor y = model(x64, true);
  EXPECT_EQ(op_of(y), "ops::max_pool2d");
  EXPECT_EQ(bits_of(y), bits_of(ops::max_pool2d(ops::conv2d_relu(x64.to(DType::kFloat32), conv->kernel, conv->bias),
                                                {2, 2})));
}

}  // namespace
}  // namespace normnet

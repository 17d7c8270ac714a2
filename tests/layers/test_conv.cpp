// Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D: Keras's parameter counts and
// output shapes, values against hand computation and a naive loop, float64 gradient checks,
// errors that name the layer and the shapes.
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

// x [1, 3, 3, 1] = 1..9 row-major.
Tensor nine() { return ops::reshape(Tensor::arange(1, 10, 1), {1, 3, 3, 1}); }

// Naive valid convolution, stride 1: y[n,i,j,f] = Σ x[n,i+a,j+b,c]·k[a,b,c,f] + bias[f].
std::vector<double> naive_conv(const Tensor& x, const Tensor& k, const Tensor& bias) {
  const auto X = x.to_vector<double>(), K = k.to_vector<double>(), B = bias.to_vector<double>();
  const int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t kh = k.size(0), kw = k.size(1), F = k.size(3);
  const int64_t Ho = H - kh + 1, Wo = W - kw + 1;
  std::vector<double> y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < Ho; ++i)
      for (int64_t j = 0; j < Wo; ++j)
        for (int64_t f = 0; f < F; ++f) {
          double acc = B[f];
          for (int64_t a = 0; a < kh; ++a)
            for (int64_t b = 0; b < kw; ++b)
              for (int64_t c = 0; c < C; ++c)
                acc += X[((n * H + i + a) * W + j + b) * C + c] * K[((a * kw + b) * C + c) * F + f];
          y.push_back(acc);
        }
  return y;
}

// ---- Conv2D ----

TEST(Conv2D, ParamCountAndShapeMatchKeras) {
  auto conv = layers::Conv2D(32, {3, 3});
  Tensor y = conv(Tensor::symbolic({kUnknownDim, 28, 28, 1}));
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 26, 26, 32}));
  EXPECT_EQ(conv.count_params(), 320);
  EXPECT_EQ(conv->kernel.shape(), (Shape{3, 3, 1, 32}));  // Keras's [kh, kw, Cin, filters]
  auto same = layers::Conv2D(64, {3, 3}).padding("same").strides({2, 2});
  EXPECT_EQ(same(Tensor::symbolic({kUnknownDim, 28, 28, 32})).shape(), (Shape{kUnknownDim, 14, 14, 64}));
  EXPECT_EQ(same.count_params(), 3 * 3 * 32 * 64 + 64);
}

TEST(Conv2D, KerasDefaultsInConfig) {
  auto conv = layers::Conv2D(4, {3, 2});
  const Config c = conv.get_config();
  EXPECT_EQ(c["filters"], 4);
  EXPECT_EQ(c["kernel_size"], (std::vector<int>{3, 2}));
  EXPECT_EQ(c["strides"], (std::vector<int>{1, 1}));
  EXPECT_EQ(c["padding"], "valid");
  EXPECT_EQ(c["data_format"], "channels_last");
  EXPECT_EQ(c["activation"], "linear");
  EXPECT_EQ(c["use_bias"], true);
  EXPECT_EQ(c["kernel_initializer"]["class_name"], "GlorotUniform");
  EXPECT_EQ(c["bias_initializer"]["class_name"], "Zeros");
}

TEST(Conv2D, ValuesByHand) {
  auto conv = layers::Conv2D(1, {2, 2});
  (void)conv(nine());
  std::fill_n(conv->kernel.data<float>(), 4, 1.0f);
  conv->bias.data<float>()[0] = 0.5f;
  // 2×2 window sums of [[1,2,3],[4,5,6],[7,8,9]]: 12, 16, 24, 28
  EXPECT_EQ(conv(nine()).to_vector<float>(), (std::vector<float>{12.5f, 16.5f, 24.5f, 28.5f}));

  // "same": TensorFlow pads the extra row/column at the bottom/right.
  auto same = layers::Conv2D(1, {2, 2}).padding("same").kernel_initializer("ones");
  Tensor y = same(nine());
  ASSERT_EQ(y.shape(), (Shape{1, 3, 3, 1}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{12, 16, 9, 24, 28, 15, 15, 17, 9}));

  auto strided = layers::Conv2D(1, {2, 2}).strides({2, 2}).kernel_initializer("ones").activation("relu");
  EXPECT_EQ(strided(nine()).to_vector<float>(), (std::vector<float>{12.0f}));
}

// activation "relu" goes through ops::conv2d_relu: the same values as relu after the layer.
TEST(Conv2D, ReluActivationEqualsReluAfterALinearConv) {
  auto relu = layers::Conv2D(5, {3, 3}).activation("relu").bias_initializer("random_normal");
  Tensor x = Tensor::randn({2, 7, 6, 3}, 12);
  const Tensor y = relu(x);
  const Tensor want = ops::relu(ops::conv2d(x, relu->kernel, relu->bias));
  EXPECT_EQ(y.to_vector<float>(), want.to_vector<float>());
  auto f64 = layers::Conv2D(2, {2, 2}).activation("relu").bias_initializer("random_normal").dtype(DType::kFloat64);
  EXPECT_TRUE(gradcheck_layer(*f64, {Tensor::randn({2, 4, 4, 3}, 13, DType::kFloat64)}, {&f64->kernel, &f64->bias}));
}

TEST(Conv2D, ManyChannelsMatchANaiveLoop) {
  auto conv = layers::Conv2D(3, {2, 3}).bias_initializer("random_normal");
  Tensor x = Tensor::randn({2, 5, 6, 4}, 9);
  Tensor y = conv(x);
  ASSERT_EQ(y.shape(), (Shape{2, 4, 4, 3}));
  const auto expected = naive_conv(x, conv->kernel, conv->bias);
  const auto got = y.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-5) << i;
}

TEST(Conv2D, GradientMatchesFiniteDifferences) {
  auto conv = layers::Conv2D(2, {2, 2}).activation("tanh").dtype(DType::kFloat64);
  EXPECT_TRUE(gradcheck_layer(*conv, {Tensor::randn({2, 4, 4, 3}, 5, DType::kFloat64)}, {&conv->kernel, &conv->bias}));
  auto same = layers::Conv2D(2, {3, 3}).padding("same").strides({2, 2}).dtype(DType::kFloat64);
  EXPECT_TRUE(gradcheck_layer(*same, {Tensor::randn({1, 5, 5, 2}, 6, DType::kFloat64)}, {&same->kernel, &same->bias}));
}

TEST(Conv2D, ErrorsNameLayerAndShapes) {
  EXPECT_THROW(layers::Conv2D(0, {3, 3}), ValueError);
  EXPECT_THROW(layers::Conv2D(8, {0, 3}), ValueError);
  EXPECT_THROW(layers::Conv2D(8, {3, 3}).padding("full"), ValueError);
  EXPECT_THROW(layers::Conv2D(8, {3, 3}).strides({1, 0}), ValueError);

  auto flat = layers::Conv2D(8, {3, 3}).name("c1");
  EXPECT_EQ(error_of([&] { (void)flat(Tensor::symbolic({kUnknownDim, 28, 28})); }),
            "Conv2D 'c1': expected an input of rank 4 [batch, height, width, channels], got shape [None, 28, 28]");

  auto conv = layers::Conv2D(8, {3, 3}).name("c2");
  (void)conv(Tensor::symbolic({kUnknownDim, 28, 28, 1}));
  const std::string msg = error_of([&] { (void)conv(Tensor::zeros({2, 28, 28, 3})); });
  EXPECT_NE(msg.find("Conv2D 'c2'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 28, 28, 3]"), std::string::npos) << msg;

  auto big = layers::Conv2D(8, {5, 5}).name("c3");
  const std::string small = error_of([&] { (void)big(Tensor::symbolic({kUnknownDim, 4, 4, 1})); });
  EXPECT_NE(small.find("Conv2D 'c3'"), std::string::npos) << small;
  EXPECT_NE(small.find("[None, 4, 4, 1]"), std::string::npos) << small;
}

// ---- pooling ----

TEST(MaxPooling2D, ValuesAndKerasDefaults) {
  auto pool = layers::MaxPooling2D({2, 2});
  Tensor x = ops::reshape(Tensor::arange(16), {1, 4, 4, 1});
  EXPECT_EQ(pool(x).to_vector<float>(), (std::vector<float>{5, 7, 13, 15}));
  const Config c = pool.get_config();
  EXPECT_EQ(c["pool_size"], (std::vector<int>{2, 2}));
  EXPECT_EQ(c["strides"], (std::vector<int>{2, 2}));  // Keras: strides default to pool_size
  EXPECT_EQ(c["padding"], "valid");
  EXPECT_EQ(layers::MaxPooling2D()(Tensor::symbolic({kUnknownDim, 26, 26, 32})).shape(),
            (Shape{kUnknownDim, 13, 13, 32}));
  EXPECT_EQ(layers::MaxPooling2D({2, 2}).padding("same")(Tensor::symbolic({kUnknownDim, 5, 5, 3})).shape(),
            (Shape{kUnknownDim, 3, 3, 3}));
  EXPECT_EQ(layers::MaxPooling2D({3, 3}).strides({1, 1})(Tensor::symbolic({kUnknownDim, 5, 5, 3})).shape(),
            (Shape{kUnknownDim, 3, 3, 3}));
  EXPECT_EQ(pool.count_params(), 0);
}

TEST(AveragePooling2D, Values) {
  auto pool = layers::AveragePooling2D({2, 2});
  Tensor x = ops::reshape(Tensor::arange(16), {1, 4, 4, 1});
  EXPECT_EQ(pool(x).to_vector<float>(), (std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f}));
  // "same" on 3×3: the edge windows average only their real elements (Keras).
  auto same = layers::AveragePooling2D({2, 2}).padding("same");
  EXPECT_EQ(same(nine()).to_vector<float>(), (std::vector<float>{3, 4.5f, 7.5f, 9}));
}

TEST(Pooling2D, GradientsMatchFiniteDifferences) {
  auto max_pool = layers::MaxPooling2D({2, 2});
  EXPECT_TRUE(gradcheck_layer(*max_pool, {Tensor::randn({2, 4, 4, 3}, 3, DType::kFloat64)}, {}));
  auto avg_pool = layers::AveragePooling2D({3, 3}).strides({2, 2}).padding("same");
  EXPECT_TRUE(gradcheck_layer(*avg_pool, {Tensor::randn({1, 5, 5, 2}, 4, DType::kFloat64)}, {}));
}

TEST(Pooling2D, ErrorsNameLayerAndShapes) {
  EXPECT_THROW(layers::MaxPooling2D({0, 2}), ValueError);
  EXPECT_THROW(layers::AveragePooling2D({2, 2}).padding("causal"), ValueError);
  auto pool = layers::MaxPooling2D({2, 2}).name("p");
  EXPECT_EQ(error_of([&] { (void)pool(Tensor::zeros({2, 8, 8})); }),
            "MaxPooling2D 'p': expected an input of rank 4 [batch, height, width, channels], got shape [2, 8, 8]");
}

TEST(GlobalAveragePooling2D, MeanOverHeightAndWidth) {
  auto gap = layers::GlobalAveragePooling2D();
  Tensor x = ops::reshape(Tensor::arange(8), {1, 2, 2, 2});  // channel 0: 0,2,4,6; channel 1: 1,3,5,7
  EXPECT_EQ(gap(x).to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_EQ(gap(Tensor::symbolic({kUnknownDim, 7, 7, 16})).shape(), (Shape{kUnknownDim, 16}));
  EXPECT_EQ(layers::GlobalAveragePooling2D().keepdims(true)(x).shape(), (Shape{1, 1, 1, 2}));
  auto g = layers::GlobalAveragePooling2D();
  EXPECT_TRUE(gradcheck_layer(*g, {Tensor::randn({2, 3, 3, 2}, 8, DType::kFloat64)}, {}));
}

}  // namespace
}  // namespace normnet

// zoo::fashion_cnn: Keras's mnist_cnn layout and parameter counts, the scaled unit-norm embedding,
// the activity penalty term, option validation, and that one Adam step lowers the loss.
#include <gtest/gtest.h>

#include <cmath>

#include "normnet/initializers.h"
#include "normnet/ops.h"
#include "normnet/zoo.h"
#include "support/expect_throw.h"

namespace normnet {
namespace {

Tensor images(int64_t n, uint64_t seed) { return Tensor::uniform({n, 28, 28, 1}, 0.0, 1.0, seed); }

// ‖row‖ of each row of [N, D].
std::vector<double> row_norms(const Tensor& x) {
  const int64_t n = x.shape()[0], d = x.shape()[1];
  std::vector<double> norms;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += std::pow(static_cast<double>(x.data<float>()[i * d + j]), 2);
    norms.push_back(std::sqrt(s));
  }
  return norms;
}

TEST(FashionCnn, LayersAndParameterCountsMatchKerasMnistCnn) {
  Model model = zoo::fashion_cnn();
  const std::vector<std::string> names = {"image",     "conv2d",  "conv2d_1",         "max_pooling2d", "dropout",
                                          "flatten",   "embedding", "l2_normalization", "dropout_1",    "logits"};
  ASSERT_EQ(model.layers().size(), names.size());
  for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(model.layers()[i].name(), names[i]);
  // 3·3·1·32 + 32 = 320; 3·3·32·64 + 64 = 18496; 12·12·64 = 9216 → 9216·128 + 128 = 1179776;
  // the scalar scale 1; 128·10 + 10 = 1290.
  EXPECT_EQ(model.get_layer("conv2d").count_params(), 320);
  EXPECT_EQ(model.get_layer("conv2d_1").count_params(), 18496);
  EXPECT_EQ(model.get_layer("embedding").count_params(), 1179776);
  EXPECT_EQ(model.get_layer("l2_normalization").count_params(), 1);
  EXPECT_EQ(model.get_layer("logits").count_params(), 1290);
  EXPECT_EQ(model.count_params(), 320 + 18496 + 1179776 + 1 + 1290);
  EXPECT_EQ(model.outputs()[0].shape(), (Shape{-1, 10}));
}

TEST(FashionCnn, EmbeddingDropoutIsAQuarterUnlessAsked) {
  EXPECT_EQ(zoo::fashion_cnn().get_layer("dropout_1").get_config()["rate"], 0.25);
  EXPECT_EQ(zoo::fashion_cnn(zoo::FashionCnnOptions().embedding_dropout(0.5)).get_layer("dropout_1").get_config()["rate"],
            0.5);
  EXPECT_EQ(zoo::fashion_cnn().get_layer("dropout").get_config()["rate"], 0.25);
}

TEST(FashionCnn, EmbeddingHasTheScaleAsNormAndTheActivityTerm) {
  Model model = zoo::fashion_cnn(zoo::FashionCnnOptions().embedding_scale(16.0).classes(3));
  Model features({model.inputs()[0]}, {model.get_layer("l2_normalization").output()});
  const Tensor x = images(4, 7);
  for (double norm : row_norms(features(x))) EXPECT_NEAR(norm, 16.0, 16.0 * 1e-5);
  EXPECT_EQ(model(x).shape(), (Shape{4, 3}));

  // The penalty of the last forward pass: 1e-4·Σh² / batch, with h the Dense(128) activations.
  Model dense({model.inputs()[0]}, {model.get_layer("embedding").output()});
  model(x);
  const std::vector<NamedLoss> terms = model.named_losses();
  ASSERT_EQ(terms.size(), 1u);
  EXPECT_EQ(terms[0].name, "embedding/activity_regularizer");
  double sum_sq = 0;
  for (double norm : row_norms(dense(x))) sum_sq += norm * norm;
  EXPECT_NEAR(terms[0].value.item(), 1e-4 * sum_sq / 4, 1e-4 * sum_sq / 4 * 1e-4);
}

TEST(FashionCnn, ScaleZeroGivesAPlainUnitNormEmbedding) {
  Model model = zoo::fashion_cnn(zoo::FashionCnnOptions().embedding_scale(0.0));
  EXPECT_EQ(model.get_layer("l2_normalization").count_params(), 0);
  Model features({model.inputs()[0]}, {model.get_layer("l2_normalization").output()});
  for (double norm : row_norms(features(images(3, 8)))) EXPECT_NEAR(norm, 1.0, 1e-5);
}

TEST(FashionCnn, SameSeedBuildsTheSameWeights) {
  set_random_seed(5);
  const Tensor a = zoo::fashion_cnn().get_layer("logits").weights()[0];
  set_random_seed(5);
  const Tensor b = zoo::fashion_cnn().get_layer("logits").weights()[0];
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(FashionCnn, AdamStepsLowerTheLossOnAFixedBatch) {
  set_random_seed(3);
  Model model = zoo::fashion_cnn();
  model.compile(zoo::fashion_cnn_compile_options(1e-3));
  const Tensor x = images(16, 9);
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5}, {16});
  const double before = model.evaluate(x, y, 16)["loss"];
  for (int i = 0; i < 5; ++i) model.train_on_batch(x, y);
  const double after = model.evaluate(x, y, 16)["loss"];
  EXPECT_TRUE(std::isfinite(before));
  EXPECT_LT(after, before - 0.1);
}

TEST(FashionCnn, ScheduleDecaysFromTheRateToZeroOverTheRun) {
  const LearningRateSchedule lr = zoo::fashion_cnn_schedule(1e-3, 3, 469);
  EXPECT_DOUBLE_EQ(lr(0), 1e-3);
  EXPECT_NEAR(lr(3 * 469 / 2), 0.5e-3, 1e-6);  // halfway: cos(π/2) = 0
  EXPECT_LT(lr(3 * 469 - 1), 1e-8);
  EXPECT_EQ(lr(3 * 469), 0.0);
  EXPECT_EQ(lr.get_config()["class_name"], "CosineDecay");
  EXPECT_EQ(lr.get_config()["config"]["decay_steps"], 3 * 469);
  testing::expect_throw_with<ValueError>([] { (void)zoo::fashion_cnn_schedule(1e-3, 0, 469); },
                                         {"zoo::fashion_cnn_schedule", "epochs", "0"});
}

TEST(FashionCnn, RejectsBadOptions) {
  testing::expect_throw_with<ValueError>([] { zoo::FashionCnnOptions().classes(1); }, {"zoo::fashion_cnn", "classes", "1"});
  testing::expect_throw_with<ValueError>([] { zoo::FashionCnnOptions().embedding_scale(-1.0); },
                                         {"embedding_scale", "-1"});
  testing::expect_throw_with<ValueError>([] { zoo::FashionCnnOptions().embedding_scale(NAN); }, {"embedding_scale", "nan"});
  testing::expect_throw_with<ValueError>([] { zoo::FashionCnnOptions().embedding_dropout(1.0); },
                                         {"zoo::fashion_cnn", "embedding_dropout", "1"});
}

}  // namespace
}  // namespace normnet

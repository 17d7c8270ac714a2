// Embedding (mask_zero), Masking, GlobalAveragePooling1D, and masks flowing
// Embedding(mask_zero) → L2Normalization → GlobalAveragePooling1D with masked steps provably
// ignored: more padding gives the same output, and masked steps get zero gradient.
#include <gtest/gtest.h>

#include "normnet/layers.h"
#include "normnet/model.h"
#include "normnet/ops.h"
#include "support/gradcheck.h"
#include "support/layer_harness.h"

namespace normnet {
namespace {

using testing::gradcheck_layer;
using testing::GradCheckOptions;
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

// ---- Embedding ----

TEST(Embedding, LooksUpRows) {
  auto emb = layers::Embedding(10, 4);
  Tensor y = emb(tokens({2, 0, 9, 2}, {2, 2}));
  ASSERT_EQ(y.shape(), (Shape{2, 2, 4}));
  const auto table = emb->embeddings.to_vector<float>();
  const auto out = y.to_vector<float>();
  const int64_t ids[] = {2, 0, 9, 2};
  for (int k = 0; k < 4; ++k)
    for (int d = 0; d < 4; ++d) EXPECT_EQ(out[k * 4 + d], table[ids[k] * 4 + d]);
  EXPECT_EQ(emb.count_params(), 40);
  EXPECT_EQ(emb(Tensor::symbolic({kUnknownDim, 7}, DType::kInt64)).shape(), (Shape{kUnknownDim, 7, 4}));
}

TEST(Embedding, KerasDefaults) {
  auto emb = layers::Embedding(1000, 64);
  (void)emb(tokens({1}, {1, 1}));
  EXPECT_EQ(emb.count_params(), 64000);
  for (float v : emb->embeddings.to_vector<float>()) {
    EXPECT_GE(v, -0.05f);
    EXPECT_LT(v, 0.05f);
  }
  const Config c = emb.get_config();
  EXPECT_EQ(c["input_dim"], 1000);
  EXPECT_EQ(c["output_dim"], 64);
  EXPECT_EQ(c["mask_zero"], false);
  EXPECT_EQ(c["embeddings_initializer"]["class_name"], "RandomUniform");
}

TEST(Embedding, MaskZeroMasksIndexZero) {
  auto emb = layers::Embedding(10, 3).mask_zero(true);
  Tensor y = emb(tokens({4, 1, 0, 0, 7, 0}, {2, 3}));
  ASSERT_TRUE(y.mask().defined());
  EXPECT_EQ(y.mask().dtype(), DType::kFloat32);
  EXPECT_EQ(y.mask().shape(), (Shape{2, 3}));
  EXPECT_EQ(y.mask().to_vector<float>(), (std::vector<float>{1, 1, 0, 0, 1, 0}));
  Tensor s = emb(Tensor::symbolic({kUnknownDim, 3}, DType::kInt64));
  ASSERT_TRUE(s.mask().defined());
  EXPECT_EQ(s.mask().shape(), (Shape{kUnknownDim, 3}));
  EXPECT_FALSE(layers::Embedding(10, 3)(tokens({0, 1}, {1, 2})).mask().defined());
}

TEST(Embedding, FloatIndicesAreTruncated) {
  auto emb = layers::Embedding(5, 2);
  Tensor a = emb(Tensor::from_vector(std::vector<float>{3.0f, 1.0f}, {1, 2}));
  Tensor b = emb(tokens({3, 1}, {1, 2}));
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Embedding, OutOfRangeIndexNamesTheLayer) {
  auto emb = layers::Embedding(5, 2).name("words");
  const std::string msg = error_of([&] { (void)emb(tokens({1, 5}, {1, 2})); });
  EXPECT_NE(msg.find("Embedding 'words'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("5"), std::string::npos) << msg;
  EXPECT_THROW(layers::Embedding(0, 3), ValueError);
}

TEST(Embedding, GradientMatchesFiniteDifferences) {
  auto emb = layers::Embedding(6, 3).dtype(DType::kFloat64);
  EXPECT_TRUE(gradcheck_layer(*emb, {tokens({1, 4, 1, 0, 5, 2}, {2, 3})}, {&emb->embeddings}));
}

// ---- Masking ----

TEST(Masking, MasksStepsEqualToTheValue) {
  auto masking = layers::Masking(-1.0);
  // steps: [1, 2], [-1, -1] (masked), [-1, 3] (kept: not every feature is -1)
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, -1, -1, -1, 3}, {1, 3, 2});
  Tensor y = masking(x);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 0, 0, -1, 3}));
  ASSERT_TRUE(y.mask().defined());
  EXPECT_EQ(y.mask().to_vector<float>(), (std::vector<float>{1, 0, 1}));
  EXPECT_EQ(masking.get_config()["mask_value"], -1.0);
  EXPECT_EQ(masking(Tensor::symbolic({kUnknownDim, 3, 2})).mask().shape(), (Shape{kUnknownDim, 3}));
}

TEST(Masking, GradientIsZeroAtMaskedSteps) {
  auto masking = layers::Masking(0.0);
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, -1.5, 0, 0, 2, 1}, {1, 3, 2}).set_requires_grad(true);
  ops::sum(masking(x) * 3.0).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 3, 0, 0, 3, 3}));
  // Away from the masked values (the mask is a step function of x there).
  GradCheckOptions opts;
  opts.kinks = {0.0};
  auto m2 = layers::Masking(0.0);
  EXPECT_TRUE(gradcheck_layer(*m2, {Tensor::from_vector(std::vector<double>{0.5, -1.5, 0, 0, 2, 1}, {1, 3, 2})}, {}, opts));
}

// ---- GlobalAveragePooling1D ----

TEST(GlobalAveragePooling1D, MeanOverTime) {
  auto gap = layers::GlobalAveragePooling1D();
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {1, 3, 2});
  EXPECT_EQ(gap(x).to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_EQ(gap(Tensor::symbolic({kUnknownDim, 9, 5})).shape(), (Shape{kUnknownDim, 5}));
  EXPECT_EQ(layers::GlobalAveragePooling1D().keepdims(true)(x).shape(), (Shape{1, 1, 2}));
}

TEST(GlobalAveragePooling1D, CountsOnlyUnmaskedSteps) {
  auto gap = layers::GlobalAveragePooling1D();
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 100, 100, 5, 6, /**/ 7, 8, 9, 10, 11, 12}, {2, 3, 2});
  x.set_mask(Tensor::from_vector(std::vector<float>{1, 0, 1, /**/ 0, 0, 0}, {2, 3}));
  Tensor y = gap(x);
  // sample 0: mean of steps 0 and 2 = [3, 4]; sample 1: every step masked → 0 (Keras gives NaN)
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{3, 4, 0, 0}));
  EXPECT_FALSE(y.mask().defined());
}

TEST(GlobalAveragePooling1D, MaskedStepsGetZeroGradient) {
  auto gap = layers::GlobalAveragePooling1D();
  const Tensor mask = Tensor::from_vector(std::vector<float>{1, 0, 1, 1, 1, 0, 0, 1}, {2, 4});
  EXPECT_TRUE(gradcheck_layer(*gap, {Tensor::randn({2, 4, 3}, 2, DType::kFloat64)}, {}, {}, {mask}));
  Tensor x = Tensor::randn({2, 4, 3}, 2, DType::kFloat64).set_requires_grad(true);
  x.set_mask(mask);
  ops::sum(gap(x)).backward();
  const auto g = x.grad().to_vector<double>();
  const auto m = mask.to_vector<float>();
  for (int step = 0; step < 8; ++step)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(g[step * 3 + c], m[step] ? (step < 4 ? 1.0 / 3 : 1.0 / 2) : 0.0);
}

// ---- masks flowing through a model ----

// tokens [N, T] → Embedding(mask_zero) → L2Normalization(axis=-1) → GlobalAveragePooling1D
struct Pipeline {
  layers::Embedding emb = layers::Embedding(20, 6).mask_zero(true).dtype(DType::kFloat64);
  layers::L2Normalization l2 = layers::L2Normalization().axis(-1);
  layers::GlobalAveragePooling1D gap;
  Tensor operator()(const Tensor& t) { return gap(l2(emb(t))); }
  Model model(int64_t steps) {
    Tensor in = Input({steps}, DType::kInt64);
    return Model({in}, {gap(l2(emb(in)))});
  }
};

TEST(MaskFlow, MorePaddingGivesTheSameOutput) {
  Pipeline p;
  const Tensor short_pad = tokens({3, 5, 7, 0, 0, /**/ 9, 0, 0, 0, 0}, {2, 5});
  const Tensor long_pad = tokens({3, 5, 7, 0, 0, 0, 0, 0, 0, /**/ 9, 0, 0, 0, 0, 0, 0, 0, 0}, {2, 9});
  const Tensor a = p(short_pad);
  const Tensor b = p(long_pad);
  EXPECT_LE(max_abs_diff(a, b), 1e-15);
  // The mean of unit vectors of the kept steps, by hand for sample 1: just row 9 normalized.
  const auto table = p.emb->embeddings.to_vector<double>();
  double norm = 0.0;
  for (int d = 0; d < 6; ++d) norm += table[9 * 6 + d] * table[9 * 6 + d];
  norm = std::sqrt(norm);
  const auto out = a.to_vector<double>();
  for (int d = 0; d < 6; ++d) EXPECT_NEAR(out[6 + d], table[9 * 6 + d] / norm, 1e-15);

  // Through functional models of two lengths sharing the same layers.
  Model m5 = p.model(5), m9 = p.model(9);
  EXPECT_LE(max_abs_diff(m5(short_pad), m9(long_pad)), 1e-15);
  EXPECT_LE(max_abs_diff(m5(short_pad), a), 0.0);
}

TEST(MaskFlow, PaddingRowHasNoInfluenceAndZeroGradient) {
  Pipeline p;
  Model model = p.model(6);
  const Tensor t = tokens({3, 5, 7, 0, 0, 0, /**/ 2, 2, 0, 0, 0, 0}, {2, 6});
  const Tensor before = model(t);
  // Row 0 is read only at masked steps: changing it changes nothing...
  double* table = p.emb->embeddings.data<double>();
  for (int d = 0; d < 6; ++d) table[d] = 1e3 * (d + 1);
  EXPECT_LE(max_abs_diff(model(t), before), 0.0);
  // ...and it receives exactly zero gradient, while the rows of real tokens receive some.
  p.emb->embeddings.zero_grad();
  ops::sum(ops::square(model(t))).backward();
  const auto g = p.emb->embeddings.grad().to_vector<double>();
  for (int d = 0; d < 6; ++d) EXPECT_EQ(g[d], 0.0) << d;
  double row3 = 0.0;
  for (int d = 0; d < 6; ++d) row3 += std::abs(g[3 * 6 + d]);
  EXPECT_GT(row3, 0.0);
}

TEST(MaskFlow, MaskedStepsOfTheFeaturesGetZeroGradient) {
  // The same pipeline after the embedding, on float64 features with a mask.
  auto l2 = layers::L2Normalization();
  auto gap = layers::GlobalAveragePooling1D();
  Tensor x = Tensor::randn({2, 4, 3}, 5, DType::kFloat64).set_requires_grad(true);
  x.set_mask(Tensor::from_vector(std::vector<float>{1, 1, 0, 0, 1, 0, 1, 0}, {2, 4}));
  Tensor u = l2(x);
  ASSERT_TRUE(u.mask().defined());
  ops::sum(gap(u) * Tensor::randn({2, 3}, 6, DType::kFloat64)).backward();
  const auto g = x.grad().to_vector<double>();
  const int masked[] = {2, 3, 5, 7};
  for (int step : masked)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(g[step * 3 + c], 0.0) << step;
  const auto y = u.to_vector<double>();
  for (int step : masked)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(y[step * 3 + c], 0.0) << step;
}

}  // namespace
}  // namespace normnet

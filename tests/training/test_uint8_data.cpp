// Training on uint8 images: a model whose Input is uint8 and rescales in its first layer trains,
// evaluates and predicts exactly as the float model fed byte/255, batches are gathered as bytes,
// a dtype that does not match the model's Input is a TypeError before the first batch, and the
// model's config and saved file keep the uint8 Input.
#include <gtest/gtest.h>

#include <cmath>

#include "normnet/initializers.h"
#include "normnet/model.h"
#include "normnet/normnet.h"
#include "support/expect_throw.h"
#include "support/temp_dir.h"

namespace normnet {
namespace {

using testing::expect_throw_with;

// A small CNN; on uint8 input it starts with Rescaling(1/255). Same seed ⇒ same weights.
Model cnn(DType input) {
  set_random_seed(7);
  Tensor in = Input({5, 5, 1}, input);
  Tensor h = input == DType::kUInt8 ? layers::Rescaling(1.0 / 255).name("rescale")(in) : in;
  h = layers::Conv2D(4, {3, 3}).activation("relu")(h);
  h = layers::Flatten()(h);
  Tensor out = layers::Dense(3)(h);
  Model m({in}, {out});
  m.compile(CompileOptions()
                .optimizer(optimizers::Adam(1e-2))
                .loss(losses::SparseCategoricalCrossentropy().from_logits(true))
                .metrics({"accuracy"}));
  return m;
}

struct Data {
  Tensor bytes;   // [24, 5, 5, 1] uint8
  Tensor scaled;  // the same as float32 byte/255 (as io::read_idx_images computes it)
  Tensor labels;  // [24] int64
};

Data data() {
  Data d;
  d.bytes = ops::cast(Tensor::uniform({24, 5, 5, 1}, 0.0, 256.0, 3), DType::kUInt8);
  std::vector<float> scaled;
  for (uint8_t b : d.bytes.to_vector<uint8_t>()) scaled.push_back(static_cast<float>(b) / 255.0f);
  d.scaled = Tensor::from_vector(scaled, d.bytes.shape());
  std::vector<int64_t> y;
  for (int64_t i = 0; i < 24; ++i) y.push_back(i % 3);
  d.labels = Tensor::from_vector(y, {24});
  return d;
}

// byte·float32(1/255) (Rescaling) and byte/255 (the float reader) differ by at most an ulp or so.
constexpr double kTol = 1e-5;

TEST(Uint8Data, TrainingMatchesTheFloatModelFedBytesOver255) {
  const Data d = data();
  Model bytes = cnn(DType::kUInt8), floats = cnn(DType::kFloat32);
  const auto opts = FitOptions().epochs(3).batch_size(8).seed(5).verbose(0);
  const History hb = bytes.fit(d.bytes, d.labels, opts);
  const History hf = floats.fit(d.scaled, d.labels, opts);
  const std::vector<double>& lb = hb.history.at("loss");
  const std::vector<double>& lf = hf.history.at("loss");
  ASSERT_EQ(lb.size(), 3u);
  for (std::size_t e = 0; e < lb.size(); ++e) EXPECT_NEAR(lb[e], lf[e], kTol) << "epoch " << e;
  EXPECT_LT(lb.back(), lb.front());  // it learned something
  const std::vector<Tensor> wb = bytes.trainable_weights(), wf = floats.trainable_weights();
  ASSERT_EQ(wb.size(), wf.size());
  for (std::size_t i = 0; i < wb.size(); ++i) {
    const std::vector<float> a = wb[i].to_vector<float>(), b = wf[i].to_vector<float>();
    for (std::size_t k = 0; k < a.size(); ++k) ASSERT_NEAR(a[k], b[k], kTol) << "weight " << i << "[" << k << "]";
  }
  const auto eb = bytes.evaluate(d.bytes, d.labels, 16), ef = floats.evaluate(d.scaled, d.labels, 16);
  EXPECT_NEAR(eb.at("loss"), ef.at("loss"), kTol);
  EXPECT_EQ(eb.at("accuracy"), ef.at("accuracy"));
  const std::vector<float> pb = bytes.predict(d.bytes, 10).to_vector<float>();
  const std::vector<float> pf = floats.predict(d.scaled, 10).to_vector<float>();
  ASSERT_EQ(pb.size(), pf.size());
  for (std::size_t k = 0; k < pb.size(); ++k) EXPECT_NEAR(pb[k], pf[k], kTol);
  const auto tb = bytes.train_on_batch(ops::slice(d.bytes, 0, 0, 8), ops::slice(d.labels, 0, 0, 8));
  const auto tf = floats.train_on_batch(ops::slice(d.scaled, 0, 0, 8), ops::slice(d.labels, 0, 0, 8));
  EXPECT_NEAR(tb.at("loss"), tf.at("loss"), kTol);
}

TEST(Uint8Data, ValidationDataAndSplitAreBytesToo) {
  const Data d = data();
  Model m = cnn(DType::kUInt8);
  const History h = m.fit(d.bytes, d.labels, FitOptions().epochs(1).batch_size(8).validation_split(0.25).verbose(0));
  EXPECT_TRUE(std::isfinite(h.history.at("val_loss").at(0)));
  const History v = m.fit(d.bytes, d.labels,
                          FitOptions().epochs(1).batch_size(8).validation_data(d.bytes, d.labels).verbose(0));
  EXPECT_TRUE(std::isfinite(v.history.at("val_loss").at(0)));
}

TEST(Uint8Data, AnInputDtypeMismatchIsATypeErrorBeforeTheFirstBatch) {
  const Data d = data();
  Model bytes = cnn(DType::kUInt8).name("bytes");
  expect_throw_with<TypeError>([&] { (void)bytes.fit(d.scaled, d.labels, FitOptions().verbose(0)); },
                               {"Model 'bytes'", "x[0] is float32 of shape [24, 5, 5, 1]", "expects uint8",
                                "DType::kUInt8"});
  expect_throw_with<TypeError>([&] { (void)bytes.predict(d.scaled); }, {"x[0] is float32", "expects uint8"});
  expect_throw_with<TypeError>([&] { (void)bytes.evaluate(d.scaled, d.labels); }, {"expects uint8"});
  expect_throw_with<TypeError>([&] { (void)bytes.train_on_batch(d.scaled, d.labels); }, {"expects uint8"});
  Model floats = cnn(DType::kFloat32).name("floats");
  expect_throw_with<TypeError>([&] { (void)floats.fit(d.bytes, d.labels, FitOptions().verbose(0)); },
                               {"Model 'floats'", "x[0] is uint8", "expects float32", "layers::Rescaling(1.0 / 255)"});
  // Not caught yet: the weights are unchanged.
  EXPECT_EQ(floats.evaluate(d.scaled, d.labels).count("loss"), 1u);
}

TEST(Uint8Data, ASequentialBuiltFromBytesTakesAUint8Input) {
  const Data d = data();
  Sequential s;
  s.add(layers::Rescaling(1.0 / 255));
  s.add(layers::Flatten());
  s.add(layers::Dense(3));
  s.compile(CompileOptions().optimizer(optimizers::SGD(0.1)).loss(losses::SparseCategoricalCrossentropy().from_logits(true)));
  const History h = s.fit(d.bytes, d.labels, FitOptions().epochs(2).batch_size(8).verbose(0));
  EXPECT_TRUE(std::isfinite(h.history.at("loss").back()));
  EXPECT_EQ(s.inputs().at(0).dtype(), DType::kUInt8);
}

TEST(Uint8Data, ConfigAndSavedFileKeepTheUint8Input) {
  const Data d = data();
  Model m = cnn(DType::kUInt8);
  (void)m.fit(d.bytes, d.labels, FitOptions().epochs(1).batch_size(8).verbose(0));
  const Config config = Config{{"class_name", m->class_name()}, {"config", m->get_config()}};
  const std::string text = config.dump();
  EXPECT_NE(text.find("\"dtype\":\"uint8\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"class_name\":\"Rescaling\""), std::string::npos) << text;
  const Model rebuilt = model_from_config(config);
  EXPECT_EQ(rebuilt.inputs().at(0).dtype(), DType::kUInt8);

  testing::TempDir dir;
  const std::string path = dir.file("bytes.safetensors");
  m.save(path);
  const Model loaded = load_model(path);
  EXPECT_EQ(loaded.inputs().at(0).dtype(), DType::kUInt8);
  EXPECT_EQ(loaded.predict(d.bytes).to_vector<float>(), m.predict(d.bytes).to_vector<float>());
}

}  // namespace
}  // namespace normnet

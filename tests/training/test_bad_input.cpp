// Bad input to training: wrong label ranges, wrong input shapes, NaN inputs, and a run that
// diverges mid-training. Each is a clean, named error or a clean stop that keeps the last good
// checkpoint; nothing crashes and nothing saved is lost.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "normnet/callbacks.h"
#include "normnet/layers.h"
#include "normnet/losses.h"
#include "normnet/model.h"
#include "normnet/optimizers.h"
#include "normnet/training.h"
#include "support/expect_throw.h"
#include "support/temp_dir.h"

namespace normnet {
namespace {

using testing::expect_throw_with;

Model classifier(int classes) {
  Tensor in = Input({4});
  Tensor out = layers::Dense(classes).name("logits")(in);
  Model model({in}, {out});
  model.compile(CompileOptions()
                    .optimizer(optimizers::SGD(0.1))
                    .loss(losses::SparseCategoricalCrossentropy().from_logits(true))
                    .metrics({"accuracy"}));
  return model;
}

Tensor features(int64_t n) { return Tensor::randn({n, 4}, 3); }

Tensor labels(std::vector<int64_t> values) {
  const auto n = static_cast<int64_t>(values.size());
  return Tensor::from_vector(values, {n});
}

TEST(BadInput, LabelOutOfRangeNamesTheLabelItsPositionAndTheRange) {
  Model model = classifier(3);
  expect_throw_with<ValueError>(
      [&] { (void)model.fit(features(4), labels({0, 2, 3, 1}), FitOptions().epochs(1).batch_size(4).shuffle(false).verbose(0)); },
      {"label 3", "position 2", "[0, 3)"});
  expect_throw_with<ValueError>([&] { (void)model.evaluate(features(2), labels({-1, 0})); }, {"label -1", "[0, 3)"});
}

TEST(BadInput, InputShapeMismatchNamesTheShapes) {
  Model model = classifier(3);
  expect_throw_with<ShapeError>(
      [&] { (void)model.fit(Tensor::randn({4, 5}, 1), labels({0, 1, 2, 0}), FitOptions().epochs(1).verbose(0)); },
      {"input 0", "expects shape [None, 4], got [4, 5]"});
  // A different number of samples in x and y.
  expect_throw_with<Error>([&] { (void)model.fit(features(4), labels({0, 1, 2}), FitOptions().verbose(0)); },
                           {"4", "3"});
}

// NaN in the inputs makes the loss NaN; TerminateOnNaN stops after that batch, no crash.
TEST(BadInput, NaNInputsStopTrainingWithTerminateOnNaN) {
  Model model = classifier(3);
  std::vector<float> x(8 * 4, 0.5f);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  const History h = model.fit(Tensor::from_vector(x, {8, 4}), labels({0, 1, 2, 0, 1, 2, 0, 1}),
                              FitOptions().epochs(5).batch_size(8).shuffle(false).verbose(0).callback(
                                  callbacks::TerminateOnNaN()));
  ASSERT_EQ(h.epoch.size(), 1u);
  EXPECT_TRUE(std::isnan(h.history.at("loss")[0]));
  EXPECT_TRUE(model.stop_training());
}

// Poisons the weights at the start of one epoch, as a diverging run would.
class PoisonAtEpoch : public Callback {
 public:
  explicit PoisonAtEpoch(int epoch) : epoch_(epoch) {}
  void on_epoch_begin(int epoch, const Logs&) override {
    if (epoch != epoch_) return;
    for (Tensor w : model()->trainable_weights()) {
      float* p = w.data<float>();
      for (int64_t i = 0; i < w.numel(); ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
    }
  }

 private:
  int epoch_;
};

TEST(BadInput, DivergedRunKeepsTheLastGoodCheckpoint) {
  testing::TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Model model = classifier(3);
  const History h = model.fit(features(16), labels({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0}),
                              FitOptions()
                                  .epochs(4)
                                  .batch_size(8)
                                  .seed(1)
                                  .verbose(0)
                                  .callback(PoisonAtEpoch(2))
                                  .callback(callbacks::TerminateOnNaN())
                                  .callback(callbacks::ModelCheckpoint(path)));
  ASSERT_EQ(h.epoch.size(), 3u);  // epochs 1, 2 and the diverged 3rd, then the stop
  EXPECT_TRUE(std::isnan(h.history.at("loss")[2]));
  // The file is the checkpoint of epoch 2: complete, finite, and it says so.
  EXPECT_EQ(saved_metadata(path).at("normnet.epoch"), "2");
  Model restored = load_model(path);
  for (const Tensor& w : restored.trainable_weights()) {
    for (const float v : w.to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
  }
  const Tensor p = restored.predict(features(4));
  for (const float v : p.to_vector<float>()) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace normnet

// Training on real Fashion-MNIST (Debian's dataset-fashion-mnist): a small CNN with the default
// model's L2-normalized, activity-regularized embedding learns a 5,000-image subset well above
// chance; and a run interrupted after epoch 1 and resumed from its checkpoint (as `normnet train
// --resume` does) ends with the same weights, bit for bit, as the uninterrupted run.
#include <gtest/gtest.h>

#include <string>

#include "normnet/callbacks.h"
#include "normnet/datasets.h"
#include "normnet/initializers.h"
#include "normnet/layers.h"
#include "normnet/model.h"
#include "normnet/ops.h"
#include "normnet/regularizers.h"
#include "normnet/threading.h"
#include "normnet/zoo.h"
#include "support/temp_dir.h"

namespace normnet {
namespace {

// zoo::fashion_cnn's layout at a fraction of its width (about 44k parameters instead of 1.2M).
Model small_cnn(uint64_t seed) {
  set_random_seed(seed);
  Tensor in = Input({28, 28, 1});
  Tensor h = layers::Conv2D(8, {3, 3}).activation("relu")(in);
  h = layers::MaxPooling2D({2, 2})(h);
  h = layers::Dropout(0.25)(h);
  h = layers::Flatten()(h);
  h = layers::Dense(32).activation("relu").activity_regularizer(regularizers::L1L2(0.0, 1e-4))(h);
  h = layers::L2Normalization().learnable_scale(16.0, /*per_channel=*/false)(h);
  h = layers::Dropout(0.5)(h);
  Model model({in}, {layers::Dense(10)(h)});
  model.compile(zoo::fashion_cnn_compile_options(1e-3));
  return model;
}

datasets::Split first(const datasets::Split& split, int64_t n) {
  return {ops::slice(split.x, 0, 0, n), ops::slice(split.y, 0, 0, n)};
}

class FashionSubset : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { data_ = new datasets::Dataset(datasets::fashion_mnist()); }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
  }
  static datasets::Dataset* data_;
};
datasets::Dataset* FashionSubset::data_ = nullptr;

TEST_F(FashionSubset, SmallCnnLearnsFiveThousandImagesWellAboveChance) {
  const datasets::Split train = first(data_->train, 5000), test = first(data_->test, 2000);
  Model model = small_cnn(1);
  const History h = model.fit(train.x, train.y, FitOptions().epochs(3).batch_size(64).seed(1).verbose(0));
  const auto& loss = h.history.at("loss");
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_LT(loss[1], loss[0]);
  EXPECT_LT(loss[2], loss[1]);
  EXPECT_GT(h.history.at("accuracy")[2], 0.55);  // with dropout on; chance is 0.10
  const auto result = model.evaluate(test.x, test.y, 500);
  EXPECT_GT(result.at("accuracy"), 0.70);  // chance is 0.10
  EXPECT_LT(result.at("loss"), 1.0);       // chance is ln 10 ≈ 2.30
}

TEST_F(FashionSubset, RunResumedFromEpochOneCheckpointEqualsUninterruptedRun) {
  set_num_threads(1);
  const datasets::Split train = first(data_->train, 512);
  const testing::TempDir dir;
  const FitOptions options = FitOptions().batch_size(128).seed(7).verbose(0);

  Model uninterrupted = small_cnn(3);
  uninterrupted.fit(train.x, train.y, FitOptions(options).epochs(2));

  // Interrupted: one epoch with a checkpoint per epoch, then a fresh process would load it.
  Model first_part = small_cnn(3);
  first_part.fit(train.x, train.y, FitOptions(options).epochs(1).callback(callbacks::ModelCheckpoint(dir.file("ckpt{epoch}.safetensors"))));
  const std::string checkpoint = dir.file("ckpt1.safetensors");
  ASSERT_EQ(saved_metadata(checkpoint).at("normnet.epoch"), "1");
  set_random_seed(12345);  // the resumed run must not depend on the global stream's state
  Model resumed = load_model(checkpoint);
  const History h = resumed.fit(train.x, train.y, FitOptions(options).epochs(2).initial_epoch(1));
  ASSERT_EQ(h.epoch, std::vector<int>{1});

  const std::vector<Tensor> a = uninterrupted.weights(), b = resumed.weights();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].to_vector<float>(), b[i].to_vector<float>()) << "weight " << i;
  // And the run did change the weights after the checkpoint (the comparison is not vacuous).
  Model at_checkpoint = load_model(checkpoint);
  EXPECT_NE(at_checkpoint.weights().back().to_vector<float>(), b.back().to_vector<float>());
}

}  // namespace
}  // namespace normnet

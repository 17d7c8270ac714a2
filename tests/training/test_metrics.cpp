// Metrics: hand-computed values accumulated over several batches, reset, Keras's resolution of
// "accuracy" by loss (and by shapes for other losses), the user's name kept, errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "normnet/losses.h"
#include "normnet/metrics.h"

namespace normnet {
namespace {

Tensor f32(std::vector<float> v, Shape s) { return Tensor::from_vector(v, std::move(s)); }
Tensor i64(std::vector<int64_t> v, Shape s) { return Tensor::from_vector(v, std::move(s)); }

TEST(SparseCategoricalAccuracy, AccumulatesOverBatchesAndResets) {
  metrics::SparseCategoricalAccuracy m;
  EXPECT_EQ(m.name(), "sparse_categorical_accuracy");
  EXPECT_EQ(m.result(), 0.0);  // nothing seen yet: 0, not NaN (Keras's divide_no_nan)
  // Batch 1: argmax rows = 2, 0, 1; labels 2, 1, 1 → 2 of 3.
  m.update_state(i64({2, 1, 1}, {3}), f32({0.1f, 0.2f, 0.7f, 0.5f, 0.3f, 0.2f, 0.0f, 0.9f, 0.1f}, {3, 3}));
  EXPECT_DOUBLE_EQ(m.result(), 2.0 / 3.0);
  // Batch 2: labels as [N, 1]; argmax 0 (a tie goes to the first index), 2 → 1 of 2.
  m.update_state(i64({0, 1}, {2, 1}), f32({0.4f, 0.4f, 0.2f, 0.1f, 0.2f, 0.7f}, {2, 3}));
  EXPECT_DOUBLE_EQ(m.result(), 3.0 / 5.0);
  m.reset_state();
  EXPECT_EQ(m.result(), 0.0);
  m.update_state(i64({1}, {1}), f32({0, 1, 0}, {1, 3}));
  EXPECT_DOUBLE_EQ(m.result(), 1.0);
}

TEST(SparseCategoricalAccuracy, ShapeErrorNamesMetricAndShapes) {
  metrics::SparseCategoricalAccuracy m("acc");
  try {
    m.update_state(i64({0, 1, 2}, {3}), Tensor::zeros({4, 10}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("acc"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 10]"), std::string::npos) << msg;
  }
}

TEST(CategoricalAccuracy, ComparesArgmaxes) {
  metrics::CategoricalAccuracy m;
  m.update_state(f32({0, 1, 1, 0}, {2, 2}), f32({0.3f, 0.7f, 0.6f, 0.4f}, {2, 2}));  // both right
  m.update_state(f32({0, 1}, {1, 2}), f32({0.9f, 0.1f}, {1, 2}));                    // wrong
  EXPECT_DOUBLE_EQ(m.result(), 2.0 / 3.0);
  EXPECT_THROW(m.update_state(f32({0, 1, 0}, {1, 3}), f32({0.5f, 0.5f}, {1, 2})), ShapeError);
  m.reset_state();
  EXPECT_EQ(m.result(), 0.0);
}

TEST(BinaryAccuracy, ThresholdsPredictions) {
  metrics::BinaryAccuracy m;
  // 0.6 > .5 → 1 ✓; 0.5 is not > .5 → 0 ✓ against 0; 0.2 → 0 ✗ against 1; 0.9 → 1 ✗ against 0.
  m.update_state(f32({1, 0, 1, 0}, {4, 1}), f32({0.6f, 0.5f, 0.2f, 0.9f}, {4, 1}));
  EXPECT_DOUBLE_EQ(m.result(), 0.5);
  // y_true [N] against y_pred [N, 1] works too; 2 more right.
  m.update_state(i64({1, 0}, {2}), f32({0.7f, 0.1f}, {2, 1}));
  EXPECT_DOUBLE_EQ(m.result(), 4.0 / 6.0);
  metrics::BinaryAccuracy logits("binary_accuracy", 0.0);  // a threshold of 0 suits logits
  logits.update_state(f32({1, 0}, {2}), f32({0.3f, -2.0f}, {2}));
  EXPECT_DOUBLE_EQ(logits.result(), 1.0);
}

TEST(TopKAccuracy, LabelAmongKLargest) {
  metrics::SparseTopKCategoricalAccuracy m(2);
  EXPECT_EQ(m.name(), "sparse_top_k_categorical_accuracy");
  // Row 0: label 1 is 2nd largest ✓; row 1: label 0 is smallest ✗; row 2: label 2 ties for
  // 2nd with class 0 (ties at the boundary count, as tf.math.in_top_k) ✓.
  m.update_state(i64({1, 0, 2}, {3}), f32({0.5f, 0.3f, 0.2f, 0.1f, 0.5f, 0.4f, 0.3f, 0.4f, 0.3f}, {3, 3}));
  EXPECT_DOUBLE_EQ(m.result(), 2.0 / 3.0);
  metrics::TopKCategoricalAccuracy one_hot(1);
  one_hot.update_state(f32({0, 1, 0, 1, 0, 0}, {2, 3}), f32({0.1f, 0.8f, 0.1f, 0.2f, 0.7f, 0.1f}, {2, 3}));
  EXPECT_DOUBLE_EQ(one_hot.result(), 0.5);
  EXPECT_THROW(metrics::SparseTopKCategoricalAccuracy(0), ValueError);
}

TEST(MeanLoss, WeightsBatchesBySize) {
  metrics::MeanLoss m{losses::MeanSquaredError()};
  EXPECT_EQ(m.name(), "mean_squared_error");
  m.update_state(f32({0, 0}, {2, 1}), f32({1, 1}, {2, 1}));  // batch of 2, loss 1
  m.update_state(f32({0}, {1, 1}), f32({2}, {1, 1}));        // batch of 1, loss 4
  EXPECT_DOUBLE_EQ(m.result(), (2 * 1.0 + 1 * 4.0) / 3);
  m.reset_state();
  EXPECT_EQ(m.result(), 0.0);
  metrics::MeanLoss named(losses::MeanAbsoluteError(), "val_mae");
  EXPECT_EQ(named.name(), "val_mae");
}

TEST(MetricsGet, AccuracyResolvesByLossAndKeepsTheUsersName) {
  const auto sparse = metrics::get("accuracy", losses::SparseCategoricalCrossentropy().from_logits(true));
  EXPECT_NE(dynamic_cast<metrics::SparseCategoricalAccuracy*>(sparse.get()), nullptr);
  EXPECT_EQ(sparse->name(), "accuracy");
  const auto cat = metrics::get("acc", losses::CategoricalCrossentropy());
  EXPECT_NE(dynamic_cast<metrics::CategoricalAccuracy*>(cat.get()), nullptr);
  EXPECT_EQ(cat->name(), "acc");
  const auto bin = metrics::get("accuracy", losses::BinaryCrossentropy());
  EXPECT_NE(dynamic_cast<metrics::BinaryAccuracy*>(bin.get()), nullptr);
  EXPECT_NE(dynamic_cast<metrics::SparseCategoricalAccuracy*>(metrics::get("sparse_categorical_accuracy", Loss()).get()),
            nullptr);
  EXPECT_EQ(metrics::get("top_k_categorical_accuracy", Loss())->name(), "top_k_categorical_accuracy");
  EXPECT_EQ(metrics::get("mse", Loss())->name(), "mse");
}

TEST(MetricsGet, AccuracyForOtherLossesResolvesByShapes) {
  // A custom loss: Keras decides from the shapes of the first batch.
  const Loss custom([](const Tensor& t, const Tensor& p) { return p - t; });
  auto sparse = metrics::get("accuracy", custom);
  sparse->update_state(i64({1, 0}, {2}), f32({0.2f, 0.8f, 0.3f, 0.7f}, {2, 2}));  // y_true of lower rank → sparse
  EXPECT_DOUBLE_EQ(sparse->result(), 0.5);
  auto binary = metrics::get("accuracy", losses::MeanSquaredError());
  binary->update_state(f32({1, 0}, {2, 1}), f32({0.8f, 0.7f}, {2, 1}));  // last axis 1 → binary
  EXPECT_DOUBLE_EQ(binary->result(), 0.5);
  auto categorical = metrics::get("accuracy", custom);
  categorical->update_state(f32({0, 1, 1, 0}, {2, 2}), f32({0.2f, 0.8f, 0.3f, 0.7f}, {2, 2}));  // same shapes
  EXPECT_DOUBLE_EQ(categorical->result(), 0.5);
  categorical->reset_state();
  EXPECT_EQ(categorical->result(), 0.0);
}

TEST(MetricsGet, UnknownNameThrows) {
  try {
    (void)metrics::get("f1_of_doom", Loss());
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("f1_of_doom"), std::string::npos);
  }
}

}  // namespace
}  // namespace normnet

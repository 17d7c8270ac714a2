// Metrics: stateful accumulators over batches (update_state, result, reset_state), as Keras's.
#pragma once

#include <memory>
#include <string>

#include "normnet/losses.h"
#include "normnet/tensor.h"

namespace normnet {

class Metric {
 public:
  explicit Metric(std::string name) : name_(std::move(name)) {}
  virtual ~Metric();
  // Accumulates one batch (no autograd).
  virtual void update_state(const Tensor& y_true, const Tensor& y_pred) = 0;
  [[nodiscard]] virtual double result() const = 0;
  virtual void reset_state() = 0;
  [[nodiscard]] const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

 private:
  std::string name_;
};

namespace metrics {

// Fraction of samples whose argmax(y_pred) equals the int64 label.
class SparseCategoricalAccuracy : public Metric {
 public:
  explicit SparseCategoricalAccuracy(std::string name = "sparse_categorical_accuracy");
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  [[nodiscard]] double result() const override;
  void reset_state() override;

 private:
  double correct_ = 0, total_ = 0;
};

// argmax(y_pred) == argmax(y_true) for one-hot targets.
class CategoricalAccuracy : public Metric {
 public:
  explicit CategoricalAccuracy(std::string name = "categorical_accuracy");
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  [[nodiscard]] double result() const override;
  void reset_state() override;

 private:
  double correct_ = 0, total_ = 0;
};

// (y_pred > threshold) == y_true.
class BinaryAccuracy : public Metric {
 public:
  explicit BinaryAccuracy(std::string name = "binary_accuracy", double threshold = 0.5);
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  [[nodiscard]] double result() const override;
  void reset_state() override;

 private:
  double threshold_, correct_ = 0, total_ = 0;
};

// The int64 label is among the k largest predictions.
class SparseTopKCategoricalAccuracy : public Metric {
 public:
  explicit SparseTopKCategoricalAccuracy(int k = 5, std::string name = "");
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  [[nodiscard]] double result() const override;
  void reset_state() override;

 private:
  int k_;
  double correct_ = 0, total_ = 0;
};

// The index of y_true's largest value (one-hot targets) is among the k largest predictions.
class TopKCategoricalAccuracy : public Metric {
 public:
  explicit TopKCategoricalAccuracy(int k = 5, std::string name = "");
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  [[nodiscard]] double result() const override;
  void reset_state() override;

 private:
  int k_;
  double correct_ = 0, total_ = 0;
};

// Batch-size-weighted mean of a loss function over the epoch.
class MeanLoss : public Metric {
 public:
  MeanLoss(Loss loss, std::string name = "");
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  [[nodiscard]] double result() const override;
  void reset_state() override;

 private:
  Loss loss_;
  double sum_ = 0, count_ = 0;
};

// Resolves a Keras metric name for a given loss: "accuracy"/"acc" becomes the sparse,
// categorical or binary accuracy that fits `loss` (as Keras does); also
// "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
// "top_k_categorical_accuracy"/"sparse_top_k_categorical_accuracy", "mse", "mae".
// Throws ValueError naming the unknown metric.
[[nodiscard]] std::shared_ptr<Metric> get(const std::string& name, const Loss& loss);

}  // namespace metrics
}  // namespace normnet

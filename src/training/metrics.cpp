// Keras's accuracy metrics (sparse, categorical, binary, top-k) and the batch-weighted mean of a
// loss, accumulated over batches without autograd; metrics::get resolves names as Keras does.
#include "normnet/metrics.h"

#include <cmath>
#include <memory>
#include <vector>

#include "normnet/autograd.h"

namespace normnet {
namespace {

using detail::str;

void check_real(const Tensor& t, const std::string& who, const char* arg) {
  if (!t.defined() || t.is_symbolic()) throw Error(str(who, ": update_state needs real tensors, got an undefined or symbolic ", arg));
}

// The values of any tensor as doubles (labels may be int64, uint8 or floating, as Keras accepts
// them all).
template <class T>
std::vector<double> widened(const Tensor& t) {
  const T* p = t.data<T>();
  return std::vector<double>(p, p + t.numel());
}

std::vector<double> as_doubles(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kFloat32: return widened<float>(t);
    case DType::kFloat64: return widened<double>(t);
    case DType::kInt64: return widened<int64_t>(t);
    case DType::kUInt8: return widened<uint8_t>(t);
  }
  return {};
}

// Rows of the last axis: predictions [..., C] as `rows` rows of C values.
struct Rows {
  std::vector<double> values;
  int64_t rows = 0;
  int64_t classes = 0;
  [[nodiscard]] const double* row(int64_t r) const { return values.data() + r * classes; }
};

Rows rows_of(const Tensor& y_pred, const std::string& who) {
  if (y_pred.dim() == 0 || y_pred.shape().back() == 0) {
    throw ShapeError(str(who, ": expected predictions with a non-empty class axis, got shape ", y_pred.shape()));
  }
  Rows r;
  r.values = as_doubles(y_pred);
  r.classes = y_pred.shape().back();
  r.rows = y_pred.numel() / r.classes;
  return r;
}

// Index of the first largest value (ties to the lowest index, as argmax).
int64_t argmax(const double* x, int64_t n) {
  int64_t best = 0;
  for (int64_t c = 1; c < n; ++c) {
    if (x[c] > x[best]) best = c;
  }
  return best;
}

// TensorFlow's in_top_k: the target is in the top k when fewer than k classes score strictly
// higher (ties at the boundary count as in), and never when its score is not finite.
bool in_top_k(const double* x, int64_t n, int64_t target, int k) {
  if (target < 0 || target >= n || !std::isfinite(x[target])) return false;
  int64_t higher = 0;
  for (int64_t c = 0; c < n; ++c) higher += x[c] > x[target] ? 1 : 0;
  return higher < k;
}

// Integer labels, one per row of y_pred: y_true [...] or [..., 1] for y_pred [..., C].
std::vector<double> labels_for(const Tensor& y_true, const Tensor& y_pred, int64_t rows, const std::string& who) {
  if (y_true.numel() != rows) {
    throw ShapeError(str(who, ": expected one integer label per row of y_pred ", y_pred.shape(), " (", rows,
                         " labels), got y_true ", y_true.shape()));
  }
  return as_doubles(y_true);
}

void check_same_shape(const Tensor& y_true, const Tensor& y_pred, const std::string& who) {
  if (y_true.shape() != y_pred.shape()) {
    throw ShapeError(str(who, ": expected y_true of y_pred's shape, got y_true ", y_true.shape(), " and y_pred ",
                         y_pred.shape()));
  }
}

// "accuracy" for a loss that does not say which: resolved on the first batch from the shapes, as
// Keras (compile_utils.get_metric): a last axis of 1 in y_pred → binary; y_true of lower rank,
// or with a last axis of 1 against several classes → sparse; otherwise categorical.
class AccuracyByShape : public Metric {
 public:
  explicit AccuracyByShape(std::string name) : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override {
    if (!inner_) {
      check_real(y_true, name(), "y_true");
      check_real(y_pred, name(), "y_pred");
      const int64_t t_last = y_true.dim() > 0 ? y_true.shape().back() : 1;
      const int64_t p_last = y_pred.dim() > 0 ? y_pred.shape().back() : 1;
      if (p_last == 1) {
        inner_ = std::make_unique<metrics::BinaryAccuracy>(name());
      } else if (y_true.dim() < y_pred.dim() || t_last == 1) {
        inner_ = std::make_unique<metrics::SparseCategoricalAccuracy>(name());
      } else {
        inner_ = std::make_unique<metrics::CategoricalAccuracy>(name());
      }
    }
    inner_->update_state(y_true, y_pred);
  }
  [[nodiscard]] double result() const override { return inner_ ? inner_->result() : 0.0; }
  void reset_state() override {
    if (inner_) inner_->reset_state();
  }

 private:
  std::unique_ptr<Metric> inner_;
};

// Keras's divide_no_nan: a metric over no samples is 0.
double ratio(double num, double den) { return den > 0.0 ? num / den : 0.0; }

}  // namespace

Metric::~Metric() = default;

namespace metrics {

SparseCategoricalAccuracy::SparseCategoricalAccuracy(std::string name) : Metric(std::move(name)) {}

void SparseCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  check_real(y_true, name(), "y_true");
  check_real(y_pred, name(), "y_pred");
  const Rows p = rows_of(y_pred, name());
  const std::vector<double> labels = labels_for(y_true, y_pred, p.rows, name());
  for (int64_t r = 0; r < p.rows; ++r) {
    // Keras compares the argmax, cast to y_true's type, with the label.
    correct_ += static_cast<double>(argmax(p.row(r), p.classes)) == labels[static_cast<std::size_t>(r)] ? 1 : 0;
  }
  total_ += static_cast<double>(p.rows);
}
double SparseCategoricalAccuracy::result() const { return ratio(correct_, total_); }
void SparseCategoricalAccuracy::reset_state() { correct_ = total_ = 0; }

CategoricalAccuracy::CategoricalAccuracy(std::string name) : Metric(std::move(name)) {}

void CategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  check_real(y_true, name(), "y_true");
  check_real(y_pred, name(), "y_pred");
  check_same_shape(y_true, y_pred, name());
  const Rows p = rows_of(y_pred, name());
  const Rows t = rows_of(y_true, name());
  for (int64_t r = 0; r < p.rows; ++r) correct_ += argmax(p.row(r), p.classes) == argmax(t.row(r), t.classes) ? 1 : 0;
  total_ += static_cast<double>(p.rows);
}
double CategoricalAccuracy::result() const { return ratio(correct_, total_); }
void CategoricalAccuracy::reset_state() { correct_ = total_ = 0; }

BinaryAccuracy::BinaryAccuracy(std::string name, double threshold) : Metric(std::move(name)), threshold_(threshold) {
  if (!std::isfinite(threshold)) throw ValueError(str("metrics::BinaryAccuracy: expected a finite threshold, got ", threshold));
}

// Keras: mean over the last axis of ((y_pred > threshold) == y_true), then over samples; every
// sample has the same width, so that is the fraction of matching elements.
void BinaryAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  check_real(y_true, name(), "y_true");
  check_real(y_pred, name(), "y_pred");
  if (y_true.numel() != y_pred.numel()) {
    throw ShapeError(str(name(), ": expected y_true of y_pred's shape (up to a trailing axis of 1), got y_true ",
                         y_true.shape(), " and y_pred ", y_pred.shape()));
  }
  const std::vector<double> t = as_doubles(y_true);
  const std::vector<double> p = as_doubles(y_pred);
  for (std::size_t i = 0; i < p.size(); ++i) correct_ += (p[i] > threshold_ ? 1.0 : 0.0) == t[i] ? 1 : 0;
  total_ += static_cast<double>(p.size());
}
double BinaryAccuracy::result() const { return ratio(correct_, total_); }
void BinaryAccuracy::reset_state() { correct_ = total_ = 0; }

SparseTopKCategoricalAccuracy::SparseTopKCategoricalAccuracy(int k, std::string name)
    : Metric(name.empty() ? "sparse_top_k_categorical_accuracy" : std::move(name)), k_(k) {
  if (k < 1) throw ValueError(str("metrics::SparseTopKCategoricalAccuracy: expected k >= 1, got ", k));
}

void SparseTopKCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  check_real(y_true, name(), "y_true");
  check_real(y_pred, name(), "y_pred");
  const Rows p = rows_of(y_pred, name());
  const std::vector<double> labels = labels_for(y_true, y_pred, p.rows, name());
  for (int64_t r = 0; r < p.rows; ++r) {
    const double label = labels[static_cast<std::size_t>(r)];
    const bool integral = label == std::floor(label);
    correct_ += integral && in_top_k(p.row(r), p.classes, static_cast<int64_t>(label), k_) ? 1 : 0;
  }
  total_ += static_cast<double>(p.rows);
}
double SparseTopKCategoricalAccuracy::result() const { return ratio(correct_, total_); }
void SparseTopKCategoricalAccuracy::reset_state() { correct_ = total_ = 0; }

TopKCategoricalAccuracy::TopKCategoricalAccuracy(int k, std::string name)
    : Metric(name.empty() ? "top_k_categorical_accuracy" : std::move(name)), k_(k) {
  if (k < 1) throw ValueError(str("metrics::TopKCategoricalAccuracy: expected k >= 1, got ", k));
}

void TopKCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  check_real(y_true, name(), "y_true");
  check_real(y_pred, name(), "y_pred");
  check_same_shape(y_true, y_pred, name());
  const Rows p = rows_of(y_pred, name());
  const Rows t = rows_of(y_true, name());
  for (int64_t r = 0; r < p.rows; ++r) {
    correct_ += in_top_k(p.row(r), p.classes, argmax(t.row(r), t.classes), k_) ? 1 : 0;
  }
  total_ += static_cast<double>(p.rows);
}
double TopKCategoricalAccuracy::result() const { return ratio(correct_, total_); }
void TopKCategoricalAccuracy::reset_state() { correct_ = total_ = 0; }

MeanLoss::MeanLoss(Loss loss, std::string name)
    : Metric(name.empty() ? loss.name() : std::move(name)), loss_(std::move(loss)) {
  if (!loss_) throw Error("metrics::MeanLoss: needs a loss");
}

// Each batch's mean loss weighted by its batch size (y_pred's first extent), so the result is the
// mean over samples even when the last batch is short.
void MeanLoss::update_state(const Tensor& y_true, const Tensor& y_pred) {
  check_real(y_true, name(), "y_true");
  check_real(y_pred, name(), "y_pred");
  NoGradGuard no_grad;
  const double value = loss_(y_true, y_pred).item();
  const double n = y_pred.dim() > 0 ? static_cast<double>(y_pred.shape()[0]) : 1.0;
  sum_ += value * n;
  count_ += n;
}
double MeanLoss::result() const { return ratio(sum_, count_); }
void MeanLoss::reset_state() { sum_ = count_ = 0; }

std::shared_ptr<Metric> get(const std::string& name, const Loss& loss) {
  if (name == "accuracy" || name == "acc") {
    const Config& config = loss.get_config();
    const std::string cls = config.is_object() ? config.value("class_name", std::string()) : std::string();
    if (cls == "SparseCategoricalCrossentropy") return std::make_shared<SparseCategoricalAccuracy>(name);
    if (cls == "CategoricalCrossentropy") return std::make_shared<CategoricalAccuracy>(name);
    if (cls == "BinaryCrossentropy") return std::make_shared<BinaryAccuracy>(name);
    return std::make_shared<AccuracyByShape>(name);
  }
  if (name == "sparse_categorical_accuracy") return std::make_shared<SparseCategoricalAccuracy>(name);
  if (name == "categorical_accuracy") return std::make_shared<CategoricalAccuracy>(name);
  if (name == "binary_accuracy") return std::make_shared<BinaryAccuracy>(name);
  if (name == "sparse_top_k_categorical_accuracy") return std::make_shared<SparseTopKCategoricalAccuracy>(5, name);
  if (name == "top_k_categorical_accuracy") return std::make_shared<TopKCategoricalAccuracy>(5, name);
  // "mse", "mae" and the loss names: the batch-weighted mean of that loss (Keras's defaults,
  // e.g. from probabilities for the cross-entropies).
  if (name == "mse" || name == "mae" || name == "mean_squared_error" || name == "mean_absolute_error" ||
      name == "sparse_categorical_crossentropy" || name == "categorical_crossentropy" ||
      name == "binary_crossentropy") {
    return std::make_shared<MeanLoss>(losses::get(name), name);
  }
  throw ValueError(str("metrics::get: unknown metric '", name,
                       "' (known: accuracy/acc, sparse_categorical_accuracy, categorical_accuracy, binary_accuracy, "
                       "top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mse, mae, and the loss names)"));
}

}  // namespace metrics
}  // namespace normnet

// Keras's losses composed from ops (their gradients come from the ops'), with Keras's clipping
// epsilon, shape rules and "sum_over_batch_size" reduction; get() by name and from_config().
#include "normnet/losses.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "normnet/ops/elementwise.h"
#include "normnet/ops/l2_normalize.h"
#include "normnet/ops/nn.h"
#include "normnet/ops/reduce.h"
#include "normnet/ops/shape_ops.h"
#include "training/config_options.h"

namespace normnet {
namespace {

using detail::str;

// Keras's backend epsilon (keras.config.epsilon()), the clip bound for probabilities.
constexpr double kEpsilon = 1e-7;

// Extents agree, an unknown (symbolic) batch matching anything.
bool same_shape(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && a[i] != kUnknownDim && b[i] != kUnknownDim) return false;
  }
  return true;
}

Shape drop_last(const Shape& s) { return Shape(s.begin(), s.end() - (s.empty() ? 0 : 1)); }

Shape with_one(Shape s) {
  s.push_back(1);
  return s;
}

[[noreturn]] void shape_fail(const char* who, const Tensor& y_true, const Tensor& y_pred, const std::string& expected) {
  throw ShapeError(str(who, ": y_true ", y_true.shape(), " does not fit y_pred ", y_pred.shape(), " (", expected, ")"));
}

void check_floating_pred(const char* who, const Tensor& y_pred) {
  if (!is_floating(y_pred.dtype())) {
    throw ValueError(str(who, ": expected y_pred to be float32 or float64, got ", dtype_name(y_pred.dtype()),
                         " of shape ", y_pred.shape()));
  }
}

// y_true in y_pred's shape and dtype for the elementwise losses. As Keras's
// squeeze_or_expand_to_same_rank, a trailing axis of extent 1 on either side is dropped or added
// (y_true [N] against y_pred [N, 1]); anything else is a ShapeError.
Tensor align_targets(const char* who, const Tensor& y_true, const Tensor& y_pred) {
  check_floating_pred(who, y_pred);
  Tensor t = ops::cast(y_true, y_pred.dtype());
  const Shape& ts = t.shape();
  const Shape& ps = y_pred.shape();
  if (same_shape(ts, ps)) return t;
  if (same_shape(ts, with_one(ps)) || same_shape(with_one(ts), ps)) {
    Shape target = ps;
    if (!target.empty() && target[0] == kUnknownDim) target[0] = -1;
    return ops::reshape(t, target);
  }
  shape_fail(who, y_true, y_pred, "expected the same shape, up to a trailing axis of extent 1");
}

// ---- the loss functions (y_true, y_pred already validated by the callers below) ----

// Mean over rows of −log softmax(logits)[label]: y_pred [..., C], y_true [...] or [..., 1].
Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  const char* who = "SparseCategoricalCrossentropy";
  check_floating_pred(who, y_pred);
  const Shape& ps = y_pred.shape();
  if (ps.empty()) shape_fail(who, y_true, y_pred, "y_pred needs a class axis");
  const Shape rows = drop_last(ps);
  if (!same_shape(y_true.shape(), rows) && !same_shape(y_true.shape(), with_one(rows))) {
    shape_fail(who, y_true, y_pred,
               str("expected integer labels of shape ", rows, " or ", with_one(rows), " for ", ps.back(), " classes"));
  }
  const int64_t C = ps.back();
  Tensor labels = ops::reshape(ops::cast(y_true, DType::kInt64), {-1});  // Keras casts float labels too
  // From probabilities, as TensorFlow's Keras backend: logits = log(clip(p, ε, 1 − ε)), then the
  // same fused softmax cross-entropy, so the loss is −log(clip(p)[l]) + log Σ clip(p) (the second
  // term is 0 for probabilities that sum to 1). Keras's JAX/NumPy backends renormalize before
  // clipping instead; the two differ only where clipping bites (by at most C·ε).
  Tensor logits = from_logits ? y_pred : ops::log(ops::clip(y_pred, kEpsilon, 1.0 - kEpsilon));
  if (ps.size() != 2) logits = ops::reshape(logits, {-1, C});
  return ops::sparse_softmax_cross_entropy(logits, labels);
}

Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits, double smoothing) {
  const char* who = "CategoricalCrossentropy";
  check_floating_pred(who, y_pred);
  if (y_pred.dim() == 0 || !same_shape(y_true.shape(), y_pred.shape())) {
    shape_fail(who, y_true, y_pred, "expected one-hot or soft targets of y_pred's shape");
  }
  Tensor y = ops::cast(y_true, y_pred.dtype());
  if (smoothing > 0.0) {
    const auto C = static_cast<double>(y_pred.shape().back());
    y = y * (1.0 - smoothing) + smoothing / C;  // Keras: y·(1 − s) + s/C
  }
  Tensor log_p;
  if (from_logits) {
    log_p = ops::log_softmax(y_pred, -1);
  } else {
    // Keras: p / Σp along the class axis, clipped to [ε, 1 − ε].
    Tensor p = y_pred / ops::sum(y_pred, {-1}, /*keepdims=*/true);
    log_p = ops::log(ops::clip(p, kEpsilon, 1.0 - kEpsilon));
  }
  return -ops::mean(ops::sum(y * log_p, {-1}));
}

Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  const char* who = "BinaryCrossentropy";
  Tensor z = align_targets(who, y_true, y_pred);
  if (from_logits) {
    // −z·log σ(x) − (1 − z)·log(1 − σ(x)) = max(x, 0) − x·z + log(1 + e^−|x|)  (TensorFlow's
    // sigmoid_cross_entropy_with_logits; finite for any x). max(x, 0) is written (x + |x|)/2 so
    // that the gradient at x = 0 is the true σ(0) − z = ½ − z: with relu'(0) = abs'(0) = 0 the
    // composed form would give −z there.
    const Tensor& x = y_pred;
    Tensor abs_x = ops::abs(x);
    return ops::mean((x + abs_x) * 0.5 - x * z + ops::log(1.0 + ops::exp(-abs_x)));
  }
  // Keras 3: p clipped to [ε, 1 − ε], then −(z·log p + (1 − z)·log(1 − p)). (Keras 2 also added
  // ε inside both logs.)
  Tensor p = ops::clip(y_pred, kEpsilon, 1.0 - kEpsilon);
  return -ops::mean(z * ops::log(p) + (1.0 - z) * ops::log(1.0 - p));
}

Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred) {
  return ops::mean(ops::square(y_pred - align_targets("MeanSquaredError", y_true, y_pred)));
}

Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred) {
  return ops::mean(ops::abs(y_pred - align_targets("MeanAbsoluteError", y_true, y_pred)));
}

// −mean over the other axes of ⟨y_true/‖y_true‖, y_pred/‖y_pred‖⟩ along `axis`. The exact
// l2_normalize maps a zero vector to zero, so a zero target or prediction contributes 0 (Keras's
// ε-based normalization also gives 0 there), never NaN.
Tensor cosine_similarity(const Tensor& y_true, const Tensor& y_pred, int axis) {
  const char* who = "CosineSimilarity";
  Tensor t = align_targets(who, y_true, y_pred);
  if (y_pred.dim() == 0) shape_fail(who, y_true, y_pred, "cosine similarity needs at least one axis");
  (void)normalize_axis(axis, y_pred.shape().size(), "CosineSimilarity", y_pred.shape());  // throws when out of range
  const auto opts = L2NormalizeOptions().axis({axis});
  return -ops::mean(ops::sum(ops::l2_normalize(t, opts) * ops::l2_normalize(y_pred, opts), {axis}));
}

Config loss_config(const char* class_name, const std::string& name, Config options = Config::object()) {
  options["name"] = name;
  options["reduction"] = "sum_over_batch_size";
  return Config{{"class_name", class_name}, {"config", std::move(options)}};
}

using detail::lower;

template <class T>
T option(const Config& params, const char* key, T fallback, const std::string& who) {
  return detail::config_option(params, key, fallback, "losses::from_config: " + who);
}

}  // namespace

Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred) const {
  if (!fn_) throw Error("Loss: called an empty loss (use a losses:: class or a callable)");
  if (!y_true.defined() || !y_pred.defined()) {
    throw Error(str(name_, ": called with an undefined ", y_true.defined() ? "y_pred" : "y_true"));
  }
  Tensor value = fn_(y_true, y_pred);
  if (!value.defined()) throw ValueError(str(name_, ": the loss function returned an undefined tensor"));
  // A per-sample result is reduced as Keras's "sum_over_batch_size": the mean of its elements.
  if (value.dim() != 0) value = ops::mean(value);
  return value;
}

namespace losses {

SparseCategoricalCrossentropy::SparseCategoricalCrossentropy() { update(); }
SparseCategoricalCrossentropy& SparseCategoricalCrossentropy::from_logits(bool from_logits) {
  from_logits_ = from_logits;
  update();
  return *this;
}
void SparseCategoricalCrossentropy::update() {
  const bool logits = from_logits_;
  set([logits](const Tensor& t, const Tensor& p) { return sparse_categorical_crossentropy(t, p, logits); },
      "sparse_categorical_crossentropy",
      loss_config("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", {{"from_logits", logits}}));
}

CategoricalCrossentropy::CategoricalCrossentropy() { update(); }
CategoricalCrossentropy& CategoricalCrossentropy::from_logits(bool from_logits) {
  from_logits_ = from_logits;
  update();
  return *this;
}
CategoricalCrossentropy& CategoricalCrossentropy::label_smoothing(double smoothing) {
  if (!(smoothing >= 0.0 && smoothing <= 1.0)) {
    throw ValueError(str("CategoricalCrossentropy: expected label_smoothing in [0, 1], got ", smoothing));
  }
  label_smoothing_ = smoothing;
  update();
  return *this;
}
void CategoricalCrossentropy::update() {
  const bool logits = from_logits_;
  const double smoothing = label_smoothing_;
  set([logits, smoothing](const Tensor& t, const Tensor& p) { return categorical_crossentropy(t, p, logits, smoothing); },
      "categorical_crossentropy",
      loss_config("CategoricalCrossentropy", "categorical_crossentropy",
                  {{"from_logits", logits}, {"label_smoothing", smoothing}}));
}

BinaryCrossentropy::BinaryCrossentropy() { update(); }
BinaryCrossentropy& BinaryCrossentropy::from_logits(bool from_logits) {
  from_logits_ = from_logits;
  update();
  return *this;
}
void BinaryCrossentropy::update() {
  const bool logits = from_logits_;
  set([logits](const Tensor& t, const Tensor& p) { return binary_crossentropy(t, p, logits); }, "binary_crossentropy",
      loss_config("BinaryCrossentropy", "binary_crossentropy", {{"from_logits", logits}}));
}

MeanSquaredError::MeanSquaredError() {
  set(mean_squared_error, "mean_squared_error", loss_config("MeanSquaredError", "mean_squared_error"));
}

MeanAbsoluteError::MeanAbsoluteError() {
  set(mean_absolute_error, "mean_absolute_error", loss_config("MeanAbsoluteError", "mean_absolute_error"));
}

CosineSimilarity::CosineSimilarity() { update(); }
CosineSimilarity& CosineSimilarity::axis(int axis) {
  axis_ = axis;
  update();
  return *this;
}
void CosineSimilarity::update() {
  const int axis = axis_;
  set([axis](const Tensor& t, const Tensor& p) { return cosine_similarity(t, p, axis); }, "cosine_similarity",
      loss_config("CosineSimilarity", "cosine_similarity", {{"axis", axis}}));
}

Loss get(const std::string& name) {
  const std::string key = lower(name);
  if (key == "sparse_categorical_crossentropy" || key == "sparsecategoricalcrossentropy") {
    return SparseCategoricalCrossentropy();
  }
  if (key == "categorical_crossentropy" || key == "categoricalcrossentropy") return CategoricalCrossentropy();
  if (key == "binary_crossentropy" || key == "binarycrossentropy") return BinaryCrossentropy();
  if (key == "mse" || key == "mean_squared_error" || key == "meansquarederror") return MeanSquaredError();
  if (key == "mae" || key == "mean_absolute_error" || key == "meanabsoluteerror") return MeanAbsoluteError();
  if (key == "cosine_similarity" || key == "cosinesimilarity") return CosineSimilarity();
  throw ValueError(str("losses::get: unknown loss '", name,
                       "' (known: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, "
                       "mse/mean_squared_error, mae/mean_absolute_error, cosine_similarity)"));
}

Loss from_config(const Config& config) {
  if (config.is_string()) return get(config.get<std::string>());
  if (!config.is_object() || !config.contains("class_name") || !config["class_name"].is_string()) {
    throw ValueError(str("losses::from_config: expected {\"class_name\": ..., \"config\": {...}} or a name, got ",
                         config.dump()));
  }
  const std::string cls = config["class_name"].get<std::string>();
  const Config params = config.value("config", Config::object());
  Loss loss = get(cls);  // throws ValueError for an unknown class
  const std::string key = lower(cls);
  if (key == "sparsecategoricalcrossentropy" || key == "sparse_categorical_crossentropy") {
    return SparseCategoricalCrossentropy().from_logits(option(params, "from_logits", false, cls));
  }
  if (key == "categoricalcrossentropy" || key == "categorical_crossentropy") {
    return CategoricalCrossentropy()
        .from_logits(option(params, "from_logits", false, cls))
        .label_smoothing(option(params, "label_smoothing", 0.0, cls));
  }
  if (key == "binarycrossentropy" || key == "binary_crossentropy") {
    return BinaryCrossentropy().from_logits(option(params, "from_logits", false, cls));
  }
  if (key == "cosinesimilarity" || key == "cosine_similarity") {
    return CosineSimilarity().axis(option(params, "axis", -1, cls));
  }
  return loss;
}

}  // namespace losses
}  // namespace normnet

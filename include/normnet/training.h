// compile/fit options and the History that fit returns (DESIGN.md §5).
//
//   model.compile(CompileOptions()
//                     .optimizer(optimizers::Adam(1e-3))
//                     .loss(losses::SparseCategoricalCrossentropy().from_logits(true))
//                     .metrics({"accuracy"}));
//   History h = model.fit(x, y, FitOptions().epochs(2).batch_size(128).seed(1).verbose(0));
#pragma once

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "normnet/callbacks.h"
#include "normnet/losses.h"
#include "normnet/metrics.h"
#include "normnet/optimizers.h"

namespace normnet {

// A loss over every output and target at once: fn(y_true per output, y_pred per output).
using ModelLoss = std::function<Tensor(const std::vector<Tensor>& y_true, const std::vector<Tensor>& y_pred)>;

class CompileOptions {
 public:
  template <class O, class = std::enable_if_t<std::is_base_of_v<Optimizer, O>>>
  CompileOptions& optimizer(O optimizer) {
    optimizer_ = std::make_shared<O>(std::move(optimizer));
    return *this;
  }
  CompileOptions& optimizer(std::shared_ptr<Optimizer> optimizer) {
    optimizer_ = std::move(optimizer);
    return *this;
  }
  CompileOptions& optimizer(const std::string& name);
  // One loss for a single-output model (or the same loss for every output).
  CompileOptions& loss(Loss loss) {
    losses_ = {std::move(loss)};
    return *this;
  }
  CompileOptions& loss(const std::string& name);
  // One loss per output, in output order; an empty Loss() means that output has no loss.
  CompileOptions& losses(std::vector<Loss> losses) {
    losses_ = std::move(losses);
    return *this;
  }
  // losses({a, b}) with Loss variables: without this overload the braced list also matches
  // std::map's iterator-pair constructor and the call is ambiguous.
  CompileOptions& losses(std::initializer_list<Loss> losses) { return this->losses(std::vector<Loss>(losses)); }
  // Losses by output layer name; outputs not named get no loss.
  CompileOptions& losses(std::map<std::string, Loss> losses) {
    named_losses_ = std::move(losses);
    return *this;
  }
  CompileOptions& loss_weights(std::vector<double> weights) {
    loss_weights_ = std::move(weights);
    return *this;
  }
  // A loss over all outputs and targets, replacing per-output losses.
  CompileOptions& model_loss(ModelLoss loss) {
    model_loss_ = std::move(loss);
    return *this;
  }
  // Metric names for every output with a loss ("accuracy", "top_k_categorical_accuracy", ...).
  CompileOptions& metrics(std::vector<std::string> names) {
    metrics_ = std::move(names);
    return *this;
  }
  // Metric names per output, by output index.
  CompileOptions& metrics(std::vector<std::vector<std::string>> per_output) {
    metrics_per_output_ = std::move(per_output);
    return *this;
  }

  std::shared_ptr<Optimizer> optimizer_;
  std::vector<Loss> losses_;
  std::map<std::string, Loss> named_losses_;
  std::vector<double> loss_weights_;
  ModelLoss model_loss_;
  std::vector<std::string> metrics_;
  std::vector<std::vector<std::string>> metrics_per_output_;
};

class FitOptions {
 public:
  FitOptions& epochs(int epochs) { epochs_ = epochs; return *this; }
  FitOptions& initial_epoch(int epoch) { initial_epoch_ = epoch; return *this; }
  FitOptions& batch_size(int64_t batch_size) { batch_size_ = batch_size; return *this; }
  FitOptions& shuffle(bool shuffle) { shuffle_ = shuffle; return *this; }
  FitOptions& seed(uint64_t seed) { seed_ = seed; has_seed_ = true; return *this; }
  // The last fraction of the samples (before shuffling) is held out for validation, as Keras.
  FitOptions& validation_split(double fraction) { validation_split_ = fraction; return *this; }
  FitOptions& validation_data(std::vector<Tensor> x, std::vector<Tensor> y) {
    val_x_ = std::move(x);
    val_y_ = std::move(y);
    return *this;
  }
  FitOptions& validation_data(Tensor x, Tensor y) { return validation_data(std::vector<Tensor>{x}, std::vector<Tensor>{y}); }
  FitOptions& callbacks(std::vector<std::shared_ptr<Callback>> callbacks) { callbacks_ = std::move(callbacks); return *this; }
  template <class C, class = std::enable_if_t<std::is_base_of_v<Callback, C>>>
  FitOptions& callback(C callback) {
    callbacks_.push_back(std::make_shared<C>(std::move(callback)));
    return *this;
  }
  // 0 = silent, 1 = progress bar (one line per epoch when not a terminal), 2 = one line per epoch.
  FitOptions& verbose(int verbose) { verbose_ = verbose; return *this; }
  // Limit of training steps per epoch (0 = all); useful for quick runs.
  FitOptions& steps_per_epoch(int64_t steps) { steps_per_epoch_ = steps; return *this; }

  int epochs_ = 1, initial_epoch_ = 0;
  int64_t batch_size_ = 32, steps_per_epoch_ = 0;
  bool shuffle_ = true, has_seed_ = false;
  uint64_t seed_ = 0;
  double validation_split_ = 0.0;
  std::vector<Tensor> val_x_, val_y_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  int verbose_ = 1;
};

// Per-epoch logs of fit: "loss", each regularization term ("dense/activity_regularizer"),
// metrics, and the same with a "val_" prefix.
class History {
 public:
  std::vector<int> epoch;
  std::map<std::string, std::vector<double>> history;
  // Writes the curves (losses and terms on one panel, metrics on another; training solid,
  // validation dashed) as a standalone SVG file. Throws IoError naming the path on failure.
  void plot_svg(const std::string& path, const std::string& title = "training") const;
};

}  // namespace normnet

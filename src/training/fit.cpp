// The training API of Model after compile (compile.cpp): the train and test steps, fit (epochs,
// shuffled batches, validation, callbacks), evaluate, predict, train_on_batch, test_on_batch. Every log shows
// the total loss, each regularization and add_loss term by name, per-output losses when there are several
// outputs, and metrics.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "normnet/autograd.h"
#include "normnet/initializers.h"
#include "normnet/model.h"
#include "normnet/ops/shape_ops.h"
#include "training/batching.h"
#include "training/data_checks.h"
#include "training/model_naming.h"
#include "training/training_state.h"

namespace normnet {
namespace {

using detail::check_data;
using detail::label;
using detail::MeanAccumulator;
using detail::str;
using detail::TrainingState;

// Enables or disables autograd for a scope and restores the previous mode.
class GradMode {
 public:
  explicit GradMode(bool enabled) : previous_(grad_enabled()) { set_grad_enabled(enabled); }
  ~GradMode() { set_grad_enabled(previous_); }
  GradMode(const GradMode&) = delete;
  GradMode& operator=(const GradMode&) = delete;

 private:
  bool previous_;
};

TrainingState& state_of(const FunctionalModel& m, const char* who) {
  if (!m.training_state) {
    throw Error(str(label(m), ": ", who, "() needs compile() first, e.g. model.compile(CompileOptions()",
                    ".optimizer(optimizers::Adam()).loss(losses::SparseCategoricalCrossentropy()))"));
  }
  return *m.training_state;
}

// Re-throws a loss's error with the model and output it belongs to, keeping its type.
template <class F>
Tensor with_context(const std::string& prefix, F&& f) {
  try {
    return f();
  } catch (const ShapeError& e) {
    throw ShapeError(prefix + e.what());
  } catch (const ValueError& e) {
    throw ValueError(prefix + e.what());
  } catch (const Error& e) {
    throw Error(prefix + e.what());
  }
}

struct StepLosses {
  Tensor total;
  std::vector<std::pair<std::string, double>> values;  // "loss", "<output>_loss", terms by name
};

// total = Σ weight_i·loss_i(y_i, pred_i) (or the model loss) + every regularization and add_loss
// term of the forward pass that produced `preds`.
StepLosses compute_losses(const FunctionalModel& m, const TrainingState& s, const std::vector<Tensor>& ys,
                          const std::vector<Tensor>& preds) {
  StepLosses r;
  auto add = [&](const Tensor& t) { r.total = r.total.defined() ? r.total + t : t; };
  const std::string who = label(m);
  if (s.model_loss) {
    Tensor l = with_context(str(who, ", model_loss: "), [&] { return s.model_loss(ys, preds); });
    if (!l.defined() || l.numel() != 1) {
      throw ShapeError(str(who, ": model_loss must return a scalar, got ", l.defined() ? shape_to_string(l.shape()) : "undefined"));
    }
    add(l);
  } else {
    for (std::size_t i = 0; i < s.outputs.size(); ++i) {
      const auto& out = s.outputs[i];
      if (!out.loss) continue;
      Tensor l = with_context(str(who, ", output ", i, " ('", out.name, "'), loss '", out.loss.name(), "': "),
                              [&] { return out.loss(ys[i], preds[i]); });
      if (s.outputs.size() > 1) r.values.emplace_back(out.name + "_loss", l.item());
      add(out.weight == 1.0 ? l : l * out.weight);
    }
  }
  // Terms sharing a name (a shared layer called twice) are summed under that name.
  std::vector<std::pair<std::string, double>> terms;
  for (const NamedLoss& term : m.named_losses()) {
    auto it = std::find_if(terms.begin(), terms.end(), [&](const auto& p) { return p.first == term.name; });
    if (it == terms.end()) terms.emplace_back(term.name, term.value.item());
    else it->second += term.value.item();
    add(term.value);
  }
  if (!r.total.defined()) {
    throw ValueError(str(who, ": nothing to minimize: compile() got no loss and the model has no "
                              "regularization or add_loss terms"));
  }
  r.values.insert(r.values.begin(), {"loss", r.total.item()});
  r.values.insert(r.values.end(), terms.begin(), terms.end());
  return r;
}

void update_metrics(const TrainingState& s, const std::vector<Tensor>& ys, const std::vector<Tensor>& preds) {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < s.outputs.size(); ++i) {
    for (const auto& metric : s.outputs[i].metrics) metric->update_state(ys[i], preds[i].detach());
  }
}

void reset_metrics(const TrainingState& s) {
  for (const auto& out : s.outputs) {
    for (const auto& metric : out.metrics) metric->reset_state();
  }
}

Logs logs_of(const MeanAccumulator& acc, const TrainingState& s, const std::string& prefix = "") {
  Logs logs;
  for (const auto& [k, v] : acc.means()) logs[prefix + k] = v;
  for (const auto& out : s.outputs) {
    for (const auto& metric : out.metrics) logs[prefix + metric->name()] = metric->result();
  }
  return logs;
}

// One optimizer step: forward in training mode, losses, backward, update, gradients cleared.
StepLosses train_step(FunctionalModel& m, TrainingState& s, const std::vector<Tensor>& xs, const std::vector<Tensor>& ys) {
  GradMode grad(true);
  const std::vector<Tensor> weights = m.trainable_weights();
  for (Tensor w : weights) w.zero_grad();
  const std::vector<Tensor> preds = m(xs, /*training=*/true);
  StepLosses r = compute_losses(m, s, ys, preds);
  if (r.total.requires_grad()) {
    r.total.backward();
    s.optimizer->apply_gradients(weights);
  }
  for (Tensor w : weights) w.zero_grad();
  update_metrics(s, ys, preds);
  r.total = Tensor();
  return r;
}

StepLosses test_step(FunctionalModel& m, TrainingState& s, const std::vector<Tensor>& xs, const std::vector<Tensor>& ys) {
  NoGradGuard no_grad;
  const std::vector<Tensor> preds = m(xs, /*training=*/false);
  StepLosses r = compute_losses(m, s, ys, preds);
  update_metrics(s, ys, preds);
  r.total = Tensor();
  return r;
}

// The logs of `order`'s samples in inference mode, in batches (validation and evaluate).
Logs run_test(FunctionalModel& m, TrainingState& s, const std::vector<Tensor>& x, const std::vector<Tensor>& y,
              const std::vector<int64_t>& order, int64_t batch_size,
              const std::vector<std::shared_ptr<Callback>>& callbacks, const std::string& prefix) {
  reset_metrics(s);
  MeanAccumulator acc;
  detail::BatchGatherer gx, gy;
  const auto n = static_cast<int64_t>(order.size());
  for (int64_t b = 0; b * batch_size < n; ++b) {
    const int64_t begin = b * batch_size, count = std::min(batch_size, n - begin);
    const std::vector<Tensor> xb = gx.gather(x, order.data() + begin, count);
    const std::vector<Tensor> yb = gy.gather(y, order.data() + begin, count);
    for (const auto& [k, v] : test_step(m, s, xb, yb).values) acc.add(k, v, static_cast<double>(count));
    if (!callbacks.empty()) {
      const Logs logs = logs_of(acc, s);
      for (const auto& cb : callbacks) cb->on_test_batch_end(static_cast<int>(b), logs);
    }
  }
  return logs_of(acc, s, prefix);
}

std::vector<int64_t> iota(int64_t begin, int64_t end) {
  std::vector<int64_t> order(static_cast<std::size_t>(end - begin));
  std::iota(order.begin(), order.end(), begin);
  return order;
}

void check_batch_size(const FunctionalModel& m, int64_t batch_size) {
  if (batch_size < 1) throw ValueError(str(label(m), ": batch_size must be at least 1, got ", batch_size));
}

// Appends an epoch's logs to the history; a key missing in some epochs reads NaN there.
void record(History& h, int epoch, const Logs& logs) {
  const std::size_t before = h.epoch.size();
  h.epoch.push_back(epoch);
  for (const auto& [k, v] : logs) {
    auto& values = h.history[k];
    values.resize(before, std::nan(""));
    values.push_back(v);
  }
  for (auto& [k, values] : h.history) values.resize(before + 1, std::nan(""));
}

// How many of the n samples fit() trains on: all of them with validation_data or no split;
// with a split, Keras holds out the last fraction of the samples, before any shuffling.
int64_t training_count(const FunctionalModel& m, int64_t n, double validation_split, bool has_val_data) {
  if (validation_split < 0.0 || validation_split >= 1.0) {
    throw ValueError(str(label(m), ": validation_split must be in [0, 1), got ", validation_split));
  }
  if (has_val_data || validation_split == 0.0) return n;
  const auto n_train = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - validation_split)));
  if (n_train == 0 || n_train == n) {
    throw ValueError(str(label(m), ": validation_split ", validation_split, " of ", n,
                         " samples leaves no training or no validation samples"));
  }
  return n_train;
}

// The callbacks of a fit() call, a progress bar added for verbose > 0, each told the model and
// the run's epochs and steps.
std::vector<std::shared_ptr<Callback>> with_progbar(std::vector<std::shared_ptr<Callback>> callbacks,
                                                    int verbose, Model* model, int epochs, int64_t steps) {
  if (verbose > 0) callbacks.push_back(std::make_shared<callbacks::ProgbarLogger>(verbose));
  for (const auto& cb : callbacks) {
    cb->set_model(model);
    cb->set_params(epochs, steps);
  }
  return callbacks;
}

}  // namespace

History Model::fit(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const FitOptions& o) {
  FunctionalModel& m = *ptr_;
  TrainingState& s = state_of(m, "fit");
  const int64_t n = check_data(m, "x/y", x, &y, s.outputs.size());
  check_batch_size(m, o.batch_size_);
  const bool has_val_data = !o.val_x_.empty() || !o.val_y_.empty();
  if (has_val_data) check_data(m, "validation_data", o.val_x_, &o.val_y_, s.outputs.size());
  const int64_t n_train = training_count(m, n, o.validation_split_, has_val_data);
  const bool has_val = has_val_data || n_train < n;
  const std::vector<Tensor>& vx = has_val_data ? o.val_x_ : x;
  const std::vector<Tensor>& vy = has_val_data ? o.val_y_ : y;
  const std::vector<int64_t> val_order = has_val_data ? iota(0, o.val_x_[0].shape()[0]) : iota(n_train, n);

  // The shuffle draws from its own stream; dropout draws from the global one. With a seed, both
  // restart at every epoch from (seed, epoch) alone, so a run resumed at initial_epoch = e from a
  // checkpoint of epoch e draws exactly what the uninterrupted run drew.
  detail::Rng rng(o.has_seed_ ? o.seed_ : next_seed());
  const auto seed_epoch = [&](int epoch) {
    if (!o.has_seed_) return;
    const uint64_t e = static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ull;
    rng = detail::Rng(o.seed_ ^ e);
    set_random_seed(detail::Rng(o.seed_ ^ 0xD1B54A32D192ED03ull ^ e).next());
  };

  int64_t steps = detail::batch_count(n_train, o.batch_size_);
  if (o.steps_per_epoch_ > 0) steps = std::min(steps, o.steps_per_epoch_);
  const std::vector<std::shared_ptr<Callback>> callbacks =
      with_progbar(o.callbacks_, o.verbose_, this, o.epochs_, steps);

  m.stop_training = false;
  History history;
  Logs logs;
  for (const auto& cb : callbacks) cb->on_train_begin({});
  detail::BatchGatherer gx, gy;
  MeanAccumulator acc;
  for (int epoch = o.initial_epoch_; epoch < o.epochs_ && !m.stop_training; ++epoch) {
    reset_metrics(s);
    acc.reset();
    for (const auto& cb : callbacks) cb->on_epoch_begin(epoch, {});
    seed_epoch(epoch);
    const std::vector<int64_t> order = detail::epoch_order(0, n_train, o.shuffle_, rng);
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t begin = step * o.batch_size_, count = std::min(o.batch_size_, n_train - begin);
      for (const auto& cb : callbacks) cb->on_train_batch_begin(static_cast<int>(step), {});
      const std::vector<Tensor> xb = gx.gather(x, order.data() + begin, count);
      const std::vector<Tensor> yb = gy.gather(y, order.data() + begin, count);
      for (const auto& [k, v] : train_step(m, s, xb, yb).values) acc.add(k, v, static_cast<double>(count));
      logs = logs_of(acc, s);
      for (const auto& cb : callbacks) cb->on_train_batch_end(static_cast<int>(step), logs);
      if (m.stop_training) break;
    }
    if (has_val) {
      const Logs val = run_test(m, s, vx, vy, val_order, o.batch_size_, callbacks, "val_");
      logs.insert(val.begin(), val.end());
    }
    for (const auto& cb : callbacks) cb->on_epoch_end(epoch, logs);
    record(history, epoch, logs);
  }
  for (const auto& cb : callbacks) cb->on_train_end(logs);
  return history;
}

History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  return fit(std::vector<Tensor>{x}, std::vector<Tensor>{y}, options);
}

// ---- evaluate, predict, train_on_batch, test_on_batch ----

std::map<std::string, double> Model::evaluate(const std::vector<Tensor>& x, const std::vector<Tensor>& y,
                                              int64_t batch_size, int verbose) {
  FunctionalModel& m = *ptr_;
  TrainingState& s = state_of(m, "evaluate");
  const int64_t n = check_data(m, "x/y", x, &y, s.outputs.size());
  check_batch_size(m, batch_size);
  const Logs logs = run_test(m, s, x, y, iota(0, n), batch_size, {}, "");
  if (verbose > 0) {
    const int64_t steps = detail::batch_count(n, batch_size);
    std::fprintf(stderr, "%s\n", detail::str(steps, "/", steps, detail::format_log_values(logs)).c_str());
  }
  return logs;
}

std::map<std::string, double> Model::evaluate(const Tensor& x, const Tensor& y, int64_t batch_size, int verbose) {
  return evaluate(std::vector<Tensor>{x}, std::vector<Tensor>{y}, batch_size, verbose);
}

std::vector<Tensor> Model::predict(const std::vector<Tensor>& x, int64_t batch_size) const {
  FunctionalModel& m = *ptr_;
  const int64_t n = check_data(m, "x", x, nullptr, 0);
  check_batch_size(m, batch_size);
  NoGradGuard no_grad;
  detail::NoLossRecording no_losses;  // shared per-layer loss lists would race between threads
  const std::vector<int64_t> order = iota(0, n);
  detail::BatchGatherer gx;
  std::vector<std::vector<Tensor>> parts;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t count = std::min(batch_size, n - begin);
    const std::vector<Tensor> outs = m(gx.gather(x, order.data() + begin, count), /*training=*/false);
    if (parts.empty()) parts.resize(outs.size());
    for (std::size_t k = 0; k < outs.size(); ++k) parts[k].push_back(outs[k].detach());
  }
  std::vector<Tensor> result;
  for (const auto& chunks : parts) result.push_back(chunks.size() == 1 ? chunks[0] : ops::concat(chunks, 0));
  return result;
}

Tensor Model::predict(const Tensor& x, int64_t batch_size) const {
  std::vector<Tensor> outs = predict(std::vector<Tensor>{x}, batch_size);
  if (outs.size() != 1) {
    throw ValueError(str(label(*ptr_), ": predict(Tensor) needs a single-output model, this one has ", outs.size(),
                         " outputs; call predict(std::vector<Tensor>{x})"));
  }
  return outs[0];
}

std::map<std::string, double> Model::train_on_batch(const std::vector<Tensor>& x, const std::vector<Tensor>& y) {
  FunctionalModel& m = *ptr_;
  TrainingState& s = state_of(m, "train_on_batch");
  check_data(m, "x/y", x, &y, s.outputs.size());
  reset_metrics(s);
  MeanAccumulator acc;
  for (const auto& [k, v] : train_step(m, s, x, y).values) acc.add(k, v, 1.0);
  return logs_of(acc, s);
}

std::map<std::string, double> Model::train_on_batch(const Tensor& x, const Tensor& y) {
  return train_on_batch(std::vector<Tensor>{x}, std::vector<Tensor>{y});
}

std::map<std::string, double> Model::test_on_batch(const std::vector<Tensor>& x, const std::vector<Tensor>& y) {
  FunctionalModel& m = *ptr_;
  TrainingState& s = state_of(m, "test_on_batch");
  check_data(m, "x/y", x, &y, s.outputs.size());
  reset_metrics(s);
  MeanAccumulator acc;
  for (const auto& [k, v] : test_step(m, s, x, y).values) acc.add(k, v, 1.0);
  return logs_of(acc, s);
}

std::map<std::string, double> Model::test_on_batch(const Tensor& x, const Tensor& y) {
  return test_on_batch(std::vector<Tensor>{x}, std::vector<Tensor>{y});
}

}  // namespace normnet

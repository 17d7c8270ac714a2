// Model::compile: validates the optimizer, the losses (one for all outputs, a list, by output
// name, or a whole-model loss), the loss weights and the metrics, and resolves them per output
// into the model's TrainingState.
#include <algorithm>
#include <cmath>

#include "normnet/model.h"
#include "training/model_naming.h"
#include "training/training_state.h"

namespace normnet {

using detail::join;
using detail::label;
using detail::output_names;
using detail::str;
using detail::TrainingState;

namespace {

// Metrics of one output: names as given for a single output, "<output>_<name>" for several.
std::vector<std::shared_ptr<Metric>> resolve_metrics(const std::vector<std::string>& names,
                                                     const detail::OutputSpec& out, bool several,
                                                     const std::string& who) {
  std::vector<std::shared_ptr<Metric>> metrics;
  for (const std::string& name : names) {
    std::shared_ptr<Metric> metric;
    try {
      metric = metrics::get(name, out.loss);
    } catch (const Error& e) {
      throw ValueError(str(who, ": metric '", name, "' for output '", out.name, "': ", e.what()));
    }
    metric->set_name(several ? out.name + "_" + name : name);
    metrics.push_back(std::move(metric));
  }
  return metrics;
}

}  // namespace

CompileOptions& CompileOptions::optimizer(const std::string& name) {
  optimizer_ = optimizers::get(name);
  return *this;
}

CompileOptions& CompileOptions::loss(const std::string& name) {
  losses_ = {losses::get(name)};
  return *this;
}

void Model::compile(const CompileOptions& o) {
  FunctionalModel& m = *ptr_;
  const std::string who = label(m);
  if (!o.optimizer_) {
    throw ValueError(
        str(who, ": compile() needs an optimizer, e.g. CompileOptions().optimizer(optimizers::Adam(1e-3))"));
  }
  const std::vector<std::string> names = output_names(m);
  const std::size_t n = names.size();
  auto state = std::make_shared<TrainingState>();
  state->optimizer = o.optimizer_;
  state->outputs.resize(n);
  for (std::size_t i = 0; i < n; ++i) state->outputs[i].name = names[i];

  if (!o.losses_.empty() && !o.named_losses_.empty()) {
    throw ValueError(str(who, ": give the losses as a list or by output name, not both"));
  }
  if (o.model_loss_ && (!o.losses_.empty() || !o.named_losses_.empty() || !o.loss_weights_.empty())) {
    throw ValueError(
        str(who, ": a model_loss replaces per-output losses and loss_weights; give one or the other"));
  }
  state->model_loss = o.model_loss_;
  if (o.losses_.size() == 1) {
    for (auto& out : state->outputs) out.loss = o.losses_[0];  // one loss for every output
  } else if (!o.losses_.empty()) {
    if (o.losses_.size() != n) {
      throw ValueError(
          str(who, ": got ", o.losses_.size(), " losses for ", n, " outputs (", join(names), ")"));
    }
    for (std::size_t i = 0; i < n; ++i) state->outputs[i].loss = o.losses_[i];
  }
  for (const auto& [name, loss] : o.named_losses_) {
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      throw ValueError(str(who, ": a loss is given for '", name,
                           "', which is not an output (outputs: ", join(names), ")"));
    }
    state->outputs[static_cast<std::size_t>(it - names.begin())].loss = loss;
  }
  if (!o.loss_weights_.empty()) {
    if (o.loss_weights_.size() != n) {
      throw ValueError(str(who, ": got ", o.loss_weights_.size(), " loss_weights for ", n, " outputs (",
                           join(names), ")"));
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(o.loss_weights_[i]))
        throw ValueError(str(who, ": loss_weights[", i, "] is not finite"));
      state->outputs[i].weight = o.loss_weights_[i];
    }
  }

  if (!o.metrics_.empty() && !o.metrics_per_output_.empty()) {
    throw ValueError(str(who, ": give metrics for every output or per output, not both"));
  }
  if (!o.metrics_per_output_.empty() && o.metrics_per_output_.size() != n) {
    throw ValueError(str(who, ": got metrics for ", o.metrics_per_output_.size(), " outputs, the model has ",
                         n, " (", join(names), ")"));
  }
  // A flat metric list goes to every output with a loss (to every output when none has one).
  const bool any_loss = std::any_of(state->outputs.begin(), state->outputs.end(),
                                    [](const auto& out) { return bool(out.loss); });
  for (std::size_t i = 0; i < n; ++i) {
    auto& out = state->outputs[i];
    if (!o.metrics_per_output_.empty())
      out.metrics = resolve_metrics(o.metrics_per_output_[i], out, n > 1, who);
    else if (out.loss || !any_loss)
      out.metrics = resolve_metrics(o.metrics_, out, n > 1, who);
  }
  m.training_state = std::move(state);
}

std::shared_ptr<Optimizer> Model::optimizer() const {
  return ptr_->training_state ? ptr_->training_state->optimizer : nullptr;
}

}  // namespace normnet

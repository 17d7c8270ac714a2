// The Optimizer base: apply_gradients (the checks, global_clipnorm, one update per weight), the
// learning rate, per-weight slots and the checkpoint state; the update rules are optimizers.cpp.
#include <algorithm>
#include <cmath>
#include <set>

#include "kernels/cpu/optimizer_update.h"
#include "normnet/autograd.h"
#include "normnet/optimizers.h"
#include "training/optimizer_checks.h"

namespace normnet {

using detail::check_finite_nonnegative;
using detail::str;
using detail::with_floating;
namespace cpu = kernels::cpu;

Optimizer::Optimizer(LearningRateSchedule lr, std::string name)
    : lr_(std::move(lr)), name_(std::move(name)) {}
Optimizer::~Optimizer() = default;

void Optimizer::set_global_clipnorm(double clipnorm) {
  check_finite_nonnegative(clipnorm, name_.c_str(), "global_clipnorm");
  global_clipnorm_ = clipnorm;
}

double Optimizer::learning_rate() const { return lr_(iterations_); }

void Optimizer::set_learning_rate(double lr) {
  check_finite_nonnegative(lr, name_.c_str(), "learning_rate");
  lr_ = LearningRateSchedule(lr);
}

void Optimizer::apply_gradients(const std::vector<Tensor>& weights) {
  NoGradGuard no_grad;
  std::vector<std::pair<Tensor, Tensor>> pairs;  // (weight, gradient)
  std::set<const void*> seen;
  for (const Tensor& w : weights) {
    if (!w.defined() || w.is_symbolic())
      throw Error(str(name_, ": apply_gradients got an undefined or symbolic weight"));
    Tensor g = w.grad();
    if (!g.defined()) continue;  // not reached by backward (frozen, or unused this step)
    if (!seen.insert(w.impl().get()).second) {
      throw ValueError(str(name_, ": apply_gradients got the weight of shape ", w.shape(), " twice"));
    }
    if (g.shape() != w.shape() || g.dtype() != w.dtype()) {
      throw ShapeError(str(name_, ": gradient ", dtype_name(g.dtype()), " ", g.shape(),
                           " does not match weight ", dtype_name(w.dtype()), " ", w.shape()));
    }
    with_floating(w, name_, [](auto) {});
    pairs.emplace_back(w, g);
  }
  const double lr = learning_rate();
  if (!std::isfinite(lr) || lr < 0.0) {
    throw ValueError(str(name_, ": the learning-rate schedule gave ", lr, " at step ", iterations_,
                         " (expected a finite number >= 0)"));
  }
  if (global_clipnorm_ > 0.0) {
    double total = 0.0;
    for (const auto& pair : pairs) {
      const Tensor& g = pair.second;  // (a plain reference: clang 14 cannot capture bindings)
      with_floating(g, name_, [&](auto zero) {
        using T = decltype(zero);
        total += cpu::sum_of_squares(g.data<T>(), g.numel());
      });
    }
    // tf.clip_by_global_norm: g·clipnorm/max(norm, clipnorm), on copies (the weights' grad()
    // stays what backward produced). A non-finite norm makes every gradient NaN, as TensorFlow.
    const double norm = std::sqrt(total);
    if (!(norm <= global_clipnorm_)) {
      const double scale = std::isfinite(norm) ? global_clipnorm_ / norm : std::nan("");
      for (auto& pair : pairs) {
        Tensor& g = pair.second;
        g = g.clone();
        with_floating(g, name_, [&](auto zero) {
          using T = decltype(zero);
          cpu::scale_in_place(g.data<T>(), g.numel(), static_cast<T>(scale));
        });
      }
    }
  }
  const int64_t t = iterations_ + 1;
  for (const auto& [w, g] : pairs) update(w, g, t, lr);
  iterations_ = t;
}

Tensor& Optimizer::slot(const Tensor& weight, const std::string& slot_name) {
  auto key = std::make_pair(static_cast<const void*>(weight.impl().get()), slot_name);
  auto it = slots_.find(key);
  if (it == slots_.end()) it = slots_.emplace(key, Tensor::zeros(weight.shape(), weight.dtype())).first;
  return it->second;
}

Config Optimizer::get_config() const {
  // A custom schedule without a config is saved as its current value.
  Config lr = lr_.get_config().is_null() ? Config(learning_rate()) : lr_.get_config();
  Config config{{"name", name_}, {"learning_rate", lr}};
  config["global_clipnorm"] = global_clipnorm_ > 0.0 ? Config(global_clipnorm_) : Config(nullptr);
  return Config{{"class_name", name_}, {"config", config}};
}

std::map<std::string, Tensor> Optimizer::state(const std::vector<NamedWeight>& weights) const {
  std::map<std::string, Tensor> out;
  for (const NamedWeight& nw : weights) {
    if (!nw.value.defined()) continue;
    const void* key = nw.value.impl().get();
    for (auto it = slots_.lower_bound({key, std::string()}); it != slots_.end() && it->first.first == key;
         ++it) {
      out[nw.name + "/" + it->first.second] = it->second.clone();
    }
  }
  out["iterations"] = Tensor::from_vector(std::vector<int64_t>{iterations_}, {});
  return out;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state,
                           const std::vector<NamedWeight>& weights) {
  const std::string who = name_ + ": load_state";
  auto iterations = state.find("iterations");
  if (iterations == state.end() || !iterations->second.defined() || iterations->second.numel() != 1) {
    throw ValueError(str(who, ": expected a one-element \"iterations\" entry"));
  }
  const double it_value = iterations->second.item();
  // Below 2^63, so that the cast to int64_t below is defined (a file could hold 1e300).
  if (!(it_value >= 0.0) || it_value != std::floor(it_value) || !(it_value < 0x1p63)) {
    throw ValueError(str(who, ": \"iterations\" must be an integer in [0, 2^63), got ", it_value));
  }
  // Validate everything before changing anything.
  std::vector<std::pair<std::pair<const void*, std::string>, Tensor>> loaded;
  for (const auto& [key, value] : state) {
    if (key == "iterations") continue;
    const std::size_t slash = key.rfind('/');
    if (slash == std::string::npos)
      throw ValueError(str(who, ": entry '", key, "' is not \"<weight name>/<slot>\""));
    const std::string weight_name = key.substr(0, slash);
    auto w = std::find_if(weights.begin(), weights.end(),
                          [&](const NamedWeight& nw) { return nw.name == weight_name; });
    if (w == weights.end() || !w->value.defined()) {
      throw ValueError(str(who, ": entry '", key, "' names no weight of this model ('", weight_name, "')"));
    }
    if (!value.defined() || value.shape() != w->value.shape() || value.dtype() != w->value.dtype()) {
      throw ShapeError(str(who, ": entry '", key, "' is ",
                           value.defined() ? dtype_name(value.dtype()) : "undefined", " ",
                           value.defined() ? value.shape() : Shape{}, " but weight '", weight_name, "' is ",
                           dtype_name(w->value.dtype()), " ", w->value.shape()));
    }
    loaded.push_back({{w->value.impl().get(), key.substr(slash + 1)}, value.clone()});
  }
  for (const NamedWeight& nw : weights) {
    if (!nw.value.defined()) continue;
    const void* key = nw.value.impl().get();
    slots_.erase(slots_.lower_bound({key, std::string()}),
                 std::find_if(slots_.lower_bound({key, std::string()}), slots_.end(),
                              [key](const auto& entry) { return entry.first.first != key; }));
  }
  for (auto& [key, value] : loaded) slots_[key] = std::move(value);
  iterations_ = static_cast<int64_t>(it_value);
}

}  // namespace normnet

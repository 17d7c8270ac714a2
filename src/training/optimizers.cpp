// The Optimizer base (apply_gradients, global_clipnorm, slots, checkpoint state) and SGD, Adam,
// AdamW, RMSprop with Keras's defaults and update rules; the loops are kernels/cpu/optimizer_update.
#include "normnet/optimizers.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "kernels/cpu/optimizer_update.h"
#include "normnet/autograd.h"
#include "training/config_options.h"

namespace normnet {
namespace {

using detail::str;
namespace cpu = kernels::cpu;

// Calls fn(T{}) with T the element type of a float32 or float64 weight.
template <class Fn>
void with_floating(const Tensor& weight, const std::string& who, const Fn& fn) {
  switch (weight.dtype()) {
    case DType::kFloat32: fn(float{}); break;
    case DType::kFloat64: fn(double{}); break;
    default:
      throw ValueError(str(who, ": can only update float32 or float64 weights, got ", dtype_name(weight.dtype()),
                           " of shape ", weight.shape()));
  }
}

void check_finite_nonnegative(double value, const char* who, const char* arg) {
  if (!std::isfinite(value) || value < 0.0) {
    throw ValueError(str(who, ": expected ", arg, " to be a finite number >= 0, got ", value));
  }
}

// β-like factors: 0 <= value < 1 (β = 1 would freeze the moment and divide by 1 − βᵗ = 0).
void check_unit_open(double value, const char* who, const char* arg) {
  if (!(value >= 0.0 && value < 1.0)) throw ValueError(str(who, ": expected ", arg, " in [0, 1), got ", value));
}

void check_unit_closed(double value, const char* who, const char* arg) {
  if (!(value >= 0.0 && value <= 1.0)) throw ValueError(str(who, ": expected ", arg, " in [0, 1], got ", value));
}

LearningRateSchedule checked(LearningRateSchedule lr, const char* who) {
  if (lr.get_config().is_number()) check_finite_nonnegative(lr.get_config().get<double>(), who, "learning_rate");
  return lr;
}

// A writable handle on the same storage (Tensor::data() is const on a const handle).
Tensor writable(const Tensor& t) { return t; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Optimizer

Optimizer::Optimizer(LearningRateSchedule lr, std::string name) : lr_(std::move(lr)), name_(std::move(name)) {}
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
    if (!w.defined() || w.is_symbolic()) throw Error(str(name_, ": apply_gradients got an undefined or symbolic weight"));
    Tensor g = w.grad();
    if (!g.defined()) continue;  // not reached by backward (frozen, or unused this step)
    if (!seen.insert(w.impl().get()).second) {
      throw ValueError(str(name_, ": apply_gradients got the weight of shape ", w.shape(), " twice"));
    }
    if (g.shape() != w.shape() || g.dtype() != w.dtype()) {
      throw ShapeError(str(name_, ": gradient ", dtype_name(g.dtype()), " ", g.shape(), " does not match weight ",
                           dtype_name(w.dtype()), " ", w.shape()));
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
    for (auto it = slots_.lower_bound({key, std::string()}); it != slots_.end() && it->first.first == key; ++it) {
      out[nw.name + "/" + it->first.second] = it->second.clone();
    }
  }
  out["iterations"] = Tensor::from_vector(std::vector<int64_t>{iterations_}, {});
  return out;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state, const std::vector<NamedWeight>& weights) {
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
    if (slash == std::string::npos) throw ValueError(str(who, ": entry '", key, "' is not \"<weight name>/<slot>\""));
    const std::string weight_name = key.substr(0, slash);
    auto w = std::find_if(weights.begin(), weights.end(), [&](const NamedWeight& nw) { return nw.name == weight_name; });
    if (w == weights.end() || !w->value.defined()) {
      throw ValueError(str(who, ": entry '", key, "' names no weight of this model ('", weight_name, "')"));
    }
    if (!value.defined() || value.shape() != w->value.shape() || value.dtype() != w->value.dtype()) {
      throw ShapeError(str(who, ": entry '", key, "' is ", value.defined() ? dtype_name(value.dtype()) : "undefined",
                           " ", value.defined() ? value.shape() : Shape{}, " but weight '", weight_name, "' is ",
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

namespace optimizers {

// ---------------------------------------------------------------------------------------------
// SGD

SGD::SGD(LearningRateSchedule lr) : Optimizer(checked(std::move(lr), "optimizers::SGD"), "SGD") {}

SGD& SGD::momentum(double momentum) {
  check_unit_closed(momentum, "optimizers::SGD", "momentum");
  momentum_ = momentum;
  return *this;
}

SGD& SGD::nesterov(bool nesterov) {
  nesterov_ = nesterov;
  return *this;
}

Config SGD::get_config() const {
  Config config = Optimizer::get_config();
  config["class_name"] = "SGD";
  config["config"]["momentum"] = momentum_;
  config["config"]["nesterov"] = nesterov_;
  return config;
}

void SGD::update(const Tensor& weight, const Tensor& grad, int64_t, double lr) {
  Tensor w = writable(weight);
  with_floating(w, name(), [&](auto zero) {
    using T = decltype(zero);
    T* velocity = momentum_ != 0.0 ? slot(weight, "momentum").data<T>() : nullptr;
    cpu::sgd_update(w.data<T>(), grad.data<T>(), velocity, w.numel(), static_cast<T>(lr), static_cast<T>(momentum_),
                    nesterov_);
  });
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW

Adam::Adam(LearningRateSchedule lr) : Optimizer(checked(std::move(lr), "optimizers::Adam"), "adam") {}
Adam::Adam(LearningRateSchedule lr, std::string name) : Optimizer(std::move(lr), std::move(name)) {}

Adam& Adam::beta_1(double beta_1) {
  check_unit_open(beta_1, "optimizers::Adam", "beta_1");
  beta_1_ = beta_1;
  return *this;
}

Adam& Adam::beta_2(double beta_2) {
  check_unit_open(beta_2, "optimizers::Adam", "beta_2");
  beta_2_ = beta_2;
  return *this;
}

Adam& Adam::epsilon(double epsilon) {
  check_finite_nonnegative(epsilon, "optimizers::Adam", "epsilon");
  epsilon_ = epsilon;
  return *this;
}

Adam& Adam::amsgrad(bool amsgrad) {
  amsgrad_ = amsgrad;
  return *this;
}

Config Adam::get_config() const {
  Config config = Optimizer::get_config();
  config["class_name"] = "Adam";
  config["config"]["beta_1"] = beta_1_;
  config["config"]["beta_2"] = beta_2_;
  config["config"]["epsilon"] = epsilon_;
  config["config"]["amsgrad"] = amsgrad_;
  return config;
}

void Adam::update(const Tensor& weight, const Tensor& grad, int64_t t, double lr) { step(weight, grad, t, lr, 0.0); }

void Adam::step(const Tensor& weight, const Tensor& grad, int64_t t, double lr, double decay) {
  cpu::AdamCoefficients c;
  // Keras: α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) (both bias corrections folded into the step size).
  const double td = static_cast<double>(t);
  c.lr_t = lr * std::sqrt(1.0 - std::pow(beta_2_, td)) / (1.0 - std::pow(beta_1_, td));
  c.one_minus_beta_1 = 1.0 - beta_1_;
  c.one_minus_beta_2 = 1.0 - beta_2_;
  c.epsilon = epsilon_;
  c.decay = decay;
  Tensor w = writable(weight);
  with_floating(w, name(), [&](auto zero) {
    using T = decltype(zero);
    T* m = slot(weight, "momentum").data<T>();
    T* v = slot(weight, "velocity").data<T>();
    T* v_hat = amsgrad_ ? slot(weight, "velocity_hat").data<T>() : nullptr;
    cpu::adam_update(w.data<T>(), grad.data<T>(), m, v, v_hat, w.numel(), c, amsgrad_);
  });
}

AdamW::AdamW(LearningRateSchedule lr, double weight_decay)
    : Adam(checked(std::move(lr), "optimizers::AdamW"), "adamw") {
  this->weight_decay(weight_decay);
}

AdamW& AdamW::weight_decay(double weight_decay) {
  check_finite_nonnegative(weight_decay, "optimizers::AdamW", "weight_decay");
  weight_decay_ = weight_decay;
  return *this;
}

Config AdamW::get_config() const {
  Config config = Adam::get_config();
  config["class_name"] = "AdamW";
  config["config"]["weight_decay"] = weight_decay_;
  return config;
}

// Loshchilov & Hutter's decoupled decay, as Keras 3: w ← w − lr·wd·w with the scheduled lr (not
// the bias-corrected one), applied before the Adam step. PyTorch's AdamW does the same
// (w ← w·(1 − lr·wd)) with default wd 0.01; Keras's default is 0.004.
void AdamW::update(const Tensor& weight, const Tensor& grad, int64_t t, double lr) {
  step(weight, grad, t, lr, lr * weight_decay_);
}

// ---------------------------------------------------------------------------------------------
// RMSprop

RMSprop::RMSprop(LearningRateSchedule lr) : Optimizer(checked(std::move(lr), "optimizers::RMSprop"), "rmsprop") {}

RMSprop& RMSprop::rho(double rho) {
  check_unit_open(rho, "optimizers::RMSprop", "rho");
  rho_ = rho;
  return *this;
}

RMSprop& RMSprop::momentum(double momentum) {
  check_unit_closed(momentum, "optimizers::RMSprop", "momentum");
  momentum_ = momentum;
  return *this;
}

RMSprop& RMSprop::epsilon(double epsilon) {
  check_finite_nonnegative(epsilon, "optimizers::RMSprop", "epsilon");
  epsilon_ = epsilon;
  return *this;
}

Config RMSprop::get_config() const {
  Config config = Optimizer::get_config();
  config["class_name"] = "RMSprop";
  config["config"]["rho"] = rho_;
  config["config"]["momentum"] = momentum_;
  config["config"]["epsilon"] = epsilon_;
  return config;
}

void RMSprop::update(const Tensor& weight, const Tensor& grad, int64_t, double lr) {
  Tensor w = writable(weight);
  with_floating(w, name(), [&](auto zero) {
    using T = decltype(zero);
    T* velocity = slot(weight, "velocity").data<T>();
    T* mom = momentum_ != 0.0 ? slot(weight, "momentum").data<T>() : nullptr;
    cpu::rmsprop_update(w.data<T>(), grad.data<T>(), velocity, mom, w.numel(), static_cast<T>(lr),
                        static_cast<T>(rho_), static_cast<T>(momentum_), static_cast<T>(epsilon_));
  });
}

// ---------------------------------------------------------------------------------------------
// By name and from config

namespace {

using detail::lower;

template <class T>
T option(const Config& params, const char* key, T fallback, const std::string& who) {
  return detail::config_option(params, key, fallback, "optimizers::from_config: " + who);
}

}  // namespace

std::shared_ptr<Optimizer> get(const std::string& name) {
  const std::string key = lower(name);
  if (key == "sgd") return std::make_shared<SGD>();
  if (key == "adam") return std::make_shared<Adam>();
  if (key == "adamw") return std::make_shared<AdamW>();
  if (key == "rmsprop") return std::make_shared<RMSprop>();
  throw ValueError(str("optimizers::get: unknown optimizer '", name, "' (known: sgd, adam, adamw, rmsprop)"));
}

std::shared_ptr<Optimizer> from_config(const Config& config) {
  if (config.is_string()) return get(config.get<std::string>());
  if (!config.is_object() || !config.contains("class_name") || !config["class_name"].is_string()) {
    throw ValueError(str("optimizers::from_config: expected {\"class_name\": ..., \"config\": {...}} or a name, got ",
                         config.dump()));
  }
  const std::string cls = config["class_name"].get<std::string>();
  const std::string key = lower(cls);
  const Config params = config.value("config", Config::object());
  const bool has_lr = params.is_object() && params.contains("learning_rate") && !params["learning_rate"].is_null();
  std::shared_ptr<Optimizer> opt;
  if (key == "sgd") {
    auto sgd = std::make_shared<SGD>(has_lr ? schedules::from_config(params["learning_rate"]) : 0.01);
    sgd->momentum(option(params, "momentum", 0.0, cls)).nesterov(option(params, "nesterov", false, cls));
    opt = sgd;
  } else if (key == "adam" || key == "adamw") {
    const LearningRateSchedule lr = has_lr ? schedules::from_config(params["learning_rate"]) : 0.001;
    std::shared_ptr<Adam> adam = key == "adam" ? std::make_shared<Adam>(lr)
                                               : std::make_shared<AdamW>(lr, option(params, "weight_decay", 0.004, cls));
    adam->beta_1(option(params, "beta_1", 0.9, cls))
        .beta_2(option(params, "beta_2", 0.999, cls))
        .epsilon(option(params, "epsilon", 1e-7, cls))
        .amsgrad(option(params, "amsgrad", false, cls));
    opt = adam;
  } else if (key == "rmsprop") {
    auto rms = std::make_shared<RMSprop>(has_lr ? schedules::from_config(params["learning_rate"]) : 0.001);
    rms->rho(option(params, "rho", 0.9, cls))
        .momentum(option(params, "momentum", 0.0, cls))
        .epsilon(option(params, "epsilon", 1e-7, cls));
    opt = rms;
  } else {
    throw ValueError(str("optimizers::from_config: unknown optimizer '", cls, "' (known: SGD, Adam, AdamW, RMSprop)"));
  }
  opt->set_global_clipnorm(option(params, "global_clipnorm", 0.0, cls));
  return opt;
}

}  // namespace optimizers
}  // namespace normnet

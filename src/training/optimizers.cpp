// SGD, Adam, AdamW and RMSprop with Keras's defaults and update rules (the Optimizer base:
// optimizer.cpp); the loops are kernels/cpu/optimizer_update.
#include "normnet/optimizers.h"

#include <cmath>

#include "kernels/cpu/optimizer_update.h"
#include "training/config_options.h"
#include "training/optimizer_checks.h"

namespace normnet {
namespace {

using detail::check_finite_nonnegative;
using detail::check_unit_closed;
using detail::check_unit_open;
using detail::str;
using detail::with_floating;
namespace cpu = kernels::cpu;

LearningRateSchedule checked(LearningRateSchedule lr, const char* who) {
  if (lr.get_config().is_number()) check_finite_nonnegative(lr.get_config().get<double>(), who, "learning_rate");
  return lr;
}

// A writable handle on the same storage (Tensor::data() is const on a const handle).
Tensor writable(const Tensor& t) { return t; }

}  // namespace

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

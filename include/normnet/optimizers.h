// Optimizers with Keras's defaults and PyTorch's update rules where they agree:
// SGD (momentum, Nesterov), Adam (bias-corrected), AdamW (decoupled weight decay), RMSprop.
//
//   optimizers::Adam(1e-3);  optimizers::SGD(0.01).momentum(0.9).nesterov(true);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "normnet/config.h"
#include "normnet/layer.h"
#include "normnet/tensor.h"

namespace normnet {

// A learning rate as a function of the optimizer step (0, 1, 2, ...).
class LearningRateSchedule {
 public:
  using Fn = std::function<double(int64_t step)>;
  LearningRateSchedule(double constant);  // NOLINT: a constant rate
  LearningRateSchedule(Fn fn, Config config = nullptr) : fn_(std::move(fn)), config_(std::move(config)) {}
  [[nodiscard]] double operator()(int64_t step) const { return fn_(step); }
  [[nodiscard]] const Config& get_config() const { return config_; }

 private:
  Fn fn_;
  Config config_;
};

namespace schedules {
// lr · rate^(step/decay_steps) (floored exponent when staircase).
[[nodiscard]] LearningRateSchedule ExponentialDecay(double initial, int64_t decay_steps, double rate, bool staircase = false);
// Cosine decay from initial to alpha·initial over decay_steps.
[[nodiscard]] LearningRateSchedule CosineDecay(double initial, int64_t decay_steps, double alpha = 0.0);
// Constant pieces, as Keras: values[0] while step <= boundaries[0], values[i] while
// boundaries[i-1] < step <= boundaries[i], values.back() after; values.size() == boundaries.size() + 1
// and boundaries increase strictly (ValueError otherwise).
[[nodiscard]] LearningRateSchedule PiecewiseConstantDecay(std::vector<int64_t> boundaries, std::vector<double> values);
// A number gives a constant; {"class_name": "ExponentialDecay" | "CosineDecay" | "PiecewiseConstantDecay",
// "config": {...}} the schedule with those arguments (Keras's argument names).
[[nodiscard]] LearningRateSchedule from_config(const Config& config);
}  // namespace schedules

class Optimizer {
 public:
  explicit Optimizer(LearningRateSchedule lr, std::string name);
  virtual ~Optimizer();

  // Updates every weight that has a gradient (w.grad()), then advances iterations().
  // Runs without recording on the tape.
  void apply_gradients(const std::vector<Tensor>& weights);
  // Before the update, rescales all gradients together so that their global norm
  // sqrt(Σ‖g‖²) is at most clipnorm (Keras's global_clipnorm, tf.clip_by_global_norm); 0 = off.
  // ValueError for a negative or non-finite clipnorm.
  void set_global_clipnorm(double clipnorm);
  [[nodiscard]] double global_clipnorm() const { return global_clipnorm_; }

  [[nodiscard]] int64_t iterations() const { return iterations_; }
  [[nodiscard]] double learning_rate() const;  // at the current step
  // Replaces the schedule with a constant (ReduceLROnPlateau uses this).
  void set_learning_rate(double lr);
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] virtual Config get_config() const;

  // Optimizer state for checkpoints: "<weight name>/<slot>" -> tensor, plus "iterations".
  [[nodiscard]] virtual std::map<std::string, Tensor> state(const std::vector<NamedWeight>& weights) const;
  virtual void load_state(const std::map<std::string, Tensor>& state, const std::vector<NamedWeight>& weights);

 protected:
  // One update of `weight` in place from `grad` at step t (1-based) and learning rate lr.
  virtual void update(const Tensor& weight, const Tensor& grad, int64_t t, double lr) = 0;
  // Per-weight state tensors created on first use (zeros like the weight).
  Tensor& slot(const Tensor& weight, const std::string& slot_name);

 private:
  LearningRateSchedule lr_;
  std::string name_;
  int64_t iterations_ = 0;
  double global_clipnorm_ = 0.0;
  std::map<std::pair<const void*, std::string>, Tensor> slots_;
};

namespace optimizers {

class SGD : public Optimizer {
 public:
  explicit SGD(LearningRateSchedule lr = 0.01);
  SGD& momentum(double momentum);
  SGD& nesterov(bool nesterov);
  [[nodiscard]] Config get_config() const override;

 protected:
  void update(const Tensor& weight, const Tensor& grad, int64_t t, double lr) override;

 private:
  double momentum_ = 0.0;
  bool nesterov_ = false;
};

class Adam : public Optimizer {
 public:
  explicit Adam(LearningRateSchedule lr = 0.001);
  Adam& beta_1(double beta_1);
  Adam& beta_2(double beta_2);
  Adam& epsilon(double epsilon);  // Keras default 1e-7
  Adam& amsgrad(bool amsgrad);
  [[nodiscard]] Config get_config() const override;

 protected:
  Adam(LearningRateSchedule lr, std::string name);  // for AdamW ("adamw")
  void update(const Tensor& weight, const Tensor& grad, int64_t t, double lr) override;
  // The fused Adam step, after a decoupled decay w ← w − decay·w when decay > 0 (AdamW).
  void step(const Tensor& weight, const Tensor& grad, int64_t t, double lr, double decay);
  double beta_1_ = 0.9, beta_2_ = 0.999, epsilon_ = 1e-7;
  bool amsgrad_ = false;
};

// Adam with decoupled weight decay: w ← w − lr·wd·w before the Adam step (Loshchilov & Hutter).
class AdamW : public Adam {
 public:
  explicit AdamW(LearningRateSchedule lr = 0.001, double weight_decay = 0.004);
  AdamW& weight_decay(double weight_decay);
  [[nodiscard]] Config get_config() const override;

 protected:
  void update(const Tensor& weight, const Tensor& grad, int64_t t, double lr) override;

 private:
  double weight_decay_;
};

class RMSprop : public Optimizer {
 public:
  explicit RMSprop(LearningRateSchedule lr = 0.001);
  RMSprop& rho(double rho);
  RMSprop& momentum(double momentum);
  RMSprop& epsilon(double epsilon);
  [[nodiscard]] Config get_config() const override;

 protected:
  void update(const Tensor& weight, const Tensor& grad, int64_t t, double lr) override;

 private:
  double rho_ = 0.9, momentum_ = 0.0, epsilon_ = 1e-7;
};

// By Keras name with default settings ("sgd", "adam", "adamw", "rmsprop").
[[nodiscard]] std::shared_ptr<Optimizer> get(const std::string& name);
[[nodiscard]] std::shared_ptr<Optimizer> from_config(const Config& config);

}  // namespace optimizers
}  // namespace normnet

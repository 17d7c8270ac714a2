// Penalties on weights or activities, with Keras's arithmetic (no ½):
//   L1(l)(w) = l·Σ|w|,  L2(l)(w) = l·Σw²,  L1L2(l1, l2)(w) = l1·Σ|w| + l2·Σw².
// On a weight the penalty is added to the loss as is; as an activity regularizer the value is
// divided by the batch size (tf.keras 2, and Keras 3 since the fix of keras-team/keras#22018).
// Any callable Tensor(const Tensor&) is a regularizer too:
//   layers::Dense(64).activity_regularizer([](const Tensor& h) { return 1e-4 * ops::sum(ops::square(h)); });
#pragma once

#include <functional>
#include <string>

#include "normnet/config.h"
#include "normnet/tensor.h"

namespace normnet {

class Regularizer {
 public:
  using Fn = std::function<Tensor(const Tensor&)>;
  Regularizer() = default;
  template <class F, class = std::enable_if_t<std::is_invocable_r_v<Tensor, F, const Tensor&>>>
  Regularizer(F fn, Config config = nullptr) : fn_(Fn(std::move(fn))), config_(std::move(config)) {}  // NOLINT

  // The penalty (a scalar tensor, differentiable in x).
  [[nodiscard]] Tensor operator()(const Tensor& x) const;
  [[nodiscard]] explicit operator bool() const { return static_cast<bool>(fn_); }
  // {"class_name": "L2", "config": {"l2": 0.01}}; null for a custom callable.
  [[nodiscard]] const Config& get_config() const { return config_; }

 private:
  Fn fn_;
  Config config_;
};

namespace regularizers {
[[nodiscard]] Regularizer L1(double l1 = 0.01);
[[nodiscard]] Regularizer L2(double l2 = 0.01);
// Keras's L1L2 defaults to zero for both factors.
[[nodiscard]] Regularizer L1L2(double l1 = 0.0, double l2 = 0.0);
// Rebuilds a named regularizer from its get_config(); throws ValueError otherwise.
[[nodiscard]] Regularizer from_config(const Config& config);
}  // namespace regularizers

}  // namespace normnet

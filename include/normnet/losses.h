// Losses: callables (y_true, y_pred) -> scalar, averaged over the batch as Keras does
// ("sum_over_batch_size"). Any callable of that signature is a Loss too.
//
//   losses::SparseCategoricalCrossentropy().from_logits(true)
//   Loss custom([](const Tensor& y_true, const Tensor& y_pred) { return ops::mean(ops::abs(y_pred - y_true)); });
#pragma once

#include <functional>
#include <string>
#include <type_traits>

#include "normnet/config.h"
#include "normnet/tensor.h"

namespace normnet {

class Loss {
 public:
  using Fn = std::function<Tensor(const Tensor& y_true, const Tensor& y_pred)>;
  Loss() = default;
  // Any callable except a Loss itself: a built-in loss (a class derived from Loss) must copy as a
  // Loss, keeping its name and config, not be wrapped as an opaque custom loss.
  template <class F, class = std::enable_if_t<std::is_invocable_r_v<Tensor, F, const Tensor&, const Tensor&> &&
                                              !std::is_base_of_v<Loss, std::decay_t<F>>>>
  Loss(F fn, std::string name = "custom_loss") : fn_(Fn(std::move(fn))), name_(std::move(name)) {}  // NOLINT

  // The batch-mean loss (a scalar tensor); throws ShapeError naming the loss and both shapes.
  [[nodiscard]] Tensor operator()(const Tensor& y_true, const Tensor& y_pred) const;
  [[nodiscard]] explicit operator bool() const { return static_cast<bool>(fn_); }
  [[nodiscard]] const std::string& name() const { return name_; }
  // {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": true}}; null if custom.
  [[nodiscard]] const Config& get_config() const { return config_; }

 protected:
  void set(Fn fn, std::string name, Config config) {
    fn_ = std::move(fn);
    name_ = std::move(name);
    config_ = std::move(config);
  }

 private:
  Fn fn_;
  std::string name_;
  Config config_;
};

namespace losses {

// y_true int64 class indices [N] (or [N, ...]), y_pred probabilities or logits [N, C].
class SparseCategoricalCrossentropy : public Loss {
 public:
  SparseCategoricalCrossentropy();
  SparseCategoricalCrossentropy& from_logits(bool from_logits);

 private:
  void update();
  bool from_logits_ = false;
};

// y_true one-hot (or soft) [N, C], y_pred probabilities or logits.
class CategoricalCrossentropy : public Loss {
 public:
  CategoricalCrossentropy();
  CategoricalCrossentropy& from_logits(bool from_logits);
  CategoricalCrossentropy& label_smoothing(double smoothing);

 private:
  void update();
  bool from_logits_ = false;
  double label_smoothing_ = 0.0;
};

class BinaryCrossentropy : public Loss {
 public:
  BinaryCrossentropy();
  BinaryCrossentropy& from_logits(bool from_logits);

 private:
  void update();
  bool from_logits_ = false;
};

class MeanSquaredError : public Loss {
 public:
  MeanSquaredError();
};

class MeanAbsoluteError : public Loss {
 public:
  MeanAbsoluteError();
};

// Keras's CosineSimilarity loss: −mean(cos(y_true, y_pred)) along `axis` (so −1 is best).
class CosineSimilarity : public Loss {
 public:
  CosineSimilarity();
  CosineSimilarity& axis(int axis);

 private:
  void update();
  int axis_ = -1;
};

// By Keras name: "sparse_categorical_crossentropy", "categorical_crossentropy",
// "binary_crossentropy", "mse"/"mean_squared_error", "mae"/"mean_absolute_error", "cosine_similarity".
[[nodiscard]] Loss get(const std::string& name);
[[nodiscard]] Loss from_config(const Config& config);

}  // namespace losses
}  // namespace normnet

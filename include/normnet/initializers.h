// Weight initializers with Keras's names and formulas. An Initializer is a named callable
// (shape, dtype, seed) -> Tensor; any lambda of that signature converts to one.
//
//   layers::Dense(64).kernel_initializer(initializers::HeNormal());
//   layers::Dense(64).kernel_initializer("zeros");
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "normnet/config.h"
#include "normnet/tensor.h"

namespace normnet {

class Initializer {
 public:
  using Fn = std::function<Tensor(const Shape& shape, DType dtype, uint64_t seed)>;
  Initializer() = default;
  // A custom initializer (not serializable unless given a config with a registered class_name).
  Initializer(Fn fn, Config config = nullptr) : fn_(std::move(fn)), config_(std::move(config)) {}
  // By Keras name: "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
  // "lecun_uniform", "lecun_normal", "zeros", "ones", "random_normal", "random_uniform".
  Initializer(const char* name);  // NOLINT: implicit by design, as Keras accepts strings
  Initializer(const std::string& name);  // NOLINT

  [[nodiscard]] Tensor operator()(const Shape& shape, DType dtype, uint64_t seed) const;
  [[nodiscard]] explicit operator bool() const { return static_cast<bool>(fn_); }
  // {"class_name": "GlorotUniform", "config": {...}}; null for an unnamed custom initializer.
  [[nodiscard]] const Config& get_config() const { return config_; }

 private:
  Fn fn_;
  Config config_;
};

namespace initializers {
// fan_in/fan_out as Keras computes them: for a kernel [kh, kw, cin, cout] the receptive field
// kh·kw multiplies cin and cout; for [in, out] they are in and out.
[[nodiscard]] Initializer GlorotUniform();  // U(±sqrt(6/(fan_in+fan_out)))
[[nodiscard]] Initializer GlorotNormal();   // truncated N(0, 2/(fan_in+fan_out))
[[nodiscard]] Initializer HeUniform();      // U(±sqrt(6/fan_in))
[[nodiscard]] Initializer HeNormal();       // truncated N(0, 2/fan_in)
[[nodiscard]] Initializer LecunUniform();   // U(±sqrt(3/fan_in))
[[nodiscard]] Initializer LecunNormal();    // truncated N(0, 1/fan_in)
[[nodiscard]] Initializer Zeros();
[[nodiscard]] Initializer Ones();
[[nodiscard]] Initializer Constant(double value);
[[nodiscard]] Initializer RandomNormal(double mean = 0.0, double stddev = 0.05);
[[nodiscard]] Initializer RandomUniform(double minval = -0.05, double maxval = 0.05);
// Rebuilds an initializer from its get_config(); throws ValueError for an unknown class_name.
[[nodiscard]] Initializer from_config(const Config& config);
}  // namespace initializers

// The seed of every weight initialization and dropout stream derives from this global seed and
// a counter, so the same seed builds the same model (Keras's keras.utils.set_random_seed).
void set_random_seed(uint64_t seed);
// The next seed of the global stream (used by layers; advances it).
[[nodiscard]] uint64_t next_seed();

}  // namespace normnet

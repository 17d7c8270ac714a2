// L1, L2 and L1L2 penalties with Keras's arithmetic (no ½), their configs, and from_config.
#include "normnet/regularizers.h"

#include <cmath>

#include "normnet/ops/elementwise.h"
#include "normnet/ops/reduce.h"

namespace normnet {
namespace {

using detail::str;

// Keras 3's validate_float_arg: a finite, non-negative factor.
double check_factor(double value, const char* who, const char* arg) {
  if (!std::isfinite(value) || value < 0.0) {
    throw ValueError(str("regularizers::", who, ": expected ", arg, " to be a finite number >= 0, got ", value));
  }
  return value;
}

// l1·Σ|x| + l2·Σx², a term left out when its factor is 0 (as Keras's L1L2 does, so a zero factor
// adds no work and no gradient path). Scalars take x's dtype: float32 weights give a float32 penalty.
Tensor penalty(const Tensor& x, double l1, double l2) {
  Tensor total;
  if (l1 != 0.0) total = l1 * ops::sum(ops::abs(x));
  if (l2 != 0.0) {
    Tensor term = l2 * ops::sum(ops::square(x));
    total = total.defined() ? total + term : term;
  }
  // Both factors zero: a constant 0 of x's dtype (symbolic when x is), as Keras's L1L2(0, 0).
  if (!total.defined()) total = x.is_symbolic() ? Tensor::symbolic({}, x.dtype()) : Tensor::zeros({}, x.dtype());
  return total;
}

double factor_of(const Config& params, const char* key, double fallback, const std::string& who) {
  if (!params.contains(key) || params[key].is_null()) return fallback;
  if (!params[key].is_number()) {
    throw ValueError(str("regularizers::from_config: ", who, ".", key, " must be a number, got ", params[key].dump()));
  }
  return params[key].get<double>();
}

}  // namespace

Tensor Regularizer::operator()(const Tensor& x) const {
  if (!fn_) throw Error("Regularizer: called an empty regularizer (use regularizers::L1/L2/L1L2 or a callable)");
  if (!x.defined()) throw Error("Regularizer: called on an undefined tensor");
  Tensor value = fn_(x);
  if (!value.defined() || shape_numel(value.shape()) != 1) {
    throw ValueError(str("Regularizer", config_.is_object() ? " " + config_.value("class_name", std::string()) : "",
                         ": expected the penalty to be a scalar, got ",
                         value.defined() ? shape_to_string(value.shape()) : std::string("an undefined tensor"),
                         " for an input of shape ", x.shape()));
  }
  return value;
}

namespace regularizers {

Regularizer L1(double l1) {
  check_factor(l1, "L1", "l1");
  return Regularizer([l1](const Tensor& x) { return penalty(x, l1, 0.0); },
                     Config{{"class_name", "L1"}, {"config", {{"l1", l1}}}});
}

Regularizer L2(double l2) {
  check_factor(l2, "L2", "l2");
  return Regularizer([l2](const Tensor& x) { return penalty(x, 0.0, l2); },
                     Config{{"class_name", "L2"}, {"config", {{"l2", l2}}}});
}

Regularizer L1L2(double l1, double l2) {
  check_factor(l1, "L1L2", "l1");
  check_factor(l2, "L1L2", "l2");
  return Regularizer([l1, l2](const Tensor& x) { return penalty(x, l1, l2); },
                     Config{{"class_name", "L1L2"}, {"config", {{"l1", l1}, {"l2", l2}}}});
}

Regularizer from_config(const Config& config) {
  // Keras also accepts a bare name with the class's default factors ("l1_l2" is Keras 3's alias
  // of the class L1L2, so both factors are 0, unlike tf.keras 2's function l1_l2(0.01, 0.01)).
  if (config.is_string()) {
    const std::string name = config.get<std::string>();
    if (name == "l1" || name == "L1") return L1();
    if (name == "l2" || name == "L2") return L2();
    if (name == "l1_l2" || name == "L1L2") return L1L2();
    throw ValueError(str("regularizers::from_config: unknown regularizer '", name, "' (expected l1, l2 or l1_l2)"));
  }
  if (!config.is_object() || !config.contains("class_name") || !config["class_name"].is_string()) {
    throw ValueError(str("regularizers::from_config: expected {\"class_name\": ..., \"config\": {...}} or a name, got ",
                         config.dump()));
  }
  const std::string cls = config["class_name"].get<std::string>();
  const Config params = config.contains("config") && !config["config"].is_null() ? config["config"] : Config::object();
  if (!params.is_object()) {
    throw ValueError(str("regularizers::from_config: ", cls, ".config must be an object, got ", params.dump()));
  }
  if (cls == "L1") return L1(factor_of(params, "l1", 0.01, cls));
  if (cls == "L2") return L2(factor_of(params, "l2", 0.01, cls));
  if (cls == "L1L2") return L1L2(factor_of(params, "l1", 0.0, cls), factor_of(params, "l2", 0.0, cls));
  throw ValueError(str("regularizers::from_config: unknown regularizer class '", cls,
                       "' (expected L1, L2 or L1L2; a custom callable cannot be rebuilt from a config)"));
}

}  // namespace regularizers
}  // namespace normnet

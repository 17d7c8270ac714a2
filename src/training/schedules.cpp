// Learning-rate schedules as Keras's (keras/optimizers/schedules/learning_rate_schedule.py): a
// constant, ExponentialDecay, CosineDecay, PiecewiseConstantDecay; their configs and from_config.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <type_traits>

#include "normnet/optimizers.h"

namespace normnet {
namespace {

using detail::str;

void check_rate(double value, const char* who, const char* arg) {
  if (!std::isfinite(value) || value < 0.0) {
    throw ValueError(str(who, ": expected ", arg, " to be a finite number >= 0, got ", value));
  }
}

void check_steps(int64_t steps, const char* who) {
  if (steps <= 0) throw ValueError(str(who, ": expected decay_steps > 0, got ", steps));
}

template <class T>
T param(const Config& params, const char* key, const std::string& who) {
  if (!params.is_object() || !params.contains(key) || params[key].is_null()) {
    throw ValueError(str("schedules::from_config: ", who, " needs \"", key, "\", got ", params.dump()));
  }
  // get<int64_t>() would cast a float (2e109) with undefined behaviour, or truncate 3.5.
  const auto check_integer = [&](const Config& v) {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT64_MAX})) {
      throw ValueError(str("schedules::from_config: ", who, ".", key, " must hold integers, got ", params[key].dump()));
    }
  };
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) check_integer(params[key]);
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    if (params[key].is_array()) {
      for (const Config& v : params[key]) check_integer(v);
    }
  }
  try {
    return params[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ValueError(str("schedules::from_config: ", who, ".", key, " has the wrong type: ", params[key].dump()));
  }
}

template <class T>
T param_or(const Config& params, const char* key, T fallback, const std::string& who) {
  if (!params.is_object() || !params.contains(key) || params[key].is_null()) return fallback;
  return param<T>(params, key, who);
}

}  // namespace

LearningRateSchedule::LearningRateSchedule(double constant)
    : fn_([constant](int64_t) { return constant; }), config_(constant) {}

namespace schedules {

LearningRateSchedule ExponentialDecay(double initial, int64_t decay_steps, double rate, bool staircase) {
  const char* who = "schedules::ExponentialDecay";
  check_rate(initial, who, "initial_learning_rate");
  check_steps(decay_steps, who);
  check_rate(rate, who, "decay_rate");
  // initial · rate^(step / decay_steps); staircase floors the exponent.
  auto fn = [=](int64_t step) {
    double p = static_cast<double>(step) / static_cast<double>(decay_steps);
    if (staircase) p = std::floor(p);
    return initial * std::pow(rate, p);
  };
  return LearningRateSchedule(fn, Config{{"class_name", "ExponentialDecay"},
                                         {"config",
                                          {{"initial_learning_rate", initial},
                                           {"decay_steps", decay_steps},
                                           {"decay_rate", rate},
                                           {"staircase", staircase}}}});
}

LearningRateSchedule CosineDecay(double initial, int64_t decay_steps, double alpha) {
  const char* who = "schedules::CosineDecay";
  check_rate(initial, who, "initial_learning_rate");
  check_steps(decay_steps, who);
  if (!(alpha >= 0.0 && alpha <= 1.0)) throw ValueError(str(who, ": expected alpha in [0, 1], got ", alpha));
  // s = min(step, decay_steps)/decay_steps;  initial · ((1 − α)·½(1 + cos πs) + α)  (no warmup)
  auto fn = [=](int64_t step) {
    const double s = static_cast<double>(std::min(step, decay_steps)) / static_cast<double>(decay_steps);
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * s));
    return initial * ((1.0 - alpha) * cosine + alpha);
  };
  return LearningRateSchedule(
      fn, Config{{"class_name", "CosineDecay"},
                 {"config", {{"initial_learning_rate", initial}, {"decay_steps", decay_steps}, {"alpha", alpha}}}});
}

// Keras's boundaries are inclusive on the left piece: values[0] while step <= boundaries[0],
// values[i] while boundaries[i−1] < step <= boundaries[i], values.back() after the last.
LearningRateSchedule PiecewiseConstantDecay(std::vector<int64_t> boundaries, std::vector<double> values) {
  const char* who = "schedules::PiecewiseConstantDecay";
  if (values.size() != boundaries.size() + 1) {
    throw ValueError(str(who, ": expected values.size() == boundaries.size() + 1, got ", values.size(),
                         " values and ", boundaries.size(), " boundaries"));
  }
  for (std::size_t i = 1; i < boundaries.size(); ++i) {
    if (boundaries[i] <= boundaries[i - 1]) {
      throw ValueError(str(who, ": boundaries must increase strictly, got ", boundaries[i - 1], " then ", boundaries[i],
                           " at position ", i));
    }
  }
  for (double v : values) check_rate(v, who, "every value");
  Config config{{"class_name", "PiecewiseConstantDecay"}, {"config", {{"boundaries", boundaries}, {"values", values}}}};
  auto fn = [boundaries = std::move(boundaries), values = std::move(values)](int64_t step) {
    for (std::size_t i = 0; i < boundaries.size(); ++i) {
      if (step <= boundaries[i]) return values[i];
    }
    return values.back();
  };
  return LearningRateSchedule(std::move(fn), std::move(config));
}

LearningRateSchedule from_config(const Config& config) {
  if (config.is_number()) {
    const double lr = config.get<double>();
    check_rate(lr, "schedules::from_config", "a constant learning rate");
    return LearningRateSchedule(lr);
  }
  if (!config.is_object() || !config.contains("class_name") || !config["class_name"].is_string()) {
    throw ValueError(str("schedules::from_config: expected a number or {\"class_name\": ..., \"config\": {...}}, got ",
                         config.dump()));
  }
  const std::string cls = config["class_name"].get<std::string>();
  const Config params = config.value("config", Config::object());
  if (cls == "ExponentialDecay") {
    return ExponentialDecay(param<double>(params, "initial_learning_rate", cls), param<int64_t>(params, "decay_steps", cls),
                            param<double>(params, "decay_rate", cls), param_or(params, "staircase", false, cls));
  }
  if (cls == "CosineDecay") {
    return CosineDecay(param<double>(params, "initial_learning_rate", cls), param<int64_t>(params, "decay_steps", cls),
                       param_or(params, "alpha", 0.0, cls));
  }
  if (cls == "PiecewiseConstantDecay") {
    return PiecewiseConstantDecay(param<std::vector<int64_t>>(params, "boundaries", cls),
                                  param<std::vector<double>>(params, "values", cls));
  }
  throw ValueError(str("schedules::from_config: unknown schedule '", cls,
                       "' (known: ExponentialDecay, CosineDecay, PiecewiseConstantDecay)"));
}

}  // namespace schedules
}  // namespace normnet

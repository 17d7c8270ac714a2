// Keras's weight initializers (VarianceScaling family, constants, random normal/uniform), their
// configs and names, and the global seed stream that layers draw their initialization seeds from.
#include "normnet/initializers.h"

#include <cmath>
#include <mutex>
#include <optional>

#include "core/random.h"

namespace normnet {
namespace {

using detail::str;

// Keras's compute_fans: [] → 1, 1; [n] → n, n; [in, out] → in, out; a kernel [k..., in, out]
// multiplies both by the receptive field Π k.
struct Fans {
  double in = 1.0;
  double out = 1.0;
};

Fans compute_fans(const Shape& shape) {
  if (shape.empty()) return {};
  if (shape.size() == 1) return {static_cast<double>(shape[0]), static_cast<double>(shape[0])};
  double receptive_field = 1.0;
  for (std::size_t i = 0; i + 2 < shape.size(); ++i) receptive_field *= static_cast<double>(shape[i]);
  return {static_cast<double>(shape[shape.size() - 2]) * receptive_field,
          static_cast<double>(shape.back()) * receptive_field};
}

void check_shape(const Shape& shape, const char* who) {
  if (shape_has_unknown(shape)) {
    throw ValueError(str("Initializer ", who, ": cannot initialize a weight of shape ", shape,
                         " (every extent must be known)"));
  }
}

void check_floating_dtype(DType dtype, const char* who) {
  if (!is_floating(dtype)) {
    throw ValueError(str("Initializer ", who, ": expected a floating dtype (float32 or float64), got ",
                         dtype_name(dtype)));
  }
}

// A tensor of `shape` and floating `dtype` whose elements are successive sample() values.
template <class Sample>
Tensor fill(const Shape& shape, DType dtype, Sample&& sample) {
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  if (dtype == DType::kFloat32) {
    float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(sample());
  } else {
    double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = sample();
  }
  return t;
}

// mean + stddev·z with z ~ N(0, 1) redrawn until |z| <= 2 (Keras's / TensorFlow's truncation).
Tensor truncated_normal(const Shape& shape, DType dtype, double mean, double stddev, uint64_t seed) {
  detail::Rng rng(seed);
  return fill(shape, dtype, [&] {
    double z = rng.normal();
    while (std::abs(z) > 2.0) z = rng.normal();
    return mean + stddev * z;
  });
}

Tensor uniform(const Shape& shape, DType dtype, double lo, double hi, uint64_t seed) {
  detail::Rng rng(seed);
  return fill(shape, dtype, [&] { return lo + (hi - lo) * rng.uniform(); });
}

Tensor normal(const Shape& shape, DType dtype, double mean, double stddev, uint64_t seed) {
  detail::Rng rng(seed);
  return fill(shape, dtype, [&] { return mean + stddev * rng.normal(); });
}

Config seed_config(std::optional<uint64_t> seed) { return seed ? Config(*seed) : Config(nullptr); }

// An initializer drawing from `seed` when its config fixes one (Keras's seed= argument: the same
// values on every call), else from the seed its caller passes.
Initializer seeded(const char* class_name, Config params, std::optional<uint64_t> fixed_seed,
                   std::function<Tensor(const Shape&, DType, uint64_t)> draw) {
  params["seed"] = seed_config(fixed_seed);
  Config config = {{"class_name", class_name}, {"config", std::move(params)}};
  std::string who = class_name;
  return Initializer(
      [who, fixed_seed, draw = std::move(draw)](const Shape& shape, DType dtype, uint64_t seed) {
        check_shape(shape, who.c_str());
        check_floating_dtype(dtype, who.c_str());
        return draw(shape, dtype, fixed_seed ? *fixed_seed : seed);
      },
      std::move(config));
}

// Keras's VarianceScaling: scale / max(1, fan) with fan = fan_in, fan_out or their mean; then
//   truncated_normal: stddev = sqrt(scale) / .87962566103423978 (the stddev of a unit normal
//                     truncated to [-2, 2], so the truncated draw keeps variance `scale`);
//   untruncated_normal: stddev = sqrt(scale);  uniform: limit = sqrt(3·scale).
Initializer variance_scaling(const char* class_name, double scale, const std::string& mode,
                             const std::string& distribution, std::optional<uint64_t> fixed_seed,
                             bool full_config) {
  if (!(scale > 0.0)) throw ValueError(str("Initializer ", class_name, ": expected scale > 0, got ", scale));
  if (mode != "fan_in" && mode != "fan_out" && mode != "fan_avg") {
    throw ValueError(str("Initializer ", class_name, ": unknown mode '", mode,
                         "' (expected fan_in, fan_out or fan_avg)"));
  }
  const std::string dist = distribution == "normal" ? "truncated_normal" : distribution;
  if (dist != "truncated_normal" && dist != "untruncated_normal" && dist != "uniform") {
    throw ValueError(str("Initializer ", class_name, ": unknown distribution '", distribution,
                         "' (expected truncated_normal, untruncated_normal or uniform)"));
  }
  Config params = Config::object();
  if (full_config) params = {{"scale", scale}, {"mode", mode}, {"distribution", dist}};
  return seeded(class_name, std::move(params), fixed_seed,
                [scale, mode, dist](const Shape& shape, DType dtype, uint64_t seed) {
                  const Fans fans = compute_fans(shape);
                  const double fan = mode == "fan_in" ? fans.in : mode == "fan_out" ? fans.out : (fans.in + fans.out) / 2.0;
                  const double s = scale / std::max(1.0, fan);
                  if (dist == "truncated_normal") {
                    return truncated_normal(shape, dtype, 0.0, std::sqrt(s) / .87962566103423978, seed);
                  }
                  if (dist == "untruncated_normal") return normal(shape, dtype, 0.0, std::sqrt(s), seed);
                  const double limit = std::sqrt(3.0 * s);
                  return uniform(shape, dtype, -limit, limit, seed);
                });
}

Initializer constant(const char* class_name, double value, Config params) {
  Config config = {{"class_name", class_name}, {"config", std::move(params)}};
  std::string who = class_name;
  return Initializer(
      [who, value](const Shape& shape, DType dtype, uint64_t) {
        check_shape(shape, who.c_str());
        return Tensor::full(shape, value, dtype);
      },
      std::move(config));
}

// ---- by class name, with optional parameters (the shared core of names and from_config) ----

double number(const Config& params, const char* key, double fallback, const std::string& who) {
  if (!params.contains(key) || params[key].is_null()) return fallback;
  if (!params[key].is_number()) {
    throw ValueError(str("initializers::from_config: ", who, ".", key, " must be a number, got ", params[key].dump()));
  }
  return params[key].get<double>();
}

std::string text(const Config& params, const char* key, const std::string& fallback, const std::string& who) {
  if (!params.contains(key) || params[key].is_null()) return fallback;
  if (!params[key].is_string()) {
    throw ValueError(str("initializers::from_config: ", who, ".", key, " must be a string, got ", params[key].dump()));
  }
  return params[key].get<std::string>();
}

std::optional<uint64_t> seed_of(const Config& params, const std::string& who) {
  if (!params.contains("seed") || params["seed"].is_null()) return std::nullopt;
  if (!params["seed"].is_number_integer()) {
    throw ValueError(str("initializers::from_config: ", who, ".seed must be an integer or null, got ",
                         params["seed"].dump()));
  }
  return params["seed"].is_number_unsigned() ? params["seed"].get<uint64_t>()
                                             : static_cast<uint64_t>(params["seed"].get<int64_t>());
}

constexpr const char* kKnown =
    "GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Zeros, Ones, Constant, "
    "RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling";

std::optional<Initializer> by_class(const std::string& cls, const Config& p) {
  const auto seed = seed_of(p, cls);
  if (cls == "GlorotUniform") return variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform", seed, false);
  if (cls == "GlorotNormal") return variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal", seed, false);
  if (cls == "HeUniform") return variance_scaling("HeUniform", 2.0, "fan_in", "uniform", seed, false);
  if (cls == "HeNormal") return variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal", seed, false);
  if (cls == "LecunUniform") return variance_scaling("LecunUniform", 1.0, "fan_in", "uniform", seed, false);
  if (cls == "LecunNormal") return variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal", seed, false);
  if (cls == "VarianceScaling") {
    return variance_scaling("VarianceScaling", number(p, "scale", 1.0, cls), text(p, "mode", "fan_in", cls),
                            text(p, "distribution", "truncated_normal", cls), seed, true);
  }
  if (cls == "Zeros") return constant("Zeros", 0.0, Config::object());
  if (cls == "Ones") return constant("Ones", 1.0, Config::object());
  if (cls == "Constant") {
    const double value = number(p, "value", 0.0, cls);
    return constant("Constant", value, {{"value", value}});
  }
  if (cls == "RandomNormal" || cls == "TruncatedNormal") {
    const double mean = number(p, "mean", 0.0, cls);
    const double stddev = number(p, "stddev", 0.05, cls);
    if (!(stddev >= 0.0)) throw ValueError(str("Initializer ", cls, ": expected stddev >= 0, got ", stddev));
    const bool truncated = cls == "TruncatedNormal";
    return seeded(truncated ? "TruncatedNormal" : "RandomNormal", {{"mean", mean}, {"stddev", stddev}}, seed,
                  [mean, stddev, truncated](const Shape& shape, DType dtype, uint64_t s) {
                    return truncated ? truncated_normal(shape, dtype, mean, stddev, s) : normal(shape, dtype, mean, stddev, s);
                  });
  }
  if (cls == "RandomUniform") {
    const double lo = number(p, "minval", -0.05, cls);
    const double hi = number(p, "maxval", 0.05, cls);
    if (!(lo <= hi)) throw ValueError(str("Initializer RandomUniform: expected minval <= maxval, got ", lo, " and ", hi));
    return seeded("RandomUniform", {{"minval", lo}, {"maxval", hi}}, seed,
                  [lo, hi](const Shape& shape, DType dtype, uint64_t s) { return uniform(shape, dtype, lo, hi, s); });
  }
  return std::nullopt;
}

// Keras's snake_case names (and aliases) to class names.
std::string class_of_name(const std::string& name) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"glorot_uniform", "GlorotUniform"}, {"glorot_normal", "GlorotNormal"},
      {"he_uniform", "HeUniform"},         {"he_normal", "HeNormal"},
      {"lecun_uniform", "LecunUniform"},   {"lecun_normal", "LecunNormal"},
      {"zeros", "Zeros"},                  {"zero", "Zeros"},
      {"ones", "Ones"},                    {"one", "Ones"},
      {"constant", "Constant"},            {"random_normal", "RandomNormal"},
      {"random_uniform", "RandomUniform"}, {"truncated_normal", "TruncatedNormal"},
      {"variance_scaling", "VarianceScaling"}};
  for (const auto& [snake, cls] : kNames) {
    if (name == snake) return cls;
  }
  return name;  // a class name given as is ("GlorotUniform")
}

Initializer by_name(const std::string& name) {
  if (auto init = by_class(class_of_name(name), Config::object())) return *init;
  throw ValueError(str("Initializer: unknown initializer '", name,
                       "' (expected one of glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform, "
                       "lecun_normal, zeros, ones, constant, random_normal, random_uniform, truncated_normal, "
                       "variance_scaling, or a class name: ",
                       kKnown, ")"));
}

}  // namespace

Initializer::Initializer(const char* name) : Initializer(by_name(name)) {}
Initializer::Initializer(const std::string& name) : Initializer(by_name(name)) {}

Tensor Initializer::operator()(const Shape& shape, DType dtype, uint64_t seed) const {
  if (!fn_) throw Error("Initializer: called an empty initializer (give a name, a factory or a callable)");
  Tensor t = fn_(shape, dtype, seed);
  if (!t.defined() || t.is_symbolic() || t.shape() != shape || t.dtype() != dtype) {
    const std::string got = t.defined() ? str(t.shape(), " ", dtype_name(t.dtype()), t.is_symbolic() ? " (symbolic)" : "")
                                        : std::string("an undefined tensor");
    throw ValueError(str("Initializer", config_.is_object() ? " " + config_.value("class_name", std::string()) : "",
                         ": expected a ", dtype_name(dtype), " tensor of shape ", shape, ", got ", got));
  }
  return t;
}

namespace initializers {

Initializer GlorotUniform() { return *by_class("GlorotUniform", Config::object()); }
Initializer GlorotNormal() { return *by_class("GlorotNormal", Config::object()); }
Initializer HeUniform() { return *by_class("HeUniform", Config::object()); }
Initializer HeNormal() { return *by_class("HeNormal", Config::object()); }
Initializer LecunUniform() { return *by_class("LecunUniform", Config::object()); }
Initializer LecunNormal() { return *by_class("LecunNormal", Config::object()); }
Initializer Zeros() { return *by_class("Zeros", Config::object()); }
Initializer Ones() { return *by_class("Ones", Config::object()); }
Initializer Constant(double value) { return *by_class("Constant", {{"value", value}}); }
Initializer RandomNormal(double mean, double stddev) {
  return *by_class("RandomNormal", {{"mean", mean}, {"stddev", stddev}});
}
Initializer RandomUniform(double minval, double maxval) {
  return *by_class("RandomUniform", {{"minval", minval}, {"maxval", maxval}});
}

Initializer from_config(const Config& config) {
  if (config.is_string()) return by_name(config.get<std::string>());
  if (!config.is_object() || !config.contains("class_name") || !config["class_name"].is_string()) {
    throw ValueError(str("initializers::from_config: expected {\"class_name\": ..., \"config\": {...}} or a name, got ",
                         config.dump()));
  }
  const std::string cls = config["class_name"].get<std::string>();
  Config params = config.contains("config") && !config["config"].is_null() ? config["config"] : Config::object();
  if (!params.is_object()) {
    throw ValueError(str("initializers::from_config: ", cls, ".config must be an object, got ", params.dump()));
  }
  if (auto init = by_class(class_of_name(cls), params)) return *init;
  throw ValueError(str("initializers::from_config: unknown initializer class '", cls, "' (expected one of ", kKnown, ")"));
}

}  // namespace initializers

// ---- the global seed stream ----
// next_seed() returns splitmix64's output for (seed, counter): distinct, well-mixed seeds in a
// fixed order after set_random_seed(seed). The default seed is 0, so a program that never sets
// one is still deterministic. A mutex keeps the counter consistent across threads (the order in
// which threads draw is up to them).
namespace {
std::mutex g_seed_mutex;
uint64_t g_seed = 0;
uint64_t g_counter = 0;

uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

void set_random_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_seed_mutex);
  g_seed = seed;
  g_counter = 0;
}

uint64_t next_seed() {
  std::lock_guard<std::mutex> lock(g_seed_mutex);
  ++g_counter;
  return splitmix64(g_seed + 0x9E3779B97F4A7C15ull * g_counter);
}

}  // namespace normnet

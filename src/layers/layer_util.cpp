// Helpers shared by the built-in layers: config conversions and mask arithmetic.
#include "layers/layer_util.h"

#include "normnet/ops/elementwise.h"
#include "normnet/ops/reduce.h"
#include "normnet/ops/shape_ops.h"

namespace normnet::layers::detail {

std::string who(const Layer& layer) { return str(layer.class_name(), " '", layer.name(), "'"); }

Config to_config(const Initializer& init) { return init ? init.get_config() : Config(nullptr); }

Config to_config(const Regularizer& reg) { return reg ? reg.get_config() : Config(nullptr); }

Initializer initializer_from(const Config& config, const char* key, Initializer fallback) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  if (config[key].is_string()) return Initializer(config[key].get<std::string>());
  return initializers::from_config(config[key]);
}

Regularizer regularizer_from(const Config& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return {};
  return regularizers::from_config(config[key]);
}

DType dtype_from_name(const std::string& name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float64") return DType::kFloat64;
  if (name == "int64") return DType::kInt64;
  if (name == "uint8") return DType::kUInt8;
  throw ValueError(str("layer config: unknown dtype '", name, "' (expected float32, float64, int64 or uint8)"));
}

DType dtype_from(const Config& config) {
  if (!config.contains("dtype") || !config["dtype"].is_string()) return DType::kFloat32;
  return dtype_from_name(config["dtype"].get<std::string>());
}

int64_t int_from(const Config& value, const std::string& where, int64_t lo, int64_t hi) {
  bool ok = value.is_number_integer();
  int64_t v = 0;
  if (ok && value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    ok = u <= static_cast<uint64_t>(INT64_MAX);
    v = ok ? static_cast<int64_t>(u) : 0;
  } else if (ok) {
    v = value.get<int64_t>();
  }
  if (!ok) throw ValueError(str(where, " must be an integer, got ", value.dump()));
  if (v < lo || v > hi) throw ValueError(str(where, " must be within [", lo, ", ", hi, "], got ", v));
  return v;
}

int int32_from(const Config& value, const std::string& where) {
  return static_cast<int>(int_from(value, where, INT32_MIN, INT32_MAX));
}

std::array<int, 2> int_pair_from(const Config& value, const std::string& where) {
  if (!value.is_array() || value.size() != 2) {
    throw ValueError(str(where, " must be a pair of integers [a, b], got ", value.dump()));
  }
  return {int32_from(value[0], where), int32_from(value[1], where)};
}

std::vector<int> ints_from(const Config& value, const std::string& where) {
  if (!value.is_array()) return {int32_from(value, where)};
  std::vector<int> out;
  for (const Config& v : value) out.push_back(int32_from(v, where));
  return out;
}

const char* padding_name(ops::Padding padding) { return padding == ops::Padding::kSame ? "same" : "valid"; }

ops::Padding padding_from_name(const std::string& name, const std::string& who) {
  if (name == "valid") return ops::Padding::kValid;
  if (name == "same") return ops::Padding::kSame;
  throw ValueError(str(who, ": padding must be \"valid\" or \"same\", got \"", name, "\""));
}

Config base_config(const Layer& layer, Config base) {
  if (layer.activity_regularizer()) base["activity_regularizer"] = to_config(layer.activity_regularizer());
  return base;
}

void apply_base_config(Layer& layer, const Config& config) {
  if (config.contains("name") && config["name"].is_string()) layer.set_name(config["name"].get<std::string>());
  if (config.contains("trainable") && config["trainable"].is_boolean()) {
    layer.set_trainable(config["trainable"].get<bool>());
  }
  if (Regularizer reg = regularizer_from(config, "activity_regularizer")) layer.set_activity_regularizer(reg);
}

Tensor autocast(const Tensor& x, DType dtype) {
  if (!is_floating(x.dtype()) || x.dtype() == dtype) return x;
  return ops::cast(x, dtype);
}

Tensor mask_multiplier(const Layer& layer, const Tensor& x, const Tensor& mask) {
  const Shape& xs = x.shape();
  const Shape& ms = mask.shape();
  const bool one_fewer = ms.size() + 1 == xs.size();
  bool fits = one_fewer || ms.size() == xs.size();
  for (std::size_t i = 0; fits && i < ms.size(); ++i) fits = dims_compatible(ms[i], xs[i]) || ms[i] == 1;
  if (!fits) {
    throw ShapeError(str(who(layer), ": mask shape ", ms, " does not fit input shape ", xs,
                         " (expected the input's shape without its last axis, ",
                         Shape(xs.begin(), xs.end() - (xs.empty() ? 0 : 1)), ")"));
  }
  Tensor m = ops::cast(mask, x.dtype());
  return one_fewer ? ops::unsqueeze(m, -1) : m;
}

Tensor any_not_equal_last_axis(const Tensor& x, double value) {
  // sign(|x − v|) is 1 where x ≠ v and 0 where x = v; max over the last axis is "any".
  Tensor differs = ops::sign(ops::abs(x - value));
  return ops::cast(ops::max(differs, {-1}), DType::kFloat32);
}

Tensor ones_mask(const Shape& shape, bool symbolic) {
  return symbolic ? Tensor::symbolic(shape, DType::kFloat32) : Tensor::ones(shape, DType::kFloat32);
}

Tensor mask_and(const std::vector<Tensor>& masks) {
  Tensor out;
  for (const Tensor& m : masks) {
    if (!m.defined()) continue;
    Tensor mf = ops::cast(m, DType::kFloat32);
    out = out.defined() ? out * mf : mf;
  }
  return out;
}

bool dims_compatible(int64_t a, int64_t b) { return a == b || a == kUnknownDim || b == kUnknownDim; }

}  // namespace normnet::layers::detail

// Reading Keras-style "config" objects: optional typed fields and case-insensitive names.
// Shared by the from_config functions of losses, optimizers and metrics.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>

#include "normnet/config.h"
#include "normnet/error.h"

namespace normnet::detail {

[[nodiscard]] inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// params[key] as T, or `fallback` when absent or null. A value of the wrong type is a ValueError
// naming `who` ("losses::from_config: MeanSquaredError") and the field.
template <class T>
[[nodiscard]] T config_option(const Config& params, const char* key, T fallback, const std::string& who) {
  if (!params.is_object() || !params.contains(key) || params[key].is_null()) return fallback;
  try {
    return params[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ValueError(str(who, ".", key, " has the wrong type: ", params[key].dump()));
  }
}

}  // namespace normnet::detail

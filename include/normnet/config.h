// Keras-style configuration objects: JSON values such as
//   {"class_name": "Dense", "config": {"name": "dense", "units": 64, "activation": "relu"}}
#pragma once

#include <nlohmann/json.hpp>

namespace normnet {
using Config = nlohmann::json;
}  // namespace normnet

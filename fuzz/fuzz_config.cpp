// libFuzzer target: JSON text as a Keras-style config, read both ways a user's file is read: as a
// whole model (model_from_json: Functional or Sequential, nested models, depth-checked before
// parsing) and as one layer (layers::from_config, then called on a symbolic input). Anything but
// normnet::Error or a JSON parse error of the layer path is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "normnet/config.h"
#include "normnet/error.h"
#include "normnet/layers.h"
#include "normnet/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)normnet::model_from_json(text);
  } catch (const normnet::Error&) {
    // A clean rejection.
  }
  // Layer configs: parsed here only when shallow, as model_from_json checks depth first.
  if (size > 4096) return 0;
  normnet::Config config;
  try {
    config = normnet::Config::parse(text);
  } catch (const normnet::Config::exception&) {
    return 0;  // not JSON
  }
  try {
    auto layer = normnet::layers::from_config(config);
    (void)(*layer)(normnet::Input({4, 4, 2}));
  } catch (const normnet::Error&) {
    // A clean rejection.
  }
  return 0;
}

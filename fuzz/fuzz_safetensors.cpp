// libFuzzer target: arbitrary bytes as a saved model. parse_safetensors validates the layout;
// when it accepts the bytes and they carry an architecture ("normnet.config"), the model is
// rebuilt from it. Anything but normnet::Error is a finding.
#include <cstddef>
#include <cstdint>

#include "io/safetensors.h"
#include "normnet/error.h"
#include "normnet/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const normnet::io::SafetensorsContents contents = normnet::io::parse_safetensors(data, size, "fuzz-input");
    const auto config = contents.metadata.find("normnet.config");
    if (config != contents.metadata.end()) (void)normnet::model_from_json(config->second);
  } catch (const normnet::Error&) {
    // A clean rejection.
  }
  return 0;
}

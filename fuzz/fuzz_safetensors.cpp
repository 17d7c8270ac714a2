// libFuzzer target: arbitrary bytes as a saved model. parse_safetensors validates the layout;
// when it accepts the bytes and they carry an architecture ("normnet.config"), the model is
// rebuilt from it under an allocation budget, as load_model does. Anything but normnet::Error
// (or std::bad_alloc from the budget) is a finding.
#include <cstddef>
#include <cstdint>
#include <new>

#include "core/allocator.h"
#include "io/safetensors.h"
#include "normnet/error.h"
#include "normnet/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const normnet::io::SafetensorsContents contents = normnet::io::parse_safetensors(data, size, "fuzz-input");
    const auto config = contents.metadata.find("normnet.config");
    normnet::detail::AllocationBudget budget(std::size_t{64} << 20);
    if (config != contents.metadata.end()) (void)normnet::model_from_json(config->second);
  } catch (const normnet::Error&) {
    // A clean rejection.
  } catch (const std::bad_alloc&) {
    // An architecture asking for more than the budget: refused.
  }
  return 0;
}

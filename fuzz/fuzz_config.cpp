// libFuzzer target: JSON text as a Keras-style config, read both ways a user's file is read: as a
// whole model (model_from_json: Functional or Sequential, nested models, depth-checked before
// parsing) and as one layer (layers::from_config, then called on a symbolic input). Weights are
// created under an allocation budget, as load_model does. Anything but normnet::Error (or
// std::bad_alloc from the budget, or a JSON parse error on the layer path) is a finding.
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>

#include "core/allocator.h"
#include "normnet/config.h"
#include "normnet/error.h"
#include "normnet/layers.h"
#include "normnet/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  normnet::detail::AllocationBudget budget(std::size_t{64} << 20);
  try {
    (void)normnet::model_from_json(text);
  } catch (const normnet::Error&) {
    // A clean rejection.
  } catch (const std::bad_alloc&) {
    // Over the budget: refused.
  }
  // Layer configs: parsed here only when short, as model_from_json checks depth first.
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
  } catch (const std::bad_alloc&) {
    // Over the budget: refused.
  }
  return 0;
}

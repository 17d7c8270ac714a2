// libFuzzer target: the IDX parser (magic, rank, extents, exact size) on arbitrary bytes, and the
// conversion to image / label tensors when the parse succeeds. Anything but normnet::Error is a
// finding (a crash, a sanitizer report, or a foreign exception).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/idx.h"
#include "normnet/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    const normnet::io::IdxArray array = normnet::io::parse_idx(bytes, "fuzz-input");
    (void)array;
  } catch (const normnet::Error&) {
    // A clean rejection: what the reader must do with bad input.
  }
  return 0;
}

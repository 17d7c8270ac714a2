// The safetensors file format (huggingface/safetensors), as normnet reads and writes it:
//
//   [8 bytes: N, little-endian uint64] [N bytes: JSON header] [data section]
//   header = {"<tensor name>": {"dtype": "F32"|"F64"|"I64"|"U8", "shape": [d0, ...],
//                               "data_offsets": [begin, end]},  ...,
//             "__metadata__": {"<key>": "<string value>", ...}}
//
// Offsets are relative to the start of the data section; data is little-endian and row-major.
// The reader trusts nothing in the file; the writer goes through write_file_atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "normnet/tensor.h"

namespace normnet::io {

// Largest JSON header accepted (the published format's own bound is 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsContents {
  std::map<std::string, Tensor> tensors;  // by name; each owns a copy of its bytes
  std::vector<std::string> order;         // the names in data-section order (the order written)
  std::map<std::string, std::string> metadata;
};

// Parses a complete safetensors file held in memory: the entry point for fuzzing.
// Guarantees, whatever the bytes: it reads only [data, data + size); it throws IoError
// "<name_for_errors>: <what is wrong>" for any invalid input (header length beyond the file or
// above 100 MB, bad or too deeply nested JSON, a header that is not an object, unknown dtype,
// negative or overflowing shapes, offsets out of order, out of the data section, overlapping,
// leaving gaps, or not matching shape × dtype size, a non-string metadata value); the tensor
// data it allocates is at most `size` bytes; nothing from the file is executed or interpreted
// beyond these fields.
[[nodiscard]] SafetensorsContents parse_safetensors(const uint8_t* data, std::size_t size,
                                                    const std::string& name_for_errors);

// Reads and parses the file at `path` (IoError naming the path when missing or unreadable).
[[nodiscard]] SafetensorsContents read_safetensors(const std::string& path);

// The bytes of a safetensors file holding `tensors` (float32, float64, int64 or uint8; names unique and
// not "__metadata__") and `metadata`. The header is padded with spaces to a multiple of 8 bytes.
// Returned as the header part and the tensors' data in header order, to be written without a copy.
struct SafetensorsBytes {
  std::string header;  // the 8-byte length and the JSON text
  std::vector<std::pair<const void*, std::size_t>> data;
};
[[nodiscard]] SafetensorsBytes serialize_safetensors(
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata);

// Writes a safetensors file atomically (see atomic_file.h).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace normnet::io

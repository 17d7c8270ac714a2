// IDX files (the MNIST format): big-endian magic (0, 0, type, rank), rank big-endian uint32
// extents, then the raw data. Plain or gzip-compressed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "normnet/tensor.h"

namespace normnet::io {

struct IdxArray {
  uint8_t type = 0;          // 0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // raw bytes, big-endian for multi-byte types
};

// Reads a whole file, gunzipping it when it starts with the gzip magic. Throws IoError naming
// the path when it cannot be opened or is corrupt; refuses files over `max_bytes` unpacked.
[[nodiscard]] std::vector<uint8_t> read_file_maybe_gzip(const std::string& path, std::size_t max_bytes);

// Parses and validates an IDX byte buffer (magic, rank, extents, exact size). `path` names the
// source in error messages.
[[nodiscard]] IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& path);
[[nodiscard]] IdxArray read_idx(const std::string& path);

// An unsigned-byte image file [N, rows, cols] as float32 [N, rows, cols, 1] scaled to [0, 1].
[[nodiscard]] Tensor read_idx_images(const std::string& path);
// An unsigned-byte label file [N] as int64 [N].
[[nodiscard]] Tensor read_idx_labels(const std::string& path);

}  // namespace normnet::io

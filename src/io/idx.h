// IDX files (the MNIST format): big-endian magic (0, 0, type, rank), rank big-endian uint32
// extents, then the raw data. Plain or gzip-compressed.
//
// Files are streamed: the header is read and validated first, the result is allocated once at
// its final size, and the data (decompressed in chunks when gzip'd) goes straight into it, so
// reading Fashion-MNIST's 47 MB of training images as uint8 takes 47 MB, not 47 MB twice.
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

// Parses and validates an IDX byte buffer (magic, rank, extents, exact size) through the same
// streaming reader as the files: the fuzzing entry point. `path` names the source in errors.
[[nodiscard]] IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& path);
// Reads and validates a whole IDX file (plain or gzip) of any element type. IoError names the
// path: missing or unreadable, corrupt or truncated gzip, a bad header, or a size that is not
// exactly the header's.
[[nodiscard]] IdxArray read_idx(const std::string& path);

// An unsigned-byte image file [N, rows, cols] as [N, rows, cols, 1]:
//   DType::kFloat32 (the default) or kFloat64: byte/255, in [0, 1];
//   DType::kUInt8: the bytes themselves, 0..255 (a quarter of float32's memory; rescale inside
//   the model with layers::Rescaling(1.0 / 255)).
// Any other dtype is a ValueError.
[[nodiscard]] Tensor read_idx_images(const std::string& path, DType dtype = DType::kFloat32);
// An unsigned-byte label file [N] as int64 [N].
[[nodiscard]] Tensor read_idx_labels(const std::string& path);

}  // namespace normnet::io

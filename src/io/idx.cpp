// IDX reader with validation of every field before any allocation trusts it.
#include "io/idx.h"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <memory>

namespace normnet::io {
namespace {

using detail::str;

// 2^31 bytes is far above any IDX data set normnet reads (Fashion-MNIST is 47 MB).
constexpr std::size_t kMaxIdxBytes = std::size_t{1} << 31;

std::size_t element_size(uint8_t type) {
  switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
  }
}

std::vector<uint8_t> gunzip(const std::string& path, std::size_t max_bytes) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw IoError(str(path, ": cannot open"));
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(file, gzclose);
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 16);
  for (;;) {
    const int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      throw IoError(str(path, ": corrupt gzip data (", message ? message : "unknown error", ")"));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      throw IoError(str(path, ": decompresses to more than ", max_bytes, " bytes; refusing it"));
    }
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  return out;
}

}  // namespace

std::vector<uint8_t> read_file_maybe_gzip(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(str(path, ": cannot open (missing or unreadable)"));
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  const bool gz = in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (gz) {
    in.close();
    return gunzip(path, max_bytes);
  }
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  if (size > max_bytes) throw IoError(str(path, ": ", size, " bytes is larger than the limit of ", max_bytes));
  std::vector<uint8_t> bytes(size);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::size_t>(in.gcount()) != size) throw IoError(str(path, ": read failed"));
  return bytes;
}

IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (bytes.size() < 4) throw IoError(str(path, ": too short for an IDX header (", bytes.size(), " bytes)"));
  if (bytes[0] != 0 || bytes[1] != 0) {
    throw IoError(str(path, ": bad IDX magic (first two bytes must be 0, got ", int(bytes[0]), ", ", int(bytes[1]), ")"));
  }
  IdxArray array;
  array.type = bytes[2];
  const std::size_t elem = element_size(array.type);
  if (elem == 0) throw IoError(str(path, ": unknown IDX element type 0x", std::hex, int(array.type)));
  const int rank = bytes[3];
  if (rank < 1 || rank > 8) throw IoError(str(path, ": IDX rank ", rank, " is outside 1..8"));
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  if (bytes.size() < header) throw IoError(str(path, ": truncated IDX header (rank ", rank, ")"));
  std::size_t count = 1;
  for (int i = 0; i < rank; ++i) {
    const uint8_t* p = bytes.data() + 4 + 4 * i;
    const uint32_t d = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
    if (d > 0 && count > kMaxIdxBytes / d) throw IoError(str(path, ": IDX extents overflow the size limit"));
    count *= d;
    array.dims.push_back(d);
  }
  if (count > kMaxIdxBytes / elem) throw IoError(str(path, ": IDX data would exceed the size limit"));
  const std::size_t expected = header + count * elem;
  if (bytes.size() != expected) {
    throw IoError(str(path, ": IDX size mismatch: header ", shape_to_string(array.dims), " needs ", expected,
                      " bytes, file has ", bytes.size()));
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

IdxArray read_idx(const std::string& path) { return parse_idx(read_file_maybe_gzip(path, kMaxIdxBytes), path); }

Tensor read_idx_images(const std::string& path) {
  const IdxArray a = read_idx(path);
  if (a.type != 0x08 || a.dims.size() != 3) {
    throw IoError(str(path, ": expected unsigned-byte images [N, rows, cols], got type 0x", std::hex, int(a.type),
                      std::dec, " with extents ", shape_to_string(a.dims)));
  }
  Tensor x = Tensor::empty({a.dims[0], a.dims[1], a.dims[2], 1});
  float* p = x.data<float>();
  for (std::size_t i = 0; i < a.data.size(); ++i) p[i] = static_cast<float>(a.data[i]) / 255.0f;
  return x;
}

Tensor read_idx_labels(const std::string& path) {
  const IdxArray a = read_idx(path);
  if (a.type != 0x08 || a.dims.size() != 1) {
    throw IoError(str(path, ": expected unsigned-byte labels [N], got type 0x", std::hex, int(a.type), std::dec,
                      " with extents ", shape_to_string(a.dims)));
  }
  Tensor y = Tensor::empty({a.dims[0]}, DType::kInt64);
  int64_t* p = y.data<int64_t>();
  for (std::size_t i = 0; i < a.data.size(); ++i) p[i] = a.data[i];
  return y;
}

}  // namespace normnet::io

// Streaming IDX reader: the header is validated before any allocation trusts it, then the data
// is read in chunks straight into the result (see idx.h).
#include "io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

namespace normnet::io {
namespace {

using detail::str;

// 2^31 bytes is far above any IDX data set normnet reads (Fashion-MNIST is 47 MB).
constexpr std::size_t kMaxIdxBytes = std::size_t{1} << 31;
// Bytes decoded per step when the result is not the file's own bytes (float images, labels).
constexpr std::size_t kChunkBytes = std::size_t{1} << 16;

std::size_t element_size(uint8_t type) {
  switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
  }
}

// The bytes of a file, plain or gzip (zlib's gzread passes a file without the gzip magic
// through unchanged), or of a buffer in memory. read() returns fewer bytes than asked only at
// the end of the data; corrupt gzip data is an IoError naming the path.
class ByteSource {
 public:
  static ByteSource open_file(const std::string& path) {
    ByteSource s(path);
    s.file_.reset(gzopen(path.c_str(), "rb"));
    if (!s.file_) throw IoError(str(path, ": cannot open (missing or unreadable)"));
    gzbuffer(s.file_.get(), 1u << 17);
    return s;
  }
  static ByteSource over(const std::vector<uint8_t>& bytes, const std::string& path) {
    ByteSource s(path);
    s.memory_ = &bytes;
    return s;
  }

  std::size_t read(void* dst, std::size_t n) {
    if (memory_) {
      const std::size_t got = std::min(n, memory_->size() - position_);
      if (got) std::memcpy(dst, memory_->data() + position_, got);
      position_ += got;
      return got;
    }
    std::size_t total = 0;
    while (total < n) {
      const auto want = static_cast<unsigned>(std::min<std::size_t>(n - total, std::size_t{1} << 30));
      const int got = gzread(file_.get(), static_cast<uint8_t*>(dst) + total, want);
      if (got < 0) fail();
      if (got == 0) break;
      total += static_cast<std::size_t>(got);
    }
    position_ += total;
    return total;
  }

  // The most bytes the whole source can hold, known before reading it, so that a header claiming
  // more is refused before anything that size is allocated: exact for memory and plain files; a
  // gzip file expands at most 1032 times (deflate's largest ratio). `exact` says which.
  [[nodiscard]] std::size_t capacity(bool& exact) const {
    exact = true;
    if (memory_) return memory_->size();
    std::error_code error;
    const auto bytes = std::filesystem::file_size(path_, error);
    if (error) return std::numeric_limits<std::size_t>::max();  // a pipe or the like: no bound
    if (gzdirect(file_.get())) return static_cast<std::size_t>(bytes);
    exact = false;
    return static_cast<std::size_t>(bytes) * 1032;
  }

  // Why the data ended: "" at a clean end, or zlib's words when a gzip stream was cut short.
  [[nodiscard]] std::string early_end() const {
    if (memory_) return "";
    int code = Z_OK;
    const char* message = gzerror(file_.get(), &code);
    return code == Z_OK ? "" : std::string(message ? message : "unexpected end of file");
  }

 private:
  explicit ByteSource(std::string path) : path_(std::move(path)), file_(nullptr, gzclose) {}

  [[noreturn]] void fail() const {
    int code = 0;
    const char* message = gzerror(file_.get(), &code);
    if (code == Z_ERRNO) throw IoError(str(path_, ": read failed (", std::strerror(errno), ")"));
    throw IoError(str(path_, ": corrupt gzip data (", message ? message : "unknown error", ")"));
  }

  std::string path_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file_;
  const std::vector<uint8_t>* memory_ = nullptr;
  std::size_t position_ = 0;
};

struct IdxHeader {
  uint8_t type = 0;
  std::vector<int64_t> dims;
  std::size_t header_bytes = 0;  // 4 + 4·rank
  std::size_t data_bytes = 0;    // Π dims · element size
};

IdxHeader read_header(ByteSource& in, const std::string& path) {
  uint8_t head[4 + 4 * 8];
  const std::size_t got = in.read(head, 4);
  if (got < 4) {
    const std::string why = in.early_end();
    throw IoError(str(path, ": too short for an IDX header (", got, " bytes", why.empty() ? "" : str("; gzip: ", why), ")"));
  }
  if (head[0] != 0 || head[1] != 0) {
    throw IoError(str(path, ": bad IDX magic (first two bytes must be 0, got ", int(head[0]), ", ", int(head[1]), ")"));
  }
  IdxHeader h;
  h.type = head[2];
  const std::size_t elem = element_size(h.type);
  if (elem == 0) throw IoError(str(path, ": unknown IDX element type 0x", std::hex, int(h.type)));
  const int rank = head[3];
  if (rank < 1 || rank > 8) throw IoError(str(path, ": IDX rank ", rank, " is outside 1..8"));
  h.header_bytes = 4 + 4 * static_cast<std::size_t>(rank);
  if (in.read(head + 4, h.header_bytes - 4) < h.header_bytes - 4) {
    throw IoError(str(path, ": truncated IDX header (rank ", rank, ")"));
  }
  std::size_t count = 1;
  for (int i = 0; i < rank; ++i) {
    const uint8_t* p = head + 4 + 4 * i;
    const uint32_t d = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
    if (d > 0 && count > kMaxIdxBytes / d) throw IoError(str(path, ": IDX extents overflow the size limit"));
    count *= d;
    h.dims.push_back(d);
  }
  if (count > kMaxIdxBytes / elem) throw IoError(str(path, ": IDX data would exceed the size limit"));
  h.data_bytes = count * elem;
  bool exact = true;
  const std::size_t capacity = in.capacity(exact);
  if (h.header_bytes + h.data_bytes > capacity) {
    if (exact)
      throw IoError(str(path, ": IDX size mismatch: header ", shape_to_string(h.dims), " needs ",
                        h.header_bytes + h.data_bytes, " bytes, file has ", capacity));
    throw IoError(str(path, ": IDX size mismatch: header ", shape_to_string(h.dims), " needs ",
                      h.header_bytes + h.data_bytes, " bytes, more than a gzip file of its size can hold (",
                      capacity / 1032, " bytes compressed)"));
  }
  return h;
}

// The data after the header, handed out in order; finish() checks that nothing follows it.
class DataReader {
 public:
  DataReader(ByteSource& in, const IdxHeader& header, const std::string& path)
      : in_(in), header_(header), path_(path) {}

  // The next n data bytes into dst; a file that ends first is a size mismatch.
  void read(uint8_t* dst, std::size_t n) {
    const std::size_t got = in_.read(dst, n);
    done_ += got;
    if (got < n) mismatch(header_.header_bytes + done_, in_.early_end());
  }

  // The file must end exactly here (for gzip, this read also checks the stream's CRC).
  void finish() {
    uint8_t probe[4096];
    std::size_t extra = 0;
    for (std::size_t got; (got = in_.read(probe, sizeof probe)) > 0;) {
      extra += got;
      if (extra > kMaxIdxBytes) break;
    }
    if (extra > 0) mismatch(header_.header_bytes + header_.data_bytes + extra, "");
    // All the data arrived but the gzip trailer (CRC, length) did not: a cut download.
    const std::string why = in_.early_end();
    if (!why.empty()) throw IoError(str(path_, ": truncated gzip data after the complete IDX data (", why, ")"));
  }

 private:
  [[noreturn]] void mismatch(std::size_t file_bytes, const std::string& why) const {
    throw IoError(str(path_, ": IDX size mismatch: header ", shape_to_string(header_.dims), " needs ",
                      header_.header_bytes + header_.data_bytes, " bytes, file has ", file_bytes,
                      why.empty() ? "" : str(" (the gzip stream ends early: ", why, ")")));
  }

  ByteSource& in_;
  const IdxHeader& header_;
  const std::string& path_;
  std::size_t done_ = 0;
};

IdxArray read_array(ByteSource& in, const std::string& path) {
  IdxArray array;
  const IdxHeader h = read_header(in, path);
  array.type = h.type;
  array.dims = h.dims;
  array.data.resize(h.data_bytes);
  DataReader data(in, h, path);
  data.read(array.data.data(), h.data_bytes);
  data.finish();
  return array;
}

// Reads the header of an unsigned-byte file and checks it has `rank` axes.
IdxHeader read_ubyte_header(ByteSource& in, const std::string& path, std::size_t rank, const char* what) {
  const IdxHeader h = read_header(in, path);
  if (h.type != 0x08 || h.dims.size() != rank) {
    throw IoError(str(path, ": expected unsigned-byte ", what, ", got type 0x", std::hex, int(h.type), std::dec,
                      " with extents ", shape_to_string(h.dims)));
  }
  return h;
}

// Streams `n` bytes through a small buffer: out[i] = convert(byte i).
template <class T, class Convert>
void read_converted(DataReader& data, T* out, std::size_t n, Convert convert) {
  uint8_t chunk[kChunkBytes];
  for (std::size_t begin = 0; begin < n; begin += kChunkBytes) {
    const std::size_t len = std::min(kChunkBytes, n - begin);
    data.read(chunk, len);
    for (std::size_t i = 0; i < len; ++i) out[begin + i] = convert(chunk[i]);
  }
}

}  // namespace

IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& path) {
  ByteSource in = ByteSource::over(bytes, path);
  return read_array(in, path);
}

IdxArray read_idx(const std::string& path) {
  ByteSource in = ByteSource::open_file(path);
  return read_array(in, path);
}

Tensor read_idx_images(const std::string& path, DType dtype) {
  if (dtype != DType::kUInt8 && dtype != DType::kFloat32 && dtype != DType::kFloat64) {
    throw ValueError(str("io::read_idx_images: dtype must be uint8, float32 or float64, got ", dtype_name(dtype)));
  }
  ByteSource in = ByteSource::open_file(path);
  const IdxHeader h = read_ubyte_header(in, path, 3, "images [N, rows, cols]");
  Tensor x = Tensor::empty({h.dims[0], h.dims[1], h.dims[2], 1}, dtype);
  DataReader data(in, h, path);
  if (dtype == DType::kUInt8) {
    data.read(x.data<uint8_t>(), h.data_bytes);
  } else if (dtype == DType::kFloat32) {
    read_converted(data, x.data<float>(), h.data_bytes, [](uint8_t b) { return static_cast<float>(b) / 255.0f; });
  } else {
    read_converted(data, x.data<double>(), h.data_bytes, [](uint8_t b) { return static_cast<double>(b) / 255.0; });
  }
  data.finish();
  return x;
}

Tensor read_idx_labels(const std::string& path) {
  ByteSource in = ByteSource::open_file(path);
  const IdxHeader h = read_ubyte_header(in, path, 1, "labels [N]");
  Tensor y = Tensor::empty({h.dims[0]}, DType::kInt64);
  DataReader data(in, h, path);
  read_converted(data, y.data<int64_t>(), h.data_bytes, [](uint8_t b) { return static_cast<int64_t>(b); });
  data.finish();
  return y;
}

}  // namespace normnet::io

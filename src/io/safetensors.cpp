// Reading (validated field by field) and writing safetensors files.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "io/atomic_file.h"
#include "io/json_text.h"
#include "normnet/config.h"
#include "normnet/error.h"

namespace normnet::io {

using detail::str;

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; so is this host");

namespace {

constexpr const char* kMetadataKey = "__metadata__";
constexpr std::size_t kMaxRank = 64;

// F32/F64/I64/U8 and normnet's dtypes; other safetensors dtypes (F16, BF16, I32, ...) are refused.
bool dtype_from_code(const std::string& code, DType& out) {
  if (code == "F32")
    out = DType::kFloat32;
  else if (code == "F64")
    out = DType::kFloat64;
  else if (code == "I64")
    out = DType::kInt64;
  else if (code == "U8")
    out = DType::kUInt8;
  else
    return false;
  return true;
}

const char* code_of(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "F32";
    case DType::kFloat64:
      return "F64";
    case DType::kInt64:
      return "I64";
    case DType::kUInt8:
      return "U8";
  }
  return "?";
}

// The first byte of a real tensor's elements, whatever its dtype.
const void* bytes_of(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kFloat32: return t.data<float>();
    case DType::kFloat64: return t.data<double>();
    case DType::kInt64: return t.data<int64_t>();
    case DType::kUInt8: return t.data<uint8_t>();
  }
  return nullptr;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

// A non-negative integer JSON value that fits `limit`.
bool as_count(const Config& v, uint64_t limit, uint64_t& out) {
  if (v.is_number_unsigned())
    out = v.get<uint64_t>();
  else if (v.is_number_integer() && v.get<int64_t>() >= 0)
    out = static_cast<uint64_t>(v.get<int64_t>());
  else
    return false;
  return out <= limit;
}

Entry parse_entry(const std::string& file, const std::string& name, const Config& info, uint64_t data_size) {
  const std::string who = str(file, ": tensor '", name, "'");
  if (!info.is_object())
    throw IoError(
        str(who, ": expected an object with dtype, shape and data_offsets, got ", info.type_name()));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(key)) throw IoError(str(who, ": missing \"", key, "\""));
  }
  Entry e{name, DType::kFloat32, {}, 0, 0};
  const Config& dtype = info["dtype"];
  if (!dtype.is_string() || !dtype_from_code(dtype.get<std::string>(), e.dtype)) {
    throw IoError(str(who, ": unsupported dtype ", dtype.dump(), " (normnet reads F32, F64 and I64)"));
  }
  const Config& shape = info["shape"];
  if (!shape.is_array() || shape.size() > kMaxRank) {
    throw IoError(str(who, ": \"shape\" must be an array of at most ", kMaxRank, " extents, got ",
                      shape.dump().substr(0, 80)));
  }
  uint64_t numel = 1;
  bool overflow = false;
  for (const Config& d : shape) {
    uint64_t extent = 0;
    if (!as_count(d, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), extent)) {
      throw IoError(str(who, ": shape extents must be integers >= 0, got ", shape.dump()));
    }
    e.shape.push_back(static_cast<int64_t>(extent));
    overflow = overflow || __builtin_mul_overflow(numel, extent, &numel);
  }
  const uint64_t elem = dtype_size(e.dtype);
  uint64_t bytes = 0;
  if (std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end()) numel = 0, overflow = false;
  if (overflow || __builtin_mul_overflow(numel, elem, &bytes)) {
    throw IoError(str(who, ": shape ", e.shape, " has more elements than any file can hold"));
  }
  const Config& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !as_count(offsets[0], data_size, e.begin) ||
      !as_count(offsets[1], data_size, e.end)) {
    throw IoError(str(who, ": data_offsets ", offsets.dump().substr(0, 80),
                      " must be [begin, end] within the ", data_size, "-byte data section"));
  }
  if (e.begin > e.end) throw IoError(str(who, ": data_offsets [", e.begin, ", ", e.end, "] has begin > end"));
  if (e.end - e.begin != bytes) {
    throw IoError(str(who, ": data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin,
                      " bytes, but ", code_of(e.dtype), " ", e.shape, " needs ", bytes));
  }
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& file, const Config& meta) {
  if (!meta.is_object())
    throw IoError(str(file, ": \"__metadata__\" must be an object of strings, got ", meta.type_name()));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : meta.items()) {
    if (!value.is_string()) {
      throw IoError(
          str(file, ": \"__metadata__\" entry '", key, "' must be a string, got ", value.type_name()));
    }
    out[key] = value.get<std::string>();
  }
  return out;
}

// Tensors must tile the data section exactly: in offset order, each begins where the previous
// one ended, and the last ends at the end of the file (as the reference implementation checks).
void check_layout(const std::string& file, std::vector<Entry>& entries, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < at) {
      throw IoError(str(file, ": tensor '", e.name, "' at bytes [", e.begin, ", ", e.end,
                        ") overlaps tensor '", previous->name, "' at [", previous->begin, ", ", previous->end,
                        ")"));
    }
    if (e.begin > at) {
      throw IoError(str(file, ": bytes [", at, ", ", e.begin,
                        ") of the data section belong to no tensor (before '", e.name, "')"));
    }
    at = e.end;
    previous = &e;
  }
  if (at != data_size) {
    throw IoError(str(file, ": the tensors end at byte ", at, " of the data section, but it holds ",
                      data_size, " bytes (truncated or padded file)"));
  }
}

}  // namespace

SafetensorsContents parse_safetensors(const uint8_t* data, std::size_t size, const std::string& file) {
  if (size < 8) {
    throw IoError(str(file, ": ", size,
                      " bytes is too short for a safetensors file (it starts with an 8-byte header length)"));
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);
  if (header_len > size - 8) {
    throw IoError(str(file, ": header length ", header_len, " exceeds the ", size - 8,
                      " bytes after the length field"));
  }
  if (header_len > kMaxSafetensorsHeaderBytes) {
    throw IoError(str(file, ": header length ", header_len, " exceeds the limit of ",
                      kMaxSafetensorsHeaderBytes, " bytes"));
  }
  const std::string_view text(reinterpret_cast<const char*>(data + 8), header_len);
  Config header;
  if (std::string problem = parse_json_bounded(text, kMaxJsonDepth, header); !problem.empty()) {
    throw IoError(str(file, ": header: ", problem));
  }
  if (!header.is_object())
    throw IoError(str(file, ": header must be a JSON object, got ", header.type_name()));

  const uint8_t* section = data + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey)
      out.metadata = parse_metadata(file, info);
    else
      entries.push_back(parse_entry(file, name, info, data_size));
  }
  check_layout(file, entries, data_size);
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) {
      std::memcpy(const_cast<void*>(bytes_of(t)), section + e.begin, e.end - e.begin);
    }
    out.tensors.emplace(e.name, std::move(t));
    out.order.push_back(e.name);
  }
  return out;
}

SafetensorsContents read_safetensors(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status))
    throw IoError(str(path, ": cannot open the file: no such file"));
  if (!std::filesystem::is_regular_file(status)) throw IoError(str(path, ": not a regular file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(str(path, ": cannot open the file: ", std::strerror(errno)));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end < 0) throw IoError(str(path, ": cannot read the file size"));
  std::vector<uint8_t> bytes(static_cast<std::size_t>(end));
  in.seekg(0);
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), end)) {
    throw IoError(str(path, ": read failed after ", in.gcount(), " of ", end, " bytes"));
  }
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

SafetensorsBytes serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                       const std::map<std::string, std::string>& metadata) {
  Config header = Config::object();
  SafetensorsBytes out;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == kMetadataKey || header.contains(name)) {
      throw ValueError(str("safetensors: tensor name '", name, "' is reserved or used twice"));
    }
    if (!t.defined() || t.is_symbolic())
      throw ValueError(str("safetensors: tensor '", name, "' has no data"));
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    Config shape = Config::array();
    for (int64_t d : t.shape()) shape.push_back(d);
    header[name] =
        Config{{"dtype", code_of(t.dtype())}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    out.data.emplace_back(bytes_of(t), static_cast<std::size_t>(bytes));
    offset += bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(str("safetensors: a tensor name or metadata value is not valid UTF-8: ", e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t len = text.size();
  out.header.resize(8);
  std::memcpy(out.header.data(), &len, 8);
  out.header += text;
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const SafetensorsBytes bytes = serialize_safetensors(tensors, metadata);
  std::vector<std::string_view> parts{bytes.header};
  for (const auto& [ptr, n] : bytes.data) parts.emplace_back(static_cast<const char*>(ptr), n);
  write_file_atomically(path, parts);
}

}  // namespace normnet::io

// The safetensors reader and writer: round trips of every dtype, the published layout, and
// hand-corrupted or hostile files (each an IoError naming the file and what is wrong, never a
// crash), including random byte mutations of a valid file.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "normnet/config.h"
#include "support/expect_throw.h"
#include "support/temp_dir.h"

namespace normnet::io {
namespace {

using normnet::testing::expect_throw_with;

std::vector<uint8_t> file_bytes(const std::string& header, const std::vector<uint8_t>& data,
                                uint64_t header_len) {
  std::vector<uint8_t> out(8);
  std::memcpy(out.data(), &header_len, 8);
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}
std::vector<uint8_t> file_bytes(const std::string& header, const std::vector<uint8_t>& data = {}) {
  return file_bytes(header, data, header.size());
}

SafetensorsContents parse(const std::vector<uint8_t>& bytes) {
  return parse_safetensors(bytes.data(), bytes.size(), "bad.safetensors");
}

void expect_rejected(const std::vector<uint8_t>& bytes, const std::vector<std::string>& parts) {
  std::vector<std::string> all = parts;
  all.push_back("bad.safetensors: ");
  expect_throw_with<IoError>([&] { (void)parse(bytes); }, all);
}

std::vector<uint8_t> bytes_of(const SafetensorsBytes& b) {
  std::vector<uint8_t> out(b.header.begin(), b.header.end());
  for (const auto& [ptr, n] : b.data)
    out.insert(out.end(), static_cast<const uint8_t*>(ptr), static_cast<const uint8_t*>(ptr) + n);
  return out;
}

// A valid file: a float32 [2, 3], a float64 [2] and an int64 scalar, with metadata.
std::vector<uint8_t> valid_file() {
  return bytes_of(serialize_safetensors({{"w", Tensor::arange(6).to(DType::kFloat32)},
                                         {"d", Tensor::from_vector(std::vector<double>{0.1, -2.5}, {2})},
                                         {"n", Tensor::from_vector(std::vector<int64_t>{7}, {})}},
                                        {{"k", "v"}}));
}

TEST(Safetensors, RoundTripKeepsDtypesShapesValuesAndMetadata) {
  normnet::testing::TempDir dir;
  const std::string path = dir.file("t.safetensors");
  const Tensor f = Tensor::randn({3, 4}, 1);
  const Tensor d = Tensor::from_vector(std::vector<double>{1e-300, -3.5, 2.0}, {3});
  const Tensor i = Tensor::from_vector(std::vector<int64_t>{-1, 1LL << 62}, {2, 1});
  const Tensor empty = Tensor::zeros({0, 5});
  const Tensor scalar = Tensor::from_vector(std::vector<int64_t>{42}, {});
  write_safetensors(path, {{"a/f", f}, {"d", d}, {"i", i}, {"empty", empty}, {"s", scalar}},
                    {{"note", "héllo"}});
  const SafetensorsContents c = read_safetensors(path);
  ASSERT_EQ(c.tensors.size(), 5u);
  EXPECT_EQ(c.tensors.at("a/f").to_vector<float>(), f.to_vector<float>());
  EXPECT_EQ(c.tensors.at("d").to_vector<double>(), d.to_vector<double>());
  EXPECT_EQ(c.tensors.at("i").to_vector<int64_t>(), i.to_vector<int64_t>());
  EXPECT_EQ(c.tensors.at("i").shape(), (Shape{2, 1}));
  EXPECT_EQ(c.tensors.at("empty").shape(), (Shape{0, 5}));
  EXPECT_EQ(c.tensors.at("s").shape(), Shape{});
  EXPECT_EQ(c.tensors.at("s").to_vector<int64_t>(), std::vector<int64_t>{42});
  EXPECT_EQ(c.metadata.at("note"), "héllo");
}

TEST(Safetensors, WritesThePublishedLayout) {
  const Tensor t = Tensor::from_vector(std::vector<float>{1.0f, 2.0f}, {2});
  const std::vector<uint8_t> b = bytes_of(serialize_safetensors({{"x", t}}, {{"m", "1"}}));
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(b.size(), 8 + n + 8);
  const std::string header(b.begin() + 8, b.begin() + 8 + static_cast<long>(n));
  const Config h = Config::parse(header);
  EXPECT_EQ(h["x"]["dtype"], "F32");
  EXPECT_EQ(h["x"]["shape"], Config::array({2}));
  EXPECT_EQ(h["x"]["data_offsets"], Config::array({0, 8}));
  EXPECT_EQ(h["__metadata__"]["m"], "1");
  float values[2];
  std::memcpy(values, b.data() + 8 + n, 8);
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], 2.0f);
}

TEST(Safetensors, Uint8TensorsAreU8OneBytePerElement) {
  normnet::testing::TempDir dir;
  const std::string path = dir.file("u8.safetensors");
  const Tensor u = Tensor::from_vector(std::vector<uint8_t>{0, 1, 127, 128, 254, 255, 9}, {7});
  const Tensor f = Tensor::from_vector(std::vector<float>{3.0f}, {1});
  // Odd byte counts: the next tensor's offset need not be aligned.
  const std::vector<uint8_t> b = bytes_of(serialize_safetensors({{"u", u}, {"f", f}}, {}));
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  const Config h = Config::parse(std::string(b.begin() + 8, b.begin() + 8 + static_cast<long>(n)));
  EXPECT_EQ(h["u"]["dtype"], "U8");
  EXPECT_EQ(h["u"]["data_offsets"], Config::array({0, 7}));
  EXPECT_EQ(h["f"]["data_offsets"], Config::array({7, 11}));
  write_safetensors(path, {{"u", u}, {"f", f}}, {});
  const SafetensorsContents c = read_safetensors(path);
  EXPECT_EQ(c.tensors.at("u").dtype(), DType::kUInt8);
  EXPECT_EQ(c.tensors.at("u").to_vector<uint8_t>(), u.to_vector<uint8_t>());
  EXPECT_EQ(c.tensors.at("f").to_vector<float>(), f.to_vector<float>());
  // A U8 entry must still cover exactly shape × 1 byte.
  expect_rejected(file_bytes(R"({"x": {"dtype": "U8", "shape": [3], "data_offsets": [0, 2]}})", {0, 0}),
                  {"tensor 'x'"});
}

TEST(Safetensors, RejectsFilesShorterThanTheLengthField) {
  for (std::size_t n = 0; n < 8; ++n) expect_rejected(std::vector<uint8_t>(n, 0), {"too short"});
}

TEST(Safetensors, RejectsEveryTruncationOfAValidFile) {
  const std::vector<uint8_t> full = valid_file();
  EXPECT_NO_THROW((void)parse(full));
  for (std::size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
    EXPECT_THROW((void)parse(cut), IoError) << "truncated to " << n << " bytes";
  }
}

TEST(Safetensors, RejectsHeaderLengthBeyondTheFile) {
  expect_rejected(file_bytes("{}", {}, 1000), {"header length 1000 exceeds the 2 bytes"});
  expect_rejected(file_bytes("{}", {}, ~0ull), {"header length 18446744073709551615"});
}

TEST(Safetensors, RejectsHeadersAboveTheSizeLimit) {
  std::vector<uint8_t> big(8 + kMaxSafetensorsHeaderBytes + 1, ' ');
  const uint64_t n = kMaxSafetensorsHeaderBytes + 1;
  std::memcpy(big.data(), &n, 8);
  expect_rejected(big, {"exceeds the limit of 104857600 bytes"});
}

TEST(Safetensors, RejectsBadJsonAndNonObjectHeaders) {
  expect_rejected(file_bytes("{\"a\": "), {"header: invalid JSON"});
  expect_rejected(file_bytes(""), {"invalid JSON"});
  expect_rejected(file_bytes("[1, 2]"), {"header must be a JSON object, got array"});
  expect_rejected(file_bytes("{\"x\": 3}"), {"tensor 'x'", "expected an object"});
}

TEST(Safetensors, RejectsDeepNestingBeforeParsing) {
  const std::string deep = "{\"__metadata__\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  expect_rejected(file_bytes(deep), {"nesting deeper than 64 levels"});
  // Brackets inside strings do not count.
  const std::string in_string = "{\"__metadata__\": {\"k\": \"" + std::string(1000, '[') + "\"}}";
  EXPECT_EQ(parse(file_bytes(in_string)).metadata.at("k"), std::string(1000, '['));
}

TEST(Safetensors, RejectsUnknownDtypes) {
  expect_rejected(file_bytes(R"({"x": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}})", {0, 0}),
                  {"tensor 'x'", "unsupported dtype \"F16\""});
  expect_rejected(file_bytes(R"({"x": {"dtype": 3, "shape": [], "data_offsets": [0, 4]}})", {0, 0, 0, 0}),
                  {"unsupported dtype 3"});
}

TEST(Safetensors, RejectsMissingFields) {
  expect_rejected(file_bytes(R"({"x": {"dtype": "F32", "shape": [1]}})", {0, 0, 0, 0}),
                  {"tensor 'x'", "missing \"data_offsets\""});
  expect_rejected(file_bytes(R"({"x": {"shape": [1], "data_offsets": [0, 4]}})", {0, 0, 0, 0}),
                  {"missing \"dtype\""});
}

TEST(Safetensors, RejectsBadShapes) {
  expect_rejected(
      file_bytes(R"({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", {0, 0, 0, 0}),
      {"tensor 'x'", "integers >= 0"});
  expect_rejected(
      file_bytes(R"({"x": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", {0, 0, 0, 0}),
      {"integers >= 0"});
  expect_rejected(file_bytes(R"({"x": {"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}})", {0, 0, 0, 0}),
                  {"\"shape\" must be an array"});
  // 2^32 · 2^32 elements overflow 64 bits; 2^62 float32 elements overflow the byte count.
  expect_rejected(
      file_bytes(R"({"x": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})",
                 {0, 0, 0, 0}),
      {"more elements than any file can hold"});
  expect_rejected(
      file_bytes(R"({"x": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 4]}})",
                 {0, 0, 0, 0}),
      {"more elements than any file can hold"});
}

TEST(Safetensors, RejectsBadOffsets) {
  const std::vector<uint8_t> four(4, 0);
  expect_rejected(file_bytes(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", four),
                  {"begin > end"});
  expect_rejected(file_bytes(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}})", four),
                  {"within the 4-byte data section"});
  expect_rejected(file_bytes(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", four),
                  {"[begin, end]"});
  expect_rejected(file_bytes(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", four),
                  {"[begin, end]"});
  expect_rejected(file_bytes(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", four),
                  {"hold 4 bytes, but F32 [2] needs 8"});
}

TEST(Safetensors, RejectsOverlapsGapsAndTrailingBytes) {
  const std::vector<uint8_t> eight(8, 0);
  expect_rejected(file_bytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                             eight),
                  {"overlaps tensor 'a'"});
  expect_rejected(file_bytes(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", eight),
                  {"bytes [0, 4) of the data section belong to no tensor"});
  expect_rejected(file_bytes(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", eight),
                  {"end at byte 4 of the data section, but it holds 8"});
}

TEST(Safetensors, RejectsMalformedMetadata) {
  expect_rejected(file_bytes(R"({"__metadata__": {"k": 1}})"),
                  {"\"__metadata__\" entry 'k' must be a string"});
  expect_rejected(file_bytes(R"({"__metadata__": ["k"]})"), {"\"__metadata__\" must be an object"});
}

TEST(Safetensors, ReportsMissingFilesWithThePath) {
  normnet::testing::TempDir dir;
  const std::string path = dir.file("absent.safetensors");
  expect_throw_with<IoError>([&] { (void)read_safetensors(path); }, {path, "cannot open"});
  expect_throw_with<IoError>([&] { (void)read_safetensors(dir.path().string()); }, {dir.path().string()});
}

TEST(Safetensors, RefusesReservedAndDuplicateNamesWhenWriting) {
  const Tensor t = Tensor::zeros({1});
  EXPECT_THROW((void)serialize_safetensors({{"__metadata__", t}}, {}), ValueError);
  EXPECT_THROW((void)serialize_safetensors({{"a", t}, {"a", t}}, {}), ValueError);
}

// Random byte flips, insertions and cuts of a valid file: each parse either succeeds with
// consistent tensors or throws IoError (a sanitizer build also checks memory safety here).
TEST(Safetensors, RandomMutationsNeverCrash) {
  const std::vector<uint8_t> valid = valid_file();
  std::mt19937_64 rng(12345);
  int rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> b = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % b.size();
      switch (rng() % 3) {
        case 0:
          b[at] = static_cast<uint8_t>(rng());
          break;
        case 1:
          b.insert(b.begin() + static_cast<long>(at), static_cast<uint8_t>(rng()));
          break;
        default:
          b.erase(b.begin() + static_cast<long>(at));
          break;
      }
    }
    try {
      const SafetensorsContents c = parse(b);
      for (const auto& [name, t] : c.tensors)
        EXPECT_LE(t.numel() * static_cast<int64_t>(dtype_size(t.dtype())), static_cast<int64_t>(b.size()));
    } catch (const IoError& e) {
      ++rejected;
      EXPECT_NE(std::string(e.what()).find("bad.safetensors: "), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace normnet::io

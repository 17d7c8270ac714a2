// IDX reading: round trips through plain and gzip files, validation errors naming the file and
// the field, and Debian's Fashion-MNIST files.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "io/idx.h"
#include "normnet/datasets.h"

namespace normnet {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> idx_bytes(uint8_t type, std::vector<uint32_t> dims, std::vector<uint8_t> data) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    b.push_back(uint8_t(d >> 24));
    b.push_back(uint8_t(d >> 16));
    b.push_back(uint8_t(d >> 8));
    b.push_back(uint8_t(d));
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

class IdxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("normnet_idx_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes, bool gz = false) {
    const std::string path = (dir_ / name).string();
    if (gz) {
      gzFile f = gzopen(path.c_str(), "wb");
      gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
      gzclose(f);
    } else {
      std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    return path;
  }
  fs::path dir_;
};

void expect_io_error(const std::function<void()>& fn, const std::string& fragment) {
  try {
    fn();
    FAIL() << "expected IoError containing: " << fragment;
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST_F(IdxFiles, ReadsImagesAndLabelsPlainAndGzip) {
  const auto images = idx_bytes(0x08, {2, 2, 3}, {0, 255, 51, 102, 0, 0, 1, 2, 3, 4, 5, 6});
  const auto labels = idx_bytes(0x08, {2}, {7, 3});
  for (bool gz : {false, true}) {
    const Tensor x = io::read_idx_images(write(gz ? "i.gz" : "i", images, gz));
    EXPECT_EQ(x.shape(), (Shape{2, 2, 3, 1}));
    EXPECT_FLOAT_EQ(x.data<float>()[1], 1.0f);
    EXPECT_FLOAT_EQ(x.data<float>()[2], 0.2f);
    const Tensor y = io::read_idx_labels(write(gz ? "l.gz" : "l", labels, gz));
    EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{7, 3}));
  }
}

TEST_F(IdxFiles, RejectsCorruptHeadersWithTheFileName) {
  const std::string bad_magic = write("bad_magic", {1, 0, 8, 1, 0, 0, 0, 1, 5});
  expect_io_error([&] { (void)io::read_idx(bad_magic); }, "bad_magic: bad IDX magic");
  const std::string bad_type = write("bad_type", {0, 0, 0x42, 1, 0, 0, 0, 1, 5});
  expect_io_error([&] { (void)io::read_idx(bad_type); }, "unknown IDX element type");
  const std::string truncated = write("truncated", idx_bytes(0x08, {10}, {1, 2, 3}));
  expect_io_error([&] { (void)io::read_idx(truncated); }, "IDX size mismatch: header [10] needs 18 bytes, file has 11");
  const std::string huge = write("huge", idx_bytes(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu}, {}));
  expect_io_error([&] { (void)io::read_idx(huge); }, "overflow");
  const std::string short_header = write("short", {0, 0, 8, 3, 0, 0});
  expect_io_error([&] { (void)io::read_idx(short_header); }, "truncated IDX header");
  const std::string labels_as_images = write("labels", idx_bytes(0x08, {2}, {1, 2}));
  expect_io_error([&] { (void)io::read_idx_images(labels_as_images); }, "expected unsigned-byte images");
  std::vector<uint8_t> garbage_gz = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7};
  const std::string gz = write("garbage.gz", garbage_gz);
  expect_io_error([&] { (void)io::read_idx(gz); }, "garbage.gz");
  expect_io_error([&] { (void)io::read_idx((dir_ / "absent").string()); }, "absent: cannot open");
}

// The public single-file readers (datasets.h) give what the data set loaders give.
TEST_F(IdxFiles, PublicSingleFileReadersReadImagesAndLabels) {
  const std::string images = write("i.gz", idx_bytes(0x08, {2, 1, 2}, {0, 255, 51, 7}), /*gz=*/true);
  const Tensor x = datasets::read_idx_images(images);
  EXPECT_EQ(x.shape(), (Shape{2, 1, 2, 1}));
  EXPECT_EQ(x.dtype(), DType::kFloat32);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0.0f, 1.0f, 51.0f / 255, 7.0f / 255}));
  const Tensor bytes = datasets::read_idx_images(images, DType::kUInt8);
  EXPECT_EQ(bytes.dtype(), DType::kUInt8);
  EXPECT_EQ(bytes.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 255, 51, 7}));
  EXPECT_THROW((void)datasets::read_idx_images(images, DType::kInt64), ValueError);
  const Tensor y = datasets::read_idx_labels(write("l", idx_bytes(0x08, {3}, {9, 0, 4})));
  EXPECT_EQ(y.dtype(), DType::kInt64);
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{9, 0, 4}));
  expect_io_error([&] { (void)datasets::read_idx_images(write("labels", idx_bytes(0x08, {2}, {1, 2}))); },
                  "labels: expected unsigned-byte images");
  expect_io_error([&] { (void)datasets::read_idx_labels((dir_ / "absent").string()); }, "absent: cannot open");
}

TEST_F(IdxFiles, MissingDatasetNamesThePackage) {
  expect_io_error([&] { (void)datasets::fashion_mnist(dir_.string()); }, "apt-get install dataset-fashion-mnist");
  EXPECT_THROW((void)datasets::mnist(""), ValueError);
}

TEST_F(IdxFiles, DatasetRejectsOutOfRangeLabels) {
  write("train-images-idx3-ubyte", idx_bytes(0x08, {1, 1, 1}, {0}));
  write("train-labels-idx1-ubyte", idx_bytes(0x08, {1}, {12}));
  write("t10k-images-idx3-ubyte", idx_bytes(0x08, {1, 1, 1}, {0}));
  write("t10k-labels-idx1-ubyte", idx_bytes(0x08, {1}, {1}));
  expect_io_error([&] { (void)datasets::mnist(dir_.string()); }, "label 12 at index 0 is outside 0..9");
}

// Images that span several of the reader's 64 KiB chunks: 3 × 150 × 160 = 72000 bytes.
std::vector<uint8_t> many_pixels() {
  std::vector<uint8_t> data(3 * 150 * 160);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 131 + 7) % 256);
  return data;
}

TEST_F(IdxFiles, StreamsImagesAsUint8Float32AndFloat64PlainAndGzip) {
  const std::vector<uint8_t> pixels = many_pixels();
  const auto bytes = idx_bytes(0x08, {3, 150, 160}, pixels);
  for (bool gz : {false, true}) {
    const std::string path = write(gz ? "big.gz" : "big", bytes, gz);
    const Tensor u = io::read_idx_images(path, DType::kUInt8);
    EXPECT_EQ(u.dtype(), DType::kUInt8);
    EXPECT_EQ(u.shape(), (Shape{3, 150, 160, 1}));
    EXPECT_EQ(u.to_vector<uint8_t>(), pixels);
    const Tensor f = io::read_idx_images(path);  // the default: float32 byte/255
    ASSERT_EQ(f.dtype(), DType::kFloat32);
    const Tensor d = io::read_idx_images(path, DType::kFloat64);
    ASSERT_EQ(d.dtype(), DType::kFloat64);
    const float* pf = f.data<float>();
    const double* pd = d.data<double>();
    for (std::size_t i = 0; i < pixels.size(); ++i) {
      ASSERT_EQ(pf[i], static_cast<float>(pixels[i]) / 255.0f) << i;
      ASSERT_EQ(pd[i], static_cast<double>(pixels[i]) / 255.0) << i;
    }
    const io::IdxArray whole = io::read_idx(path);
    EXPECT_EQ(whole.data, pixels);
    EXPECT_EQ(whole.dims, (std::vector<int64_t>{3, 150, 160}));
  }
  try {
    (void)io::read_idx_images(write("x", bytes), DType::kInt64);
    ADD_FAILURE() << "expected a ValueError for int64 images";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("uint8, float32 or float64, got int64"), std::string::npos) << e.what();
  }
}

TEST_F(IdxFiles, TruncatedAndOverlongFilesAreSizeMismatchesPlainAndGzip) {
  const auto full = idx_bytes(0x08, {3, 150, 160}, many_pixels());
  const std::vector<uint8_t> cut(full.begin(), full.begin() + 50000);
  std::vector<uint8_t> longer = full;
  longer.insert(longer.end(), {1, 2, 3});
  for (bool gz : {false, true}) {
    const std::string truncated = write(gz ? "cut.gz" : "cut", cut, gz);
    expect_io_error([&] { (void)io::read_idx_images(truncated, DType::kUInt8); },
                    "IDX size mismatch: header [3, 150, 160] needs 72016 bytes, file has 50000");
    expect_io_error([&] { (void)io::read_idx_images(truncated); }, "file has 50000");
    const std::string overlong = write(gz ? "long.gz" : "long", longer, gz);
    expect_io_error([&] { (void)io::read_idx_images(overlong, DType::kUInt8); }, "needs 72016 bytes, file has 72019");
    expect_io_error([&] { (void)io::read_idx(overlong); }, "file has 72019");
  }
}

// The raw bytes of a gzip file holding `bytes`.
std::vector<uint8_t> gzip_bytes(const std::string& scratch, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(scratch.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  std::ifstream in(scratch, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

TEST_F(IdxFiles, CutOrCorruptGzipStreamsAreIoErrorsNamingTheFile) {
  const auto full = idx_bytes(0x08, {3, 150, 160}, many_pixels());
  const std::vector<uint8_t> gz = gzip_bytes((dir_ / "scratch.gz").string(), full);
  ASSERT_GT(gz.size(), 100u);
  // The compressed stream cut in the middle: zlib reports the early end.
  const std::string cut = write("cut_stream.gz", std::vector<uint8_t>(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2)));
  expect_io_error([&] { (void)io::read_idx_images(cut, DType::kUInt8); }, "cut_stream.gz: IDX size mismatch");
  expect_io_error([&] { (void)io::read_idx_images(cut, DType::kUInt8); }, "the gzip stream ends early");
  // Without its 8-byte trailer (CRC and length): all data arrives, then the stream ends early.
  const std::string no_trailer = write("no_trailer.gz", std::vector<uint8_t>(gz.begin(), gz.end() - 8));
  expect_io_error([&] { (void)io::read_idx_images(no_trailer, DType::kUInt8); },
                  "no_trailer.gz: truncated gzip data after the complete IDX data");
  // A wrong CRC: every byte decompresses, the check at the end fails.
  std::vector<uint8_t> bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 0xFF;
  const std::string crc = write("bad_crc.gz", bad_crc);
  expect_io_error([&] { (void)io::read_idx_images(crc, DType::kUInt8); }, "bad_crc.gz: corrupt gzip data");
  // Garbage in the deflate data after a valid header.
  std::vector<uint8_t> garbled = gz;
  for (std::size_t i = 20; i < 60; ++i) garbled[i] = static_cast<uint8_t>(garbled[i] ^ 0x5A);
  const std::string bad = write("garbled.gz", garbled);
  expect_io_error([&] { (void)io::read_idx_images(bad); }, "garbled.gz");
}

// fuzz_idx found it: a 22-byte buffer whose header claims 2^31 − 2^15 bytes of float data made the
// reader allocate them before it saw the data was missing. Headers are now checked against what
// the source can hold first (exactly for buffers and plain files, ×1032 for gzip).
TEST_F(IdxFiles, HeadersClaimingMoreThanTheSourceCanHoldAreRefusedBeforeAllocating) {
  const std::vector<uint8_t> huge = {0x00, 0x00, 0x0d, 0x02, 0x00, 0x0d, 0x02, 0x00, 0x00, 0x00, 0x02,
                                     0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00, 0x00};
  expect_io_error([&] { (void)io::parse_idx(huge, "mem"); }, "mem: IDX size mismatch: header [852480, 576] needs");
  expect_io_error([&] { (void)io::parse_idx(huge, "mem"); }, "file has 22");
  // A small gzip file whose header claims 10^9 bytes of images.
  const std::vector<uint8_t> claim = idx_bytes(0x08, {1000, 1000, 1000}, {1, 2, 3});
  const std::string gz = write("claims_a_gigabyte.gz", claim, /*gz=*/true);
  expect_io_error([&] { (void)io::read_idx_images(gz, DType::kUInt8); },
                  "claims_a_gigabyte.gz: IDX size mismatch: header [1000, 1000, 1000] needs 1000000016 bytes, more "
                  "than a gzip file of its size can hold");
  const std::string plain = write("claims_a_gigabyte", claim);
  expect_io_error([&] { (void)io::read_idx_images(plain); }, "needs 1000000016 bytes, file has 19");
}

TEST_F(IdxFiles, ParseIdxValidatesBuffersLikeFiles) {
  const auto ok = idx_bytes(0x08, {2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(io::parse_idx(ok, "mem").data, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  expect_io_error([&] { (void)io::parse_idx(idx_bytes(0x08, {2, 3}, {1, 2}), "mem"); },
                  "mem: IDX size mismatch: header [2, 3] needs 18 bytes, file has 14");
  expect_io_error([&] { (void)io::parse_idx({0, 0, 8}, "mem"); }, "mem: too short for an IDX header (3 bytes)");
  expect_io_error([&] { (void)io::parse_idx({0, 0, 8, 9}, "mem"); }, "IDX rank 9 is outside 1..8");
}

TEST_F(IdxFiles, MnistAsUint8KeepsTheBytes) {
  write("train-images-idx3-ubyte", idx_bytes(0x08, {2, 1, 2}, {0, 255, 17, 4}));
  write("train-labels-idx1-ubyte.gz", idx_bytes(0x08, {2}, {3, 9}), true);
  write("t10k-images-idx3-ubyte.gz", idx_bytes(0x08, {1, 1, 2}, {8, 128}), true);
  write("t10k-labels-idx1-ubyte", idx_bytes(0x08, {1}, {1}));
  const datasets::Dataset d = datasets::mnist(dir_.string(), DType::kUInt8);
  EXPECT_EQ(d.train.x.dtype(), DType::kUInt8);
  EXPECT_EQ(d.train.x.shape(), (Shape{2, 1, 2, 1}));
  EXPECT_EQ(d.train.x.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 255, 17, 4}));
  EXPECT_EQ(d.test.x.to_vector<uint8_t>(), (std::vector<uint8_t>{8, 128}));
  EXPECT_EQ(d.train.y.to_vector<int64_t>(), (std::vector<int64_t>{3, 9}));
  EXPECT_EQ(datasets::mnist(dir_.string()).train.x.dtype(), DType::kFloat32);  // the default
}

TEST(FashionMnist, DebianFilesHaveTheDocumentedShapes) {
  // scripts/setup.sh installs Debian's dataset-fashion-mnist; this checks the real files.
  const datasets::Dataset d = datasets::fashion_mnist();
  EXPECT_EQ(d.train.x.shape(), (Shape{60000, 28, 28, 1}));
  EXPECT_EQ(d.train.y.shape(), (Shape{60000}));
  EXPECT_EQ(d.test.x.shape(), (Shape{10000, 28, 28, 1}));
  EXPECT_EQ(d.train.x.dtype(), DType::kFloat32);
  EXPECT_EQ(d.train.y.dtype(), DType::kInt64);
  std::vector<int64_t> counts(10, 0);
  for (int64_t label : d.train.y.to_vector<int64_t>()) ++counts[static_cast<std::size_t>(label)];
  for (int64_t c : counts) EXPECT_EQ(c, 6000);  // Fashion-MNIST is balanced
  const auto pixels = d.test.x.to_vector<float>();
  EXPECT_GE(*std::min_element(pixels.begin(), pixels.end()), 0.0f);
  EXPECT_LE(*std::max_element(pixels.begin(), pixels.end()), 1.0f);
  EXPECT_EQ(datasets::fashion_mnist_class_names().size(), 10u);
  // The same files as bytes: exactly the float32 values times 255, a quarter of the memory.
  const datasets::Dataset b = datasets::fashion_mnist("", DType::kUInt8);
  EXPECT_EQ(b.train.x.dtype(), DType::kUInt8);
  EXPECT_EQ(b.train.x.shape(), d.train.x.shape());
  EXPECT_EQ(b.train.y.to_vector<int64_t>(), d.train.y.to_vector<int64_t>());
  const auto bytes = b.test.x.to_vector<uint8_t>();
  for (std::size_t i = 0; i < bytes.size(); ++i) ASSERT_EQ(static_cast<float>(bytes[i]) / 255.0f, pixels[i]) << i;
}

}  // namespace
}  // namespace normnet

// IDX reading: round trips through plain and gzip files, validation errors naming the file and
// the field, and Debian's Fashion-MNIST files.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

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
}

}  // namespace
}  // namespace normnet

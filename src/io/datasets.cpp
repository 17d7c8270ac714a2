// Fashion-MNIST and MNIST from IDX files on disk (nothing is downloaded).
#include <cstdlib>
#include <filesystem>

#include "io/idx.h"
#include "normnet/datasets.h"

namespace normnet::datasets {
namespace {

using detail::str;
namespace fs = std::filesystem;

constexpr const char* kDebianFashionDir = "/usr/share/datasets/fashion-mnist";

// "<dir>/<stem>" or "<dir>/<stem>.gz", whichever exists.
std::string find(const std::string& dir, const std::string& stem, const std::string& hint) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::exists(p)) return p.string();
  }
  throw IoError(str("datasets: ", (fs::path(dir) / stem).string(), "(.gz) not found", hint));
}

Dataset load(const std::string& dir, const std::string& hint, DType images) {
  Dataset d;
  d.train.x = io::read_idx_images(find(dir, "train-images-idx3-ubyte", hint), images);
  d.train.y = io::read_idx_labels(find(dir, "train-labels-idx1-ubyte", hint));
  d.test.x = io::read_idx_images(find(dir, "t10k-images-idx3-ubyte", hint), images);
  d.test.y = io::read_idx_labels(find(dir, "t10k-labels-idx1-ubyte", hint));
  for (const auto* split : {&d.train, &d.test}) {
    if (split->x.shape()[0] != split->y.shape()[0]) {
      throw IoError(str("datasets: ", dir, ": ", split->x.shape()[0], " images but ", split->y.shape()[0], " labels"));
    }
    const int64_t* labels = split->y.data<int64_t>();
    for (int64_t i = 0; i < split->y.numel(); ++i) {
      if (labels[i] > 9) throw IoError(str("datasets: ", dir, ": label ", labels[i], " at index ", i, " is outside 0..9"));
    }
  }
  return d;
}

}  // namespace

Tensor read_idx_images(const std::string& path, DType dtype) { return io::read_idx_images(path, dtype); }
Tensor read_idx_labels(const std::string& path) { return io::read_idx_labels(path); }

Dataset fashion_mnist(const std::string& dir, DType images) {
  std::string where = dir;
  if (where.empty()) {
    const char* env = std::getenv("NORMNET_DATA");
    where = env && *env ? env : kDebianFashionDir;
  }
  return load(where, str(" (install Debian's package with `apt-get install dataset-fashion-mnist`, ",
                         "or point NORMNET_DATA at a directory with the four IDX files)"),
              images);
}

Dataset mnist(const std::string& dir, DType images) {
  if (dir.empty()) throw ValueError("datasets::mnist: needs the directory that holds the four MNIST IDX files");
  return load(dir, " (MNIST's four IDX files, plain or .gz, must be in this directory)", images);
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace normnet::datasets

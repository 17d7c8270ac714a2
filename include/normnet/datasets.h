// Data sets in IDX format: Fashion-MNIST from Debian's dataset-fashion-mnist package, MNIST
// from any directory.
#pragma once

#include <string>
#include <vector>

#include "normnet/tensor.h"

namespace normnet::datasets {

struct Split {
  Tensor x;  // [N, 28, 28, 1] float32 in [0, 1] (or as asked: uint8 0..255, float64 in [0, 1])
  Tensor y;  // [N] int64 class indices
};

struct Dataset {
  Split train;
  Split test;
};

// Reads train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz),
// t10k-labels-idx1-ubyte(.gz) from `dir`, or when empty from $NORMNET_DATA, else from
// /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist). Missing files raise an
// IoError that names the path and the package to install.
// `images` picks the dtype of x: float32 (default) or float64 hold byte/255; uint8 holds the
// bytes 0..255 as stored, a quarter of float32's memory (Keras's and torchvision's way: the model
// starts with Input(shape, DType::kUInt8) and layers::Rescaling(1.0 / 255)).
//
//   auto data = datasets::fashion_mnist("", DType::kUInt8);   // 55 MB instead of 220 MB
[[nodiscard]] Dataset fashion_mnist(const std::string& dir = "", DType images = DType::kFloat32);
// The same files for MNIST, from `dir` (required).
[[nodiscard]] Dataset mnist(const std::string& dir, DType images = DType::kFloat32);
// One IDX file of unsigned-byte images [N, rows, cols] (plain or gzip) as [N, rows, cols, 1]:
// float32 (default) or float64 hold byte/255 in [0, 1], uint8 the bytes; any other dtype is a
// ValueError. For a single file of an MNIST-format set (torchvision's read_image_file):
//
//   Tensor x = datasets::read_idx_images("t10k-images-idx3-ubyte.gz");   // [10000, 28, 28, 1]
//
// IoError names the path: missing or unreadable, corrupt or truncated gzip, a header that is not
// an unsigned-byte rank-3 IDX, or a size that is not exactly the header's.
[[nodiscard]] Tensor read_idx_images(const std::string& path, DType dtype = DType::kFloat32);
// One IDX file of unsigned-byte labels [N] as int64 [N]; the same errors.
[[nodiscard]] Tensor read_idx_labels(const std::string& path);
// The class names of Fashion-MNIST ("T-shirt/top", "Trouser", ...).
[[nodiscard]] const std::vector<std::string>& fashion_mnist_class_names();

}  // namespace normnet::datasets

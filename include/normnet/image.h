// Image files: PNG, JPEG, BMP, GIF (first frame) and PNM read through stb_image; PNG written
// through stb_image_write.
//
//   Tensor img = normnet::io::read_image("chelsea.png");        // [300, 451, 3] float32 in [0, 1]
//   normnet::io::write_png("out.png", img);
#pragma once

#include <cstdint>
#include <string>

#include "normnet/tensor.h"

namespace normnet::io {

// The most pixels read_image accepts: 2^26 (an 8192 x 8192 image) bounds the float32 tensor at
// 1 GiB for RGBA.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// The image at `path` as [H, W, C] float32 in [0, 1] (8-bit samples / 255; 16-bit files keep
// their high byte). `channels` = 0 keeps the file's channels (1 gray, 2 gray + alpha, 3 RGB,
// 4 RGBA); 1, 3 or 4 converts as stb does: gray is replicated, RGB becomes gray by the luminance
// (77·R + 150·G + 29·B) / 256, alpha is kept or set to 1. IoError naming the file for a missing,
// unreadable, corrupt or oversized (more than `max_pixels` pixels, or a file over 256 MiB) image;
// ValueError for another `channels` or a `max_pixels` outside [1, kMaxImagePixels]. A
// compressed file of a few KB can hold a 2^26-pixel image (a decompression bomb): a program
// reading untrusted images lowers `max_pixels`, as PIL's Image.MAX_IMAGE_PIXELS does, and the
// header is checked before anything is decoded.
[[nodiscard]] Tensor read_image(const std::string& path, int channels = 0,
                                int64_t max_pixels = kMaxImagePixels);

// Writes [H, W, C] (C = 1, 3 or 4; float32 or float64) as an 8-bit PNG: values are clamped to
// [0, 1] and rounded to 255 levels (NaN becomes 0). Written to a temporary file and renamed, so
// an existing file is never left half-written. ShapeError for another shape, IoError naming the
// path when it cannot be written.
void write_png(const std::string& path, const Tensor& image);

}  // namespace normnet::io

// Image files through stb: read_image decodes PNG/JPEG/BMP/GIF/PNM into [H, W, C] float32 in
// [0, 1]; write_png encodes 8-bit PNG in memory and replaces the file atomically (io/atomic_file.h).
#include "normnet/image.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "io/atomic_file.h"
#include "io/image_screening.h"

// stb is third-party single-header C; its own warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_PNM
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
// stb 2.27 shifts a byte by 32 or more when a corrupt JPEG scan meets a marker before its bits run
// out (the bit count goes negative; fuzz_image found it): UB by the letter, and x86 masks the
// count, so the garbage bits decode to garbage pixels or stb's "bad huffman code" while every read
// stays in bounds. Likewise a corrupt scan's DC predictor, the running sum of its DC differences,
// can grow until `dc * dequant[0]` overflows int (fuzz_image found it; the product is then cast to
// short): the multiplication wraps on x86 and the coefficient is garbage, nothing is read or written
// out of bounds. UBSan's shift-exponent and signed-integer-overflow checks are left out for stb's
// own functions only (clang's sanitized builds; CMakeLists.txt leaves out nonnull-attribute for this
// file, docs/robustness.md); our code in this file keeps them.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("shift-exponent", "signed-integer-overflow"))), \
                             apply_to = function)
#endif
#include <stb/stb_image.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace normnet::io {
namespace {

using detail::str;

// Maps [0, 1] to 0..255 with rounding; outside values clamp, NaN becomes 0.
uint8_t to_byte(double value) {
  if (!(value > 0.0)) return 0;  // also NaN
  if (value >= 1.0) return 255;
  return static_cast<uint8_t>(std::lround(value * 255.0));
}

template <class T>
std::vector<uint8_t> to_bytes(const Tensor& image) {
  const T* values = image.data<T>();
  std::vector<uint8_t> bytes(static_cast<std::size_t>(image.numel()));
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = to_byte(static_cast<double>(values[i]));
  return bytes;
}

void append_to_vector(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

// stb's luminance, (77·r + 150·g + 29·b) >> 8, so gray conversion matches stb's own.
uint8_t luminance(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8);
}

// One pixel of n channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as c channels (1, 3 or 4), with
// stb's rules: gray replicates to RGB, RGB averages to gray by luminance, alpha is kept or 255.
// Done here rather than by stb's req_comp because stb 2.27 converts 16-bit PNM data with its 8-bit
// converter and reads past the buffer (found by fuzzing read_image under AddressSanitizer).
void convert_pixel(const uint8_t* in, int n, uint8_t* out, int c) {
  const bool has_colour = n >= 3;
  const uint8_t alpha = n == 2 ? in[1] : (n == 4 ? in[3] : 255);
  if (c == 1) {
    out[0] = has_colour ? luminance(in) : in[0];
    return;
  }
  for (int k = 0; k < 3; ++k) out[k] = has_colour ? in[k] : in[0];
  if (c == 4) out[3] = alpha;
}

// 2^28 bytes (256 MiB) is far above any image of at most kMaxImagePixels pixels in these formats.
constexpr std::size_t kMaxFileBytes = std::size_t{1} << 28;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) throw IoError(str("read_image: cannot open '", path, "' (missing or unreadable)"));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(chunk, 1, sizeof chunk, file.get())) > 0) {
    if (bytes.size() + got > kMaxFileBytes) {
      throw IoError(str("read_image: '", path, "' is larger than ", kMaxFileBytes, " bytes; refusing it"));
    }
    bytes.insert(bytes.end(), chunk, chunk + got);
  }
  if (std::ferror(file.get())) throw IoError(str("read_image: reading '", path, "' failed"));
  return bytes;
}

}  // namespace

Tensor read_image(const std::string& path, int channels, int64_t max_pixels) {
  if (channels != 0 && channels != 1 && channels != 3 && channels != 4) {
    throw ValueError(str("read_image: channels must be 0 (as in the file), 1, 3 or 4, got ", channels));
  }
  if (max_pixels < 1 || max_pixels > kMaxImagePixels) {
    throw ValueError(str("read_image: max_pixels must be in [1, ", kMaxImagePixels, "], got ", max_pixels));
  }
  const std::vector<uint8_t> bytes = read_bytes(path);
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw IoError(str("read_image: '", path, "' is too large"));
  }
  const int size = static_cast<int>(bytes.size());
  screening::refuse_malformed(bytes, path);  // before any stb call: stbi_info parses a JPEG's tables too
  int width = 0, height = 0, file_channels = 0;
  if (!stbi_info_from_memory(bytes.data(), size, &width, &height, &file_channels)) {
    throw IoError(str("read_image: '", path, "' is not a readable PNG/JPEG/BMP/GIF/PNM image (",
                      stbi_failure_reason(), ")"));
  }
  const int64_t pixels = int64_t{width} * height;
  if (width <= 0 || height <= 0 || pixels > max_pixels) {
    throw IoError(str("read_image: '", path, "' is ", width, " x ", height,
                      " pixels; at most ", max_pixels, " are accepted"));
  }
  if (static_cast<int64_t>(bytes.size()) < screening::min_encoded_bytes(bytes, pixels, file_channels)) {
    throw IoError(str("read_image: '", path, "' is truncated or corrupt: ", bytes.size(), " bytes cannot hold a ",
                      width, " x ", height, " image"));
  }

  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> decoded(stbi_load_from_memory(bytes.data(), size, &w, &h, &n, 0),
                                                    stbi_image_free);
  if (!decoded || n < 1 || n > 4) {
    throw IoError(str("read_image: cannot decode '", path, "' (", stbi_failure_reason(), ")"));
  }
  const int c = channels == 0 ? n : channels;
  Tensor image = Tensor::empty({h, w, c});
  float* out = image.data<float>();
  const int64_t count = int64_t{h} * w;
  uint8_t pixel[4];
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* in = decoded.get() + i * n;
    if (c != n) convert_pixel(in, n, pixel, c);
    for (int k = 0; k < c; ++k) out[i * c + k] = static_cast<float>(c != n ? pixel[k] : in[k]) / 255.0f;
  }
  return image;
}

void write_png(const std::string& path, const Tensor& image) {
  if (!image.defined() || image.is_symbolic()) {
    throw ValueError(str("write_png: '", path, "': the image tensor has no data"));
  }
  const Shape& shape = image.shape();
  if (shape.size() != 3 || (shape[2] != 1 && shape[2] != 3 && shape[2] != 4) || shape[0] <= 0 ||
      shape[1] <= 0) {
    throw ShapeError(str("write_png: '", path, "': expected [H, W, C] with C = 1, 3 or 4, got shape ",
                         shape));
  }
  if (shape[0] * shape[1] > kMaxImagePixels) {
    throw ShapeError(str("write_png: '", path, "': ", shape, " has more than ", kMaxImagePixels, " pixels"));
  }
  std::vector<uint8_t> bytes;
  if (image.dtype() == DType::kFloat32) {
    bytes = to_bytes<float>(image);
  } else if (image.dtype() == DType::kFloat64) {
    bytes = to_bytes<double>(image);
  } else {
    throw ValueError(str("write_png: '", path, "': expected a float32 or float64 image"));
  }
  const int height = static_cast<int>(shape[0]), width = static_cast<int>(shape[1]);
  const int c = static_cast<int>(shape[2]);
  std::vector<uint8_t> encoded;
  if (!stbi_write_png_to_func(append_to_vector, &encoded, width, height, c, bytes.data(), width * c)) {
    throw IoError(str("write_png: '", path, "': PNG encoding failed"));
  }
  // Temporary file, fsync, rename: an existing file is replaced whole or not at all.
  try {
    write_file_atomically(path, {std::string_view(reinterpret_cast<const char*>(encoded.data()), encoded.size())});
  } catch (const IoError& e) {
    throw IoError(str("write_png: ", e.what()));
  }
}

}  // namespace normnet::io

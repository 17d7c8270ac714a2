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

// stb 2.27 builds a JPEG Huffman table without checking that its 16 code counts sum to at most
// 256, and then writes past its 257-entry arrays (upstream fixed it later; found here by fuzzing
// under UBSan). So a JPEG is walked first the way stb reads it, and any DHT segment stb could reach
// is checked: marker segments are skipped by their length (APPn, COM and the rest, whose content
// stb never parses as markers), and every other byte, junk or entropy-coded data, is scanned for
// FF xx. The walk only over-approximates what stb visits; a valid JPEG is never refused.
bool dht_segment_too_large(const std::vector<uint8_t>& b, std::size_t at, long length) {
  const auto byte = [&](std::size_t i) -> int { return i < b.size() ? b[i] : 0; };  // stb reads 0 past the end
  long remaining = length - 2;
  at += 2;
  while (remaining > 0 && at < b.size()) {  // as stbi__process_marker's DHT loop
    int codes = 0;
    for (int k = 1; k <= 16; ++k) codes += byte(at + k);
    if (codes > 256) return true;
    at += 17 + static_cast<std::size_t>(codes);
    remaining -= 17 + codes;
  }
  return false;
}

// Calls fn(marker, at, length) for each JPEG marker stb could reach, in file order, with `at` the
// index just past the marker (its length field, for segments with one) and `length` 0 for the
// markers without a length (stuffed zero, RSTn, TEM, SOI, EOI); fn returns true to stop. Does
// nothing for a file stb would not read as a JPEG.
template <class Fn>
void for_each_jpeg_marker(const std::vector<uint8_t>& b, Fn&& fn) {
  std::size_t i = 0;
  while (i < b.size() && b[i] == 0xFF) ++i;  // stb's SOI may follow several FF bytes
  if (i == 0 || i >= b.size() || b[i] != 0xD8) return;  // not a JPEG to stb
  ++i;
  while (i < b.size()) {
    if (b[i] != 0xFF) {
      ++i;
      continue;
    }
    while (i < b.size() && b[i] == 0xFF) ++i;  // fill bytes
    if (i >= b.size()) break;
    const int marker = b[i++];
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9)) {
      if (fn(marker, i, 0L)) return;
      continue;
    }
    const long length = i + 1 < b.size() ? (long{b[i]} << 8 | b[i + 1]) : 0;
    if (fn(marker, i, length)) return;
    if (length >= 2) i += static_cast<std::size_t>(length);
  }
}

bool has_oversized_huffman_table(const std::vector<uint8_t>& b) {
  bool found = false;
  for_each_jpeg_marker(b, [&](int marker, std::size_t at, long length) {
    found = marker == 0xC4 && dht_segment_too_large(b, at, length);
    return found;
  });
  return found;
}

// stb 2.27 allocates its decoder state with malloc and never clears it, so a scan that uses a
// Huffman table no DHT segment defined decodes with whatever the heap held: the symbol index it
// computes from that garbage reads outside the table (found by fuzzing under UBSan, at random, as
// it depends on the heap). libjpeg refuses such files ("Huffman table was never defined"); so does
// read_image. Which tables a scan uses follows stb: both of each component's tables in a baseline
// scan; in a progressive one the DC table for a first DC scan (Ss = 0, Ah = 0), none for a DC
// refinement, the AC table for an AC scan (Ss > 0). The walk stops at EOI, as stb does. Checked
// on JPEGs cjpeg writes (baseline, progressive, optimized, subsampled, with restart intervals).
bool has_scan_with_undefined_huffman_table(const std::vector<uint8_t>& b) {
  const auto byte = [&](std::size_t i) -> int { return i < b.size() ? b[i] : 0; };
  bool defined[2][4] = {};  // [DC, AC][table id]
  int frame = 0;            // the first SOF stb reads: 0xC0, 0xC1 (baseline) or 0xC2 (progressive)
  bool found = false;
  for_each_jpeg_marker(b, [&](int marker, std::size_t at, long length) {
    if (marker == 0xD9) return true;
    if ((marker == 0xC0 || marker == 0xC1 || marker == 0xC2) && frame == 0) frame = marker;
    if (marker == 0xC4) {  // as stbi__process_marker's DHT loop
      std::size_t i = at + 2;
      for (long remaining = length - 2; remaining > 0 && i < b.size();) {
        const int q = byte(i);
        int codes = 0;
        for (int k = 1; k <= 16; ++k) codes += byte(i + k);
        if ((q >> 4) <= 1 && (q & 15) <= 3) defined[q >> 4][q & 15] = true;
        i += 17 + static_cast<std::size_t>(codes);
        remaining -= 17 + codes;
      }
    }
    // SOS (stb decodes none before a SOF0-2 frame header): Ns, then (component, Td << 4 | Ta)
    // pairs, then Ss, Se, Ah << 4 | Al.
    if (marker == 0xDA && frame != 0) {
      const int components = byte(at + 2);
      if (components < 1 || components > 4) return false;  // stb refuses the scan itself
      const std::size_t tail = at + 3 + 2 * static_cast<std::size_t>(components);
      const int ss = byte(tail), ah = byte(tail + 2) >> 4;
      const bool progressive = frame == 0xC2;
      const bool uses_dc = !progressive || (ss == 0 && ah == 0), uses_ac = !progressive || ss != 0;
      for (int c = 0; c < components; ++c) {
        const int q = byte(at + 4 + 2 * static_cast<std::size_t>(c)), dc = q >> 4, ac = q & 15;
        if (dc > 3 || ac > 3) continue;  // stb refuses the scan itself
        found = found || (uses_dc && !defined[0][dc]) || (uses_ac && !defined[1][ac]);
      }
    }
    return found;
  });
  return found;
}

// The same for quantization tables (fuzz_image found it, UBSan): stb 2.27 dequantizes a scan's
// coefficients with each component's table from its uncleared decoder state, so a component whose
// table no DQT segment defined decodes with heap garbage (the pixels then depend on the heap's
// contents, and the garbage factor overflowed `dc * dequant[0]`). libjpeg refuses such files
// ("Quantization table 0x.. was not defined"); so does read_image. Tables as stbi__process_marker
// reads DQT (Pq << 4 | Tq, then 64 bytes, or 128 for Pq = 1); each component's Tq as the first
// SOF0-2 frame header gives it (component id, sampling, Tq); a scan's components by id.
bool has_scan_with_undefined_quantization_table(const std::vector<uint8_t>& b) {
  const auto byte = [&](std::size_t i) -> int { return i < b.size() ? b[i] : 0; };
  bool defined[4] = {};
  int frame_components = -1;  // until the first SOF0-2
  int ids[256] = {}, tables[256] = {};
  bool found = false;
  for_each_jpeg_marker(b, [&](int marker, std::size_t at, long length) {
    if (marker == 0xD9) return true;
    if (marker == 0xDB) {
      std::size_t i = at + 2;
      for (long remaining = length - 2; remaining > 0 && i < b.size();) {
        const int pq = byte(i) >> 4, tq = byte(i) & 15;
        if (pq > 1 || tq > 3) break;  // stb refuses the segment itself
        defined[tq] = true;
        const long size = pq ? 129 : 65;
        i += static_cast<std::size_t>(size);
        remaining -= size;
      }
    }
    if ((marker == 0xC0 || marker == 0xC1 || marker == 0xC2) && frame_components < 0) {
      frame_components = byte(at + 7);
      for (int c = 0; c < frame_components; ++c) {
        ids[c] = byte(at + 8 + 3 * static_cast<std::size_t>(c));
        tables[c] = byte(at + 10 + 3 * static_cast<std::size_t>(c));
      }
    }
    if (marker == 0xDA && frame_components > 0) {
      const int components = byte(at + 2);
      for (int s = 0; s < components && s < 4; ++s) {
        const int id = byte(at + 3 + 2 * static_cast<std::size_t>(s));
        for (int c = 0; c < frame_components; ++c) {
          if (ids[c] == id && tables[c] <= 3) found = found || !defined[tables[c]];
        }
      }
    }
    return found;
  });
  return found;
}

// stb 2.27 accumulates a PNM header's numbers in an int without an overflow check: a run of ten or
// more digits is signed overflow, undefined behaviour (found by fuzzing under UBSan). So the header
// is walked first as stbi__pnm_info reads it ("P5"/"P6", then width, height and maximum value, each
// after whitespace and '#' comments) and a number of more than 9 digits is refused; no image
// normnet accepts (kMaxImagePixels) needs one.
bool is_pnm_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool has_overlong_pnm_number(const std::vector<uint8_t>& b) {
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return false;
  std::size_t i = 2;
  for (int number = 0; number < 3; ++number) {
    for (;;) {  // stbi__pnm_skip_whitespace
      while (i < b.size() && is_pnm_space(b[i])) ++i;
      if (i >= b.size() || b[i] != '#') break;
      while (i < b.size() && b[i] != '\n' && b[i] != '\r') ++i;
    }
    std::size_t digits = 0;
    for (; i < b.size() && b[i] >= '0' && b[i] <= '9'; ++i) ++digits;
    if (digits > 9) return true;
    if (digits == 0) return false;  // stb refuses the header itself
  }
  return false;
}

// fuzz_image found it: stb 2.27 grows its buffer for a PNG's IDAT data by doubling until the
// chunk's declared length fits, before reading it, so a 165-byte file claiming a gigabyte chunk
// made it allocate 2 GB. The chunks are walked first ([length, type, data, CRC], big-endian
// lengths after the 8-byte signature) and a length past the end of the file is refused; stb
// would fail on the short read anyway, after the allocation.
bool has_png_chunk_past_end(const std::vector<uint8_t>& b) {
  static constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  if (b.size() < 8 || !std::equal(std::begin(kSignature), std::end(kSignature), b.begin())) return false;
  std::size_t at = 8;
  while (b.size() - at >= 8) {
    const uint64_t length = (uint64_t{b[at]} << 24) | (uint64_t{b[at + 1]} << 16) | (uint64_t{b[at + 2]} << 8) | b[at + 3];
    if (length > b.size() - at - 8) return true;
    if (b[at + 4] == 'I' && b[at + 5] == 'E' && b[at + 6] == 'N' && b[at + 7] == 'D') return false;
    at += 8 + static_cast<std::size_t>(length);
    if (b.size() - at < 4) return false;  // no room for the CRC: stb refuses the file itself
    at += 4;
  }
  return false;
}

}  // namespace

// The fewest bytes a file of `pixels` pixels can have, so that a tiny file cannot claim a huge
// image (stb fills a truncated uncompressed image with zeros rather than failing). Binary PNM
// and uncompressed BMP store every pixel: at least one byte per sample (PNM) or bpp/8 per pixel
// (BMP). Compressed formats are bounded by 16384 pixels per byte, above deflate's best ratio
// for 1-bit PNGs (about 8 · 1032) and what JPEG and GIF can reach.
int64_t min_encoded_bytes(const std::vector<uint8_t>& b, int64_t pixels, int file_channels) {
  const auto le16 = [&](std::size_t at) { return static_cast<int64_t>(b[at] | (b[at + 1] << 8)); };
  const auto le32 = [&](std::size_t at) { return le16(at) | (le16(at + 2) << 16); };
  if (b.size() >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return pixels * file_channels;
  if (b.size() >= 34 && b[0] == 'B' && b[1] == 'M' && le32(14) >= 40) {
    const int64_t bpp = le16(28), compression = le32(30);
    if (compression == 0 || compression == 3) return pixels * bpp / 8;
  }
  return pixels / 16384;
}

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
  // Before any stb call: stbi_info parses a JPEG's tables too.
  if (has_oversized_huffman_table(bytes)) {
    throw IoError(str("read_image: '", path, "' is corrupt (a JPEG Huffman table with more than 256 codes)"));
  }
  if (has_scan_with_undefined_huffman_table(bytes)) {
    throw IoError(str("read_image: '", path, "' is corrupt (a JPEG scan uses a Huffman table that was never defined)"));
  }
  if (has_scan_with_undefined_quantization_table(bytes)) {
    throw IoError(
        str("read_image: '", path, "' is corrupt (a JPEG scan uses a quantization table that was never defined)"));
  }
  if (has_overlong_pnm_number(bytes)) {
    throw IoError(str("read_image: '", path, "' is corrupt (a PNM header number with more than 9 digits)"));
  }
  if (has_png_chunk_past_end(bytes)) {
    throw IoError(str("read_image: '", path, "' is truncated or corrupt (a PNG chunk longer than the rest of the file)"));
  }
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
  if (static_cast<int64_t>(bytes.size()) < min_encoded_bytes(bytes, pixels, file_channels)) {
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

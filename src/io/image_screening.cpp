// Screening of image files before stb decodes them (see image_screening.h): every check walks
// the bytes the way stb 2.27 would and over-approximates what stb reads, so no valid file is refused.
#include "io/image_screening.h"

#include <algorithm>
#include <iterator>

#include "normnet/error.h"

namespace normnet::io::screening {
namespace {

using detail::str;

// stb 2.27 builds a JPEG Huffman table without checking that its 16 code counts sum to at most
// 256, and then writes past its 257-entry arrays (upstream fixed it later; found here by fuzzing
// under UBSan). So a JPEG is walked first the way stb reads it, and any DHT segment stb could reach
// is checked: marker segments are skipped by their length (APPn, COM and the rest, whose content
// stb never parses as markers), and every other byte, junk or entropy-coded data, is scanned for
// FF xx. The walk only over-approximates what stb visits; a valid JPEG is never refused.
bool dht_segment_too_large(const std::vector<uint8_t>& b, std::size_t at, long length) {
  const auto byte = [&](std::size_t i) -> int {
    return i < b.size() ? b[i] : 0;
  };  // stb reads 0 past the end
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
  while (i < b.size() && b[i] == 0xFF) ++i;             // stb's SOI may follow several FF bytes
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
    const uint64_t length =
        (uint64_t{b[at]} << 24) | (uint64_t{b[at + 1]} << 16) | (uint64_t{b[at + 2]} << 8) | b[at + 3];
    if (length > b.size() - at - 8) return true;
    if (b[at + 4] == 'I' && b[at + 5] == 'E' && b[at + 6] == 'N' && b[at + 7] == 'D') return false;
    at += 8 + static_cast<std::size_t>(length);
    if (b.size() - at < 4) return false;  // no room for the CRC: stb refuses the file itself
    at += 4;
  }
  return false;
}

}  // namespace

void refuse_malformed(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (has_oversized_huffman_table(bytes)) {
    throw IoError(str("read_image: '", path, "' is corrupt (a JPEG Huffman table with more than 256 codes)"));
  }
  if (has_scan_with_undefined_huffman_table(bytes)) {
    throw IoError(
        str("read_image: '", path, "' is corrupt (a JPEG scan uses a Huffman table that was never defined)"));
  }
  if (has_scan_with_undefined_quantization_table(bytes)) {
    throw IoError(str("read_image: '", path,
                      "' is corrupt (a JPEG scan uses a quantization table that was never defined)"));
  }
  if (has_overlong_pnm_number(bytes)) {
    throw IoError(str("read_image: '", path, "' is corrupt (a PNM header number with more than 9 digits)"));
  }
  if (has_png_chunk_past_end(bytes)) {
    throw IoError(str("read_image: '", path,
                      "' is truncated or corrupt (a PNG chunk longer than the rest of the file)"));
  }
}

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

}  // namespace normnet::io::screening

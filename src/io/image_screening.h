// Checks run on an image file's bytes before stb sees them. Each refuses a malformed file that
// Debian's stb_image 2.27 would misread (writes past a table, signed overflow, a gigabyte
// allocation, a truncated image filled with zeros); most were found by fuzz/fuzz_image.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace normnet::io::screening {

// Throws IoError naming `path` and the defect when `bytes` is a JPEG whose Huffman or
// quantization tables stb would misuse, a PNM header with an overlong number, or a PNG with a
// chunk longer than the rest of the file. A valid file of any format passes.
void refuse_malformed(const std::vector<uint8_t>& bytes, const std::string& path);

// The fewest bytes a file of `pixels` pixels can have, so that a tiny file cannot claim a huge
// image (stb fills a truncated uncompressed image with zeros rather than failing). Binary PNM
// and uncompressed BMP store every pixel: at least one byte per sample (PNM) or bpp/8 per pixel
// (BMP). Compressed formats are bounded by 16384 pixels per byte, above deflate's best ratio
// for 1-bit PNGs (about 8 · 1032) and what JPEG and GIF can reach.
int64_t min_encoded_bytes(const std::vector<uint8_t>& b, int64_t pixels, int file_channels);

}  // namespace normnet::io::screening

// libFuzzer target: arbitrary bytes as an image file (PNG, JPEG, BMP, GIF, PNM) read through
// io::read_image, as stored and converted to 1 and 3 channels. read_image takes a path, so the
// input is written to a per-process scratch file first. Anything but normnet::Error is a finding.
// Images are capped at 2^18 pixels: a valid 2 KB PNG can hold 2^24 pixels, which read_image
// accepts and which takes ~10 s to decode under the sanitizers (libFuzzer's timeout), so the
// default cap would report correct-but-slow decoding as a hang.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "normnet/error.h"
#include "normnet/image.h"

namespace {
constexpr int64_t kMaxPixels = int64_t{1} << 18;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("normnet-fuzz-image-" + std::to_string(getpid()))).string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  for (const int channels : {0, 1, 3}) {
    try {
      (void)normnet::io::read_image(path, channels, kMaxPixels);
    } catch (const normnet::Error&) {
      // A clean rejection.
    }
  }
  return 0;
}

// Inputs for `normnet predict` (see image_input.h).
#include "image_input.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <vector>

#include "normnet/datasets.h"
#include "normnet/error.h"
#include "normnet/image.h"
#include "normnet/ops.h"

namespace normnet::cli {
namespace {

constexpr int64_t kSide = 28;

// Weights of input pixels [0, in) for output pixel `o` of `out`: its span [o·in/out, (o+1)·in/out).
struct Span {
  int64_t first = 0;
  std::vector<double> weights;  // covered fraction of pixels first, first + 1, ...
};

std::vector<Span> spans(int64_t in, int64_t out) {
  std::vector<Span> result(static_cast<std::size_t>(out));
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    const double lo = static_cast<double>(o) * scale, hi = static_cast<double>(o + 1) * scale;
    Span& s = result[static_cast<std::size_t>(o)];
    s.first = static_cast<int64_t>(std::floor(lo));
    for (int64_t i = s.first; i < in && static_cast<double>(i) < hi; ++i)
      s.weights.push_back(std::min(hi, static_cast<double>(i + 1)) - std::max(lo, static_cast<double>(i)));
  }
  return result;
}

}  // namespace

Tensor resize_area(const Tensor& image, int64_t out_h, int64_t out_w) {
  if (image.dim() != 3 || image.shape()[2] != 1 || image.dtype() != DType::kFloat32 || out_h < 1 || out_w < 1)
    throw ShapeError(detail::str("resize_area: expected a float32 gray image [H, W, 1] and a positive size, got ",
                                 shape_to_string(image.shape()), " to ", out_h, "x", out_w));
  const int64_t w = image.shape()[1];
  const std::vector<Span> rows = spans(image.shape()[0], out_h), cols = spans(w, out_w);
  const float* src = image.data<float>();
  std::vector<float> out(static_cast<std::size_t>(out_h * out_w));
  for (int64_t oy = 0; oy < out_h; ++oy) {
    const Span& r = rows[static_cast<std::size_t>(oy)];
    for (int64_t ox = 0; ox < out_w; ++ox) {
      const Span& c = cols[static_cast<std::size_t>(ox)];
      double sum = 0, area = 0;
      for (std::size_t i = 0; i < r.weights.size(); ++i)
        for (std::size_t j = 0; j < c.weights.size(); ++j) {
          const double weight = r.weights[i] * c.weights[j];
          sum += weight * src[(r.first + static_cast<int64_t>(i)) * w + c.first + static_cast<int64_t>(j)];
          area += weight;
        }
      out[static_cast<std::size_t>(oy * out_w + ox)] = static_cast<float>(sum / area);
    }
  }
  return Tensor::from_vector(out, {out_h, out_w, 1});
}

bool looks_like_idx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[4] = {0, 0, 0, 0};
  if (!in.read(reinterpret_cast<char*>(head), 4)) return false;
  return (head[0] == 0x1f && head[1] == 0x8b) || (head[0] == 0 && head[1] == 0 && head[3] >= 1 && head[3] <= 4);
}

Tensor load_inputs(const std::string& path, bool invert) {
  Tensor images;
  if (looks_like_idx(path)) {
    images = datasets::read_idx_images(path);
    if (images.shape()[1] != kSide || images.shape()[2] != kSide)
      throw ShapeError(detail::str("predict: '", path, "' holds images of ", images.shape()[1], "x", images.shape()[2],
                                   ", expected 28x28"));
  } else {
    Tensor gray = io::read_image(path, 1);
    if (gray.shape()[0] != kSide || gray.shape()[1] != kSide) gray = resize_area(gray, kSide, kSide);
    images = ops::reshape(gray, {1, kSide, kSide, 1});
  }
  if (invert) {
    std::vector<float> values = images.to_vector<float>();
    for (float& v : values) v = 1.0f - v;
    images = Tensor::from_vector(values, images.shape());
  }
  return images;
}

}  // namespace normnet::cli

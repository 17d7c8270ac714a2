// Inputs for `normnet predict`: image files turned into 28×28 gray images like Fashion-MNIST's,
// and IDX image files.
#pragma once

#include <cstdint>
#include <string>

#include "normnet/tensor.h"

namespace normnet::cli {

// Area (box-filter) resampling of a gray image [H, W, 1] to [out_h, out_w, 1]: each output pixel
// is the mean of the input area it covers, with fractional pixels weighted by their covered
// fraction (OpenCV's INTER_AREA). Shrinking averages without aliasing; enlarging repeats pixels.
[[nodiscard]] Tensor resize_area(const Tensor& image, int64_t out_h, int64_t out_w);

// True when the file starts like an IDX file: the gzip magic (1f 8b) or IDX's (0, 0, type, rank).
[[nodiscard]] bool looks_like_idx(const std::string& path);

// The images of `path` as [N, 28, 28, 1] float32 in [0, 1]: an IDX image file as it is (its images
// must be 28×28), any other file through io::read_image, converted to gray, area-resized to
// 28×28 when it has another size, and inverted (1 − v) when `invert` (Fashion-MNIST shows light
// objects on black; photos usually show dark objects on light backgrounds).
[[nodiscard]] Tensor load_inputs(const std::string& path, bool invert);

}  // namespace normnet::cli

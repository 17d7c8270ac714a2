// The confusion matrix of a classifier on a labelled set, as counts and as an SVG picture.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "normnet/tensor.h"

namespace normnet::cli {

// counts[t][p] = samples of true class t predicted as class p.
using ConfusionMatrix = std::vector<std::vector<int64_t>>;

// From labels [N] (int64, 0 <= label < classes) and scores [N, classes] (the argmax is the
// prediction; the first maximum wins ties). ValueError for an out-of-range label or a shape
// mismatch.
[[nodiscard]] ConfusionMatrix confusion_matrix(const Tensor& labels, const Tensor& scores);

// Writes a standalone SVG: one cell per (true, predicted) pair with its count, shaded by the
// fraction of its true class (row), the recall of each class at the right, the accuracy in the
// title. `names` label rows and columns (one per class). IoError naming the path on failure.
void write_confusion_svg(const std::string& path, const ConfusionMatrix& counts, const std::vector<std::string>& names,
                         const std::string& title);

}  // namespace normnet::cli

// Confusion matrix counts and their SVG picture (see confusion_svg.h).
#include "confusion_svg.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "model_files.h"
#include "normnet/error.h"

namespace normnet::cli {
namespace {

constexpr double kCell = 56, kLeft = 120, kTop = 70, kRecallWidth = 90, kBottom = 120;

// Text and attribute values: the five XML specials escaped, control characters dropped.
std::string xml(const std::string& text) {
  static const std::pair<char, const char*> kEntities[] = {
      {'&', "&amp;"}, {'<', "&lt;"}, {'>', "&gt;"}, {'"', "&quot;"}, {'\'', "&apos;"}};
  std::string out;
  for (char c : text) {
    const char* entity = nullptr;
    for (const auto& [special, replacement] : kEntities)
      if (c == special) entity = replacement;
    if (entity) out += entity;
    else if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

std::string num(double v, const char* format = "%.1f") {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// White (fraction 0) to matplotlib's "Blues" dark end #08306b (fraction 1).
std::string shade(double fraction) {
  const int r = static_cast<int>(255 + (8 - 255) * fraction), g = static_cast<int>(255 + (48 - 255) * fraction),
            b = static_cast<int>(255 + (107 - 255) * fraction);
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

std::string text(double x, double y, const std::string& content, const std::string& attributes) {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" " + attributes + ">" + xml(content) + "</text>\n";
}

}  // namespace

ConfusionMatrix confusion_matrix(const Tensor& labels, const Tensor& scores) {
  if (labels.dtype() != DType::kInt64 || labels.dim() != 1 || scores.dtype() != DType::kFloat32 || scores.dim() != 2 ||
      scores.shape()[0] != labels.shape()[0] || scores.shape()[1] < 1) {
    throw ValueError(detail::str("confusion_matrix: expected int64 labels [N] and float32 scores [N, classes], got ",
                                 shape_to_string(labels.shape()), " and ", shape_to_string(scores.shape())));
  }
  const int64_t n = labels.shape()[0], classes = scores.shape()[1];
  ConfusionMatrix counts(static_cast<std::size_t>(classes), std::vector<int64_t>(static_cast<std::size_t>(classes), 0));
  const int64_t* y = labels.data<int64_t>();
  const float* s = scores.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    if (y[i] < 0 || y[i] >= classes)
      throw ValueError(detail::str("confusion_matrix: label ", y[i], " of sample ", i, " is outside [0, ", classes, ")"));
    ++counts[static_cast<std::size_t>(y[i])][static_cast<std::size_t>(argmax(s + i * classes, classes))];
  }
  return counts;
}

void write_confusion_svg(const std::string& path, const ConfusionMatrix& counts, const std::vector<std::string>& names,
                         const std::string& title) {
  const std::size_t k = counts.size();
  if (names.size() != k) throw ValueError(detail::str("write_confusion_svg: ", k, " classes but ", names.size(), " names"));
  int64_t total = 0, correct = 0;
  for (std::size_t t = 0; t < k; ++t)
    for (std::size_t p = 0; p < k; ++p) total += counts[t][p], correct += t == p ? counts[t][p] : 0;
  const double grid = kCell * static_cast<double>(k), width = kLeft + grid + kRecallWidth, height = kTop + grid + kBottom;

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width) << "\" height=\"" << num(height)
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg << text(width / 2, 24, title, "text-anchor=\"middle\" font-size=\"16\"");
  svg << text(width / 2, 44, "accuracy " + num(total ? 100.0 * correct / total : 0.0, "%.2f") + "% of " + std::to_string(total) +
                                 " samples; rows: true class, columns: predicted; shade: share of the row",
              "text-anchor=\"middle\" fill=\"#555\"");
  for (std::size_t t = 0; t < k; ++t) {
    int64_t row_total = 0;
    for (int64_t c : counts[t]) row_total += c;
    const double y = kTop + kCell * static_cast<double>(t);
    svg << text(kLeft - 8, y + kCell / 2 + 4, names[t], "text-anchor=\"end\"");
    for (std::size_t p = 0; p < k; ++p) {
      const double x = kLeft + kCell * static_cast<double>(p);
      const double fraction = row_total ? static_cast<double>(counts[t][p]) / static_cast<double>(row_total) : 0.0;
      svg << "<rect x=\"" << num(x) << "\" y=\"" << num(y) << "\" width=\"" << num(kCell) << "\" height=\"" << num(kCell)
          << "\" fill=\"" << shade(fraction) << "\" stroke=\"#ddd\"><title>" << xml(names[t]) << " predicted as "
          << xml(names[p]) << ": " << counts[t][p] << "</title></rect>\n";
      svg << text(x + kCell / 2, y + kCell / 2 + 4, std::to_string(counts[t][p]),
                  std::string("text-anchor=\"middle\" fill=\"") + (fraction > 0.5 ? "white" : "black") + "\"");
    }
    const double recall = row_total ? 100.0 * static_cast<double>(counts[t][t]) / static_cast<double>(row_total) : 0.0;
    svg << text(kLeft + grid + 10, y + kCell / 2 + 4, num(recall, "%.1f") + "%", "");
  }
  svg << text(kLeft + grid + 10, kTop - 8, "recall", "font-weight=\"bold\"");
  for (std::size_t p = 0; p < k; ++p) {
    const double x = kLeft + kCell * (static_cast<double>(p) + 0.5), y = kTop + grid + 12;
    svg << text(x, y, names[p], "text-anchor=\"end\" transform=\"rotate(-45 " + num(x) + " " + num(y) + ")\"");
  }
  svg << text(kLeft + grid / 2, height - 8, "predicted class", "text-anchor=\"middle\" font-weight=\"bold\"");
  svg << "</svg>\n";

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << svg.str();
  out.close();
  if (!out) throw IoError(detail::str("--confusion: cannot write '", path, "'"));
}

}  // namespace normnet::cli

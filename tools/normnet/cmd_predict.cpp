// `normnet predict MODEL FILE...`: the most likely class and its probability for each image file
// (or each image of an IDX file), from a saved model.
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "image_input.h"
#include "model_files.h"
#include "normnet/error.h"
#include "normnet/ops.h"
#include "table.h"

namespace normnet::cli {
namespace {

struct PredictArgs {
  std::string model;
  std::vector<std::string> files;
  bool invert = false;
  int threads = 0;
  std::string conv2d_algorithm = "direct";
  int64_t limit = 0;  // images per IDX file (0: all)
};

// Rows of `outputs` that are already probabilities (non-negative, summing to 1) are kept; logits
// (any other row) go through softmax. The default model outputs logits.
bool are_probabilities(const Tensor& outputs) {
  const int64_t n = outputs.shape()[0], k = outputs.shape()[1];
  const float* p = outputs.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t c = 0; c < k; ++c) {
      if (!(p[i * k + c] >= 0.0f)) return false;
      sum += p[i * k + c];
    }
    if (std::abs(sum - 1.0) > 1e-4) return false;
  }
  return true;
}

void run_predict(const PredictArgs& a) {
  apply_threads(a.threads);
  ops::set_conv2d_algorithm(conv2d_algorithm_named(a.conv2d_algorithm, "predict"));
  if (a.limit < 0)
    throw ValueError(detail::str("predict --limit: expected a count >= 0 (0 = all), got ", a.limit));
  Model model = load_model(a.model);
  Table table({"input", "class", "probability"});
  for (const std::string& file : a.files) {
    Tensor x = load_inputs(file, a.invert);
    if (a.limit > 0 && x.shape()[0] > a.limit)
      x = ops::slice(x, 0, 0, a.limit);  // an IDX file's first images
    Tensor out = model.predict(x, 256);
    if (out.dim() != 2 || out.dtype() != DType::kFloat32)
      throw ShapeError(detail::str("predict: model '", a.model, "' outputs ", shape_to_string(out.shape()),
                                   "; expected float32 class scores [N, classes]"));
    if (!are_probabilities(out)) out = ops::softmax(out, -1);
    const int64_t n = out.shape()[0], k = out.shape()[1];
    const float* p = out.data<float>();
    const std::vector<std::string> names = class_names(k);
    const bool indexed = looks_like_idx(file);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t best = argmax(p + i * k, k);
      table.add({indexed ? file + "[" + std::to_string(i) + "]" : file, names[static_cast<std::size_t>(best)],
                 fixed(p[i * k + best])});
    }
  }
  table.print(std::cout);  // after every input was read, so an error leaves stdout empty
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto a = std::make_shared<PredictArgs>();
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Classify image files (PNG, JPEG, BMP, GIF, PNM: made gray and area-resized to 28x28) or IDX image files "
      "with a saved model; prints the class and its probability per image");
  cmd->add_option("model", a->model, "a model saved by normnet train (.safetensors)")->required();
  cmd->add_option("files", a->files, "image files or IDX image files (plain or .gz)")->required();
  cmd->add_flag("--invert", a->invert, "use 1 - v for image files (dark objects on a light background)");
  cmd->add_option("--threads", a->threads, "threads (0: $NORMNET_NUM_THREADS, else every core)")->capture_default_str();
  cmd->add_option("--conv2d-algorithm", a->conv2d_algorithm, kConv2dAlgorithmHelp)->capture_default_str();
  cmd->add_option("--limit", a->limit, "classify the first N images of each IDX file only (0: all)")
      ->capture_default_str();
  cmd->callback([a] { run_predict(*a); });
}

}  // namespace normnet::cli

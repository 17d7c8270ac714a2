// `normnet evaluate MODEL`: loss, accuracy (and each regularization term) of a saved model on the
// Fashion-MNIST test split; --confusion also draws the confusion matrix as an SVG file.
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "confusion_svg.h"
#include "model_files.h"
#include "normnet/datasets.h"
#include "normnet/error.h"

namespace normnet::cli {
namespace {

struct EvaluateArgs {
  std::string model, data, confusion;
  int64_t batch_size = 256, limit = 0;
  int threads = 0;
  std::string conv2d_algorithm = "direct";
};

void run_evaluate(const EvaluateArgs& a) {
  if (a.batch_size < 1) throw ValueError(detail::str("evaluate --batch-size: expected at least 1, got ", a.batch_size));
  apply_threads(a.threads);
  ops::set_conv2d_algorithm(conv2d_algorithm_named(a.conv2d_algorithm, "evaluate"));
  Model model = load_compiled_model(a.model);
  const datasets::Split test = first_samples(datasets::fashion_mnist(a.data).test, a.limit, "evaluate --limit");
  const auto logs = model.evaluate(test.x, test.y, a.batch_size);
  ConfusionMatrix counts;
  if (!a.confusion.empty()) {
    counts = confusion_matrix(test.y, model.predict(test.x, a.batch_size));
    write_confusion_svg(a.confusion, counts, class_names(static_cast<int64_t>(counts.size())),
                        "normnet evaluate " + a.model + " on Fashion-MNIST test");
  }
  // "loss" and "accuracy" first, then the rest (regularization terms) in name order.
  for (const char* key : {"loss", "accuracy"})
    if (logs.count(key)) std::cout << key << ": " << fixed(logs.at(key)) << "\n";
  for (const auto& [key, value] : logs)
    if (key != "loss" && key != "accuracy") std::cout << key << ": " << fixed(value, 6) << "\n";
  std::cout << "samples: " << test.x.shape()[0] << "\n";
  if (!a.confusion.empty()) std::cout << "confusion matrix: " << a.confusion << "\n";
}

}  // namespace

void add_evaluate_command(CLI::App& app) {
  auto a = std::make_shared<EvaluateArgs>();
  CLI::App* cmd = app.add_subcommand("evaluate", "Loss and accuracy of a saved model on the Fashion-MNIST test split");
  cmd->add_option("model", a->model, "a model saved by normnet train (.safetensors)")->required();
  cmd->add_option("--data", a->data, "directory of the Fashion-MNIST IDX files (default: $NORMNET_DATA, else Debian's dataset-fashion-mnist)");
  cmd->add_option("--confusion", a->confusion, "write the confusion matrix as an SVG file");
  cmd->add_option("--batch-size", a->batch_size, "samples per forward pass")->capture_default_str();
  cmd->add_option("--limit", a->limit, "evaluate the first N test images only (0: all 10000)")->capture_default_str();
  cmd->add_option("--threads", a->threads, "threads (0: $NORMNET_NUM_THREADS, else every core)")->capture_default_str();
  cmd->add_option("--conv2d-algorithm", a->conv2d_algorithm, kConv2dAlgorithmHelp)->capture_default_str();
  cmd->callback([a] { run_evaluate(*a); });
}

}  // namespace normnet::cli

// `normnet summary`: Keras's summary table of a saved model, of a JSON config, or (with neither)
// of the default Fashion-MNIST CNN; --json prints the Keras-style config that --config reads.
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "model_files.h"
#include "normnet/zoo.h"

namespace normnet::cli {
namespace {

struct SummaryArgs {
  std::string model, config;
  bool expand_nested = false, json = false;
};

void run_summary(const SummaryArgs& a) {
  Model model = !a.model.empty()    ? load_model(a.model)
                : !a.config.empty() ? model_from_config_file(a.config)
                                    : zoo::fashion_cnn();
  if (a.json) {
    const Config config = {{"class_name", model->class_name()}, {"config", model->get_config()}};
    std::cout << config.dump(2) << "\n";
  } else {
    std::cout << model.summary_string(a.expand_nested);
  }
}

}  // namespace

void add_summary_command(CLI::App& app) {
  auto a = std::make_shared<SummaryArgs>();
  CLI::App* cmd = app.add_subcommand(
      "summary", "Print a model's layers, output shapes and parameter counts (default: the Fashion-MNIST CNN of normnet train)");
  CLI::Option* model = cmd->add_option("model", a->model, "a model saved by normnet train (.safetensors)");
  cmd->add_option("--config", a->config, "a Keras-style JSON model config instead")->excludes(model);
  cmd->add_flag("--expand-nested", a->expand_nested, "also list the layers of nested models");
  cmd->add_flag("--json", a->json, "print the model's JSON config (for train --config) instead of the table");
  cmd->callback([a] { run_summary(*a); });
}

}  // namespace normnet::cli

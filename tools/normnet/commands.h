// The normnet tool's subcommands. Each lives in its own cmd_<name>.cpp and registers its options
// and the function that runs it on the top-level CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace normnet::cli {

// `normnet normalize`: L2-normalizes vectors in every epsilon mode (cmd_normalize.cpp).
void add_normalize_command(CLI::App& app);
// `normnet train`: trains the default Fashion-MNIST CNN or a model config (cmd_train.cpp).
void add_train_command(CLI::App& app);
// `normnet evaluate`: test loss, accuracy and confusion matrix of a saved model (cmd_evaluate.cpp).
void add_evaluate_command(CLI::App& app);
// `normnet predict`: classes of image or IDX files (cmd_predict.cpp).
void add_predict_command(CLI::App& app);
// `normnet summary`: the summary table or JSON config of a model (cmd_summary.cpp).
void add_summary_command(CLI::App& app);

}  // namespace normnet::cli

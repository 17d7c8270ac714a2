// The normnet tool's subcommands. Each lives in its own cmd_<name>.cpp and registers its options
// and the function that runs it on the top-level CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace normnet::cli {

// `normnet normalize`: L2-normalizes vectors in every epsilon mode (cmd_normalize.cpp).
void add_normalize_command(CLI::App& app);

}  // namespace normnet::cli

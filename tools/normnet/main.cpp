// Entry point of the `normnet` command-line tool: parses the subcommand and turns every error into
// one line on stderr and exit code 1. Results go to stdout.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>

#include "commands.h"
#include "normnet/error.h"

namespace {

// Errors are reported on one line, so that scripts can grep them.
int fail(std::string message) {
  std::replace(message.begin(), message.end(), '\n', ' ');
  std::cerr << "normnet: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"normnet: fast, exact, Keras-style deep learning in C++20", "normnet"};
  app.set_version_flag("--version", NORMNET_VERSION);
  app.require_subcommand(1);
  normnet::cli::add_train_command(app);
  normnet::cli::add_evaluate_command(app);
  normnet::cli::add_predict_command(app);
  normnet::cli::add_summary_command(app);
  normnet::cli::add_normalize_command(app);

  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return fail(std::string(e.what()) + " (see normnet --help)");
  } catch (const normnet::Error& e) {
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
  return 0;
}

// Entry point of the `normnet` command-line tool: parses the subcommand and turns every error into
// one line on stderr and exit code 1. Results go to stdout.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "commands.h"
#include "normnet/error.h"

int main(int argc, char** argv) {
  CLI::App app{"normnet: fast, exact, Keras-style deep learning in C++20", "normnet"};
  app.set_version_flag("--version", NORMNET_VERSION);
  app.require_subcommand(1);
  normnet::cli::add_normalize_command(app);

  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "normnet: " << e.what() << " (see normnet --help)\n";
    return 1;
  } catch (const normnet::Error& e) {
    std::cerr << "normnet: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "normnet: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

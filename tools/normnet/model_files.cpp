// Helpers shared by the model subcommands (see model_files.h).
#include "model_files.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "normnet/error.h"
#include "normnet/ops.h"
#include "normnet/threading.h"
#include "normnet/zoo.h"

namespace normnet::cli {

Model model_from_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(detail::str("--config: cannot open '", path, "'"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw IoError(detail::str("--config: cannot read '", path, "'"));
  try {
    return model_from_json(text.str());
  } catch (const Error& e) {
    throw ValueError(detail::str("--config '", path, "': ", e.what()));
  }
}

Model load_compiled_model(const std::string& path) {
  Model model = load_model(path);
  if (!model.optimizer()) model.compile(zoo::fashion_cnn_compile_options());
  return model;
}

datasets::Split first_samples(const datasets::Split& split, int64_t limit, const std::string& option) {
  const int64_t n = split.x.shape()[0];
  if (limit < 0 || limit > n)
    throw ValueError(detail::str(option, ": expected a count from 1 to ", n, " (0 = all), got ", limit));
  if (limit == 0 || limit == n) return split;
  return {ops::slice(split.x, 0, 0, limit), ops::slice(split.y, 0, 0, limit)};
}

void apply_threads(int threads) {
  if (threads < 0) throw ValueError(detail::str("--threads: expected a count >= 0 (0 = default), got ", threads));
  if (threads > 0) set_num_threads(threads);
}

ops::Conv2dAlgorithm conv2d_algorithm_named(const std::string& name, const std::string& command) {
  if (name == "direct") return ops::Conv2dAlgorithm::kDirect;
  if (name == "winograd") return ops::Conv2dAlgorithm::kWinograd;
  throw ValueError(
      detail::str(command, " --conv2d-algorithm: expected 'direct' or 'winograd', got '", name, "'"));
}

std::vector<std::string> class_names(int64_t classes) {
  if (classes == static_cast<int64_t>(datasets::fashion_mnist_class_names().size())) return datasets::fashion_mnist_class_names();
  std::vector<std::string> names;
  for (int64_t c = 0; c < classes; ++c) names.push_back("class " + std::to_string(c));
  return names;
}

int64_t argmax(const float* scores, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (scores[c] > scores[best]) best = c;
  return best;
}

std::string fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

}  // namespace normnet::cli

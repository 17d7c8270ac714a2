// `normnet normalize`: runs ops::l2_normalize on vectors from subnormal to near-overflow scale, in
// one epsilon mode or in all four side by side, so that one sees where TensorFlow's and PyTorch's
// epsilon (and float32 range) break unit length while the exact mode does not.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "normnet/error.h"
#include "normnet/ops/l2_normalize.h"
#include "normnet/tensor.h"
#include "table.h"

namespace normnet::cli {
namespace {

struct NormalizeArgs {
  std::vector<std::string> values;  // one vector, as typed; none = the built-in demo
  bool values_given = false;
  std::string mode = "exact";
  double epsilon = 1e-12;
  bool all_modes = false;
};

constexpr EpsilonMode kAllModes[] = {EpsilonMode::kExact, EpsilonMode::kTensorFlow, EpsilonMode::kPyTorch,
                                     EpsilonMode::kAdditive};

// The demo rows are (1, 2, 2)·scale (norm 3·scale). At 1e-40 every component is a float32
// subnormal and Σv² underflows even the subnormals; at 1e-20 Σv² = 9e-40 is far below the usual
// ε = 1e-12; at 1e20 and 1e37 Σv² overflows float32. The last row is the zero vector.
constexpr double kDemoScales[] = {1e-40, 1e-20, 1, 1e20, 1e37, 0};
constexpr float kDemoBase[] = {1, 2, 2};

// Rows of the result are the vectors to normalize: [count, length].
Tensor demo_vectors() {
  std::vector<float> values;
  for (double scale : kDemoScales)
    for (float component : kDemoBase) values.push_back(static_cast<float>(component * scale));
  return Tensor::from_vector(values, {std::size(kDemoScales), std::size(kDemoBase)});
}

// Parses each number whole (strtod: decimal, hex, inf, nan) and rounds it to float32.
Tensor vectors_from_values(const std::vector<std::string>& values) {
  if (values.empty()) throw ValueError("normalize --values: expected at least one number, got none");
  std::vector<float> floats;
  for (const std::string& text : values) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0')
      throw ValueError(detail::str("normalize --values: '", text, "' is not a number"));
    const auto f = static_cast<float>(value);
    if (std::isfinite(value) && !std::isfinite(f))
      throw ValueError(detail::str("normalize --values: ", text, " is outside the float32 range (|v| <= ",
                                   std::numeric_limits<float>::max(), ")"));
    floats.push_back(f);
  }
  return Tensor::from_vector(floats, {1, static_cast<int64_t>(floats.size())});
}

// ‖v‖ in double: squares of float32 values neither overflow nor underflow double.
double norm(const float* v, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(v[i]) * v[i];
  return std::sqrt(sum);
}

std::string number(double value) {
  std::ostringstream out;
  out << std::setprecision(6) << value;
  return out.str();
}

std::string vector_text(const float* v, int64_t n) {
  std::string text = "[";
  for (int64_t i = 0; i < n; ++i) text += (i ? ", " : "") + number(v[i]);
  return text + "]";
}

// A non-zero input must give a unit vector, a zero input the zero vector; "!" marks the rest.
std::string norm_with_mark(double input_norm, double output_norm) {
  const double expected = input_norm > 0 ? 1.0 : 0.0;
  const bool ok = std::abs(output_norm - expected) <= 1e-6;  // false for NaN too
  return number(output_norm) + (ok ? "" : " !");
}

const char* formula(EpsilonMode mode) {
  switch (mode) {
    case EpsilonMode::kExact:
      return "y = v / norm(v), epsilon unused";
    case EpsilonMode::kTensorFlow:
      return "y = v * rsqrt(max(sum(v^2), epsilon))  (tf.math.l2_normalize)";
    case EpsilonMode::kPyTorch:
      return "y = v / max(norm(v), epsilon)  (torch.nn.functional.normalize)";
    case EpsilonMode::kAdditive:
      return "y = v / sqrt(sum(v^2) + epsilon)  (darknet, NumPyNet)";
  }
  return "";
}

Tensor normalize(const Tensor& vectors, EpsilonMode mode, double epsilon) {
  return ops::l2_normalize(vectors, L2NormalizeOptions().axis({-1}).mode(mode).epsilon(epsilon));
}

// One mode: per vector, v, ‖v‖, y = l2_normalize(v) and ‖y‖.
void print_mode(std::ostream& out, const Tensor& vectors, const Tensor& y, EpsilonMode mode) {
  const int64_t count = vectors.size(0), length = vectors.size(1);
  out << "mode " << epsilon_mode_name(mode) << ": " << formula(mode) << "\n";
  Table table({"v", "norm(v)", "y", "norm(y)"});
  for (int64_t row = 0; row < count; ++row) {
    const float* v = vectors.data<float>() + row * length;
    const float* y_row = y.data<float>() + row * length;
    const double v_norm = norm(v, length);
    table.add({vector_text(v, length), number(v_norm), vector_text(y_row, length),
               norm_with_mark(v_norm, norm(y_row, length))});
  }
  table.print(out);
}

// All modes: one table of ‖y‖ per mode, then each mode's outputs.
void print_all_modes(std::ostream& out, const Tensor& vectors, double epsilon) {
  const int64_t count = vectors.size(0), length = vectors.size(1);
  std::vector<Tensor> outputs;
  std::vector<std::string> header = {"v", "norm(v)"};
  for (EpsilonMode mode : kAllModes) {
    outputs.push_back(normalize(vectors, mode, epsilon));
    header.push_back(epsilon_mode_name(mode));
  }
  out << "norm(y) per mode:\n";
  Table table(header);
  for (int64_t row = 0; row < count; ++row) {
    const float* v = vectors.data<float>() + row * length;
    const double v_norm = norm(v, length);
    std::vector<std::string> cells = {vector_text(v, length), number(v_norm)};
    for (const Tensor& y : outputs)
      cells.push_back(norm_with_mark(v_norm, norm(y.data<float>() + row * length, length)));
    table.add(cells);
  }
  table.print(out);
  for (std::size_t i = 0; i < std::size(kAllModes); ++i) {
    out << "\n";
    print_mode(out, vectors, outputs[i], kAllModes[i]);
  }
}

// Everything is computed before anything is printed, so an error leaves stdout empty.
void run_normalize(const NormalizeArgs& args) {
  const Tensor vectors = args.values_given ? vectors_from_values(args.values) : demo_vectors();
  const EpsilonMode mode = epsilon_mode_from_name(args.mode);
  std::ostringstream out;
  out << "l2_normalize of " << vectors.size(0) << (vectors.size(0) == 1 ? " vector" : " vectors")
      << " of length " << vectors.size(1) << ", epsilon " << number(args.epsilon) << "\n"
      << "(! marks a non-zero v whose y is not unit length within 1e-6, or a zero v whose y is not zero)\n\n";
  if (args.all_modes)
    print_all_modes(out, vectors, args.epsilon);
  else
    print_mode(out, vectors, normalize(vectors, mode, args.epsilon), mode);
  std::cout << out.str();
}

}  // namespace

void add_normalize_command(CLI::App& app) {
  auto args = std::make_shared<NormalizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "normalize",
      "L2-normalize vectors with ops::l2_normalize and print each vector's norm, the output and the "
      "output's norm (default: a demo of rows scaled by 1e-40, 1e-20, 1, 1e20, 1e37 and a zero row)");
  CLI::Option* values = cmd->add_option("--values", args->values,
                                        "one vector, comma-separated numbers, e.g. 1e-20,2e-20,2e-20 "
                                        "(write --values=-1,2 when the first is negative)")
                            ->delimiter(',');
  cmd->add_option("--mode", args->mode, "epsilon mode: exact, tensorflow, pytorch or additive")
      ->capture_default_str();
  cmd->add_option("--epsilon", args->epsilon, "epsilon of the tensorflow, pytorch and additive modes")
      ->capture_default_str();
  CLI::Option* all = cmd->add_flag("--all-modes", args->all_modes, "print every mode side by side");
  all->excludes(cmd->get_option("--mode"));
  cmd->callback([args, values] {
    args->values_given = values->count() > 0;
    run_normalize(*args);
  });
}

}  // namespace normnet::cli

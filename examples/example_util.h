// Small helpers shared by the examples: command-line flags and tensor comparisons.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <normnet/tensor.h>

namespace examples {

// True when `flag` ("--quick") is among the arguments.
inline bool has_flag(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == flag) return true;
  }
  return false;
}

// The argument after `option` ("--out DIR"), or `fallback` when absent.
inline std::string option_value(int argc, char** argv, const std::string& option, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == option) return argv[i + 1];
  }
  return fallback;
}

// max |a − b| over all elements (float32 or float64 tensors of one shape), computed in double.
inline double max_abs_diff(const normnet::Tensor& a, const normnet::Tensor& b) {
  const std::vector<double> x = a.to(normnet::DType::kFloat64).to_vector<double>();
  const std::vector<double> y = b.to(normnet::DType::kFloat64).to_vector<double>();
  if (x.size() != y.size()) return INFINITY;
  double diff = 0;
  for (std::size_t i = 0; i < x.size(); ++i) diff = std::max(diff, std::abs(x[i] - y[i]));
  return diff;
}

// Runs `body`, printing a normnet error (bad data path, ...) and exiting with 1 instead of aborting.
template <class Body>
int run_example(Body body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace examples

// Helpers shared by the train, evaluate, predict and summary subcommands: models from files and
// configs, data subsets, thread counts, the convolution algorithm and number formatting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "normnet/datasets.h"
#include "normnet/model.h"
#include "normnet/ops/conv.h"

namespace normnet::cli {

// A new model (fresh weights) from a Keras-style JSON config file, as `normnet summary --json`
// prints it. Error naming the file when it cannot be read or is not a model config.
[[nodiscard]] Model model_from_config_file(const std::string& path);

// A saved model ready for evaluate/predict: load_model(path), compiled with the default
// model's compile options (Adam, sparse cross-entropy from logits, accuracy) when the file
// holds none.
[[nodiscard]] Model load_compiled_model(const std::string& path);

// The first `limit` samples of `split` (all when limit is 0). ValueError naming `option` when
// limit is negative or larger than the split.
[[nodiscard]] datasets::Split first_samples(const datasets::Split& split, int64_t limit, const std::string& option);

// --threads: n > 0 sets the thread count; 0 keeps NORMNET_NUM_THREADS or every core.
void apply_threads(int threads);

// --conv2d-algorithm: "direct" or "winograd" as ops::Conv2dAlgorithm; anything else is a ValueError
// naming `command` ("train --conv2d-algorithm: expected 'direct' or 'winograd', got 'fft'").
[[nodiscard]] ops::Conv2dAlgorithm conv2d_algorithm_named(const std::string& name,
                                                          const std::string& command);
inline constexpr const char* kConv2dAlgorithmHelp =
    "'direct' or 'winograd' (faster 3x3 convolutions, last bits differ: ops::set_conv2d_algorithm)";

// Names of a classifier's outputs: Fashion-MNIST's for 10 classes, else "class 0", "class 1", ...
[[nodiscard]] std::vector<std::string> class_names(int64_t classes);

// The index of the largest of scores[0, classes) (the first one on ties).
[[nodiscard]] int64_t argmax(const float* scores, int64_t classes);

// `value` with `digits` decimals ("0.9123").
[[nodiscard]] std::string fixed(double value, int digits = 4);

}  // namespace normnet::cli

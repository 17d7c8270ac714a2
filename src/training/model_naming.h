// Names a model's parts for error messages and logs: "Model 'name'" (or "Sequential 'name'"),
// its output layers' names (made unique), and an unbuilt Sequential's single input. Shared by
// compile (compile.cpp) and fit/evaluate/predict (fit.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "normnet/model.h"

namespace normnet::detail {

// "Model 'name'" for a functional model, "<ClassName> 'name'" otherwise.
std::string label(const FunctionalModel& m);

// The name of the layer that produced a symbolic tensor ("?" when it has no origin).
std::string layer_of(const Tensor& t);

// The model as a Sequential that has no graph yet (its Input comes from the data), or null.
const SequentialModel* unbuilt_sequential(const FunctionalModel& m);

// How many inputs fit() takes: 1 for an unbuilt Sequential, else the graph's inputs.
std::size_t input_count(const FunctionalModel& m);

// The output layers' names, made unique with a suffix where one layer gives several outputs.
std::vector<std::string> output_names(const FunctionalModel& m);

// "a, b, c".
std::string join(const std::vector<std::string>& names);

}  // namespace normnet::detail

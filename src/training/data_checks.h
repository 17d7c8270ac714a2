// The checks on the arrays handed to fit, evaluate, predict, train_on_batch and test_on_batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "normnet/model.h"

namespace normnet::detail {

// The number of samples in x (one array per model input) and y (one per output, `outputs` of them;
// skipped when null); throws ValueError for a wrong count, a symbolic, undefined or rank-0 array,
// differing sample counts or no samples, and TypeError for an input of the wrong dtype. `what`
// names the arrays in the message ("x/y", "validation_data").
int64_t check_data(const FunctionalModel& m, const std::string& what, const std::vector<Tensor>& x,
                   const std::vector<Tensor>* y, std::size_t outputs);

}  // namespace normnet::detail

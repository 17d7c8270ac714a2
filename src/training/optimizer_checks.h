// Argument checks and the dtype dispatch shared by the Optimizer base (optimizer.cpp) and the
// optimizers (optimizers.cpp).
#pragma once

#include <cmath>
#include <string>

#include "normnet/error.h"
#include "normnet/tensor.h"

namespace normnet::detail {

// Calls fn(T{}) with T the element type of a float32 or float64 weight.
template <class Fn>
void with_floating(const Tensor& weight, const std::string& who, const Fn& fn) {
  switch (weight.dtype()) {
    case DType::kFloat32:
      fn(float{});
      break;
    case DType::kFloat64:
      fn(double{});
      break;
    default:
      throw ValueError(str(who, ": can only update float32 or float64 weights, got ",
                           dtype_name(weight.dtype()), " of shape ", weight.shape()));
  }
}

inline void check_finite_nonnegative(double value, const char* who, const char* arg) {
  if (!std::isfinite(value) || value < 0.0) {
    throw ValueError(str(who, ": expected ", arg, " to be a finite number >= 0, got ", value));
  }
}

// β-like factors: 0 <= value < 1 (β = 1 would freeze the moment and divide by 1 − βᵗ = 0).
inline void check_unit_open(double value, const char* who, const char* arg) {
  if (!(value >= 0.0 && value < 1.0))
    throw ValueError(str(who, ": expected ", arg, " in [0, 1), got ", value));
}

inline void check_unit_closed(double value, const char* who, const char* arg) {
  if (!(value >= 0.0 && value <= 1.0))
    throw ValueError(str(who, ": expected ", arg, " in [0, 1], got ", value));
}

}  // namespace normnet::detail

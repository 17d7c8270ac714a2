// Conversions to and from uint8, the storage dtype of image bytes (kernels/cpu/unary.h holds
// the casts among float32, float64 and int64). Raw loops: no allocation, no throwing.
#pragma once

#include <cstdint>
#include <type_traits>

namespace normnet::kernels::cpu {

// x → uint8: truncate toward zero, then saturate to [0, 255]; NaN → 0. The same rule as the
// float → int64 cast (truncate, saturate, NaN → 0) and as TensorFlow's saturate_cast for the
// range; a plain C++ cast of an out-of-range value is undefined behaviour, and NumPy's astype
// wraps integers modulo 256 (300 → 44) where this gives 255.
template <class From>
inline uint8_t to_uint8(From v) {
  if constexpr (std::is_integral_v<From>) {
    return v <= 0 ? uint8_t{0} : (v >= 255 ? uint8_t{255} : static_cast<uint8_t>(v));
  } else {
    if (!(v > From(0))) return 0;  // negative, −0, and NaN
    return v >= From(255) ? uint8_t{255} : static_cast<uint8_t>(v);
  }
}

// y [n] = to_uint8(x [n])
template <class From>
void cast_to_uint8(const From* x, uint8_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = to_uint8(x[i]);
}

// y [n] = x [n] (exact: every byte value is representable in float32, float64 and int64)
template <class To>
void cast_from_uint8(const uint8_t* x, To* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<To>(x[i]);
}

}  // namespace normnet::kernels::cpu

// Errors thrown by normnet for every user mistake (bad shapes, bad values, bad files).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "normnet/shape.h"

namespace normnet {

// Base of every error normnet throws on bad input. The message names who failed (op, layer or
// file), what was expected and what arrived, with full shapes.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Shapes that do not fit together (matmul inner dimension, broadcasting, layer inputs).
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A value that is out of its domain (negative rate, axis out of range, label too large).
class ValueError : public Error {
 public:
  using Error::Error;
};

// A tensor of a dtype the op cannot compute with (a uint8 storage tensor given to arithmetic).
// A ValueError, so code that catches ValueError for bad arguments still catches it.
class TypeError : public ValueError {
 public:
  using ValueError::ValueError;
};

// A file that is missing, unreadable, truncated or corrupt.
class IoError : public Error {
 public:
  using Error::Error;
};

namespace detail {
// Builds a message from streamable parts: str("matmul: shapes ", a, " and ", b).
// (g++ 12 has no std::format.)
inline void append(std::ostream& out, const Shape& shape) { out << shape_to_string(shape); }
template <class T>
void append(std::ostream& out, const T& value) {
  out << value;
}
template <class... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream out;
  (append(out, parts), ...);
  return out.str();
}
}  // namespace detail

}  // namespace normnet

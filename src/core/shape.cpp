// Shape helpers: printing, element counts, axis normalization.
#include "normnet/shape.h"

#include <sstream>

#include "normnet/error.h"

namespace normnet {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
  }
  return "unknown";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
  }
  return 8;
}

std::string shape_to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out << ", ";
    if (shape[i] == kUnknownDim) out << "None";
    else out << shape[i];
  }
  out << ']';
  return out.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    n *= d;
  }
  return n;
}

bool shape_has_unknown(const Shape& shape) {
  for (int64_t d : shape) if (d == kUnknownDim) return true;
  return false;
}

int normalize_axis(int64_t axis, std::size_t rank, const char* who, const Shape& shape) {
  const auto r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) {
    throw ValueError(detail::str(who, ": axis ", axis, " out of range for shape ", shape));
  }
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

}  // namespace normnet

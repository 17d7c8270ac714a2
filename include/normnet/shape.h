// Shapes and element types of tensors.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace normnet {

// Row-major extents. In a symbolic tensor the first (batch) extent may be kUnknownDim (-1).
using Shape = std::vector<int64_t>;
inline constexpr int64_t kUnknownDim = -1;

// kUInt8 is a *storage* dtype (images as bytes, as Keras's Input(dtype="uint8") and torchvision
// keep them): tensors of it can be created, copied, sliced, gathered into batches, reshaped,
// concatenated, saved and cast, but every arithmetic op rejects it with a TypeError that points
// at ops::cast or layers::Rescaling.
enum class DType { kFloat32, kFloat64, kInt64, kUInt8 };

// "float32", "float64", "int64", "uint8".
[[nodiscard]] const char* dtype_name(DType dtype);
// Bytes per element: 4, 8, 8, 1.
[[nodiscard]] std::size_t dtype_size(DType dtype);
// float32 and float64: the dtypes that carry gradients.
[[nodiscard]] inline bool is_floating(DType dtype) { return dtype == DType::kFloat32 || dtype == DType::kFloat64; }

// "[32, 784]"; an unknown extent prints as "None", as Keras does.
[[nodiscard]] std::string shape_to_string(const Shape& shape);
// Product of the extents (1 for a scalar); -1 when any extent is unknown.
[[nodiscard]] int64_t shape_numel(const Shape& shape);
// True when some extent is kUnknownDim.
[[nodiscard]] bool shape_has_unknown(const Shape& shape);
// Maps a possibly negative axis into [0, rank); throws ValueError naming `who` when out of range.
[[nodiscard]] int normalize_axis(int64_t axis, std::size_t rank, const char* who, const Shape& shape);

}  // namespace normnet

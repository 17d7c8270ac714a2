// Helpers shared by the built-in layers: config fields (initializers, regularizers, dtypes,
// padding), the common base options, and masks (float32 0/1 tensors, 1 = keep).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "normnet/config.h"
#include "normnet/initializers.h"
#include "normnet/layer.h"
#include "normnet/ops/conv.h"
#include "normnet/regularizers.h"

namespace normnet::layers::detail {

using normnet::detail::str;

// "Dense 'dense_1'": how messages name a layer.
[[nodiscard]] std::string who(const Layer& layer);

// Config values: the object's get_config() (null for unnamed custom callables) and back; a null
// or missing entry gives `fallback`.
[[nodiscard]] Config to_config(const Initializer& init);
[[nodiscard]] Config to_config(const Regularizer& reg);
[[nodiscard]] Initializer initializer_from(const Config& config, const char* key, Initializer fallback);
[[nodiscard]] Regularizer regularizer_from(const Config& config, const char* key);
[[nodiscard]] DType dtype_from_name(const std::string& name);
[[nodiscard]] DType dtype_from(const Config& config);
[[nodiscard]] const char* padding_name(ops::Padding padding);
// Throws ValueError naming `who` unless name is "valid" or "same".
[[nodiscard]] ops::Padding padding_from_name(const std::string& name, const std::string& who);

// An integer config field, `where` naming it in messages ("Conv2D config 'filters'"): a JSON
// integer within [lo, hi], else a ValueError. A float (3.5, or 2e109, which a plain get<int64_t>()
// would convert with undefined behaviour), a string or an out-of-range integer is refused.
[[nodiscard]] int64_t int_from(const Config& value, const std::string& where, int64_t lo, int64_t hi);
// An int field (within int's range); a pair [a, b] of them; an int or a list of ints.
[[nodiscard]] int int32_from(const Config& value, const std::string& where);
[[nodiscard]] std::array<int, 2> int_pair_from(const Config& value, const std::string& where);
[[nodiscard]] std::vector<int> ints_from(const Config& value, const std::string& where);

// Layer::get_config() plus what every built-in layer shares ("activity_regularizer" when set,
// "dtype" when the layer has one).
[[nodiscard]] Config base_config(const Layer& layer, Config base);
// Applies "name", "trainable" and "activity_regularizer" of a config to a rebuilt layer.
void apply_base_config(Layer& layer, const Config& config);

// A floating input converted to the layer's dtype (Keras's autocast); other dtypes unchanged.
[[nodiscard]] Tensor autocast(const Tensor& x, DType dtype);

// Masks are float32 tensors of 0 (masked) and 1 (kept), of the input's shape without its last
// (feature) axis: [N, T] for x [N, T, C].
// The mask as a multiplier for x: cast to x's dtype, with a trailing axis of 1 when it has one
// axis fewer than x. Throws ShapeError naming `layer` when the shapes do not fit.
[[nodiscard]] Tensor mask_multiplier(const Layer& layer, const Tensor& x, const Tensor& mask);
// 1 where any element of x along its last axis differs from `value`, else 0 (float32).
[[nodiscard]] Tensor any_not_equal_last_axis(const Tensor& x, double value);
// A float32 tensor of ones of `shape` (symbolic when `symbolic`).
[[nodiscard]] Tensor ones_mask(const Shape& shape, bool symbolic);
// Elementwise AND of 0/1 masks (their product); undefined masks are skipped; undefined if all are.
[[nodiscard]] Tensor mask_and(const std::vector<Tensor>& masks);

// Shape helpers for messages and checks.
[[nodiscard]] bool dims_compatible(int64_t a, int64_t b);  // equal, or one is unknown

}  // namespace normnet::layers::detail

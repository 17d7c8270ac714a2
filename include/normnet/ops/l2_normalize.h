// L2 normalization: y = v / ‖v‖ for each vector v along the chosen axes.
//
//   auto y = ops::l2_normalize(x);                                        // last axis, exact
//   auto y = ops::l2_normalize(x, L2NormalizeOptions().axis({1, 2}));     // over H and W
//   auto y = ops::l2_normalize(x, L2NormalizeOptions().epsilon(1e-12).mode(EpsilonMode::kTensorFlow));
//
// Modes (each backward is the exact derivative of its own forward):
//   kExact (default): y = v/‖v‖ for every non-zero finite v, from subnormal components to ones
//     whose squares overflow float32 (the norm is accumulated in double after rescaling by max|v|).
//     A zero vector maps to zero with gradient zero: v/‖v‖ has no derivative at 0, and we take
//     the zero vector as a fixed point (finite, never NaN; docs/l2-normalization.md explains why
//     and how TensorFlow and PyTorch differ there). `epsilon` is unused in this mode.
//   kTensorFlow: y = v · rsqrt(max(Σv², ε))          (tf.math.l2_normalize)
//   kPyTorch:    y = v / max(‖v‖, ε)                  (torch.nn.functional.normalize, Keras 3)
//   kAdditive:   y = v / sqrt(Σv² + ε)                (darknet, NumPyNet)
#pragma once

#include <string>
#include <vector>

#include "normnet/tensor.h"

namespace normnet {

enum class EpsilonMode { kExact, kTensorFlow, kPyTorch, kAdditive };

// "exact", "tensorflow", "pytorch", "additive" (and back; throws ValueError on an unknown name).
[[nodiscard]] const char* epsilon_mode_name(EpsilonMode mode);
[[nodiscard]] EpsilonMode epsilon_mode_from_name(const std::string& name);

class L2NormalizeOptions {
 public:
  // Axes to normalize over (their product is one vector); negative count from the end.
  L2NormalizeOptions& axis(std::vector<int> axes) { axes_ = std::move(axes); all_axes_ = whole_ = false; return *this; }
  // Each sample (axis 0) is normalized over all its other axes.
  L2NormalizeOptions& all_axes() { all_axes_ = true; whole_ = false; return *this; }
  // The whole tensor is one vector (NumPyNet's axis=None).
  L2NormalizeOptions& whole_tensor() { whole_ = true; all_axes_ = false; return *this; }
  L2NormalizeOptions& epsilon(double eps) { epsilon_ = eps; return *this; }
  L2NormalizeOptions& mode(EpsilonMode mode) { mode_ = mode; return *this; }

  [[nodiscard]] const std::vector<int>& axes() const { return axes_; }
  [[nodiscard]] bool is_all_axes() const { return all_axes_; }
  [[nodiscard]] bool is_whole_tensor() const { return whole_; }
  [[nodiscard]] double get_epsilon() const { return epsilon_; }
  [[nodiscard]] EpsilonMode get_mode() const { return mode_; }

 private:
  std::vector<int> axes_{-1};
  bool all_axes_ = false;
  bool whole_ = false;
  double epsilon_ = 1e-12;
  EpsilonMode mode_ = EpsilonMode::kExact;
};

namespace ops {
// Normalizes x (float32 or float64) along opts' axes; see the modes above. Throws ValueError
// for an axis out of range ("ops::l2_normalize: axis 3 out of range for shape [2, 5]"), a
// repeated axis, or a negative epsilon.
[[nodiscard]] Tensor l2_normalize(const Tensor& x, L2NormalizeOptions opts = {});
}  // namespace ops

}  // namespace normnet

// L2Normalization (and UnitNormalization, Keras 3's name for the same layer): y = scale·x/‖x‖
// along chosen axes, with every option of ops::l2_normalize (normnet/ops/l2_normalize.h).
//
//   auto y = layers::L2Normalization()(x);                                    // last axis, exact
//   auto y = layers::L2Normalization().axis({1, 2}).epsilon(1e-12).mode(EpsilonMode::kTensorFlow)(x);
//   auto y = layers::L2Normalization().learnable_scale(20.0)(conv4_3);        // ParseNet / SSD
//   auto y = layers::UnitNormalization()(x);                                  // Keras 3 name
//
// Learnable scale: `.learnable_scale(init)` adds a trainable weight "scale" initialized to
// `init`, one per channel (shape [C], C = the input's last axis, channels_last) as in ParseNet
// (Liu et al. 2015) and SSD's conv4_3 norm, or a single scalar (shape []) with
// `.learnable_scale(init, /*per_channel=*/false)`. y_c = scale_c · l2_normalize(x)_c; the
// gradient comes from autograd and is exact for unequal per-channel scales.
//
// Masks: with an input mask m (float32 0/1, [N, T] for x [N, T, C]) the layer computes
// y = m · scale · l2_normalize(m · x): masked steps are zero in the output, take no part in the
// norm when the normalized axes cross the time axis, and get zero gradient. The mask propagates.
#pragma once

#include <string>
#include <vector>

#include "normnet/layer.h"
#include "normnet/ops/l2_normalize.h"

namespace normnet::layers {

class L2NormalizationLayer : public Layer {
 public:
  // class_name: "L2Normalization" or "UnitNormalization".
  explicit L2NormalizationLayer(std::string class_name = "L2Normalization");
  void build(const std::vector<Shape>& input_shapes) override;
  Tensor call(const Tensor& x, const CallArgs& args) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const std::string& class_name, const Config& config);

  // Defaults as ops::l2_normalize: axis {-1}, epsilon 1e-12, EpsilonMode::kExact.
  L2NormalizeOptions options;
  bool learnable_scale = false;
  double scale_init = 1.0;
  bool per_channel = true;
  Regularizer scale_regularizer;
  DType dtype = DType::kFloat32;  // of the scale weight; the computation keeps the input's dtype
  Tensor scale;  // set by build() when learnable_scale
};

// The setters shared by L2Normalization and UnitNormalization.
template <class Self>
class L2NormalizationBuilder : public LayerBuilder<Self, L2NormalizationLayer> {
 public:
  using LayerBuilder<Self, L2NormalizationLayer>::LayerBuilder;
  // Axes normalized together (negative count from the end); validated against the input rank
  // when the layer is built.
  Self& axis(std::vector<int> axes);
  Self& axis(int axis) { return this->axis(std::vector<int>{axis}); }
  // Each sample normalized over all its non-batch axes.
  Self& all_axes();
  // The whole batch as one vector (NumPyNet's axis=None; mixes samples: rarely what a layer wants).
  Self& whole_tensor();
  Self& epsilon(double epsilon);
  Self& mode(EpsilonMode mode);
  Self& mode(const std::string& name);  // "exact", "tensorflow", "pytorch", "additive"
  Self& learnable_scale(double init = 1.0, bool per_channel = true);
  Self& scale_regularizer(Regularizer reg);
  Self& dtype(DType dtype);
};

class L2Normalization : public L2NormalizationBuilder<L2Normalization> {
 public:
  L2Normalization();
};

// Keras 3's UnitNormalization: the same layer under its class name (default axis -1). Keras 3
// computes x / max(‖x‖, 1e-12); that is `.mode(EpsilonMode::kPyTorch)`, while the default here
// is the exact mode (the two agree wherever ‖x‖ >= 1e-12).
class UnitNormalization : public L2NormalizationBuilder<UnitNormalization> {
 public:
  UnitNormalization();
};

extern template class L2NormalizationBuilder<L2Normalization>;
extern template class L2NormalizationBuilder<UnitNormalization>;

}  // namespace normnet::layers

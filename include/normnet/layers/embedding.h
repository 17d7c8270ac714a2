// Sequence layers and masks: Embedding (with mask_zero), Masking, GlobalAveragePooling1D.
//
// A mask is a float32 tensor of 0 (masked step) and 1 (kept step) with the shape of the input
// without its feature axis: for x [N, T, C] the mask is [N, T]. Layers that produce one attach
// it to their output (Tensor::mask()); layers with supports_masking pass it on; mask-aware
// reductions ignore masked steps.
//
//   auto tokens = normnet::Input({T}, DType::kInt64);
//   auto e = layers::Embedding(vocab, 16).mask_zero(true)(tokens);   // mask: tokens != 0
//   auto u = layers::L2Normalization()(e);                           // zero at masked steps
//   auto v = layers::GlobalAveragePooling1D()(u);                    // mean over kept steps only
#pragma once

#include "normnet/layer.h"

namespace normnet::layers {

// Rows of a trainable table `embeddings` [input_dim, output_dim] picked by integer indices of
// any shape: [N, ...] -> [N, ..., output_dim]. Floating indices are truncated to int64 (Keras
// casts them too); an index outside [0, input_dim) throws ValueError. With mask_zero the mask
// is (indices != 0), float32 of the indices' shape, and index 0 is reserved for padding (so
// input_dim is the vocabulary size + 1, as in Keras).
class EmbeddingLayer : public Layer {
 public:
  EmbeddingLayer(int64_t input_dim, int64_t output_dim);
  void build(const std::vector<Shape>& input_shapes) override;
  Tensor call(const Tensor& x, const CallArgs& args) override;
  std::vector<Tensor> compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  int64_t input_dim;
  int64_t output_dim;
  bool mask_zero = false;
  Initializer embeddings_initializer = initializers::RandomUniform(-0.05, 0.05);  // Keras's "uniform"
  Regularizer embeddings_regularizer;
  DType dtype = DType::kFloat32;
  Tensor embeddings;  // set by build()
};

class Embedding : public LayerBuilder<Embedding, EmbeddingLayer> {
 public:
  Embedding(int64_t input_dim, int64_t output_dim);
  Embedding& mask_zero(bool mask_zero);
  Embedding& embeddings_initializer(Initializer init);
  Embedding& embeddings_regularizer(Regularizer reg);
  Embedding& dtype(DType dtype);
};

// Masks the time steps whose features all equal mask_value: mask = any(x != mask_value) over the
// last axis ([N, T] for x [N, T, C]); the output is x with masked steps set to zero (Keras).
class MaskingLayer : public Layer {
 public:
  explicit MaskingLayer(double mask_value = 0.0);
  Tensor call(const Tensor& x, const CallArgs& args) override;
  std::vector<Tensor> compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  double mask_value;
};

class Masking : public LayerBuilder<Masking, MaskingLayer> {
 public:
  explicit Masking(double mask_value = 0.0);
};

// Mean over the time axis of x [N, T, C] -> [N, C] (or [N, 1, C] with keepdims). With a mask
// [N, T] only kept steps count: y = Σ_t m_t·x_t / Σ_t m_t. A sequence whose steps are all
// masked gives y = 0 (Keras divides 0 by 0 there and returns NaN). The output has no mask.
class GlobalAveragePooling1DLayer : public Layer {
 public:
  GlobalAveragePooling1DLayer();
  Tensor call(const Tensor& x, const CallArgs& args) override;
  std::vector<Tensor> compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) override;
  [[nodiscard]] Config get_config() const override;
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  bool keepdims = false;
};

class GlobalAveragePooling1D : public LayerBuilder<GlobalAveragePooling1D, GlobalAveragePooling1DLayer> {
 public:
  GlobalAveragePooling1D();
  GlobalAveragePooling1D& keepdims(bool keepdims);
};

}  // namespace normnet::layers

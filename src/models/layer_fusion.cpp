// Conv2D(relu) → MaxPooling2D as one op (see layer_fusion.h).
#include "models/layer_fusion.h"

#include <typeinfo>

#include "normnet/layers/conv.h"
#include "normnet/ops/conv.h"

namespace normnet::detail {
namespace {

const layers::Conv2DLayer* as_conv_relu(const Layer& layer) {
  if (typeid(layer) != typeid(layers::Conv2DLayer)) return nullptr;  // a subclass may override call
  const auto& conv = static_cast<const layers::Conv2DLayer&>(layer);
  return conv.activation == "relu" && !conv.activity_regularizer() ? &conv : nullptr;
}

const layers::Pooling2DLayer* as_max_pool(const Layer& layer) {
  if (typeid(layer) != typeid(layers::Pooling2DLayer)) return nullptr;
  const auto& pool = static_cast<const layers::Pooling2DLayer&>(layer);
  return pool.kind == layers::Pooling2DLayer::Kind::kMax && !pool.activity_regularizer() ? &pool : nullptr;
}

}  // namespace

bool conv_relu_max_pool_fusible(const GraphNode& conv, const GraphNode& pool) {
  if (!as_conv_relu(*conv.layer) || !as_max_pool(*pool.layer)) return false;
  if (conv.inputs.size() != 1 || conv.outputs.size() != 1 || pool.inputs.size() != 1) return false;
  const auto out = conv.outputs[0].lock();
  return out && pool.inputs[0].impl() == out;
}

Tensor run_conv_relu_max_pool(const Layer& conv_layer, const Layer& pool_layer, const Tensor& x) {
  const layers::Conv2DLayer* conv = as_conv_relu(conv_layer);
  const layers::Pooling2DLayer* pool = as_max_pool(pool_layer);
  if (!conv || !pool || !conv->built() || !pool->built() || !x.defined() || x.is_symbolic() || x.mask().defined()) {
    return Tensor();
  }
  if (x.dtype() != conv->dtype || x.dim() != 4 || x.size(3) != conv->kernel.size(2)) return Tensor();
  // The graph's shapes were checked when the layers were called on symbolic inputs, and the
  // model checks that x has them, so the op's own shape checks pass here.
  return ops::conv2d_relu_max_pool2d(x, conv->kernel, conv->bias, conv->strides, conv->padding, pool->pool_size,
                                     pool->effective_strides(), pool->padding);
}

}  // namespace normnet::detail

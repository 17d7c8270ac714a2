// Layer pairs of a functional graph that run as one fused op: a Conv2D with activation "relu"
// whose output feeds only a MaxPooling2D runs ops::conv2d_relu_max_pool2d (the same values and
// gradients, without the activation-sized ReLU output and its passes). FunctionalModel decides
// which graph steps pair up when it traces the graph and runs the pair at call time.
#pragma once

#include "normnet/layer.h"

namespace normnet::detail {

// True when `conv` is exactly a Conv2D layer with activation "relu" and `pool` exactly a max
// MaxPooling2D layer, neither with an activity regularizer (whose penalty needs the layer's own
// output), and `pool`'s single input is `conv`'s single output. The caller checks that nothing
// else reads that output (another layer, a model output, a graph loss).
[[nodiscard]] bool conv_relu_max_pool_fusible(const GraphNode& conv, const GraphNode& pool);

// Runs the pair on x, the Conv2D's input. Returns an undefined tensor when x does not qualify
// (symbolic, masked, not the layer's dtype or channel count, layers not built): the caller then
// runs the two layers one after the other, which also gives the layers' own error messages.
[[nodiscard]] Tensor run_conv_relu_max_pool(const Layer& conv, const Layer& pool, const Tensor& x);

}  // namespace normnet::detail

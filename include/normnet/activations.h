// Activation functions by Keras name, as layers take them (Dense(64).activation("relu"),
// layers::Activation("softmax")). Each is composed from ops, so it accepts symbolic tensors and
// its gradient comes from autograd.
//
//   Tensor h = activations::apply("relu", x);
//   activations::validate(name, "Dense 'dense'");   // at construction: throws for a typo
//
// Names (Keras's formulas; kinks take the gradient named):
//   linear     x  (also "" and "None")
//   relu       max(x, 0); gradient 0 at x = 0
//   relu6      min(max(x, 0), 6); gradient 0 at 0 and 6 (as jax.nn.relu6)
//   leaky_relu max(x, 0.2·x) (Keras 3's default slope 0.2); gradient 1 at 0
//   elu        x if x > 0 else exp(x) − 1 (α = 1); gradient 1 at 0 (TensorFlow's EluGrad)
//   selu       λ·elu(x, α), α = 1.6732632423543772, λ = 1.0507009873554805
//   sigmoid    1/(1 + e⁻ˣ)         tanh   tanh x
//   softmax    exp(x)/Σexp(x) over the last axis      log_softmax  its log
//   softplus   log(1 + eˣ)         softsign  x/(1 + |x|)
//   silu       x·sigmoid(x) (also "swish")            mish  x·tanh(softplus(x))
//   exponential eˣ
// Not offered: gelu (needs erf, not an op yet) and hard_sigmoid (tf.keras 2 and Keras 3 disagree
// on its slope).
#pragma once

#include <string>
#include <vector>

#include "normnet/tensor.h"

namespace normnet::activations {

// The activation `name` applied elementwise (softmax family: over the last axis). Throws
// ValueError for an unknown name.
[[nodiscard]] Tensor apply(const std::string& name, const Tensor& x);

// Throws ValueError "<who>: unknown activation 'foo' (expected one of linear, relu, ...)" unless
// `name` is one of names() (or "" / "None", which mean linear).
void validate(const std::string& name, const std::string& who);

// True when apply() knows `name`.
[[nodiscard]] bool is_known(const std::string& name);

// The supported names, in the order error messages list them.
[[nodiscard]] const std::vector<std::string>& names();

}  // namespace normnet::activations

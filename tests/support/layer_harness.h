// The shared layer-contract harness (Keras's layer_test): every built-in layer runs through
// check_layer_contract, and layer tests check gradients with gradcheck_layer.
//
//   LayerCase c{"Dense", [] { return LayerRef(layers::Dense(3)); }, {Tensor::randn({2, 4}, 1)}};
//   EXPECT_TRUE(check_layer_contract(c));
//
// Gradient checks of weights: gradcheck() perturbs copies of its inputs, so the layer must read
// those copies. Built-in layers keep their weights in public fields (DenseLayer::kernel, ...),
// so gradcheck_layer builds the layer (in float64: give it .dtype(DType::kFloat64)), then for
// each evaluation points the listed fields at gradcheck's tensors, and restores them at the end.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "normnet/layer.h"
#include "support/gradcheck.h"

namespace normnet::testing {

struct LayerCase {
  std::string label;
  // Makes a fresh, unbuilt layer with the options under test.
  std::function<LayerRef()> make;
  // Real inputs, batch axis first (one tensor for most layers).
  std::vector<Tensor> inputs;
  // Optional masks of the inputs (float32 0/1, the input's shape without its last axis).
  std::vector<Tensor> masks;
  // Whether the output carries a mask (checked when masks are given or this is true), and its
  // expected values (if given).
  bool output_has_mask = false;
  Tensor expected_output_mask;
  // Whether the layer gives the same output for the same input in inference (false for none of
  // the built-ins; Dropout is identity there).
  bool deterministic = true;
};

// Checks, for a LayerCase:
//  1. Called on symbolic tensors of the inputs' shapes with an unknown batch, the layer's output
//     shapes equal the real outputs' shapes with the batch replaced by None, and dtypes agree.
//  2. get_config() survives a JSON text round trip and layers::from_config rebuilds a layer of
//     the same class whose get_config() is identical; with the original's weights copied in,
//     the rebuilt layer gives the same outputs.
//  3. With masks (or output_has_mask): the output mask is present (or absent) as the case says,
//     with the expected values, both in eager and in symbolic calls.
//  4. A backward pass from the outputs reaches every trainable weight.
//  5. In a model of Inputs, Model::save then load_model predicts bit for bit (unless the layer is
//     an unregistered Lambda).
::testing::AssertionResult check_layer_contract(const LayerCase& c);

// Copies the values of `from`'s weights into `to`'s (same count, shapes and dtypes).
::testing::AssertionResult copy_weights(const Layer& from, Layer& to);

// gradcheck of output 0 of layer(inputs) with respect to every float64 input and to the weights
// held by `weight_fields` (pointers to the layer's public weight fields). The layer is built on
// the inputs first. `masks` (optional) are attached to the inputs at each evaluation.
::testing::AssertionResult gradcheck_layer(Layer& layer, const std::vector<Tensor>& inputs,
                                           const std::vector<Tensor*>& weight_fields,
                                           const GradCheckOptions& opts = {},
                                           const std::vector<Tensor>& masks = {}, bool training = false);

}  // namespace normnet::testing

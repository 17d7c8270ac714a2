// Every built-in layer (DESIGN.md §4), and the registry that rebuilds a layer from its config.
//
//   Config saved = {{"class_name", layer->class_name()}, {"config", layer->get_config()}};
//   std::shared_ptr<Layer> copy = layers::from_config(saved);   // same options, fresh weights
//
// Custom layers join the registry with a factory from their config:
//   layers::register_class("L2Layer", [](const Config& c) { return std::make_shared<L2Layer>(c.value("axis", -1)); });
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "normnet/layer.h"
#include "normnet/layers/conv.h"
#include "normnet/layers/core.h"
#include "normnet/layers/embedding.h"
#include "normnet/layers/lambda.h"
#include "normnet/layers/merge.h"
#include "normnet/layers/normalization.h"
#include "normnet/layers/preprocessing.h"
#include "normnet/layers/regularization.h"

namespace normnet::layers {

// Builds a layer from its get_config() (the name, trainable and options are restored; weights
// are created fresh when the layer is first called).
using LayerFactory = std::function<std::shared_ptr<Layer>(const Config& config)>;

// Registers (or replaces) the factory of `class_name`. The built-in layers are registered from
// the start: Dense, Activation, Flatten, Reshape, Dropout, Lambda, Conv2D, MaxPooling2D,
// AveragePooling2D, GlobalAveragePooling2D, Embedding, Masking, GlobalAveragePooling1D,
// L2Normalization, UnitNormalization, ActivityRegularization, Concatenate, Add, Rescaling.
void register_class(const std::string& class_name, LayerFactory factory);
[[nodiscard]] bool is_registered_class(const std::string& class_name);
// The registered class names, sorted.
[[nodiscard]] std::vector<std::string> registered_classes();

// Rebuilds a layer from {"class_name": ..., "config": {...}}. Throws ValueError for a missing
// field or an unknown class_name (naming it and the layer's name).
[[nodiscard]] std::shared_ptr<Layer> from_config(const Config& class_and_config);

}  // namespace normnet::layers

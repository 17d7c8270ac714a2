// normnet::Input and its InputLayer.
#include "models/input_layer.h"

#include "normnet/model.h"

namespace normnet {

InputLayer::InputLayer(Shape shape, DType dtype) : Layer("InputLayer", "input"), shape_(std::move(shape)), dtype_(dtype) {}

std::vector<Tensor> InputLayer::call_multi(const std::vector<Tensor>& xs, const CallArgs&) { return xs; }

Config InputLayer::get_config() const {
  Config shape = Config::array();
  for (int64_t d : shape_) shape.push_back(d == kUnknownDim ? Config(nullptr) : Config(d));
  return Config{{"batch_input_shape", shape}, {"dtype", dtype_name(dtype_)}, {"name", name()}};
}

Tensor Input(Shape shape, DType dtype) { return Input(std::move(shape), dtype, ""); }

Tensor Input(Shape shape, DType dtype, const std::string& name) {
  for (int64_t d : shape) {
    if (d < 1) {
      throw ShapeError(detail::str("Input: every extent of the shape (without the batch axis) must be >= 1, got ",
                                   shape));
    }
  }
  Shape full = shape;
  full.insert(full.begin(), kUnknownDim);
  auto layer = std::make_shared<InputLayer>(full, dtype);
  if (!name.empty()) layer->set_name(name);
  layer->built_ = true;
  Tensor t = Tensor::symbolic(full, dtype);
  auto node = std::make_shared<detail::GraphNode>();
  node->layer = layer;
  node->outputs.push_back(t.impl());
  t.impl()->origin = std::make_shared<detail::GraphOrigin>(detail::GraphOrigin{node, 0});
  layer->inbound_nodes_.push_back(node);
  return t;
}

}  // namespace normnet

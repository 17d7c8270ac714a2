// Names of a model's parts for messages and logs (see model_naming.h).
#include "training/model_naming.h"

#include <algorithm>

#include "normnet/error.h"

namespace normnet::detail {

std::string label(const FunctionalModel& m) {
  return str(m.class_name() == "Functional" ? "Model" : m.class_name(), " '", m.name(), "'");
}

std::string layer_of(const Tensor& t) {
  return t.defined() && t.impl()->origin ? t.impl()->origin->node->layer->name() : std::string("?");
}

const SequentialModel* unbuilt_sequential(const FunctionalModel& m) {
  const auto* seq = dynamic_cast<const SequentialModel*>(&m);
  return seq && !seq->has_graph() ? seq : nullptr;
}

std::size_t input_count(const FunctionalModel& m) {
  return unbuilt_sequential(m) ? 1 : m.graph_inputs().size();
}

std::vector<std::string> output_names(const FunctionalModel& m) {
  if (const auto* seq = unbuilt_sequential(m)) {
    if (seq->stack().empty()) throw ValueError(str(label(m), ": has no layers; add some before compile()"));
    return {seq->stack().back()->name()};
  }
  std::vector<std::string> names;
  for (std::size_t i = 0; i < m.graph_outputs().size(); ++i) {
    std::string name = layer_of(m.graph_outputs()[i]);
    if (std::find(names.begin(), names.end(), name) != names.end()) name = str(name, "_", i);
    names.push_back(name);
  }
  return names;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace normnet::detail

// Model::summary: Keras's table (tf.keras 2.x print_summary, ported line for line): layer (type),
// output shape, params, "Connected to" for graphs that are not a plain chain, totals; with
// expand_nested the layers of nested models are listed inside a "|" box.
#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "normnet/model.h"

namespace normnet {
namespace {

using detail::GraphNode;

// ---- the graph around one model ----

// One alive call of a layer on symbolic tensors: its index among the layer's nodes (Keras's
// node_index) and its tensors.
struct NodeView {
  const GraphNode* node = nullptr;
  std::size_t index = 0;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
};

const GraphNode* node_of(const Tensor& t) {
  return t.defined() && t.impl()->origin ? t.impl()->origin->node.get() : nullptr;
}

std::vector<NodeView> nodes_of(const Layer& layer) {
  std::vector<NodeView> views;
  for (std::size_t k = 0; k < layer.inbound_node_count(); ++k) {
    try {
      NodeView view{nullptr, k, layer.inputs_of_node(k), layer.outputs_of_node(k)};
      if (!view.outputs.empty()) view.node = node_of(view.outputs[0]);
      if (view.node) views.push_back(std::move(view));
    } catch (const Error&) {
      // A node some of whose outputs no longer exist belongs to no live model.
    }
  }
  return views;
}

// "dense[0][0]": the producer of t, the index of its node, which output. (tf.keras counts a
// functional model's own construction as its node 0, so a nested model called once shows
// "encoder[1][0]" there; normnet's models record no such node and show "encoder[0][0]".)
std::string connection(const Tensor& t) {
  const GraphNode* node = node_of(t);
  std::size_t node_index = 0;
  for (const NodeView& view : nodes_of(*node->layer)) {
    if (view.node == node) node_index = view.index;
  }
  return detail::str(node->layer->name(), "[", node_index, "][", t.impl()->origin->index, "]");
}

// The nodes between a model's inputs and outputs, in topological order (inputs first), with
// Keras's depths (outputs at 0, a node one deeper than its deepest consumer, a shared layer's
// nodes at least as deep as the layer).
struct ModelGraph {
  std::vector<const GraphNode*> order;
  std::set<const GraphNode*> nodes;
  std::map<const GraphNode*, int> depth;
};

ModelGraph graph_of(const FunctionalModel& model) {
  ModelGraph g;
  std::set<const GraphNode*> stops;
  for (const Tensor& t : model.graph_inputs()) stops.insert(node_of(t));
  // Iterative post-order DFS from the outputs, in argument order.
  std::vector<std::pair<const GraphNode*, std::size_t>> stack;
  auto push = [&](const Tensor& t) {
    const GraphNode* node = node_of(t);
    if (!node || g.nodes.count(node)) return;
    g.nodes.insert(node);
    stack.emplace_back(node, 0);
  };
  for (const Tensor& out : model.graph_outputs()) {
    push(out);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (!stops.count(node) && next < node->inputs.size()) {
        push(node->inputs[next++]);
        continue;
      }
      g.order.push_back(node);
      stack.pop_back();
    }
  }
  std::map<const Layer*, int> layer_depth;
  for (auto it = g.order.rbegin(); it != g.order.rend(); ++it) {
    const GraphNode* node = *it;
    int d = std::max(g.depth[node], layer_depth[node->layer.get()]);
    layer_depth[node->layer.get()] = d;
    g.depth[node] = d;
    if (stops.count(node)) continue;
    for (const Tensor& in : node->inputs) {
      if (const GraphNode* parent = node_of(in)) g.depth[parent] = std::max(g.depth[parent], d + 1);
    }
  }
  return g;
}

// Keras's test: a Sequential, or a graph with one node per depth, each with at most one input,
// and no layer called twice.
bool is_sequential_like(const FunctionalModel& model, const ModelGraph& g) {
  if (dynamic_cast<const SequentialModel*>(&model)) return true;
  std::map<int, int> per_depth;
  std::map<const Layer*, int> per_layer;
  for (const GraphNode* node : g.order) {
    const auto inputs = std::count_if(node->inputs.begin(), node->inputs.end(),
                                      [](const Tensor& t) { return node_of(t) != nullptr; });
    if (inputs > 1 || ++per_depth[g.depth.at(node)] > 1 || ++per_layer[node->layer.get()] > 1) return false;
  }
  return true;
}

// ---- cells ----

// Python's repr of a shape tuple: "(None, 64)", "(None,)", "()".
std::string tuple_of(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += shape[i] == kUnknownDim ? "None" : std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string shapes_of(const std::vector<Tensor>& outputs, bool as_list) {
  if (outputs.size() == 1 && !as_list) return tuple_of(outputs[0].shape());
  std::string s = "[";
  for (std::size_t i = 0; i < outputs.size(); ++i) s += (i > 0 ? ", " : "") + tuple_of(outputs[i].shape());
  return s + "]";
}

// The nodes of `layer` that belong to the model's graph, or all its nodes when none does (a
// layer only reached through a graph loss).
std::vector<NodeView> model_nodes_of(const Layer& layer, const ModelGraph& g) {
  std::vector<NodeView> all = nodes_of(layer);
  std::vector<NodeView> in_graph;
  for (const NodeView& view : all) {
    if (g.nodes.count(view.node)) in_graph.push_back(view);
  }
  return in_graph.empty() ? all : in_graph;
}

// Keras's layer.output_shape: the same on every node, else "multiple". An InputLayer shows a list.
std::string output_shape_of(const Layer& layer, const std::vector<NodeView>& nodes) {
  std::set<std::string> shapes;
  for (const NodeView& view : nodes) shapes.insert(shapes_of(view.outputs, layer.class_name() == "InputLayer"));
  return shapes.size() == 1 ? *shapes.begin() : "multiple";
}

// Python's repr of a list of strings: "['input_1[0][0]', 'input_2[0][0]']".
std::string connections_of(const std::vector<NodeView>& nodes) {
  std::string s = "[";
  bool first = true;
  for (const NodeView& view : nodes) {
    for (const Tensor& in : view.inputs) {
      if (!node_of(in)) continue;  // a constant captured in the graph
      s += (first ? "'" : ", '") + connection(in) + "'";
      first = false;
    }
  }
  return s + "]";
}

// 50890 -> "50,890" (Python's f"{n:,}").
std::string with_commas(int64_t n) {
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out = n < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

int64_t count_unique(const std::vector<Tensor>& weights) {
  std::set<const detail::TensorImpl*> seen;
  int64_t n = 0;
  for (const Tensor& w : weights) {
    if (seen.insert(w.impl().get()).second) n += w.numel();
  }
  return n;
}

// ---- the table ----

class SummaryPrinter {
 public:
  SummaryPrinter(std::ostream& out, bool sequential_like, bool expand_nested)
      : out_(out), sequential_like_(sequential_like), expand_nested_(expand_nested) {
    // tf.keras's widths: 65 columns at [.45, .85, 1], or 98 at [.33, .55, .67, 1], truncated.
    if (sequential_like_) {
      line_length_ = 65;
      positions_ = {29, 55, 65};
    } else {
      line_length_ = 98;
      positions_ = {32, 53, 65, 98};
    }
  }

  void print(const FunctionalModel& model) {
    out_ << "Model: \"" << model.name() << "\"\n";
    out_ << std::string(static_cast<std::size_t>(line_length_), '_') << "\n";
    if (sequential_like_) {
      print_row({"Layer (type)", "Output Shape", "Param #"}, 0);
    } else {
      print_row({"Layer (type)", "Output Shape", "Param #", "Connected to"}, 0);
    }
    out_ << std::string(static_cast<std::size_t>(line_length_), '=') << "\n";
    print_layers(model, graph_of(model), 0);
    out_ << std::string(static_cast<std::size_t>(line_length_), '=') << "\n";
    const int64_t trainable = count_unique(model.trainable_weights());
    const int64_t non_trainable = count_unique(model.non_trainable_weights());
    out_ << "Total params: " << with_commas(trainable + non_trainable) << "\n";
    out_ << "Trainable params: " << with_commas(trainable) << "\n";
    out_ << "Non-trainable params: " << with_commas(non_trainable) << "\n";
    out_ << std::string(static_cast<std::size_t>(line_length_), '_') << "\n";
  }

 private:
  // Keras's print_layer: the row, the nested box when expanding, then a blank separator row
  // (none after the last layer of a box, nor after a box itself, as tf.keras). Rows inside a box
  // show connections within the nested model (tf.keras shows "[]" there: it filters them by
  // the outer model's nodes).
  void print_layers(const FunctionalModel& model, const ModelGraph& g, int level) {
    const auto& layers = model.layers();
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const Layer& layer = *layers[i];
      const std::vector<NodeView> nodes = model_nodes_of(layer, g);
      std::vector<std::string> fields = {layer.name() + " (" + layer.class_name() + ")",
                                         output_shape_of(layer, nodes),
                                         layer.built() ? std::to_string(layer.count_params()) : "0 (unused)"};
      if (!sequential_like_) fields.push_back(connections_of(nodes));
      print_row(fields, level);
      bool boxed = false;
      const auto* nested = dynamic_cast<const FunctionalModel*>(&layer);
      if (expand_nested_ && nested && !nested->layers().empty()) {
        const auto width = [&](int borders) { return static_cast<std::size_t>(line_length_ - borders); };
        out_ << bars(level + 1) << repeat("¯", width(2 * level + 2)) << bars(level + 1) << "\n";
        print_layers(*nested, graph_of(*nested), level + 1);
        out_ << bars(level) << repeat("¯", width(2 * level)) << bars(level) << "\n";
        boxed = true;
      }
      const bool last_in_box = level > 0 && i + 1 == layers.size();
      if (!last_in_box && !boxed) {
        out_ << bars(level) << std::string(static_cast<std::size_t>(line_length_ - 2 * level), ' ') << bars(level)
             << "\n";
      }
    }
  }

  // Keras's print_row: each field fills its column (minus two spaces of gutter, minus one more
  // before the last column, minus the nesting bars in the first); what does not fit wraps onto
  // further lines, preferably after "),", "},", "]," or "',".
  void print_row(std::vector<std::string> fields, int level) {
    const std::size_t last = positions_.size() - 1;
    auto any_left = [&] {
      return std::any_of(fields.begin(), fields.end(), [](const std::string& f) { return !f.empty(); });
    };
    while (any_left()) {
      std::string line;
      for (std::size_t col = 0; col < fields.size(); ++col) {
        const int start = col > 0 ? positions_[col - 1] : 0;
        const int space = col != last ? 2 : 0;
        int cutoff = positions_[col] - start - space - (col != last ? 1 : 0) - (col == 0 ? level : 0);
        cutoff = std::max(cutoff, 0);
        std::string fit = fields[col].substr(0, static_cast<std::size_t>(cutoff));
        std::size_t best = std::string::npos;
        for (const char* brk : {"),", "},", "],", "',"}) {
          const std::size_t at = fit.find(brk);
          if (at != std::string::npos) best = std::min(best, at + 2);
        }
        if (best != std::string::npos) {
          cutoff = static_cast<int>(best);
          fit = fit.substr(0, best);
        }
        if (col == 0) line += bars(level) + " ";
        line += fit + std::string(static_cast<std::size_t>(space), ' ');
        fields[col] = fields[col].substr(std::min(static_cast<std::size_t>(cutoff), fields[col].size()));
        const int target = positions_[col] - (level > 0 && col == last ? level : 0);
        if (static_cast<int>(line.size()) < target) line += std::string(target - line.size(), ' ');
      }
      out_ << line << bars(level) << "\n";
    }
  }

  static std::string bars(int n) { return std::string(static_cast<std::size_t>(n), '|'); }
  static std::string repeat(const std::string& s, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
  }

  std::ostream& out_;
  bool sequential_like_;
  bool expand_nested_;
  int line_length_;
  std::vector<int> positions_;
};

}  // namespace

void Model::summary(std::ostream& out, bool expand_nested) const {
  const FunctionalModel& model = *ptr_;
  if (const auto* seq = dynamic_cast<const SequentialModel*>(&model); seq && !seq->has_graph()) {
    throw ValueError(detail::str("Sequential '", model.name(),
                                 "': this model has not yet been built, so its output shapes are unknown; add an "
                                 "Input first (add(Input({...}))) or call it on a batch of data before summary()"));
  }
  const bool sequential_like = is_sequential_like(model, graph_of(model));
  SummaryPrinter(out, sequential_like, expand_nested).print(model);
}

void Model::summary(bool expand_nested) const { summary(std::cout, expand_nested); }

std::string Model::summary_string(bool expand_nested) const {
  std::ostringstream out;
  summary(out, expand_nested);
  return out.str();
}

}  // namespace normnet

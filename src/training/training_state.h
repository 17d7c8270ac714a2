// What compile() leaves on a model for fit/evaluate/predict (the optimizer, one loss and its
// metrics per output, or a whole-model loss), the running means of an epoch's logs, the
// checkpoint hook of ModelCheckpoint, and the progress-bar formatting (exposed for tests).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "normnet/callbacks.h"
#include "normnet/training.h"

namespace normnet {
class Model;
}

namespace normnet::detail {

struct OutputSpec {
  std::string name;  // the output layer's name: the prefix of "<name>_loss", "<name>_accuracy"
  Loss loss;         // empty: this output has no loss
  double weight = 1.0;
  std::vector<std::shared_ptr<Metric>> metrics;  // named as they appear in the logs
};

struct TrainingState {
  std::shared_ptr<Optimizer> optimizer;
  std::vector<OutputSpec> outputs;  // one per model output, in output order
  ModelLoss model_loss;             // replaces the per-output losses when set
};

// Sample-weighted running means of named values over an epoch (Keras's Mean metric per key).
class MeanAccumulator {
 public:
  void add(const std::string& name, double value, double weight) {
    auto& [sum, count] = sums_[name];
    sum += value * weight;
    count += weight;
  }
  [[nodiscard]] Logs means() const {
    Logs out;
    for (const auto& [name, entry] : sums_) out[name] = entry.second > 0 ? entry.first / entry.second : 0.0;
    return out;
  }
  void reset() { sums_.clear(); }

 private:
  std::map<std::string, std::pair<double, double>> sums_;
};

// Saves `model` to `path` for ModelCheckpoint (the whole model, or only its weights), writing
// `epochs_done` (epochs completed so far) as the metadata "normnet.epoch" so that
// fit(initial_epoch = epochs_done) resumes it. Defined with the persistence code
// (src/models/saving.cpp).
void save_checkpoint_hook(Model& model, const std::string& path, bool weights_only, int epochs_done);

// ---- progress-bar text (src/training/progbar.cpp) ----
// Log keys in display order: "loss", the other training keys sorted, then "val_loss" and the
// other validation keys sorted.
[[nodiscard]] std::vector<std::string> ordered_log_keys(const Logs& logs);
// " - loss: 0.4123 - accuracy: 0.8512" (Keras: %.4f, or %.4e for magnitudes up to 1e-3).
[[nodiscard]] std::string format_log_values(const Logs& logs);
// Keras's terminal line: while running "123/469 [=====>........] - ETA: 8s - loss: ...",
// when done "469/469 [==============================] - 12s 25ms/step - loss: ...".
[[nodiscard]] std::string progbar_line(int64_t step, int64_t steps, double elapsed_s, const Logs& logs, bool done);
// The one line per epoch when stderr is not a terminal:
// "Epoch 1/3 - 469/469 - 12s - 25ms/step - loss: 0.4123 - accuracy: 0.8512".
// (`step` < `steps` when training stopped early.)
[[nodiscard]] std::string epoch_summary_line(int epoch, int epochs, int64_t step, int64_t steps, double elapsed_s,
                                             const Logs& logs);

}  // namespace normnet::detail

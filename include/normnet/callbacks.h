// Callbacks that watch and steer fit(): EarlyStopping, ModelCheckpoint, TerminateOnNaN,
// ReduceLROnPlateau, CSVLogger, and the progress bar (ProgbarLogger, added by fit when verbose).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "normnet/tensor.h"

namespace normnet {

class Model;
using Logs = std::map<std::string, double>;

class Callback {
 public:
  virtual ~Callback();
  virtual void on_train_begin(const Logs& logs);
  virtual void on_train_end(const Logs& logs);
  virtual void on_epoch_begin(int epoch, const Logs& logs);
  virtual void on_epoch_end(int epoch, const Logs& logs);
  virtual void on_train_batch_begin(int batch, const Logs& logs);
  virtual void on_train_batch_end(int batch, const Logs& logs);
  virtual void on_test_batch_end(int batch, const Logs& logs);
  // fit() sets the model before on_train_begin.
  void set_model(Model* model) { model_ = model; }
  [[nodiscard]] Model* model() const { return model_; }
  // fit() tells callbacks the epochs and steps per epoch.
  void set_params(int epochs, int64_t steps) { epochs_ = epochs; steps_ = steps; }

 protected:
  Model* model_ = nullptr;
  int epochs_ = 0;
  int64_t steps_ = 0;
};

namespace callbacks {

// Stops when `monitor` has not improved by min_delta for `patience` epochs; optionally restores
// the weights of the best epoch. mode "auto" minimizes losses and maximizes accuracies.
class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(std::string monitor = "val_loss");
  EarlyStopping& patience(int patience);
  EarlyStopping& min_delta(double min_delta);
  EarlyStopping& mode(std::string mode);  // "auto", "min", "max"
  EarlyStopping& restore_best_weights(bool restore);
  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;
  [[nodiscard]] int stopped_epoch() const { return stopped_epoch_; }
  [[nodiscard]] int best_epoch() const { return best_epoch_; }

 private:
  std::string monitor_, mode_ = "auto";
  int patience_ = 0, wait_ = 0, stopped_epoch_ = -1, best_epoch_ = -1;
  double min_delta_ = 0.0, best_ = 0.0;
  bool restore_ = false, maximize_ = false;
  std::vector<Tensor> best_weights_;
};

// Saves the model (or only its weights) after each epoch, or only when `monitor` improves.
// `path` may contain "{epoch}" (1-based, as Keras's {epoch:02d} without the format). An epoch
// whose training loss is NaN or infinite is not saved (a note goes to stderr), so with
// TerminateOnNaN the last good checkpoint survives a diverged run.
class ModelCheckpoint : public Callback {
 public:
  explicit ModelCheckpoint(std::string path);
  ModelCheckpoint& monitor(std::string monitor);
  ModelCheckpoint& save_best_only(bool best_only);
  ModelCheckpoint& save_weights_only(bool weights_only);
  ModelCheckpoint& mode(std::string mode);
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  std::string path_, monitor_ = "val_loss", mode_ = "auto";
  bool best_only_ = false, weights_only_ = false, have_best_ = false;
  double best_ = 0.0;
};

// Stops training at the first batch whose loss is NaN or infinite.
class TerminateOnNaN : public Callback {
 public:
  void on_train_batch_end(int batch, const Logs& logs) override;
};

// Multiplies the learning rate by `factor` when `monitor` stalls for `patience` epochs.
class ReduceLROnPlateau : public Callback {
 public:
  explicit ReduceLROnPlateau(std::string monitor = "val_loss");
  ReduceLROnPlateau& factor(double factor);
  ReduceLROnPlateau& patience(int patience);
  ReduceLROnPlateau& min_lr(double min_lr);
  ReduceLROnPlateau& min_delta(double min_delta);
  ReduceLROnPlateau& cooldown(int cooldown);
  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  std::string monitor_;
  double factor_ = 0.1, min_lr_ = 0.0, min_delta_ = 1e-4, best_ = 0.0;
  int patience_ = 10, cooldown_ = 0, wait_ = 0, cooldown_left_ = 0;
  bool have_best_ = false;
};

// Appends one CSV row per epoch (epoch, then the logs' keys in sorted order).
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string path, bool append = false);
  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  std::string path_;
  bool append_;
  bool wrote_header_ = false;
};

// Keras's progress bar on a terminal ("469/469 [====...] - 12s 25ms/step - loss: 0.41 - accuracy: 0.85"),
// one line per epoch when stderr is not a terminal. Writes to stderr.
class ProgbarLogger : public Callback {
 public:
  explicit ProgbarLogger(int verbose = 1);
  void on_epoch_begin(int epoch, const Logs& logs) override;
  void on_train_batch_end(int batch, const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  int verbose_;
  double epoch_start_ = 0.0;
  bool tty_ = false;
};

}  // namespace callbacks
}  // namespace normnet

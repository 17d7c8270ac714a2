// Callbacks: the no-op base, EarlyStopping, ModelCheckpoint, TerminateOnNaN, ReduceLROnPlateau
// and CSVLogger, following Keras 3's keras/src/callbacks/*.py (the progress bar is in progbar.cpp).
#include "normnet/callbacks.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/allocator.h"
#include "normnet/model.h"
#include "training/training_state.h"

namespace normnet {

using detail::str;

Callback::~Callback() = default;
void Callback::on_train_begin(const Logs&) {}
void Callback::on_train_end(const Logs&) {}
void Callback::on_epoch_begin(int, const Logs&) {}
void Callback::on_epoch_end(int, const Logs&) {}
void Callback::on_train_batch_begin(int, const Logs&) {}
void Callback::on_train_batch_end(int, const Logs&) {}
void Callback::on_test_batch_end(int, const Logs&) {}

namespace callbacks {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Model& model_of(const Callback& cb, const char* who) {
  if (!cb.model()) throw Error(str(who, ": no model set (fit() sets it before on_train_begin)"));
  return *cb.model();
}

void check_mode(const std::string& mode, const char* who) {
  if (mode != "auto" && mode != "min" && mode != "max") {
    throw ValueError(str(who, ": mode must be \"auto\", \"min\" or \"max\", got \"", mode, "\""));
  }
}

// "auto" maximizes accuracies and similar scores, and minimizes everything else (losses).
bool maximizes(const std::string& mode, const std::string& monitor) {
  if (mode != "auto") return mode == "max";
  for (const char* word : {"acc", "auc", "precision", "recall"}) {
    if (monitor.find(word) != std::string::npos) return true;
  }
  return false;
}

// Keras's _is_improvement: better than `best` by more than |min_delta|. NaN never improves.
bool improves(double current, double best, double min_delta, bool maximize) {
  const double d = std::fabs(min_delta);
  return maximize ? current - d > best : current + d < best;
}

const double* find_log(const Logs& logs, const std::string& key, const char* who) {
  auto it = logs.find(key);
  if (it != logs.end()) return &it->second;
  std::string known;
  for (const auto& [k, v] : logs) known += (known.empty() ? "" : ", ") + k;
  std::fprintf(stderr, "%s\n",
               str("Warning: ", who, ": '", key, "' is not in the logs (available: ", known, "); skipping").c_str());
  return nullptr;
}

void copy_values(const Tensor& from, const Tensor& to) {
  const std::size_t bytes = static_cast<std::size_t>(to.numel()) * dtype_size(to.dtype());
  std::memcpy(to.impl()->storage->data(), from.impl()->storage->data(), bytes);
}

}  // namespace

// ---- EarlyStopping ----

EarlyStopping::EarlyStopping(std::string monitor) : monitor_(std::move(monitor)) {}
EarlyStopping& EarlyStopping::patience(int patience) {
  if (patience < 0) throw ValueError(str("EarlyStopping: patience must be >= 0, got ", patience));
  patience_ = patience;
  return *this;
}
EarlyStopping& EarlyStopping::min_delta(double min_delta) {
  min_delta_ = std::fabs(min_delta);
  return *this;
}
EarlyStopping& EarlyStopping::mode(std::string mode) {
  check_mode(mode, "EarlyStopping");
  mode_ = std::move(mode);
  return *this;
}
EarlyStopping& EarlyStopping::restore_best_weights(bool restore) {
  restore_ = restore;
  return *this;
}

void EarlyStopping::on_train_begin(const Logs&) {
  maximize_ = maximizes(mode_, monitor_);
  wait_ = 0;
  stopped_epoch_ = -1;
  best_epoch_ = -1;
  best_ = maximize_ ? -kInf : kInf;
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int epoch, const Logs& logs) {
  const double* current = find_log(logs, monitor_, "EarlyStopping");
  if (!current) return;
  Model& model = model_of(*this, "EarlyStopping");
  auto snapshot = [&] {
    best_weights_.clear();
    for (const Tensor& w : model.weights()) best_weights_.push_back(w.clone());
  };
  // As Keras: with no improvement yet, the first epoch's weights count as the best.
  if (restore_ && best_weights_.empty()) {
    snapshot();
    best_epoch_ = epoch;
  }
  ++wait_;
  if (improves(*current, best_, min_delta_, maximize_)) {
    best_ = *current;
    best_epoch_ = epoch;
    if (restore_) snapshot();
    wait_ = 0;
    return;
  }
  if (wait_ >= patience_ && epoch > 0) {
    stopped_epoch_ = epoch;
    model.set_stop_training(true);
  }
}

void EarlyStopping::on_train_end(const Logs&) {
  if (!restore_ || best_weights_.empty()) return;
  const std::vector<Tensor> weights = model_of(*this, "EarlyStopping").weights();
  if (weights.size() != best_weights_.size()) {
    throw Error(str("EarlyStopping: the model has ", weights.size(), " weights now, ", best_weights_.size(),
                    " when the best ones were saved"));
  }
  for (std::size_t i = 0; i < weights.size(); ++i) copy_values(best_weights_[i], weights[i]);
}

// ---- ModelCheckpoint ----

namespace {

// Fills "{epoch}", "{epoch:02d}", "{val_loss:.4f}" (a log key) in a checkpoint path, as Keras's
// filepath.format(epoch=epoch + 1, **logs). Format specs are limited to digits, '.' and one of d/f/e/g.
std::string format_path(const std::string& path, int epoch, const Logs& logs) {
  std::string out;
  std::size_t i = 0;
  while (i < path.size()) {
    const std::size_t open = path.find('{', i);
    const std::size_t close = open == std::string::npos ? open : path.find('}', open);
    if (close == std::string::npos) {
      out += path.substr(i);
      break;
    }
    out += path.substr(i, open - i);
    const std::string field = path.substr(open + 1, close - open - 1);
    const std::size_t colon = field.find(':');
    const std::string key = field.substr(0, colon);
    std::string spec = colon == std::string::npos ? "" : field.substr(colon + 1);
    const bool valid_spec = spec.empty() || (spec.find_first_not_of("0123456789.") == spec.size() - 1 &&
                                             std::strchr("dfeg", spec.back()) != nullptr);
    if (!valid_spec) throw ValueError(str("ModelCheckpoint: unsupported format '{", field, "}' in path '", path, "'"));
    double value = 0.0;
    if (key == "epoch") {
      value = epoch + 1;
    } else if (auto it = logs.find(key); it != logs.end()) {
      value = it->second;
    } else {
      throw ValueError(str("ModelCheckpoint: '{", field, "}' in path '", path, "' names no log key"));
    }
    if (spec.empty()) spec.push_back(key == "epoch" ? 'd' : 'g');
    char buf[64];
    std::string fmt = "%";
    if (spec.back() == 'd') {
      fmt.append(spec, 0, spec.size() - 1).append("lld");
      std::snprintf(buf, sizeof buf, fmt.c_str(), static_cast<long long>(value));
    } else {
      fmt += spec;
      std::snprintf(buf, sizeof buf, fmt.c_str(), value);
    }
    out += buf;
    i = close + 1;
  }
  return out;
}

}  // namespace

ModelCheckpoint::ModelCheckpoint(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw ValueError("ModelCheckpoint: the path must not be empty");
}
ModelCheckpoint& ModelCheckpoint::monitor(std::string monitor) {
  monitor_ = std::move(monitor);
  return *this;
}
ModelCheckpoint& ModelCheckpoint::save_best_only(bool best_only) {
  best_only_ = best_only;
  return *this;
}
ModelCheckpoint& ModelCheckpoint::save_weights_only(bool weights_only) {
  weights_only_ = weights_only;
  return *this;
}
ModelCheckpoint& ModelCheckpoint::mode(std::string mode) {
  check_mode(mode, "ModelCheckpoint");
  mode_ = std::move(mode);
  return *this;
}

void ModelCheckpoint::on_epoch_end(int epoch, const Logs& logs) {
  Model& model = model_of(*this, "ModelCheckpoint");
  // A diverged epoch (non-finite training loss) is never written: the last good checkpoint stays.
  const auto loss = logs.find("loss");
  if (loss != logs.end() && !std::isfinite(loss->second)) {
    std::fprintf(stderr, "%s\n",
                 str("ModelCheckpoint: epoch ", epoch + 1, ": loss is ", loss->second, "; not saving ",
                     format_path(path_, epoch, logs))
                     .c_str());
    return;
  }
  if (best_only_) {
    const double* current = find_log(logs, monitor_, "ModelCheckpoint");
    if (!current) return;
    const bool maximize = maximizes(mode_, monitor_);
    if (have_best_ && !improves(*current, best_, 0.0, maximize)) return;
    if (!have_best_ && std::isnan(*current)) return;
    best_ = *current;
    have_best_ = true;
  }
  detail::save_checkpoint_hook(model, format_path(path_, epoch, logs), weights_only_, epoch + 1);
}

// ---- TerminateOnNaN ----

void TerminateOnNaN::on_train_batch_end(int batch, const Logs& logs) {
  auto it = logs.find("loss");
  if (it == logs.end() || std::isfinite(it->second)) return;
  std::fprintf(stderr, "%s\n", str("Batch ", batch, ": Invalid loss, terminating training").c_str());
  model_of(*this, "TerminateOnNaN").set_stop_training(true);
}

// ---- ReduceLROnPlateau ----

ReduceLROnPlateau::ReduceLROnPlateau(std::string monitor) : monitor_(std::move(monitor)) {}
ReduceLROnPlateau& ReduceLROnPlateau::factor(double factor) {
  if (!(factor > 0.0 && factor < 1.0)) {
    throw ValueError(str("ReduceLROnPlateau: factor must be in (0, 1), got ", factor));
  }
  factor_ = factor;
  return *this;
}
ReduceLROnPlateau& ReduceLROnPlateau::patience(int patience) {
  if (patience < 0) throw ValueError(str("ReduceLROnPlateau: patience must be >= 0, got ", patience));
  patience_ = patience;
  return *this;
}
ReduceLROnPlateau& ReduceLROnPlateau::min_lr(double min_lr) {
  if (min_lr < 0.0) throw ValueError(str("ReduceLROnPlateau: min_lr must be >= 0, got ", min_lr));
  min_lr_ = min_lr;
  return *this;
}
ReduceLROnPlateau& ReduceLROnPlateau::min_delta(double min_delta) {
  min_delta_ = std::fabs(min_delta);
  return *this;
}
ReduceLROnPlateau& ReduceLROnPlateau::cooldown(int cooldown) {
  if (cooldown < 0) throw ValueError(str("ReduceLROnPlateau: cooldown must be >= 0, got ", cooldown));
  cooldown_ = cooldown;
  return *this;
}

void ReduceLROnPlateau::on_train_begin(const Logs&) {
  wait_ = 0;
  cooldown_left_ = 0;
  have_best_ = false;
}

void ReduceLROnPlateau::on_epoch_end(int, const Logs& logs) {
  const double* current = find_log(logs, monitor_, "ReduceLROnPlateau");
  if (!current) return;
  const bool maximize = maximizes("auto", monitor_);
  if (!have_best_) {
    best_ = maximize ? -kInf : kInf;
    have_best_ = true;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    wait_ = 0;
  }
  if (improves(*current, best_, min_delta_, maximize)) {
    best_ = *current;
    wait_ = 0;
  } else if (cooldown_left_ == 0 && ++wait_ >= patience_) {
    auto optimizer = model_of(*this, "ReduceLROnPlateau").optimizer();
    if (!optimizer) throw Error("ReduceLROnPlateau: the model has no optimizer (compile it first)");
    const double old_lr = optimizer->learning_rate();
    if (old_lr > min_lr_) {
      optimizer->set_learning_rate(std::max(old_lr * factor_, min_lr_));
      cooldown_left_ = cooldown_;
      wait_ = 0;
    }
  }
}

// ---- CSVLogger ----

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::vector<std::string> csv_split(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') fields.back() += '"', ++i;
    else if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) fields.emplace_back();
    else fields.back() += c;
  }
  return fields;
}

// The shortest text that reads back as the same double (Python's repr, as Keras writes).
std::string shortest(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

}  // namespace

CSVLogger::CSVLogger(std::string path, bool append) : path_(std::move(path)), append_(append) {
  if (path_.empty()) throw ValueError("CSVLogger: the path must not be empty");
}

void CSVLogger::on_train_begin(const Logs&) {
  // Keras writes the header only when the file is new or was empty.
  wrote_header_ = append_ && !first_line(path_).empty();
  if (!append_) {
    std::ofstream out(path_, std::ios::trunc);
    if (!out) throw IoError(str("CSVLogger: cannot write '", path_, "'"));
  }
}

void CSVLogger::on_epoch_end(int epoch, const Logs& logs) {
  std::vector<std::string> columns;
  if (wrote_header_) {
    columns = csv_split(first_line(path_));
    if (!columns.empty()) columns.erase(columns.begin());  // "epoch"
  } else {
    for (const auto& [k, v] : logs) columns.push_back(k);
  }
  std::ofstream out(path_, std::ios::app);
  if (!out) throw IoError(str("CSVLogger: cannot append to '", path_, "'"));
  if (!wrote_header_) {
    out << "epoch";
    for (const auto& c : columns) out << ',' << csv_field(c);
    out << '\n';
    wrote_header_ = true;
  }
  out << epoch;
  for (const auto& c : columns) {
    auto it = logs.find(c);
    out << ',' << (it == logs.end() ? std::string("NA") : shortest(it->second));
  }
  out << '\n';
  out.flush();
  if (!out) throw IoError(str("CSVLogger: writing '", path_, "' failed"));
}

}  // namespace callbacks
}  // namespace normnet

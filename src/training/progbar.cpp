// ProgbarLogger: tf.keras 2's progress bar on a terminal (redrawn in place with '\r', at most 10
// times a second), and exactly one line per epoch when stderr is not a terminal (logs, CI).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>

#include "normnet/callbacks.h"
#include "training/training_state.h"

namespace normnet {

namespace detail {

std::vector<std::string> ordered_log_keys(const Logs& logs) {
  std::vector<std::string> keys;
  auto take = [&](bool val) {
    const std::string loss = val ? "val_loss" : "loss";
    if (logs.count(loss)) keys.push_back(loss);
    for (const auto& [k, v] : logs) {
      if (k != loss && (k.rfind("val_", 0) == 0) == val) keys.push_back(k);
    }
  };
  take(false);
  take(true);
  return keys;
}

std::string format_log_values(const Logs& logs) {
  std::string out;
  char buf[48];
  for (const std::string& key : ordered_log_keys(logs)) {
    const double v = logs.at(key);
    // tf.keras's Progbar: 4 decimals, or scientific notation for magnitudes up to 1e-3.
    std::snprintf(buf, sizeof buf, std::fabs(v) > 1e-3 ? "%.4f" : "%.4e", v);
    out += str(" - ", key, ": ", buf);
  }
  return out;
}

namespace {

std::string format_eta(double eta) {
  const auto s = static_cast<long long>(eta);
  char buf[32];
  if (eta > 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s % 3600) / 60, s % 60);
  else if (eta > 60) std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

// " 25ms/step" (tf.keras's _format_time).
std::string format_per_step(double per_step) {
  char buf[32];
  if (per_step >= 1 || per_step == 0) std::snprintf(buf, sizeof buf, "%.0fs/step", per_step);
  else if (per_step >= 1e-3) std::snprintf(buf, sizeof buf, "%.0fms/step", per_step * 1e3);
  else std::snprintf(buf, sizeof buf, "%.0fus/step", per_step * 1e6);
  return buf;
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}

}  // namespace

std::string progbar_line(int64_t step, int64_t steps, double elapsed_s, const Logs& logs, bool done) {
  constexpr int kWidth = 30;
  const int digits = steps > 0 ? static_cast<int>(std::log10(static_cast<double>(steps))) + 1 : 1;
  char count[64];
  std::snprintf(count, sizeof count, "%*lld/%lld", digits, static_cast<long long>(step), static_cast<long long>(steps));
  const double progress = steps > 0 ? static_cast<double>(step) / static_cast<double>(steps) : 1.0;
  const int filled = std::min(kWidth, static_cast<int>(kWidth * progress));
  std::string bar = str(count, " [");
  if (filled > 0) bar += std::string(static_cast<std::size_t>(filled - 1), '=') + (step < steps ? '>' : '=');
  bar += std::string(static_cast<std::size_t>(kWidth - filled), '.') + "]";
  const double per_step = step > 0 ? elapsed_s / static_cast<double>(step) : 0.0;
  if (done) bar += str(" - ", format_seconds(elapsed_s), " ", format_per_step(per_step));
  else bar += str(" - ETA: ", format_eta(per_step * static_cast<double>(steps - step)));
  return bar + format_log_values(logs);
}

std::string epoch_summary_line(int epoch, int epochs, int64_t step, int64_t steps, double elapsed_s, const Logs& logs) {
  const double per_step = step > 0 ? elapsed_s / static_cast<double>(step) : 0.0;
  return str("Epoch ", epoch + 1, "/", epochs, " - ", step, "/", steps, " - ", format_seconds(elapsed_s), " - ",
             format_per_step(per_step), format_log_values(logs));
}

}  // namespace detail

namespace callbacks {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Per-logger drawing state kept beside the object (the public class holds only what the API
// needs): the last redraw time, the width of the last line, the batches seen this epoch.
struct DrawState {
  double last_draw = -1e300;
  std::size_t width = 0;
  int64_t batches = 0;
};
std::mutex g_mutex;
std::map<const ProgbarLogger*, DrawState> g_states;

DrawState& state_of(const ProgbarLogger* logger) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_states[logger];
}

void forget(const ProgbarLogger* logger) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_states.erase(logger);
}

// "\r" + line, padded with spaces over the rest of a longer previous line.
void redraw(DrawState& st, const std::string& line, bool newline) {
  std::string out = "\r" + line;
  if (line.size() < st.width) out += std::string(st.width - line.size(), ' ');
  st.width = line.size();
  if (newline) out += '\n';
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace

ProgbarLogger::ProgbarLogger(int verbose) : verbose_(verbose) {}

void ProgbarLogger::on_epoch_begin(int epoch, const Logs&) {
  tty_ = verbose_ == 1 && ::isatty(2) == 1;
  epoch_start_ = now_s();
  state_of(this) = DrawState{};
  if (tty_ && epochs_ > 1) std::fprintf(stderr, "Epoch %d/%d\n", epoch + 1, epochs_);
}

void ProgbarLogger::on_train_batch_end(int batch, const Logs& logs) {
  DrawState& st = state_of(this);
  st.batches = batch + 1;
  if (!tty_) return;
  const double t = now_s();
  const bool last = st.batches >= steps_;
  if (!last && t - st.last_draw < 0.1) return;  // at most 10 redraws a second
  st.last_draw = t;
  redraw(st, detail::progbar_line(st.batches, steps_, t - epoch_start_, logs, false), false);
}

void ProgbarLogger::on_epoch_end(int epoch, const Logs& logs) {
  DrawState& st = state_of(this);
  const double elapsed = now_s() - epoch_start_;
  const int64_t steps = st.batches > 0 ? st.batches : steps_;
  if (tty_) {
    // Training stopped early shows how far it got: "12/469 [>....] - 1s ...".
    redraw(st, detail::progbar_line(steps, steps_, elapsed, logs, true), true);
  } else {
    std::fprintf(stderr, "%s\n", detail::epoch_summary_line(epoch, epochs_, steps, steps_, elapsed, logs).c_str());
    std::fflush(stderr);
  }
  forget(this);
}

}  // namespace callbacks
}  // namespace normnet

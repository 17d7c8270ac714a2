// What the whole-program benchmarks share: argument parsing, medians, a step clock, and the
// "RESULT <key> <value>" lines that bench_fashion_cnn reads from each program's stdout.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace normnet::bench {

// The Fashion-MNIST training set and the batch of issue 7's workload.
inline constexpr double kTrainSamples = 60000.0;
inline constexpr int kBatch = 128;

// "--key value" pairs; a key given without a value is an error.
class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      const std::string key = argv[i];
      if (key.rfind("--", 0) != 0 || i + 1 >= argc) {
        throw std::invalid_argument("expected '--key value' pairs, got '" + key + "'");
      }
      values_[key.substr(2)] = argv[++i];
    }
  }
  [[nodiscard]] std::string str(const std::string& key, const std::string& fallback) const {
    const auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  [[nodiscard]] int integer(const std::string& key, int fallback) const {
    const auto it = values_.find(key);
    return it == values_.end() ? fallback : std::stoi(it->second);
  }

 private:
  std::map<std::string, std::string> values_;
};

[[nodiscard]] inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

[[nodiscard]] inline double mean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

class Clock {
 public:
  void restart() { start_ = std::chrono::steady_clock::now(); }
  // Seconds since the last restart.
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

inline void result(const std::string& key, double value) {
  std::printf("RESULT %s %.9g\n", key.c_str(), value);
  std::fflush(stdout);
}

// Prints the medians of training-step times (seconds) as the train mode's results: step_ms,
// mean_step_ms, and epoch_s = median step × 60000/128 (an extrapolation when fewer steps ran).
inline void report_steps(const std::vector<double>& step_seconds) {
  result("steps", static_cast<double>(step_seconds.size()));
  result("step_ms", median(step_seconds) * 1e3);
  result("mean_step_ms", mean(step_seconds) * 1e3);
  result("epoch_s", median(step_seconds) * kTrainSamples / kBatch);
}

// One full epoch's steps (seconds each) against the epoch's wall time: the median, mean and 90th
// percentile step, and the seconds spent outside the steps (shuffling, set-up, callbacks), so that
// an epoch slower than its steps predict shows where the difference lies.
inline void report_epoch_steps(const std::string& tag, std::vector<double> step_seconds, double epoch_seconds) {
  double sum = 0.0;
  for (double x : step_seconds) sum += x;
  result(tag + "_step_median_ms", median(step_seconds) * 1e3);
  result(tag + "_step_mean_ms", mean(step_seconds) * 1e3);
  if (!step_seconds.empty()) {
    std::sort(step_seconds.begin(), step_seconds.end());
    result(tag + "_step_p90_ms", step_seconds[step_seconds.size() * 9 / 10] * 1e3);
  }
  result(tag + "_outside_steps_s", epoch_seconds - sum);
}

// Seconds per call of fn: `warmup` untimed calls, then the median of `reps` timed ones.
template <class F>
[[nodiscard]] double median_seconds(F&& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  Clock clock;
  for (int i = 0; i < reps; ++i) {
    clock.restart();
    fn();
    t.push_back(clock.seconds());
  }
  return median(t);
}

// Threads from NORMNET_NUM_THREADS (what the driver sets for both programs), else 2.
[[nodiscard]] inline int thread_count() {
  const char* env = std::getenv("NORMNET_NUM_THREADS");
  return env ? std::atoi(env) : 2;
}

}  // namespace normnet::bench

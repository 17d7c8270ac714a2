// Runs issue 7's workload side by side: fashion_cnn_normnet and peer_fashion_cnn_torch (found next
// to this executable), each mode of each in its own process, alternating, with the same thread
// count (NORMNET_NUM_THREADS and OMP_NUM_THREADS); reads their RESULT lines and each process's peak
// RSS (wait4's ru_maxrss) and prints medians over --reps and the ratios normnet/libtorch.
//   bench_fashion_cnn --steps 40 --reps 3 [--epochs 0] [--threads 2] [--omp-wait-policy passive]
//                     [--data uint8|float32] [--conv2d-algorithm direct|winograd|both]
//                     [--modes train,infer,phases] [--seeds 1]
// --modes (default all three) picks the modes to run, e.g. `--modes infer --reps 15` for the
// inference rows alone.
// --data (default uint8) is passed to fashion_cnn_normnet only: uint8 holds the images as bytes
// and rescales them in the model (Input(uint8) → Rescaling(1/255)); float32 holds byte/255 as the
// peer does (it views normnet's float32 tensors with torch::from_blob, as torchvision's MNIST
// ToTensor gives float32). Both print peak RSS with and without the data set's tensors.
// --conv2d-algorithm (default direct) is passed to fashion_cnn_normnet (ops::set_conv2d_algorithm);
// `both` runs normnet twice per repetition, direct and Winograd, as two sides beside the peer.
// --seeds (default 1) lists the seeds of the --epochs runs (each program's --seed: initial weights,
// shuffling, Dropout): each side trains once per seed; the full-epoch table then shows medians over
// the seeds and a second table each seed's test accuracies, so that a difference between the two
// libraries' accuracy curves can be set against how far one library's curve moves with the seed.
// --omp-wait-policy sets OMP_WAIT_POLICY for both programs (both use libgomp): on a machine whose
// cores are shared with other jobs, spinning at barriers while the partner thread is preempted
// dominated both programs' times (docs/benchmarks.md); "default" leaves it unset.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "train/train_bench_util.h"

extern char** environ;

namespace {

namespace nb = normnet::bench;
using Results = std::map<std::string, double>;

// Runs `program args...`, echoes nothing of its stdout but parses RESULT lines from it; its
// stderr passes through. Adds "rss_mib" (peak resident set of that process). Throws on failure.
Results run_program(const std::string& program, const std::vector<std::string>& args) {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<std::string> argv_s{program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) throw std::runtime_error("cannot start " + program + ": " + std::strerror(rc));
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(program + " failed (status " + std::to_string(status) + ")");
  }
  Results r;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string tag, key;
    double value = 0;
    if (fields >> tag >> key >> value && tag == "RESULT") r[key] = value;
  }
  r["rss_mib"] = static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
  return r;
}

// The peer's data set: normnet's Fashion-MNIST as float32 images (train and test, 70000 × 784 × 4
// bytes) and int64 labels (70000 × 8), viewed by torch::from_blob without a copy.
constexpr double kPeerDataMib = (70000.0 * 784 * 4 + 70000.0 * 8) / (1024.0 * 1024.0);

struct Side {
  std::string name, program;
  std::vector<std::string> extra_args;  // given to every mode of this side
  std::map<std::string, std::vector<double>> samples;  // key -> one value per repetition
  void add(const Results& r, const std::string& prefix = "") {
    for (const auto& [k, v] : r) samples[prefix + k].push_back(v);
  }
  [[nodiscard]] double med(const std::string& key) const {
    const auto it = samples.find(key);
    return it == samples.end() ? 0.0 : nb::median(it->second);
  }
};

// One column per side, then normnet/libtorch for each normnet side when the peer ran (it is last);
// nothing for a key no side measured (its mode was not run).
void row(const char* label, const std::string& key, const std::vector<Side>& sides) {
  if (std::none_of(sides.begin(), sides.end(), [&](const Side& s) { return s.samples.count(key) > 0; })) return;
  std::printf("| %s |", label);
  for (const Side& side : sides) std::printf(" %.4g |", side.med(key));
  const bool peer = sides.back().name == "libtorch";
  for (std::size_t i = 0; peer && i + 1 < sides.size(); ++i) {
    std::printf(" %.3f |", sides[i].med(key) / sides.back().med(key));
  }
  std::printf("\n");
}

// `compare` joins each normnet side's name and "libtorch" in the last columns' titles: "/" for ratios.
void header(const char* first, const std::vector<Side>& sides, const char* compare = "/") {
  std::string names = "| " + std::string(first) + " |", rule = "|---|";
  for (const Side& side : sides) names += " " + side.name + " |", rule += "---|";
  const bool peer = sides.back().name == "libtorch";
  for (std::size_t i = 0; peer && i + 1 < sides.size(); ++i) {
    names += " " + sides[i].name + compare + "libtorch |";
    rule += "---|";
  }
  std::printf("\n%s\n%s\n", names.c_str(), rule.c_str());
}

void print_tables(const std::vector<Side>& sides, const std::vector<std::string>& modes, int steps, int reps,
                  int epochs, std::size_t seed_count) {
  const auto ran = [&](const char* mode) { return std::find(modes.begin(), modes.end(), mode) != modes.end(); };
  if (ran("train") || ran("infer")) header("metric (medians)", sides);
  row("train step, ms", "train_step_ms", sides);
  row("epoch (60000 images), s, extrapolated", "train_epoch_s", sides);
  row("peak RSS of the train process, MiB", "train_rss_mib", sides);
  row("  of which the data set's tensors, MiB", "train_data_mib", sides);
  row("  peak RSS without the data set, MiB", "train_rss_less_data_mib", sides);
  row("forward batch 1, µs", "infer_fwd1_us", sides);
  row("forward batch 256, ms", "infer_fwd256_ms", sides);
  if (ran("train")) {
    std::printf("\nepoch_s = median step × 60000/128 from %d timed steps per process, %d process(es) per side;\n"
                "each figure is the median over the processes.\n", steps, reps);
  }
  if (ran("phases")) {
    header("training step phase, ms (medians)", sides);
    for (const char* phase : {"gather", "forward", "backward", "optimizer"}) {
      row(phase, std::string("phases_") + phase + "_ms", sides);
    }
  }
  if (epochs == 0) return;
  header(seed_count > 1 ? "full epoch (medians over the seeds)" : "full epoch", sides);
  for (int e = 1; e <= epochs; ++e) {
    const std::string tag = "epochs_epoch" + std::to_string(e);
    row(("epoch " + std::to_string(e) + " s").c_str(), tag + "_s", sides);
    row(("epoch " + std::to_string(e) + " test accuracy").c_str(), tag + "_test_acc", sides);
    row(("epoch " + std::to_string(e) + " step median, ms").c_str(),
        tag + "_step_median_ms", sides);
    row("  step mean, ms", tag + "_step_mean_ms", sides);
    row("  step 90th percentile, ms", tag + "_step_p90_ms", sides);
    row(("epoch " + std::to_string(e) + " outside the steps, s").c_str(), tag + "_outside_steps_s", sides);
  }
  row("peak RSS, MiB", "epochs_rss_mib", sides);
}

// Each seed's test accuracy after each epoch, in percent, per side; then the mean and the spread
// (largest − smallest) over the seeds, and normnet's mean minus libtorch's in points.
void print_seed_table(const std::vector<Side>& sides, const std::vector<int>& seeds, int epochs) {
  header("test accuracy, % (by seed)", sides, " − ");
  const bool peer = sides.back().name == "libtorch";
  const auto values = [&](const Side& side, const std::string& key) {
    const auto it = side.samples.find(key);
    return it == side.samples.end() ? std::vector<double>{} : it->second;
  };
  for (int e = 1; e <= epochs; ++e) {
    const std::string key = "epochs_epoch" + std::to_string(e) + "_test_acc";
    for (std::size_t s = 0; s < seeds.size(); ++s) {
      std::printf("| epoch %d, seed %d |", e, seeds[s]);
      for (const Side& side : sides) {
        const auto v = values(side, key);
        std::printf(s < v.size() ? " %.2f |" : " - |", s < v.size() ? 100 * v[s] : 0.0);
      }
      for (std::size_t i = 0; peer && i + 1 < sides.size(); ++i) std::printf(" |");
      std::printf("\n");
    }
    std::printf("| epoch %d, mean (spread) |", e);
    std::vector<double> means;
    for (const Side& side : sides) {
      const auto v = values(side, key);
      if (v.empty()) {
        std::printf(" - |");
        means.push_back(0);
        continue;
      }
      double sum = 0;
      for (double x : v) sum += x;
      means.push_back(100 * sum / static_cast<double>(v.size()));
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      std::printf(" %.2f (%.2f) |", means.back(), 100 * (*hi - *lo));
    }
    for (std::size_t i = 0; peer && i + 1 < sides.size(); ++i)
      std::printf(" %+.2f points |", means[i] - means.back());
    std::printf("\n");
  }
}

// The first three fields of /proc/loadavg (1, 5, 15 minutes): how busy the shared machine was.
std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "unknown";
  double a = 0, b = 0, c = 0;
  const int got = std::fscanf(f, "%lf %lf %lf", &a, &b, &c);
  std::fclose(f);
  if (got != 3) return "unknown";
  char text[64];
  std::snprintf(text, sizeof text, "%.2f %.2f %.2f", a, b, c);
  return text;
}

void run(const nb::Args& args, const std::filesystem::path& dir) {
  const int steps = args.integer("steps", 40), warmup = args.integer("warmup", 3), reps = args.integer("reps", 3);
  const int epochs = args.integer("epochs", 0), threads = args.integer("threads", 2);
  setenv("NORMNET_NUM_THREADS", std::to_string(threads).c_str(), 1);
  setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
  const std::string wait_policy = args.str("omp-wait-policy", "default");
  if (wait_policy != "default") setenv("OMP_WAIT_POLICY", wait_policy.c_str(), 1);
  const std::string data = args.str("data", "uint8");
  if (data != "uint8" && data != "float32") throw std::invalid_argument("--data must be uint8 or float32, got " + data);
  const std::string algorithm = args.str("conv2d-algorithm", "direct");
  if (algorithm != "direct" && algorithm != "winograd" && algorithm != "both") {
    throw std::invalid_argument("--conv2d-algorithm must be direct, winograd or both, got " + algorithm);
  }
  std::vector<int> seeds;  // --seeds 1 (the default): the seeds of the --epochs runs
  std::istringstream seed_list(args.str("seeds", "1"));
  for (std::string item; std::getline(seed_list, item, ',');) {
    std::size_t used = 0;
    int seed = -1;
    try {
      seed = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || seed < 0) {
      throw std::invalid_argument("--seeds takes a comma-separated list of integers >= 0; got '" + item +
                                  "'");
    }
    seeds.push_back(seed);
  }
  if (seeds.empty()) throw std::invalid_argument("--seeds is empty");
  std::vector<std::string> modes;  // --modes train,infer,phases (the default): which to run, in order
  std::istringstream mode_list(args.str("modes", "train,infer,phases"));
  for (std::string m; std::getline(mode_list, m, ',');) {
    if (m != "train" && m != "infer" && m != "phases") {
      throw std::invalid_argument("--modes takes a comma-separated list of train, infer, phases; got '" + m + "'");
    }
    modes.push_back(m);
  }
  const std::string normnet = (dir / "fashion_cnn_normnet").string();
  std::vector<Side> sides;
  if (algorithm != "winograd") sides.push_back({"normnet", normnet, {"--data", data}, {}});
  if (algorithm != "direct") {
    sides.push_back({"normnet winograd", normnet, {"--data", data, "--conv2d-algorithm", "winograd"}, {}});
  }
  const auto peer = dir / "peer_fashion_cnn_torch";
  if (std::filesystem::exists(peer)) sides.push_back({"libtorch", peer.string(), {}, {}});
  else std::printf("note: %s not built (libtorch not found); normnet alone\n", peer.string().c_str());

  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string mode_names;
  for (const std::string& m : modes) mode_names += (mode_names.empty() ? "" : ",") + m;
  std::printf("bench_fashion_cnn %s: %d thread(s), OMP_WAIT_POLICY %s, modes %s, batch %d, %d timed steps after %d "
              "warm-up per process (train, phases), %d repetition(s), sides alternating\n",
              date, threads, wait_policy.c_str(), mode_names.c_str(), nb::kBatch, steps, warmup, reps);
  std::printf("data set: normnet holds the images as %s%s; libtorch as float32 (%.1f MiB with labels)\n",
              data.c_str(), data == "uint8" ? " and rescales each batch in the model" : "", kPeerDataMib);
  std::printf("load average at start: %s\n", load_average().c_str());
  const std::vector<std::string> timed{"--steps", std::to_string(steps), "--warmup", std::to_string(warmup)};
  for (const std::string& mode : modes) {
    for (int r = 0; r < reps; ++r) {
      for (std::size_t i = 0; i < sides.size(); ++i) {
        Side& side = sides[(i + static_cast<std::size_t>(r)) % sides.size()];  // alternate who goes first
        std::vector<std::string> a{"--mode", mode};
        if (mode != "infer") a.insert(a.end(), timed.begin(), timed.end());
        a.insert(a.end(), side.extra_args.begin(), side.extra_args.end());
        Results got = run_program(side.program, a);
        if (!got.count("data_mib")) got["data_mib"] = kPeerDataMib;
        got["rss_less_data_mib"] = got["rss_mib"] - got["data_mib"];
        side.add(got, mode + "_");
        std::fprintf(stderr, "  %s %s %d/%d done\n", side.name.c_str(), mode.c_str(), r + 1, reps);
      }
    }
  }
  for (int seed : epochs > 0 ? seeds : std::vector<int>{}) {
    for (Side& side : sides) {
      std::vector<std::string> a{
          "--mode", "epochs", "--epochs", std::to_string(epochs), "--seed", std::to_string(seed)};
      a.insert(a.end(), side.extra_args.begin(), side.extra_args.end());
      side.add(run_program(side.program, a), "epochs_");
      std::fprintf(stderr, "  %s epochs, seed %d done\n", side.name.c_str(), seed);
    }
  }
  std::printf("load average at end: %s\n", load_average().c_str());
  print_tables(sides, modes, steps, reps, epochs, seeds.size());
  if (epochs > 0 && seeds.size() > 1) print_seed_table(sides, seeds, epochs);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(nb::Args(argc, argv), std::filesystem::canonical("/proc/self/exe").parent_path());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fashion_cnn: %s\n", e.what());
    return 1;
  }
}

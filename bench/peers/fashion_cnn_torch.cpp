// The libtorch peer of bench/train/fashion_cnn_normnet.cpp: the same network (Conv2D 32 → Conv2D
// 64 → max pool → dropout → Dense 128 ReLU with a 1e-4·Σh²/batch activity penalty → L2
// normalization → dropout → Dense 10), Glorot-uniform kernels and zero biases as Keras, Adam(1e-3,
// ε = 1e-7 as Keras), batch 128, torch::set_num_threads(NORMNET_NUM_THREADS or 2), the same modes
// and RESULT lines. The data come from normnet's Fashion-MNIST reader (not timed), viewed as NCHW
// (one channel, so NHWC and NCHW are the same bytes); torch runs its default NCHW layout.
// --seed S (default 1): torch::manual_seed (initial weights, shuffling, Dropout).
#include <torch/torch.h>

#include <cstdio>
#include <exception>
#include <vector>

#include "normnet/datasets.h"
#include "train/train_bench_util.h"

namespace {

namespace nb = normnet::bench;
namespace F = torch::nn::functional;

struct NetImpl : torch::nn::Module {
  NetImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(1, 32, 3))),
        conv2(register_module("conv2", torch::nn::Conv2d(32, 64, 3))),
        fc1(register_module("fc1", torch::nn::Linear(9216, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, 10))) {
    for (auto& p : named_parameters()) {
      if (p.key().find("weight") != std::string::npos) torch::nn::init::xavier_uniform_(p.value());
      else torch::nn::init::zeros_(p.value());
    }
  }
  // Logits [N, 10] and the activity penalty of the 128-d layer.
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor x) {
    x = torch::relu(conv1(x));
    x = torch::relu(conv2(x));
    x = torch::max_pool2d(x, 2);
    x = torch::dropout(x, 0.25, is_training());
    x = fc1(x.flatten(1)).relu();
    const torch::Tensor penalty = 1e-4 * x.square().sum() / x.size(0);
    x = F::normalize(x, F::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
    x = torch::dropout(x, 0.5, is_training());
    return {fc2(x), penalty};
  }
  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Net);

struct Data {
  normnet::datasets::Dataset source;  // owns the memory the views below read
  torch::Tensor train_x, train_y, test_x, test_y;
};

Data load() {
  Data d{normnet::datasets::fashion_mnist(), {}, {}, {}, {}};
  const auto view = [](normnet::Tensor& x) {
    return torch::from_blob(x.data<float>(), {x.shape()[0], 1, 28, 28}, torch::kFloat32);
  };
  const auto labels = [](normnet::Tensor& y) { return torch::from_blob(y.data<int64_t>(), {y.shape()[0]}, torch::kInt64); };
  d.train_x = view(d.source.train.x);
  d.train_y = labels(d.source.train.y);
  d.test_x = view(d.source.test.x);
  d.test_y = labels(d.source.test.y);
  return d;
}

// One optimizer step on rows `idx`; per-phase seconds into t[0..4) when t is non-null.
void train_step(Net& net, torch::optim::Adam& adam, const Data& d, const torch::Tensor& idx, double* t) {
  nb::Clock clock;
  const torch::Tensor x = d.train_x.index_select(0, idx), y = d.train_y.index_select(0, idx);
  if (t) t[0] = clock.seconds(), clock.restart();
  adam.zero_grad();
  auto [logits, penalty] = net->forward(x);
  torch::Tensor loss = F::cross_entropy(logits, y) + penalty;
  (void)loss.item<float>();
  if (t) t[1] = clock.seconds(), clock.restart();
  loss.backward();
  if (t) t[2] = clock.seconds(), clock.restart();
  adam.step();
  if (t) t[3] = clock.seconds();
}

double test_accuracy(Net& net, const Data& d) {
  torch::NoGradGuard no_grad;
  net->eval();
  int64_t correct = 0;
  for (int64_t begin = 0; begin < d.test_x.size(0); begin += 256) {
    const int64_t end = std::min<int64_t>(begin + 256, d.test_x.size(0));
    const torch::Tensor pred = net->forward(d.test_x.slice(0, begin, end)).first.argmax(1);
    correct += pred.eq(d.test_y.slice(0, begin, end)).sum().item<int64_t>();
  }
  net->train();
  return static_cast<double>(correct) / static_cast<double>(d.test_x.size(0));
}

void run(const nb::Args& args) {
  const std::string mode = args.str("mode", "train");
  const int steps = args.integer("steps", 40), warmup = args.integer("warmup", 3);
  const int seed = args.integer("seed", 1);  // initial weights, shuffling, Dropout
  if (seed < 0) throw std::invalid_argument("--seed must be >= 0, got " + std::to_string(seed));
  torch::manual_seed(static_cast<uint64_t>(seed));
  const Data d = load();
  Net net;
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-7));
  const int64_t n = d.train_x.size(0), batches = (n + nb::kBatch - 1) / nb::kBatch;
  const auto batch_rows = [&](const torch::Tensor& perm, int64_t b) {
    return perm.slice(0, b * nb::kBatch, std::min<int64_t>((b + 1) * nb::kBatch, n));
  };
  if (mode == "train" || mode == "phases") {
    const torch::Tensor perm = torch::randperm(n, torch::kInt64);
    std::vector<double> step, phase[4];
    nb::Clock clock;
    for (int s = 0; s < warmup + steps; ++s) {
      double t[4];
      clock.restart();
      train_step(net, adam, d, batch_rows(perm, s % (batches - 1)), mode == "phases" ? t : nullptr);
      if (s < warmup) continue;
      step.push_back(clock.seconds());
      for (int i = 0; i < 4; ++i) phase[i].push_back(t[i]);
    }
    if (mode == "train") return nb::report_steps(step);
    const char* names[4] = {"gather_ms", "forward_ms", "backward_ms", "optimizer_ms"};
    for (int i = 0; i < 4; ++i) nb::result(names[i], nb::median(phase[i]) * 1e3);
  } else if (mode == "epochs") {
    for (int e = 0; e < args.integer("epochs", 1); ++e) {
      nb::Clock clock, step_clock;
      std::vector<double> step;
      const torch::Tensor perm = torch::randperm(n, torch::kInt64);
      for (int64_t b = 0; b < batches; ++b) {
        step_clock.restart();
        train_step(net, adam, d, batch_rows(perm, b), nullptr);
        step.push_back(step_clock.seconds());
      }
      const double seconds = clock.seconds(), acc = test_accuracy(net, d);
      nb::result("epoch" + std::to_string(e + 1) + "_s", seconds);
      nb::report_epoch_steps("epoch" + std::to_string(e + 1), step, seconds);
      nb::result("epoch" + std::to_string(e + 1) + "_test_acc", acc);
      std::fprintf(stderr, "libtorch epoch %d: %.1f s, test accuracy %.4f\n", e + 1, seconds, acc);
    }
  } else if (mode == "infer") {
    torch::NoGradGuard no_grad;
    net->eval();
    const int reps = args.integer("reps", 30);
    const torch::Tensor x1 = d.test_x.slice(0, 0, 1).clone(), x256 = d.test_x.slice(0, 0, 256).clone();
    nb::result("fwd1_us", nb::median_seconds([&] { (void)net->forward(x1); }, 20, reps * 20) * 1e6);
    nb::result("fwd256_ms", nb::median_seconds([&] { (void)net->forward(x256); }, 3, reps) * 1e3);
  } else {
    throw std::invalid_argument("unknown --mode '" + mode + "' (train, epochs, infer, phases)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    torch::set_num_threads(nb::thread_count());
    run(nb::Args(argc, argv));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "peer_fashion_cnn_torch: %s\n", e.what());
    return 1;
  }
}

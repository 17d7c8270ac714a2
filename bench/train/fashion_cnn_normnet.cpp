// Issue 7's workload in normnet, through the public API only: Keras's mnist_cnn on Fashion-MNIST
// with an L2-normalized, activity-regularized 128-d layer, Adam(1e-3), batch 128.
// One mode per process (bench_fashion_cnn runs it beside the libtorch peer and reads the RESULT
// lines and the peak RSS):
//   --mode train  --steps N --warmup W   fit() steps timed one by one; epoch_s = median × 60000/128
//   --mode epochs --epochs E             full epochs of fit(); seconds and test accuracy per epoch
//   --mode infer                         forward only: batch 1 latency, batch 256 time
//   --mode phases --steps N --warmup W   a hand-written step split into gather, forward (+ losses),
//                                        backward, optimizer
//   --data uint8 (default) | float32     how the data set is held: uint8 keeps the image bytes
//                                        (55 MB) and the model starts Input(uint8) → Rescaling(1/255);
//                                        float32 holds byte/255 (220 MB) and the model starts
//                                        Input(float32), as the libtorch peer does
//   --conv2d-algorithm direct (default) | winograd
//                                        ops::set_conv2d_algorithm: Winograd for the 32 → 64 convolution
//   --seed S (default 1)                 set_random_seed (initial weights) and fit's seed (shuffling,
//                                        Dropout); bench_fashion_cnn --seeds compares several
// Every mode prints RESULT data_mib (the bytes of the data set's tensors).
// Threads: NORMNET_NUM_THREADS (2 by default here).
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "normnet/callbacks.h"
#include "normnet/datasets.h"
#include "normnet/initializers.h"
#include "normnet/layers.h"
#include "normnet/losses.h"
#include "normnet/model.h"
#include "normnet/normnet.h"
#include "normnet/optimizers.h"
#include "normnet/regularizers.h"
#include "train/train_bench_util.h"

namespace {

using namespace normnet;
namespace nb = normnet::bench;

// The same network either way; on uint8 images the model rescales them first, as Keras's
// Input(dtype="uint8") → layers.Rescaling(1/255) does.
Model fashion_cnn(DType images) {
  Tensor in = Input({28, 28, 1}, images);
  Tensor h = images == DType::kUInt8 ? layers::Rescaling(1.0 / 255)(in) : in;
  h = layers::Conv2D(32, {3, 3}).activation("relu")(h);
  h = layers::Conv2D(64, {3, 3}).activation("relu")(h);
  h = layers::MaxPooling2D({2, 2})(h);
  h = layers::Dropout(0.25)(h);
  h = layers::Flatten()(h);
  h = layers::Dense(128).activation("relu").activity_regularizer(regularizers::L2(1e-4))(h);
  h = layers::L2Normalization()(h);
  h = layers::Dropout(0.5)(h);
  Tensor logits = layers::Dense(10)(h);
  return Model({in}, {logits});
}

CompileOptions compile_options() {
  return CompileOptions()
      .optimizer(optimizers::Adam(1e-3))
      .loss(losses::SparseCategoricalCrossentropy().from_logits(true))
      .metrics({"accuracy"});
}

// Seconds of each fit() step, from batch begin to batch end (gather, step, metrics, logs).
class StepTimer : public Callback {
 public:
  void on_train_batch_begin(int, const Logs&) override { clock_.restart(); }
  void on_train_batch_end(int, const Logs&) override { seconds.push_back(clock_.seconds()); }
  std::vector<double> seconds;

 private:
  nb::Clock clock_;
};

void run_train(Model& model, const datasets::Dataset& data, int steps, int warmup, uint64_t seed) {
  auto timer = std::make_shared<StepTimer>();
  model.fit(data.train.x, data.train.y,
            FitOptions()
                .epochs(1)
                .batch_size(nb::kBatch)
                .steps_per_epoch(steps + warmup)
                .seed(seed)
                .verbose(0)
                .callbacks({timer}));
  const std::vector<double> timed(timer->seconds.begin() + warmup, timer->seconds.end());
  nb::report_steps(timed);
}

void run_epochs(Model& model, const datasets::Dataset& data, int epochs, uint64_t seed) {
  for (int e = 0; e < epochs; ++e) {
    auto timer = std::make_shared<StepTimer>();
    nb::Clock clock;
    const History h = model.fit(data.train.x, data.train.y,
                                FitOptions()
                                    .epochs(e + 1)
                                    .initial_epoch(e)
                                    .batch_size(nb::kBatch)
                                    .seed(seed)
                                    .verbose(0)
                                    .callbacks({timer}));
    const double seconds = clock.seconds();
    const auto test = model.evaluate(data.test.x, data.test.y, 256);
    const std::string tag = "epoch" + std::to_string(e + 1);
    nb::result(tag + "_s", seconds);
    nb::report_epoch_steps(tag, timer->seconds, seconds);
    nb::result(tag + "_test_acc", test.at("accuracy"));
    std::fprintf(stderr, "normnet epoch %d: %.1f s, test accuracy %.4f\n", e + 1, seconds, test.at("accuracy"));
  }
}

// The first byte of a uint8 or float32 tensor.
const unsigned char* bytes_of(const Tensor& t) {
  return t.dtype() == DType::kUInt8 ? t.data<uint8_t>() : reinterpret_cast<const unsigned char*>(t.data<float>());
}
unsigned char* bytes_of(Tensor& t) { return const_cast<unsigned char*>(bytes_of(static_cast<const Tensor&>(t))); }

void run_infer(Model& model, const datasets::Dataset& data, int reps) {
  NoGradGuard no_grad;
  const auto batch = [&](int64_t n) { return ops::slice(data.test.x, 0, 0, n); };  // a fresh copy
  const Tensor x1 = batch(1), x256 = batch(256);
  nb::result("fwd1_us", nb::median_seconds([&] { (void)model(x1); }, 20, reps * 20) * 1e6);
  nb::result("fwd256_ms", nb::median_seconds([&] { (void)model(x256); }, 3, reps) * 1e3);
}

// The rows `order[begin, begin + kBatch)` of the training set, copied as fit's gatherer does.
std::pair<Tensor, Tensor> gather(const datasets::Dataset& data, const std::vector<int64_t>& order, int64_t begin) {
  const DType dtype = data.train.x.dtype();
  const std::size_t row_bytes = 784 * dtype_size(dtype);
  Tensor x = Tensor::empty({nb::kBatch, 28, 28, 1}, dtype);
  Tensor y = Tensor::empty({nb::kBatch}, DType::kInt64);
  const unsigned char* sx = bytes_of(data.train.x);
  const int64_t* sy = data.train.y.data<int64_t>();
  for (int64_t i = 0; i < nb::kBatch; ++i) {
    const int64_t row = order[static_cast<std::size_t>(begin + i)];
    std::memcpy(bytes_of(x) + static_cast<std::size_t>(i) * row_bytes, sx + static_cast<std::size_t>(row) * row_bytes, row_bytes);
    y.data<int64_t>()[i] = sy[row];
  }
  return {x, y};
}

void run_phases(Model& model, const datasets::Dataset& data, int steps, int warmup) {
  const auto loss_fn = losses::SparseCategoricalCrossentropy().from_logits(true);
  optimizers::Adam adam(1e-3);
  const std::vector<Tensor> weights = model.trainable_weights();
  std::vector<int64_t> order(60000);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(1));
  std::vector<double> t_gather, t_forward, t_backward, t_optimizer;
  nb::Clock clock;
  for (int step = 0; step < warmup + steps; ++step) {
    const bool timed = step >= warmup;
    clock.restart();
    const auto [x, y] = gather(data, order, (step % 468) * nb::kBatch);
    if (timed) t_gather.push_back(clock.seconds());

    clock.restart();
    for (Tensor w : weights) w.zero_grad();
    Tensor loss = loss_fn(y, model(x, /*training=*/true));
    for (const Tensor& term : model.losses()) loss = loss + term;
    (void)loss.item();
    if (timed) t_forward.push_back(clock.seconds());

    clock.restart();
    loss.backward();
    if (timed) t_backward.push_back(clock.seconds());

    clock.restart();
    adam.apply_gradients(weights);
    if (timed) t_optimizer.push_back(clock.seconds());
  }
  nb::result("gather_ms", nb::median(t_gather) * 1e3);
  nb::result("forward_ms", nb::median(t_forward) * 1e3);
  nb::result("backward_ms", nb::median(t_backward) * 1e3);
  nb::result("optimizer_ms", nb::median(t_optimizer) * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const nb::Args args(argc, argv);
    const std::string mode = args.str("mode", "train");
    set_num_threads(nb::thread_count());
    const int seed = args.integer("seed", 1);
    if (seed < 0) throw ValueError("--seed must be >= 0, got " + std::to_string(seed));
    set_random_seed(static_cast<uint64_t>(seed));
    const std::string data_kind = args.str("data", "uint8");
    if (data_kind != "uint8" && data_kind != "float32") {
      throw ValueError("unknown --data '" + data_kind + "' (uint8, float32)");
    }
    const DType images = data_kind == "uint8" ? DType::kUInt8 : DType::kFloat32;
    const std::string algorithm = args.str("conv2d-algorithm", "direct");
    if (algorithm != "direct" && algorithm != "winograd") {
      throw ValueError("unknown --conv2d-algorithm '" + algorithm + "' (direct, winograd)");
    }
    ops::set_conv2d_algorithm(algorithm == "winograd" ? ops::Conv2dAlgorithm::kWinograd
                                                      : ops::Conv2dAlgorithm::kDirect);
    const datasets::Dataset data = datasets::fashion_mnist("", images);
    double data_bytes = 0;
    for (const Tensor* t : {&data.train.x, &data.train.y, &data.test.x, &data.test.y}) {
      data_bytes += static_cast<double>(t->numel()) * static_cast<double>(dtype_size(t->dtype()));
    }
    nb::result("data_mib", data_bytes / (1024.0 * 1024.0));
    Model model = fashion_cnn(images);
    model.compile(compile_options());
    const int steps = args.integer("steps", 40), warmup = args.integer("warmup", 3);
    if (mode == "train")
      run_train(model, data, steps, warmup, static_cast<uint64_t>(seed));
    else if (mode == "epochs")
      run_epochs(model, data, args.integer("epochs", 1), static_cast<uint64_t>(seed));
    else if (mode == "infer") run_infer(model, data, args.integer("reps", 30));
    else if (mode == "phases") run_phases(model, data, steps, warmup);
    else
      throw ValueError("unknown --mode '" + mode + "' (train, epochs, infer, phases)");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_cnn_normnet: %s\n", e.what());
    return 1;
  }
}

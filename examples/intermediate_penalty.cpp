// A CNN on Fashion-MNIST whose fourth layer's output h is penalized by λ·Σh², three ways:
//   A. activity_regularizer on that layer (a custom regularizer callable),
//   B. add_loss from a custom identity layer placed after it,
//   C. h as a second model output with a custom loss (sum of squares) and loss_weights {1, λ}.
// Keras semantics: an activity penalty is divided by the batch size N (docs/regularization.md).
// B divides by N itself, and C's per-sample loss Σ_{h,w,c} h² is averaged over the batch by the
// loss (Keras's sum_over_batch_size), so all three add λ·Σh²/N. The example shows equal total
// losses and gradients for equal weights, then trains way A briefly.
//
//   intermediate_penalty [--quick]
#include <cmath>
#include <iomanip>
#include <iostream>

#include <normnet/datasets.h>
#include <normnet/layers.h>
#include <normnet/model.h>
#include <normnet/normnet.h>

#include "example_util.h"

using namespace normnet;

namespace {

constexpr double kLambda = 1e-2;

enum class Way { kActivityRegularizer, kAddLoss, kSecondOutput };

// Way B: passes x through and adds λ·Σx²/N (N = batch size) to the model's losses.
class SquaredSumPenalty : public Layer {
 public:
  explicit SquaredSumPenalty(double factor) : Layer("SquaredSumPenalty"), factor_(factor) {}
  Tensor call(const Tensor& x, const CallArgs&) override {
    add_loss(factor_ * ops::sum(ops::square(x)) / static_cast<double>(x.size(0)), "squared_sum_penalty");
    return x;
  }

 private:
  double factor_;
};

// Input → conv1 → pool1 → conv2 → conv3 (the fourth layer, penalized) → pool2 → flatten → logits.
Model make_cnn(Way way) {
  auto in = Input({28, 28, 1}, DType::kFloat32, "image");
  auto h = layers::Conv2D(8, {3, 3}).activation("relu").name("conv1")(in);
  h = layers::MaxPooling2D({2, 2}).name("pool1")(h);
  h = layers::Conv2D(16, {3, 3}).activation("relu").name("conv2")(h);
  auto conv3 = layers::Conv2D(16, {3, 3}).activation("relu").name("conv3");
  if (way == Way::kActivityRegularizer) {
    conv3.activity_regularizer([](const Tensor& a) { return kLambda * ops::sum(ops::square(a)); });
  }
  Tensor fourth = conv3(h);
  if (way == Way::kAddLoss) fourth = make_layer<SquaredSumPenalty>(kLambda)(fourth);
  h = layers::MaxPooling2D({2, 2}).name("pool2")(fourth);
  auto logits = layers::Dense(10).name("logits")(layers::Flatten().name("flatten")(h));
  Model model({in}, way == Way::kSecondOutput ? std::vector<Tensor>{logits, fourth} : std::vector<Tensor>{logits});

  CompileOptions options;
  options.optimizer(optimizers::Adam(1e-3));
  const Loss ce = losses::SparseCategoricalCrossentropy().from_logits(true);
  if (way == Way::kSecondOutput) {
    // Per sample: Σ_{h,w,c} y_pred²  (the loss then averages over the batch).
    const Loss sum_of_squares([](const Tensor&, const Tensor& y_pred) { return ops::sum(ops::square(y_pred), {1, 2, 3}); },
                              "sum_of_squares");
    options.losses({ce, sum_of_squares})
        .loss_weights({1.0, kLambda})
        .metrics(std::vector<std::vector<std::string>>{{"accuracy"}, {}});
  } else {
    options.loss(ce).metrics({"accuracy"});
  }
  model.compile(options);
  return model;
}

void copy_weights(const Model& from, const Model& to) {
  const std::vector<Tensor> src = from.weights(), dst = to.weights();
  for (std::size_t i = 0; i < src.size(); ++i) {
    const std::vector<float> v = src[i].to_vector<float>();
    std::copy(v.begin(), v.end(), Tensor(dst[i]).data<float>());
  }
}

struct LossAndGrads {
  double total = 0, penalty = 0;
  std::vector<Tensor> grads;
};

// The training objective of one batch, written out: cross-entropy + λ·Σh²/N however the model
// carries the penalty; then the gradient of every weight.
LossAndGrads objective(const Model& model, Way way, const Tensor& x, const Tensor& y) {
  for (Tensor w : model.trainable_weights()) w.zero_grad();
  const Loss ce = losses::SparseCategoricalCrossentropy().from_logits(true);
  const std::vector<Tensor> outputs = Model(model)(std::vector<Tensor>{x}, /*training=*/true);
  Tensor penalty;
  if (way == Way::kSecondOutput) {
    penalty = kLambda * ops::mean(ops::sum(ops::square(outputs[1]), {1, 2, 3}));
  } else {
    penalty = model.losses().at(0);  // the activity regularizer's or add_loss's term
  }
  const Tensor total = ce(y, outputs[0]) + penalty;
  total.backward();
  LossAndGrads r{total.item(), penalty.item(), {}};
  for (const Tensor& w : model.trainable_weights()) r.grads.push_back(w.grad().clone());
  return r;
}

int run_main(int argc, char** argv) {
  const bool quick = examples::has_flag(argc, argv, "--quick");
  Model a = make_cnn(Way::kActivityRegularizer);
  Model b = make_cnn(Way::kAddLoss);
  Model c = make_cnn(Way::kSecondOutput);
  copy_weights(a, b);
  copy_weights(a, c);
  std::cout << "C: the penalized layer conv3 is also an output\n";
  c.summary();

  const datasets::Dataset data = datasets::fashion_mnist();
  const Tensor x = ops::slice(data.test.x, 0, 0, 32);
  const Tensor y = ops::slice(data.test.y, 0, 0, 32);
  const LossAndGrads ga = objective(a, Way::kActivityRegularizer, x, y);
  const LossAndGrads gb = objective(b, Way::kAddLoss, x, y);
  const LossAndGrads gc = objective(c, Way::kSecondOutput, x, y);

  std::cout << std::setprecision(9) << "\nOne batch of 32 test images, the same weights (lambda = " << kLambda << "):\n"
            << "  A activity_regularizer: total loss " << ga.total << ", penalty " << ga.penalty << "\n"
            << "  B add_loss:             total loss " << gb.total << ", penalty " << gb.penalty << "\n"
            << "  C second output:        total loss " << gc.total << ", penalty " << gc.penalty << "\n";
  // The library's own loss path (test_on_batch, as evaluate and fit compute it) agrees.
  const Tensor dummy = Tensor::zeros({32, 1});
  const double la = a.test_on_batch(x, y).at("loss"), lb = b.test_on_batch(x, y).at("loss");
  const double lc = c.test_on_batch({x}, {y, dummy}).at("loss");
  std::cout << "  test_on_batch losses:   A " << la << ", B " << lb << ", C " << lc << "\n";

  std::cout << std::setprecision(3) << "\nGradients: max |g_A - g_B| and max |g_A - g_C| per weight (max |g_A|):\n";
  double worst = 0;
  const std::vector<NamedWeight> names = a->named_weights();
  for (std::size_t i = 0; i < ga.grads.size(); ++i) {
    const double scale = ops::max(ops::abs(ga.grads[i])).item();
    const double ab = examples::max_abs_diff(ga.grads[i], gb.grads[i]);
    const double ac = examples::max_abs_diff(ga.grads[i], gc.grads[i]);
    worst = std::max({worst, ab / scale, ac / scale});
    std::cout << "  " << std::left << std::setw(14) << names[i].name << std::right << " " << std::setw(10) << ab
              << " " << std::setw(10) << ac << "   (" << scale << ")\n";
  }
  const double loss_gap =
      std::max({std::abs(ga.total - gb.total), std::abs(ga.total - gc.total), std::abs(la - lb), std::abs(la - lc)}) /
      ga.total;
  std::cout << "largest relative difference: losses " << loss_gap << ", gradients " << worst
            << (worst == 0 && loss_gap == 0 ? " (bit for bit)\n" : " (float32 summation order)\n");
  const bool same = loss_gap < 1e-6 && worst < 1e-4;
  std::cout << (same ? "RESULT: the three ways give the same loss and gradients\n" : "RESULT: MISMATCH\n");

  // Train way A briefly.
  const int64_t n_train = quick ? 2048 : 60000, n_test = quick ? 500 : 10000;
  const History h = a.fit(ops::slice(data.train.x, 0, 0, n_train), ops::slice(data.train.y, 0, 0, n_train),
                          FitOptions().epochs(quick ? 1 : 2).batch_size(64).seed(1).verbose(quick ? 0 : 1));
  const auto r = a.evaluate(ops::slice(data.test.x, 0, 0, n_test), ops::slice(data.test.y, 0, 0, n_test), 256);
  std::cout << std::setprecision(4) << "\ntrained A on " << n_train << " images: test accuracy " << r.at("accuracy")
            << ", test loss " << r.at("loss") << " of which the penalty conv3/activity_regularizer is "
            << r.at("conv3/activity_regularizer") << "\n  penalty per epoch in training:";
  for (double p : h.history.at("conv3/activity_regularizer")) std::cout << " " << p;
  std::cout << "\n";
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_example([&] { return run_main(argc, argv); });
}

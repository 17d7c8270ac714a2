// compile/fit/evaluate/predict/train_on_batch/test_on_batch on small models made of custom
// layers (so these tests depend only on the Layer base): learning, determinism, regularization
// terms by name in training and validation logs, several outputs, a whole-model loss, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "normnet/initializers.h"
#include "normnet/model.h"
#include "normnet/normnet.h"
#include "support/temp_dir.h"
#include "training/batching.h"
#include "training/training_state.h"

namespace normnet {
namespace {

// y = x·W + b, with an optional kernel regularizer.
class Affine : public Layer {
 public:
  explicit Affine(int64_t units, Regularizer kernel_regularizer = {})
      : Layer("Affine"), units_(units), kernel_regularizer_(std::move(kernel_regularizer)) {}
  void build(const std::vector<Shape>& shapes) override {
    kernel_ = add_weight("kernel", {shapes[0].back(), units_}, initializers::GlorotUniform(), true, kernel_regularizer_);
    bias_ = add_weight("bias", {units_}, initializers::Zeros());
  }
  Tensor call(const Tensor& x, const CallArgs&) override { return ops::matmul(x, kernel_) + bias_; }
  Tensor kernel_, bias_;

 private:
  int64_t units_;
  Regularizer kernel_regularizer_;
};

// Inverted dropout drawing its seed from normnet's global stream, as the built-in Dropout.
class Drop : public Layer {
 public:
  explicit Drop(double rate) : Layer("Drop"), rate_(rate) {}
  Tensor call(const Tensor& x, const CallArgs& args) override { return ops::dropout(x, rate_, args.training, next_seed()); }

 private:
  double rate_;
};

// Adds 0.01·mean(x²) from inside call.
class Penalize : public Layer {
 public:
  Penalize() : Layer("Penalize") {}
  Tensor call(const Tensor& x, const CallArgs&) override {
    add_loss(0.01 * ops::mean(ops::square(x)));
    return x;
  }
};

// x ~ N(0, 1) in 2-d; label 1 when x0 + 0.5·x1 > 0.
struct Data {
  Tensor x, y;
};
Data separable(int64_t n, uint64_t seed) {
  Tensor x = Tensor::randn({n, 2}, seed);
  const float* p = x.data<float>();
  std::vector<int64_t> labels(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = p[2 * i] + 0.5f * p[2 * i + 1] > 0 ? 1 : 0;
  return {x, Tensor::from_vector(labels, {n})};
}

Model classifier(uint64_t seed, double dropout = 0.0) {
  set_random_seed(seed);
  auto in = Input({2});
  Tensor h = make_layer<Affine>(8)(in);
  if (dropout > 0) h = make_layer<Drop>(dropout)(h);
  return Model({in}, {make_layer<Affine>(2)(h)});
}

CompileOptions sparse_ce(double lr = 0.05) {
  return CompileOptions()
      .optimizer(optimizers::Adam(lr))
      .loss(losses::SparseCategoricalCrossentropy().from_logits(true))
      .metrics({"accuracy"});
}

std::vector<std::vector<float>> weight_values(const Model& m) {
  std::vector<std::vector<float>> out;
  for (const Tensor& w : m.weights()) out.push_back(w.to_vector<float>());
  return out;
}

// Records the logs of every batch and epoch it sees.
class Recorder : public Callback {
 public:
  void on_train_batch_end(int, const Logs& logs) override { batches.push_back(logs); }
  void on_epoch_end(int, const Logs& logs) override { epochs.push_back(logs); }
  std::vector<Logs> batches, epochs;
};

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Fit, LearnsALinearlySeparableProblem) {
  const Data d = separable(256, 1);
  Model model = classifier(1);
  model.compile(sparse_ce());
  const History h = model.fit(d.x, d.y, FitOptions().epochs(15).batch_size(32).seed(1).verbose(0));
  ASSERT_EQ(h.epoch.size(), 15u);
  EXPECT_EQ(h.epoch.front(), 0);
  EXPECT_EQ(h.epoch.back(), 14);
  const auto& loss = h.history.at("loss");
  EXPECT_LT(loss.back(), 0.5 * loss.front());
  EXPECT_GT(h.history.at("accuracy").back(), 0.9);
  const auto r = model.evaluate(d.x, d.y);
  EXPECT_GT(r.at("accuracy"), 0.9);
  EXPECT_LT(r.at("loss"), loss.front());
}

TEST(Fit, SequentialCompiledBeforeItsFirstCall) {
  const Data d = separable(128, 2);
  set_random_seed(2);
  Sequential model;
  model.add(make_layer<Affine>(2));
  model.compile(sparse_ce());
  const History h = model.fit(d.x, d.y, FitOptions().epochs(10).batch_size(16).seed(2).verbose(0));
  EXPECT_LT(h.history.at("loss").back(), h.history.at("loss").front());
  EXPECT_GT(h.history.at("accuracy").back(), 0.85);
}

TEST(Fit, SameSeedGivesIdenticalWeightsAndAnotherSeedDoesNot) {
  const Data d = separable(100, 3);
  auto train = [&](uint64_t fit_seed) {
    Model model = classifier(5, /*dropout=*/0.3);
    model.compile(sparse_ce());
    model.fit(d.x, d.y, FitOptions().epochs(2).batch_size(16).seed(fit_seed).verbose(0));
    return weight_values(model);
  };
  const auto a = train(7), b = train(7), c = train(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Fit, ShuffleOffVisitsSamplesInOrder) {
  detail::Rng rng(1);
  EXPECT_EQ(detail::epoch_order(3, 7, false, rng), (std::vector<int64_t>{3, 4, 5, 6}));
  auto shuffled = detail::epoch_order(0, 50, true, rng);
  auto sorted = shuffled;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, detail::epoch_order(0, 50, false, rng));
  EXPECT_NE(shuffled, sorted);
}

TEST(Batching, GatherCopiesRowsAndReusesAFreeBuffer) {
  const Tensor x = Tensor::arange(12).to(DType::kFloat32);
  const Tensor rows = ops::reshape(x, {4, 3});
  detail::RowGatherer g;
  const int64_t idx[] = {2, 0, 1};
  const void* first = nullptr;
  {
    Tensor b = g.gather(rows, idx, 2);
    EXPECT_EQ(b.shape(), (Shape{2, 3}));
    EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{6, 7, 8, 0, 1, 2}));
    first = b.data<float>();
  }
  EXPECT_EQ(g.gather(rows, idx + 1, 2).data<float>(), first);  // nobody held it: written again
  Tensor again = g.gather(rows, idx + 1, 1);  // another shape: a new buffer
  EXPECT_EQ(again.to_vector<float>(), (std::vector<float>{0, 1, 2}));
  Tensor kept = g.gather(rows, idx, 1);  // `again` is held by us: not overwritten
  EXPECT_EQ(again.to_vector<float>(), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(kept.to_vector<float>(), (std::vector<float>{6, 7, 8}));
  const int64_t bad[] = {4};
  EXPECT_THROW((void)g.gather(rows, bad, 1), ValueError);
}

// The model of the regularization tests: an L2 kernel penalty and an L1 activity penalty on
// "hidden", and an add_loss term from "penalize".
struct RegModel {
  Model model;
  std::shared_ptr<Affine> hidden;
};
RegModel regularized(uint64_t seed) {
  set_random_seed(seed);
  auto in = Input({2});
  auto hidden = make_layer<Affine>(4, regularizers::L2(0.01));
  hidden->set_name("hidden");
  hidden->set_activity_regularizer(regularizers::L1(0.001));
  auto penalize = make_layer<Penalize>();
  penalize->set_name("penalize");
  Tensor h = penalize(hidden(in));
  return {Model({in}, {make_layer<Affine>(2)(h)}), hidden.ptr()};
}

TEST(Fit, RegularizationTermsAppearByNameInTrainingAndValidation) {
  const Data d = separable(120, 4);
  RegModel r = regularized(4);
  r.model.compile(sparse_ce());
  auto rec = std::make_shared<Recorder>();
  const History h = r.model.fit(d.x, d.y, FitOptions().epochs(2).batch_size(16).validation_split(0.25).seed(4).verbose(0).callbacks({rec}));
  for (const std::string prefix : {"", "val_"}) {
    for (const std::string term : {"hidden/kernel_regularizer", "hidden/activity_regularizer", "penalize/add_loss"}) {
      ASSERT_TRUE(h.history.count(prefix + term)) << prefix + term;
      EXPECT_GT(h.history.at(prefix + term).back(), 0.0) << prefix + term;
    }
  }
  ASSERT_FALSE(rec->batches.empty());
  EXPECT_TRUE(rec->batches.front().count("hidden/activity_regularizer"));
  EXPECT_EQ(rec->batches.size(), 2u * 6u);  // 90 training samples in batches of 16

  // At the final weights, the validation logs equal the terms of one forward pass over the
  // held-out last quarter (sample-weighted batch means of batch-mean terms are full means).
  const Tensor vx = ops::slice(d.x, 0, 90, 120), vy = ops::slice(d.y, 0, 90, 120);
  Tensor logits;
  {
    NoGradGuard no_grad;
    logits = r.model(vx);
  }
  double terms = 0;
  for (const NamedLoss& term : r.model.named_losses()) {
    const double v = term.value.item();
    terms += v;
    EXPECT_NEAR(h.history.at("val_" + term.name).back(), v, 1e-5 * std::fabs(v) + 1e-9) << term.name;
  }
  const double data_loss = losses::SparseCategoricalCrossentropy().from_logits(true)(vy, logits).item();
  EXPECT_NEAR(h.history.at("val_loss").back(), data_loss + terms, 1e-5);
  // evaluate reports the same keys.
  const auto e = r.model.evaluate(vx, vy, 7);
  EXPECT_NEAR(e.at("loss"), data_loss + terms, 1e-5);
  for (const NamedLoss& term : r.model.named_losses()) {
    if (term.name == "hidden/kernel_regularizer") {
      EXPECT_NEAR(e.at(term.name), term.value.item(), 1e-6);
    }
  }
  EXPECT_TRUE(e.count("penalize/add_loss"));
}

TEST(Fit, TrainingLossIsDataLossPlusTermsAtFixedWeights) {
  const Data d = separable(32, 5);
  RegModel r = regularized(5);
  r.model.compile(CompileOptions().optimizer(optimizers::SGD(0.0)).loss(losses::SparseCategoricalCrossentropy().from_logits(true)));
  const auto logs = r.model.train_on_batch(d.x, d.y);  // lr 0: the weights stay put
  const Tensor logits = r.model(d.x, /*training=*/true);
  double terms = 0;
  for (const Tensor& t : r.model.losses()) terms += t.item();
  const double data_loss = losses::SparseCategoricalCrossentropy().from_logits(true)(d.y, logits).item();
  EXPECT_NEAR(logs.at("loss"), data_loss + terms, 1e-6);
  EXPECT_EQ(logs.size(), 4u);  // loss and three terms
}

// Two outputs: "cls" (2 logits) and "aux" (1 value).
struct TwoHead {
  Model model;
  std::string cls, aux;
};
TwoHead two_heads(uint64_t seed) {
  set_random_seed(seed);
  auto in = Input({2});
  auto cls = make_layer<Affine>(2);
  auto aux = make_layer<Affine>(1);
  return {Model({in}, {cls(in), aux(in)}), cls.name(), aux.name()};
}

TEST(Fit, LossWeightsAndAnOutputWithoutLoss) {
  const Data d = separable(40, 6);
  TwoHead t = two_heads(6);
  const Loss ce = losses::SparseCategoricalCrossentropy().from_logits(true);
  // A braced list of Loss variables picks the per-output overload (it used to be ambiguous with
  // the by-name map's iterator-pair constructor).
  t.model.compile(CompileOptions().optimizer(optimizers::SGD(0.0)).losses({ce, Loss()}).loss_weights({0.5, 3.0}).metrics({"accuracy"}));
  const Tensor aux_y = Tensor::zeros({40, 1});
  const auto logs = t.model.test_on_batch({d.x}, {d.y, aux_y});
  const auto preds = t.model.predict(std::vector<Tensor>{d.x});
  const double cls_loss = ce(d.y, preds[0]).item();
  EXPECT_NEAR(logs.at(t.cls + "_loss"), cls_loss, 1e-6);
  EXPECT_NEAR(logs.at("loss"), 0.5 * cls_loss, 1e-6);
  EXPECT_FALSE(logs.count(t.aux + "_loss"));
  EXPECT_TRUE(logs.count(t.cls + "_accuracy"));
  EXPECT_FALSE(logs.count(t.aux + "_accuracy"));
  EXPECT_FALSE(logs.count("accuracy"));

  // The same by output name.
  t.model.compile(CompileOptions().optimizer(optimizers::SGD(0.0)).losses(std::map<std::string, Loss>{{t.aux, losses::MeanSquaredError()}}));
  const auto by_name = t.model.test_on_batch({d.x}, {d.y, aux_y});
  const double mse = losses::MeanSquaredError()(aux_y, preds[1]).item();
  EXPECT_NEAR(by_name.at("loss"), mse, 1e-6);
  EXPECT_NEAR(by_name.at(t.aux + "_loss"), mse, 1e-6);
  EXPECT_FALSE(by_name.count(t.cls + "_loss"));
  // fit trains both heads when both have losses.
  t.model.compile(CompileOptions().optimizer(optimizers::Adam(0.05)).losses(std::vector<Loss>{ce, losses::MeanSquaredError()}));
  const History h = t.model.fit({d.x}, {d.y, aux_y}, FitOptions().epochs(5).batch_size(8).verbose(0));
  EXPECT_LT(h.history.at(t.aux + "_loss").back(), h.history.at(t.aux + "_loss").front());
  EXPECT_LT(h.history.at(t.cls + "_loss").back(), h.history.at(t.cls + "_loss").front());
}

TEST(Fit, ModelLossReadsAnIntermediateSecondOutput) {
  const Data d = separable(64, 7);
  set_random_seed(7);
  auto in = Input({2});
  auto hidden = make_layer<Affine>(4);
  Tensor h = hidden(in);
  Model model({in}, {make_layer<Affine>(2)(h), h});
  const Loss ce = losses::SparseCategoricalCrossentropy().from_logits(true);
  // Cross-entropy on the logits plus a penalty on the hidden output (the third way to
  // penalize an intermediate layer: a second output with a custom loss).
  model.compile(CompileOptions().optimizer(optimizers::Adam(0.05)).model_loss(
      [ce](const std::vector<Tensor>& y_true, const std::vector<Tensor>& y_pred) {
        return ce(y_true[0], y_pred[0]) + 0.1 * ops::mean(ops::square(y_pred[1]));
      }));
  const Tensor unused = Tensor::zeros({64, 1});
  const auto before = model.test_on_batch({d.x}, {d.y, unused});
  const auto preds = model.predict(std::vector<Tensor>{d.x});
  const double expected = ce(d.y, preds[0]).item() + 0.1 * ops::mean(ops::square(preds[1])).item();
  EXPECT_NEAR(before.at("loss"), expected, 1e-6);
  const History hist = model.fit({d.x}, {d.y, unused}, FitOptions().epochs(8).batch_size(16).seed(1).verbose(0));
  EXPECT_LT(hist.history.at("loss").back(), before.at("loss"));
}

TEST(Evaluate, ReportsLossAndAccuracy) {
  const Data d = separable(50, 8);
  Model model = classifier(8);
  model.compile(sparse_ce());
  const auto r = model.evaluate(d.x, d.y, 16);
  EXPECT_EQ(r.size(), 2u);
  ASSERT_TRUE(r.count("loss"));
  ASSERT_TRUE(r.count("accuracy"));
  Tensor logits = model.predict(d.x);
  EXPECT_NEAR(r.at("loss"), losses::SparseCategoricalCrossentropy().from_logits(true)(d.y, logits).item(), 1e-6);
  const auto argmax = ops::argmax(logits, -1).to_vector<int64_t>();
  const auto labels = d.y.to_vector<int64_t>();
  double correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) correct += argmax[i] == labels[i];
  EXPECT_DOUBLE_EQ(r.at("accuracy"), correct / 50.0);
}

TEST(Predict, ShapeAndValuesMatchTheModelCall) {
  const Data d = separable(23, 9);
  Model model = classifier(9);
  const Tensor p = model.predict(d.x, 5);  // 5 batches, the last of 3
  EXPECT_EQ(p.shape(), (Shape{23, 2}));
  EXPECT_FALSE(p.requires_grad());
  const auto want = model(d.x).to_vector<float>();
  const auto got = p.to_vector<float>();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6f * (1 + std::fabs(want[i])));
  TwoHead t = two_heads(9);
  const auto both = t.model.predict(std::vector<Tensor>{d.x}, 4);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[1].shape(), (Shape{23, 1}));
  EXPECT_NE(error_of([&] { (void)t.model.predict(d.x); }).find("single-output"), std::string::npos);
}

TEST(TrainOnBatch, LossFallsOnAFixedBatch) {
  const Data d = separable(32, 10);
  Model model = classifier(10);
  model.compile(sparse_ce(0.02));
  const double first = model.train_on_batch(d.x, d.y).at("loss");
  double last = first;
  for (int i = 0; i < 30; ++i) last = model.train_on_batch(d.x, d.y).at("loss");
  EXPECT_LT(last, 0.5 * first);
  EXPECT_EQ(model.optimizer()->iterations(), 31);
  const auto t = model.test_on_batch(d.x, d.y);
  EXPECT_LT(t.at("loss"), first);
  EXPECT_TRUE(t.count("accuracy"));
  for (const Tensor& w : model.trainable_weights()) EXPECT_FALSE(w.grad().defined());
}

TEST(Fit, NaNLossIsReportedInTheLogs) {
  Data d = separable(16, 11);
  d.x.data<float>()[3] = std::nanf("");
  Model model = classifier(11);
  model.compile(sparse_ce());
  const History h = model.fit(d.x, d.y, FitOptions().epochs(1).batch_size(8).shuffle(false).verbose(0));
  EXPECT_TRUE(std::isnan(h.history.at("loss").back()));
}

TEST(Fit, ValidationDataGivesValKeys) {
  const Data d = separable(60, 12), v = separable(20, 13);
  Model model = classifier(12);
  model.compile(sparse_ce());
  const History h = model.fit(d.x, d.y, FitOptions().epochs(2).batch_size(16).validation_data(v.x, v.y).verbose(0));
  EXPECT_EQ(h.history.at("val_loss").size(), 2u);
  EXPECT_EQ(h.history.at("val_accuracy").size(), 2u);
  EXPECT_NEAR(h.history.at("val_loss").back(), model.evaluate(v.x, v.y).at("loss"), 1e-6);
}

TEST(FitErrors, ClearMessages) {
  const Data d = separable(10, 14);
  Model model = classifier(14);
  model.name("clf");
  std::string msg = error_of([&] { model.fit(d.x, d.y, FitOptions().verbose(0)); });
  EXPECT_NE(msg.find("Model 'clf': fit() needs compile() first"), std::string::npos) << msg;
  msg = error_of([&] { (void)model.evaluate(d.x, d.y); });
  EXPECT_NE(msg.find("evaluate() needs compile()"), std::string::npos) << msg;
  msg = error_of([&] { model.compile(CompileOptions().loss(losses::MeanSquaredError())); });
  EXPECT_NE(msg.find("needs an optimizer"), std::string::npos) << msg;

  model.compile(sparse_ce());
  msg = error_of([&] { model.fit(d.x, ops::slice(d.y, 0, 0, 8), FitOptions().verbose(0)); });
  EXPECT_NE(msg.find("x[0] has shape [10, 2] (10 samples) but y[0] has shape [8] (8 samples)"), std::string::npos) << msg;
  msg = error_of([&] { model.fit({d.x, d.x}, {d.y}, FitOptions().verbose(0)); });
  EXPECT_NE(msg.find("expected 1 input array(s)"), std::string::npos) << msg;
  msg = error_of([&] { model.fit({d.x}, {d.y, d.y}, FitOptions().verbose(0)); });
  EXPECT_NE(msg.find("expected 1 target array(s)"), std::string::npos) << msg;
  msg = error_of([&] { model.fit(d.x, Tensor::zeros({10, 3}), FitOptions().verbose(0)); });
  EXPECT_NE(msg.find("Model 'clf', output 0 ('"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[10, 3]"), std::string::npos) << msg;
  EXPECT_THROW(model.fit(d.x, Tensor::zeros({10, 3}), FitOptions().verbose(0)), ShapeError);
  msg = error_of([&] { model.fit(d.x, d.y, FitOptions().validation_split(1.0).verbose(0)); });
  EXPECT_NE(msg.find("Model 'clf': validation_split must be in [0, 1), got 1"), std::string::npos) << msg;
  msg = error_of([&] { model.fit(d.x, d.y, FitOptions().validation_split(-0.1).verbose(0)); });
  EXPECT_NE(msg.find("validation_split must be in [0, 1)"), std::string::npos) << msg;
  msg = error_of([&] { model.fit(d.x, d.y, FitOptions().validation_split(0.95).verbose(0)); });
  EXPECT_NE(
      msg.find(
          "Model 'clf': validation_split 0.95 of 10 samples leaves no training or no validation samples"),
      std::string::npos)
      << msg;
  msg = error_of([&] { model.fit(d.x, d.y, FitOptions().batch_size(0).verbose(0)); });
  EXPECT_NE(msg.find("batch_size must be at least 1"), std::string::npos) << msg;
  msg = error_of([&] { model.fit(d.x.to(DType::kFloat64), d.y, FitOptions().verbose(0)); });
  EXPECT_NE(msg.find("float32"), std::string::npos) << msg;

  TwoHead t = two_heads(15);
  t.model.name("two");
  const Loss ce = losses::SparseCategoricalCrossentropy();
  msg = error_of([&] { t.model.compile(CompileOptions().optimizer(optimizers::SGD()).losses(std::vector<Loss>{ce, ce, ce})); });
  EXPECT_NE(msg.find("got 3 losses for 2 outputs (" + t.cls + ", " + t.aux + ")"), std::string::npos) << msg;
  msg = error_of([&] { t.model.compile(CompileOptions().optimizer(optimizers::SGD()).losses(std::map<std::string, Loss>{{"nope", ce}})); });
  EXPECT_NE(msg.find("'nope', which is not an output"), std::string::npos) << msg;
  msg = error_of([&] { t.model.compile(CompileOptions().optimizer(optimizers::SGD()).loss(ce).loss_weights({1.0})); });
  EXPECT_NE(msg.find("got 1 loss_weights for 2 outputs"), std::string::npos) << msg;
  msg = error_of([&] { t.model.compile(CompileOptions().optimizer(optimizers::SGD()).loss(ce).metrics({"nonsense"})); });
  EXPECT_NE(msg.find("nonsense"), std::string::npos) << msg;
}

TEST(FitErrors, NothingToMinimize) {
  const Data d = separable(8, 16);
  Model model = classifier(16);
  model.compile(CompileOptions().optimizer(optimizers::SGD()));
  const std::string msg = error_of([&] { (void)model.train_on_batch(d.x, d.y); });
  EXPECT_NE(msg.find("nothing to minimize"), std::string::npos) << msg;
}

// A program that never calls save() itself still gets working checkpoints (no weak fallback).
TEST(Fit, ModelCheckpointWritesWeightsEachEpoch) {
  normnet::testing::TempDir dir;
  const Data d = separable(8, 17);
  Model model = classifier(17);
  model.compile(sparse_ce());
  model.fit(d.x, d.y,
            FitOptions().epochs(2).verbose(0).callback(
                callbacks::ModelCheckpoint(dir.file("ckpt-{epoch}.safetensors")).save_weights_only(true)));
  for (int epoch : {1, 2}) {
    const std::string path = dir.file("ckpt-" + std::to_string(epoch) + ".safetensors");
    EXPECT_EQ(saved_metadata(path).at("normnet.epoch"), std::to_string(epoch));
  }
}

TEST(Progbar, OneLinePerEpochWhenNotATerminal) {
  const Data d = separable(40, 18);
  Model model = classifier(18);
  model.compile(sparse_ce());
  ::testing::internal::CaptureStderr();
  model.fit(d.x, d.y, FitOptions().epochs(3).batch_size(16).verbose(1));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 3) << err;
  EXPECT_EQ(err.find('\r'), std::string::npos);
  EXPECT_EQ(err.rfind("Epoch 1/3 - 3/3 - ", 0), 0u) << err;
  EXPECT_NE(err.find("Epoch 3/3 - 3/3 - "), std::string::npos) << err;
  EXPECT_NE(err.find("/step - loss: "), std::string::npos) << err;
  EXPECT_NE(err.find(" - accuracy: "), std::string::npos) << err;
}

TEST(Progbar, KerasLineFormat) {
  const Logs logs{{"loss", 0.41234}, {"accuracy", 0.85117}, {"val_loss", 0.5}, {"dense/activity_regularizer", 0.0001}};
  EXPECT_EQ(detail::progbar_line(469, 469, 12.0, logs, true),
            "469/469 [==============================] - 12s 26ms/step - loss: 0.4123 - accuracy: 0.8512"
            " - dense/activity_regularizer: 1.0000e-04 - val_loss: 0.5000");
  EXPECT_EQ(detail::progbar_line(123, 469, 3.0, {{"loss", 1.5}}, false),
            "123/469 [======>.......................] - ETA: 8s - loss: 1.5000");
  EXPECT_EQ(detail::progbar_line(5, 469, 1.0, {}, false).substr(0, 9), "  5/469 [");
  EXPECT_EQ(detail::epoch_summary_line(0, 3, 469, 469, 12.0, {{"loss", 0.25}}),
            "Epoch 1/3 - 469/469 - 12s - 26ms/step - loss: 0.2500");
}

}  // namespace
}  // namespace normnet

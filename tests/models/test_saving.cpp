// Model persistence: save/load_model round trips (Sequential, functional graphs with shared
// layers and several inputs/outputs, nested models) predicting bit for bit; save_weights /
// load_weights with their errors; Lambda rules; compiled models and resumed training; the
// ModelCheckpoint hook; hostile configs; concurrent predict on a loaded model.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "normnet/callbacks.h"
#include "normnet/initializers.h"
#include "normnet/layers.h"
#include "normnet/model.h"
#include "normnet/normnet.h"
#include "normnet/regularizers.h"
#include "normnet/zoo.h"
#include "support/expect_throw.h"
#include "support/temp_dir.h"

namespace normnet {
namespace {

using normnet::testing::expect_throw_with;
using normnet::testing::TempDir;

void expect_same_values(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

void expect_same_weights(const Model& a, const Model& b) {
  const auto wa = a.weights(), wb = b.weights();
  ASSERT_EQ(wa.size(), wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) expect_same_values(wa[i], wb[i]);
}

Model mlp(uint64_t seed) {
  set_random_seed(seed);
  Sequential s;
  s.add(Input({6})).add(layers::Dense(16).activation("relu")).add(layers::Dropout(0.3)).add(layers::Dense(3));
  return s;
}

struct Blobs {
  Tensor x, y;
};
Blobs blobs(int64_t n) {
  Tensor x = Tensor::randn({n, 6}, 21);
  const float* p = x.data<float>();
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(p[6 * i] > 0.3f ? 2 : p[6 * i + 1] > 0 ? 1 : 0);
  return {x, Tensor::from_vector(labels, {n})};
}

CompileOptions adam_ce() {
  return CompileOptions()
      .optimizer(optimizers::Adam(0.01))
      .loss(losses::SparseCategoricalCrossentropy().from_logits(true))
      .metrics({"accuracy"});
}

TEST(Saving, SequentialWithDropoutPredictsBitForBit) {
  TempDir dir;
  Model model = mlp(1);
  const Tensor x = Tensor::randn({10, 6}, 2);
  model.save(dir.file("m.safetensors"));
  Model loaded = load_model(dir.file("m.safetensors"));
  EXPECT_EQ(loaded->class_name(), "Sequential");
  EXPECT_EQ(loaded.name(), model.name());
  expect_same_values(loaded.predict(x), model.predict(x));
  EXPECT_EQ(loaded.count_params(), model.count_params());
}

// normnet train's default model: convolutions, pooling, dropout, an activity regularizer and an
// L2Normalization with a learnable scale.
TEST(Saving, FashionCnnRoundTripsCompiled) {
  TempDir dir;
  set_random_seed(17);
  Model model = zoo::fashion_cnn();
  model.compile(zoo::fashion_cnn_compile_options());
  const Tensor x = Tensor::uniform({4, 28, 28, 1}, 0.0, 1.0, 3);
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4}, {4});
  (void)model.train_on_batch(x, y);
  model.save(dir.file("cnn.safetensors"));
  Model loaded = load_model(dir.file("cnn.safetensors"));
  expect_same_values(loaded.predict(x), model.predict(x));
  EXPECT_EQ(loaded.evaluate(x, y), model.evaluate(x, y));
  EXPECT_EQ(loaded.summary_string(), model.summary_string());
}

TEST(Saving, FunctionalGraphWithASharedLayerAndSeveralInputsAndOutputs) {
  TempDir dir;
  set_random_seed(3);
  auto a = Input({4}, DType::kFloat32, "a");
  auto b = Input({4}, DType::kFloat32, "b");
  auto shared = layers::Dense(5).activation("tanh").name("shared");
  Tensor ha = shared(a), hb = shared(b);
  Tensor both = layers::Concatenate().name("cat")(std::vector<Tensor>{ha, hb})[0];
  Tensor sum = layers::Add().name("sum")(std::vector<Tensor>{ha, hb})[0];
  Tensor out1 = layers::Dense(2).name("head1")(both);
  Tensor out2 = layers::L2Normalization().name("l2")(layers::Dense(3).name("head2")(sum));
  Model model({a, b}, {out1, out2});
  model.save(dir.file("g.safetensors"));
  Model loaded = load_model(dir.file("g.safetensors"));
  const std::vector<Tensor> x{Tensor::randn({7, 4}, 4), Tensor::randn({7, 4}, 5)};
  const auto want = model.predict(x), got = loaded.predict(x);
  ASSERT_EQ(got.size(), 2u);
  expect_same_values(got[0], want[0]);
  expect_same_values(got[1], want[1]);
  EXPECT_EQ(loaded.get_layer("shared")->inbound_node_count(), 2u);
}

// The autoencoder of DESIGN.md §7: an encoder model and a decoder model nested in a third.
struct Autoencoder {
  Model encoder, decoder, model;
};
Autoencoder autoencoder(uint64_t seed) {
  set_random_seed(seed);
  auto in = Input({8});
  Model encoder(
      {in},
      {layers::L2Normalization()(layers::Dense(3).name("code")(layers::Dense(6).activation("relu")(in)))});
  encoder.name("encoder");
  auto code_in = Input({3});
  Model decoder({code_in},
                {layers::Dense(8).name("reconstruction")(layers::Dense(6).activation("relu")(code_in))});
  decoder.name("decoder");
  auto x = Input({8});
  Model model({x}, {decoder(encoder(x))});
  return {encoder, decoder, model};
}

TEST(Saving, NestedModelsKeepTheirStructureAndWeightPaths) {
  TempDir dir;
  Autoencoder ae = autoencoder(7);
  ae.model.save(dir.file("ae.safetensors"));
  const auto file = io::read_safetensors(dir.file("ae.safetensors"));
  EXPECT_EQ(file.tensors.count("encoder/code/kernel"), 1u);
  EXPECT_EQ(file.tensors.count("decoder/reconstruction/bias"), 1u);
  EXPECT_EQ(file.tensors.size(), 8u);
  Model loaded = load_model(dir.file("ae.safetensors"));
  const Tensor x = Tensor::randn({5, 8}, 8);
  expect_same_values(loaded.predict(x), ae.model.predict(x));
  Model encoder(std::static_pointer_cast<FunctionalModel>(loaded.get_layer("encoder").ptr()));
  expect_same_values(encoder.predict(x), ae.encoder.predict(x));
}

// Keras's pattern: a decoder made by calling the trained model's last layers on a new Input, so
// those layers have a second node; node indices in the config are per model.
TEST(Saving, LayersAlsoCalledInAnotherModelRoundTrip) {
  TempDir dir;
  set_random_seed(9);
  auto in = Input({4});
  auto d1 = layers::Dense(2).name("bottleneck");
  auto d2 = layers::Dense(4).name("out");
  Model full({in}, {d2(d1(in))});
  auto code = Input({2});
  Model tail({code}, {d2(code)});
  tail.save(dir.file("tail.safetensors"));
  Model loaded = load_model(dir.file("tail.safetensors"));
  const Tensor x = Tensor::randn({3, 2}, 10);
  expect_same_values(loaded.predict(x), tail.predict(x));
}

TEST(Saving, SequentialNestedInAFunctionalModel) {
  TempDir dir;
  set_random_seed(11);
  Sequential block;
  block.add(Input({5})).add(layers::Dense(4).activation("relu")).add(layers::Dense(4)).name("block");
  auto in = Input({5});
  Model model({in}, {layers::Dense(1)(block(in))});
  model.save(dir.file("n.safetensors"));
  Model loaded = load_model(dir.file("n.safetensors"));
  const Tensor x = Tensor::randn({6, 5}, 12);
  expect_same_values(loaded.predict(x), model.predict(x));
  EXPECT_EQ(loaded.get_layer("block")->class_name(), "Sequential");
}

// A custom layer holding a Dense it made itself (an auto-named sublayer) and a weight of its own.
class ScaledDense : public Layer {
 public:
  explicit ScaledDense(int64_t units) : Layer("ScaledDense"), units_(units) {
    dense_ = track(layers::Dense(units).ptr());
  }
  void build(const std::vector<Shape>&) override {
    gain_ = add_weight("gain", {units_}, initializers::Ones());
  }
  Tensor call(const Tensor& x, const CallArgs&) override { return (*dense_)(x)*gain_; }
  Config get_config() const override {
    Config c = Layer::get_config();
    c["units"] = units_;
    return c;
  }

 private:
  int64_t units_;
  std::shared_ptr<Layer> dense_;
  Tensor gain_;
};

TEST(Saving, RegisteredCustomLayersAndFrozenLayersRoundTrip) {
  TempDir dir;
  layers::register_class("ScaledDense", [](const Config& c) {
    auto layer = std::make_shared<ScaledDense>(c.at("units").get<int64_t>());
    layer->set_name(c.at("name").get<std::string>());
    return layer;
  });
  set_random_seed(19);
  auto in = Input({4});
  auto frozen = layers::Dense(4).name("frozen");
  Tensor h = frozen(in);
  auto custom = make_layer<ScaledDense>(3);
  Model model({in}, {custom(h)});
  frozen->set_trainable(false);
  for (Tensor w : custom->weights()) {
    float* p = w.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i)
      p[i] += 0.25f * static_cast<float>(i % 3);  // not the initial values
  }
  model.save(dir.file("c.safetensors"));
  const auto file = io::read_safetensors(dir.file("c.safetensors"));
  EXPECT_EQ(file.tensors.count(custom.name() + "/gain"), 1u);
  EXPECT_EQ(file.tensors.count(custom.name() + "/0/kernel"), 1u);  // the sublayer by position
  Model loaded = load_model(dir.file("c.safetensors"));
  const Tensor x = Tensor::randn({5, 4}, 20);
  expect_same_values(loaded.predict(x), model.predict(x));
  EXPECT_FALSE(loaded.get_layer("frozen")->trainable());
  EXPECT_EQ(loaded.trainable_weights().size(), 3u);
}

TEST(Saving, LearningRateSchedulesComeBackWithTheOptimizer) {
  TempDir dir;
  Model model = mlp(1);
  model.compile(CompileOptions()
                    .optimizer(optimizers::SGD(schedules::ExponentialDecay(0.1, 2, 0.5)).momentum(0.5))
                    .loss(losses::SparseCategoricalCrossentropy().from_logits(true)));
  const Blobs d = blobs(16);
  (void)model.train_on_batch(d.x, d.y);
  model.save(dir.file("s.safetensors"));
  Model loaded = load_model(dir.file("s.safetensors"));
  ASSERT_TRUE(loaded.optimizer());
  EXPECT_EQ(loaded.optimizer()->get_config(), model.optimizer()->get_config());
  EXPECT_EQ(loaded.optimizer()->learning_rate(), model.optimizer()->learning_rate());
}

// A model-level add_loss on a symbolic tensor is part of the saved graph, so a reloaded
// checkpoint trains on the same total loss.
TEST(Saving, ModelLevelAddLossIsSavedWithTheGraph) {
  TempDir dir;
  layers::register_lambda("saving_test_mean_square",
                          [](const Tensor& t) { return ops::mean(ops::square(t)); });
  set_random_seed(23);
  auto in = Input({6});
  Tensor h = layers::Dense(8).activation("relu").name("hidden")(in);
  Model model({in}, {layers::Dense(3).name("logits")(h)});
  model.add_loss(layers::Lambda::from_registry("saving_test_mean_square").name("penalty")(h),
                 "hidden_energy");
  model.compile(adam_ce());
  const Blobs d = blobs(16);
  model.save(dir.file("l.safetensors"));
  Model loaded = load_model(dir.file("l.safetensors"));
  const auto want = model.evaluate(d.x, d.y), got = loaded.evaluate(d.x, d.y);
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.count(model.name() + "/hidden_energy"), 1u);
}

TEST(Saving, SaveWeightsAndLoadWeightsIntoTheSameArchitecture) {
  TempDir dir;
  Model trained = mlp(1), fresh = mlp(2);
  const Tensor x = Tensor::randn({4, 6}, 3);
  ASSERT_NE(trained.predict(x).to_vector<float>(), fresh.predict(x).to_vector<float>());
  trained.save_weights(dir.file("w.safetensors"));
  EXPECT_EQ(saved_metadata(dir.file("w.safetensors")).count("normnet.config"), 0u);
  fresh.load_weights(dir.file("w.safetensors"));
  expect_same_values(fresh.predict(x), trained.predict(x));
  expect_throw_with<IoError>([&] { (void)load_model(dir.file("w.safetensors")); },
                             {"w.safetensors", "no model architecture", "load_weights"});
}

TEST(Saving, LoadWeightsRejectsMismatchesAndLeavesTheModelUnchanged) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  Model model = mlp(1);
  const Tensor x = Tensor::randn({4, 6}, 3);
  const std::vector<float> before = model.predict(x).to_vector<float>();
  auto expect_refused = [&](const std::vector<std::pair<std::string, Tensor>>& tensors,
                            const std::vector<std::string>& parts) {
    io::write_safetensors(path, tensors, {});
    std::vector<std::string> all = parts;
    all.push_back(path);
    expect_throw_with<ValueError>([&] { model.load_weights(path); }, all);
    EXPECT_EQ(model.predict(x).to_vector<float>(), before);
  };
  std::vector<std::pair<std::string, Tensor>> good;
  const auto names = [&] {
    std::vector<std::string> out;
    for (const auto& l : model.layers()) {
      for (const Tensor& w : l.weights()) (void)w;
      if (!l.weights().empty()) out.push_back(l.name());
    }
    return out;
  }();
  ASSERT_EQ(names.size(), 2u);
  const Tensor k0 = Tensor::ones({6, 16}), b0 = Tensor::ones({16}), k1 = Tensor::ones({16, 3}),
               b1 = Tensor::ones({3});
  good = {{names[0] + "/kernel", k0},
          {names[0] + "/bias", b0},
          {names[1] + "/kernel", k1},
          {names[1] + "/bias", b1}};
  auto with = [&](std::size_t i, std::pair<std::string, Tensor> replacement) {
    auto t = good;
    t[i] = std::move(replacement);
    return t;
  };
  expect_refused({good[0], good[1], good[2]}, {"weight '" + names[1] + "/bias' (float32 [3]) is missing"});
  expect_refused(with(3, {names[1] + "/bias", Tensor::ones({4})}),
                 {"'" + names[1] + "/bias' is float32 [4] in the file but float32 [3]"});
  expect_refused(with(3, {names[1] + "/bias", Tensor::ones({3}, DType::kFloat64)}),
                 {"float64 [3] in the file"});
  auto extra = good;
  extra.emplace_back("ghost/kernel", Tensor::ones({2}));
  expect_refused(extra, {"the file has weight 'ghost/kernel'"});
  // The good file loads.
  io::write_safetensors(path, good, {});
  model.load_weights(path);
  EXPECT_NE(model.predict(x).to_vector<float>(), before);
}

TEST(Saving, UnregisteredLambdaCannotBeSavedButItsWeightsCan) {
  TempDir dir;
  set_random_seed(5);
  auto in = Input({3});
  Tensor h = layers::Lambda([](const Tensor& t) { return t * 2.0; }).name("doubler")(layers::Dense(3)(in));
  Model model({in}, {h});
  expect_throw_with<Error>([&] { model.save(dir.file("m.safetensors")); },
                           {"Lambda layer 'doubler'", "register_lambda"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.safetensors")));
  EXPECT_NO_THROW(model.save_weights(dir.file("w.safetensors")));
}

TEST(Saving, ALayerNamedOptimizerIsRefusedRatherThanMisread) {
  TempDir dir;
  auto in = Input({2});
  Model model({in}, {layers::Dense(1).name("optimizer")(in)});
  expect_throw_with<ValueError>([&] { model.save_weights(dir.file("w.safetensors")); },
                                {"weight 'optimizer/kernel'", "reserved", "rename the layer"});
}

TEST(Saving, RegisteredLambdaRoundTrips) {
  TempDir dir;
  layers::register_lambda("saving_test_triple", [](const Tensor& t) { return t * 3.0; });
  set_random_seed(6);
  auto in = Input({3});
  Model model({in},
              {layers::Lambda::from_registry("saving_test_triple").name("triple")(layers::Dense(2)(in))});
  model.save(dir.file("m.safetensors"));
  Model loaded = load_model(dir.file("m.safetensors"));
  const Tensor x = Tensor::randn({2, 3}, 1);
  expect_same_values(loaded.predict(x), model.predict(x));
}

TEST(Saving, CompiledModelComesBackCompiledWithItsOptimizerState) {
  TempDir dir;
  Model model = mlp(1);
  model.compile(adam_ce());
  const Blobs d = blobs(64);
  (void)model.fit(d.x, d.y, FitOptions().epochs(1).batch_size(16).seed(1).verbose(0));
  model.save(dir.file("c.safetensors"));
  const auto meta = saved_metadata(dir.file("c.safetensors"));
  EXPECT_EQ(meta.at("normnet.format_version"), "1");
  EXPECT_EQ(Config::parse(meta.at("normnet.optimizer"))["class_name"], "Adam");
  Model loaded = load_model(dir.file("c.safetensors"));
  ASSERT_TRUE(loaded.optimizer());
  EXPECT_EQ(loaded.optimizer()->iterations(), 4);
  EXPECT_EQ(loaded.evaluate(d.x, d.y), model.evaluate(d.x, d.y));
  // Without the optimizer: the same weights, not compiled.
  model.save(dir.file("plain.safetensors"), SaveOptions().include_optimizer(false));
  Model plain = load_model(dir.file("plain.safetensors"));
  EXPECT_FALSE(plain.optimizer());
  EXPECT_EQ(io::read_safetensors(dir.file("plain.safetensors")).tensors.size(), 4u);
}

// N epochs, save, load, M more epochs == N + M epochs without a break, bit for bit (Adam's
// moments and step count, the shuffle and dropout streams reseeded from (seed, epoch)).
// A compiled copy of the model saved at `init`, trained for `epochs` epochs with `seed`.
Model trained_copy(const std::string& init, const Blobs& d, int epochs, uint64_t seed,
                   History* history = nullptr, std::shared_ptr<Callback> callback = nullptr) {
  Model m = load_model(init);
  m.compile(adam_ce());
  FitOptions options = FitOptions().epochs(epochs).batch_size(16).seed(seed).verbose(0);
  if (callback) options.callbacks({callback});
  const History h = m.fit(d.x, d.y, options);
  if (history) *history = h;
  return m;
}

TEST(Saving, ResumingFromASaveContinuesBitForBit) {
  TempDir dir;
  const Blobs d = blobs(96);
  mlp(1).save(dir.file("init.safetensors"));
  History full;
  Model straight = trained_copy(dir.file("init.safetensors"), d, 3, 4, &full);
  Model first = trained_copy(dir.file("init.safetensors"), d, 2, 4);
  first.save(dir.file("mid.safetensors"));
  Model resumed = load_model(dir.file("mid.safetensors"));
  const History rest =
      resumed.fit(d.x, d.y, FitOptions().epochs(3).initial_epoch(2).batch_size(16).seed(4).verbose(0));
  expect_same_weights(resumed, straight);
  EXPECT_EQ(rest.history.at("loss").back(), full.history.at("loss").back());
  EXPECT_EQ(resumed.optimizer()->iterations(), straight.optimizer()->iterations());
}

TEST(Saving, ModelCheckpointWritesTheEpochAndResumes) {
  TempDir dir;
  const Blobs d = blobs(48);
  mlp(1).save(dir.file("init.safetensors"));
  Model straight = trained_copy(dir.file("init.safetensors"), d, 3, 2);
  const std::string ckpt = dir.file("ckpt.safetensors");
  Model model = trained_copy(dir.file("init.safetensors"), d, 2, 2, nullptr,
                             std::make_shared<callbacks::ModelCheckpoint>(ckpt));
  const int epoch = std::stoi(saved_metadata(ckpt).at("normnet.epoch"));
  EXPECT_EQ(epoch, 2);
  Model resumed = load_model(ckpt);
  (void)resumed.fit(d.x, d.y, FitOptions().epochs(3).initial_epoch(epoch).batch_size(16).seed(2).verbose(0));
  expect_same_weights(resumed, straight);

  const std::string weights = dir.file("w_{epoch:02d}.safetensors");
  (void)model.fit(d.x, d.y,
                  FitOptions().epochs(1).batch_size(16).verbose(0).callback(
                      callbacks::ModelCheckpoint(weights).save_weights_only(true)));
  const auto meta = saved_metadata(dir.file("w_01.safetensors"));
  EXPECT_EQ(meta.at("normnet.epoch"), "1");
  EXPECT_EQ(meta.count("normnet.config"), 0u);
}

TEST(Saving, CustomLossSavesWeightsAndOptimizerButNotCompile) {
  TempDir dir;
  Model model = mlp(1);
  auto options = [] {
    return CompileOptions()
        .optimizer(optimizers::SGD(0.1).momentum(0.9))
        .loss(Loss([](const Tensor& t, const Tensor& p) { return ops::mean(ops::square(p - t)); }));
  };
  model.compile(options());
  const Tensor x = Tensor::randn({8, 6}, 1), y = Tensor::randn({8, 3}, 2);
  (void)model.train_on_batch(x, y);
  model.save(dir.file("m.safetensors"));
  Model loaded = load_model(dir.file("m.safetensors"));
  EXPECT_FALSE(loaded.optimizer());
  // Compiling again and loading the weights brings the momentum back: the next steps agree.
  loaded.compile(options());
  loaded.load_weights(dir.file("m.safetensors"));
  EXPECT_EQ(loaded.optimizer()->iterations(), 1);
  expect_same_weights(loaded, model);
  EXPECT_EQ(loaded.optimizer()->state(loaded->named_weights()).size(), 5u);
  set_random_seed(3);  // the same dropout pattern for both steps
  (void)model.train_on_batch(x, y);
  set_random_seed(3);
  (void)loaded.train_on_batch(x, y);
  expect_same_weights(loaded, model);
}

TEST(Saving, LoadModelRejectsAWrongArchitecture) {
  TempDir dir;
  const std::string path = dir.file("wrong.safetensors");
  Model model = mlp(1);
  model.save(path);
  // The same config with the weights of another model.
  const auto meta = saved_metadata(path);
  io::write_safetensors(path, {{"other/kernel", Tensor::ones({2, 2})}}, meta);
  expect_throw_with<IoError>([&] { (void)load_model(path); },
                             {path, "the weights do not match the model", "is missing", "'other/kernel'"});
  // A config that is not JSON, or not a model.
  io::write_safetensors(path, {}, {{"normnet.config", "{\"class_name\": "}});
  expect_throw_with<IoError>([&] { (void)load_model(path); }, {path, "\"normnet.config\"", "invalid JSON"});
  io::write_safetensors(path, {}, {{"normnet.config", R"({"class_name": "Dense", "config": {"units": 3}})"}});
  expect_throw_with<IoError>([&] { (void)load_model(path); }, {path, "'Dense' is not a model"});
  io::write_safetensors(path, {}, {{"normnet.config", std::string(100, '[') + std::string(100, ']')}});
  expect_throw_with<IoError>([&] { (void)load_model(path); },
                             {path, "\"normnet.config\"", "nesting deeper than 64"});
  io::write_safetensors(path, {{"x", Tensor::ones({2})}}, {});  // no __metadata__ at all
  expect_throw_with<IoError>([&] { (void)load_model(path); }, {path, "no model architecture"});
  io::write_safetensors(path, {}, {{"normnet.config", "{}"}, {"normnet.format_version", "99"}});
  expect_throw_with<IoError>([&] { (void)load_model(path); }, {path, "format version \"99\""});
}

// A config of a few hundred bytes asking for 40 GB of weights, or for a shape whose size
// overflows 64 bits: refused with an error, without running out of memory.
TEST(Saving, LoadModelRefusesArchitecturesFarLargerThanTheFile) {
  TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  auto config_with = [](const std::string& extent, const std::string& units) {
    return R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "InputLayer", "config": {"batch_input_shape": [null, )" +
           extent + R"(], "name": "in"}},
      {"class_name": "Dense", "config": {"name": "d", "units": )" +
           units + "}}]}}";
  };
  io::write_safetensors(path, {}, {{"normnet.config", config_with("100000", "100000")}});
  expect_throw_with<IoError>([&] { (void)load_model(path); }, {path, "far more memory than its weights"});
  io::write_safetensors(path, {}, {{"normnet.config", config_with("4611686018427387904", "4")}});
  expect_throw_with<IoError>([&] { (void)load_model(path); }, {path, "too large to allocate"});
}

// A Keras 3 style Sequential config (InputLayer with "batch_shape") builds.
TEST(Saving, ModelFromJsonReadsKerasSequentialConfigs) {
  Model m = model_from_json(R"({"class_name": "Sequential", "config": {"name": "seq", "layers": [
    {"class_name": "InputLayer", "config": {"batch_shape": [null, 5], "dtype": "float32", "name": "in"}},
    {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu"}}]}})");
  EXPECT_EQ(m.name(), "seq");
  EXPECT_EQ(m.predict(Tensor::ones({3, 5})).shape(), (Shape{3, 2}));
  EXPECT_EQ(m.count_params(), 12);
}

TEST(Saving, ModelFromJsonRejectsHostileConfigs) {
  expect_throw_with<ValueError>([] { (void)model_from_json(std::string(500, '[') + std::string(500, ']')); },
                                {"nesting deeper than 64"});
  expect_throw_with<ValueError>(
      [] { (void)model_from_json("{\"class_name\": \"Functional\", \"config\": {}}"); },
      {"missing \"layers\""});
  expect_throw_with<ValueError>(
      [] {
        (void)model_from_json(R"({"class_name": "Functional", "config": {"name": "m", "layers": [
          {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2},
           "inbound_nodes": [[["d", 0, 0]]]}], "input_layers": [], "output_layers": [["d", 0, 0]]}})");
      },
      {"model 'm'", "layer 'd': inbound node 0 refers to a tensor no layer produces"});
  expect_throw_with<ValueError>(
      [] {
        (void)model_from_json(R"({"class_name": "Functional", "config": {"name": "m", "layers": [
          {"class_name": "InputLayer", "name": "i", "config": {"name": "i", "batch_input_shape": [null, 2]}},
          {"class_name": "Mystery", "name": "x", "config": {"name": "x"}, "inbound_nodes": [[["i", 0, 0]]]}],
          "input_layers": [["i", 0, 0]], "output_layers": [["x", 0, 0]]}})");
      },
      {"unknown layer class 'Mystery'"});
  expect_throw_with<ValueError>(
      [] {
        (void)model_from_json(R"({"class_name": "Sequential", "config": {"layers": [
          {"class_name": "InputLayer", "config": {"batch_input_shape": [null, "x"]}}]}})");
      },
      {"must be integers >= 1"});
  // 2^64 - 1 (parsed as unsigned; it used to wrap to -1), 0, a negative extent, a float.
  for (const char* extent : {"18446744073709551615", "0", "-3", "2.5"}) {
    expect_throw_with<ValueError>(
        [&] {
          (void)model_from_json(R"({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4, )" +
                                std::string(extent) + "]}}]}}");
        },
        {"InputLayer 'in'", "must be integers >= 1", extent});
  }
  // A model nested 70 deep is refused before the parser recurses.
  std::string nested = R"({"class_name": "Sequential", "config": {"layers": []}})";
  for (int i = 0; i < 70; ++i)
    nested = R"({"class_name": "Sequential", "config": {"layers": [)" + nested + "]}}";
  EXPECT_THROW((void)model_from_json(nested), ValueError);
}

TEST(Saving, ConcurrentPredictOnALoadedModelMatchesSerial) {
  TempDir dir;
  set_random_seed(13);
  auto in = Input({6});
  Tensor h = layers::Dense(32).activation("relu").activity_regularizer(regularizers::L2(0.01))(in);
  Model model({in}, {layers::Dense(4)(layers::Dropout(0.5)(h))});
  model.save(dir.file("m.safetensors"));
  Model loaded = load_model(dir.file("m.safetensors"));
  std::vector<Tensor> inputs;
  std::vector<std::vector<float>> serial;
  for (int t = 0; t < 4; ++t) {
    inputs.push_back(Tensor::randn({64, 6}, 100 + t));
    serial.push_back(loaded.predict(inputs.back(), 8).to_vector<float>());
  }
  std::vector<std::vector<float>> parallel(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int repeat = 0; repeat < 20; ++repeat)
        parallel[t] = loaded.predict(inputs[t], 8).to_vector<float>();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(parallel[t], serial[t]) << "thread " << t;
}

TEST(Saving, OverwritingLeavesNoTemporaryFiles) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  Model a = mlp(1), b = mlp(2);
  a.save(path);
  b.save(path);
  EXPECT_TRUE(io::temp_files_of(path).empty());
  const Tensor x = Tensor::randn({2, 6}, 1);
  expect_same_values(load_model(path).predict(x), b.predict(x));
  expect_throw_with<IoError>([&] { a.save(dir.file("no/such/dir/m.safetensors")); },
                             {"no/such/dir/m.safetensors", "temporary"});
}

}  // namespace
}  // namespace normnet

// Initializers: Keras's fan computation and formulas (checked through the range and spread of
// large draws), truncation, names and configs, determinism, and the global seed stream.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <thread>

#include "normnet/initializers.h"

namespace normnet {
namespace {

struct Stats {
  double max_abs = 0.0;
  double mean = 0.0;
  double stddev = 0.0;  // about the mean
};

Stats stats_of(const Tensor& t) {
  const auto v = t.to_vector<double>();
  Stats s;
  for (double x : v) {
    s.max_abs = std::max(s.max_abs, std::abs(x));
    s.mean += x;
  }
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = std::sqrt(s.stddev / static_cast<double>(v.size()));
  return s;
}

// A uniform draw on ±limit: every value inside, the extremes reached, stddev = limit/√3.
void expect_uniform(const Tensor& t, double limit) {
  const Stats s = stats_of(t);
  EXPECT_LE(s.max_abs, limit);
  EXPECT_GT(s.max_abs, 0.999 * limit);
  EXPECT_NEAR(s.stddev, limit / std::sqrt(3.0), 0.01 * limit);
  EXPECT_NEAR(s.mean, 0.0, 0.01 * limit);
}

// Keras's truncated normal with variance `variance`: the raw stddev is sqrt(variance)/.8796…,
// draws stop at 2 raw stddevs, and the truncated draw has stddev sqrt(variance).
void expect_truncated(const Tensor& t, double variance) {
  const double raw = std::sqrt(variance) / .87962566103423978;
  const Stats s = stats_of(t);
  EXPECT_LE(s.max_abs, 2.0 * raw);
  EXPECT_GT(s.max_abs, 1.99 * raw);
  EXPECT_NEAR(s.stddev, std::sqrt(variance), 0.01 * std::sqrt(variance));
  EXPECT_NEAR(s.mean, 0.0, 0.02 * std::sqrt(variance));
}

TEST(Initializers, GlorotUniformUsesKerasFansForDenseAndConvKernels) {
  // Dense kernel [in, out] = [300, 200]: fans 300 and 200, limit sqrt(6/500).
  expect_uniform(initializers::GlorotUniform()({300, 200}, DType::kFloat32, 1), std::sqrt(6.0 / 500.0));
  // Conv kernel [kh, kw, cin, cout] = [3, 3, 40, 80]: fan_in = 9·40 = 360, fan_out = 9·80 = 720.
  expect_uniform(initializers::GlorotUniform()({3, 3, 40, 80}, DType::kFloat32, 2), std::sqrt(6.0 / 1080.0));
  // 1-d [n]: fan_in = fan_out = n, limit sqrt(6/2n).
  expect_uniform(initializers::GlorotUniform()({50000}, DType::kFloat64, 3), std::sqrt(6.0 / 100000.0));
}

TEST(Initializers, HeAndLecunUniformUseFanIn) {
  // [kh, kw, cin, cout] = [5, 5, 8, 400]: fan_in = 200 (fan_out = 10000 must not matter).
  expect_uniform(initializers::HeUniform()({5, 5, 8, 400}, DType::kFloat32, 4), std::sqrt(6.0 / 200.0));
  expect_uniform(initializers::LecunUniform()({200, 400}, DType::kFloat32, 5), std::sqrt(3.0 / 200.0));
}

TEST(Initializers, NormalsAreTruncatedWithKerasStddevCorrection) {
  expect_truncated(initializers::GlorotNormal()({300, 200}, DType::kFloat64, 6), 2.0 / 500.0);
  expect_truncated(initializers::HeNormal()({3, 3, 20, 500}, DType::kFloat32, 7), 2.0 / 180.0);
  expect_truncated(initializers::LecunNormal()({250, 300}, DType::kFloat32, 8), 1.0 / 250.0);
}

TEST(Initializers, ScalarShapeUsesFanOne) {
  // Keras: a shape [] has fan_in = fan_out = 1, so GlorotUniform draws from ±sqrt(3).
  const Tensor t = initializers::GlorotUniform()({}, DType::kFloat64, 9);
  EXPECT_EQ(t.shape(), Shape{});
  EXPECT_LE(std::abs(t.item()), std::sqrt(3.0));
}

TEST(Initializers, RandomNormalAndUniformTakeTheirParameters) {
  const Stats n = stats_of(initializers::RandomNormal(1.5, 0.25)({100000}, DType::kFloat64, 10));
  EXPECT_NEAR(n.mean, 1.5, 0.005);
  EXPECT_NEAR(n.stddev, 0.25, 0.005);
  EXPECT_GT(n.max_abs, 1.5 + 3 * 0.25);  // untruncated: beyond 2 stddevs occurs
  const auto u = initializers::RandomUniform(2.0, 3.0)({10000}, DType::kFloat32, 11).to_vector<float>();
  EXPECT_GE(*std::min_element(u.begin(), u.end()), 2.0f);
  EXPECT_LE(*std::max_element(u.begin(), u.end()), 3.0f);
  const Stats d = stats_of(initializers::RandomNormal()({100000}, DType::kFloat32, 12));
  EXPECT_NEAR(d.stddev, 0.05, 0.001);
}

TEST(Initializers, ConstantsFillAnyDtype) {
  EXPECT_EQ(initializers::Zeros()({2, 3}, DType::kFloat32, 0).to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(initializers::Ones()({4}, DType::kFloat64, 0).to_vector<double>(), std::vector<double>(4, 1.0));
  EXPECT_EQ(initializers::Constant(2.5)({2, 2}, DType::kFloat32, 0).to_vector<float>(), std::vector<float>(4, 2.5f));
  EXPECT_EQ(initializers::Zeros()({3}, DType::kInt64, 0).to_vector<int64_t>(), std::vector<int64_t>(3, 0));
}

TEST(Initializers, SameSeedSameValuesAndDtypesAgree) {
  const Initializer init = initializers::GlorotNormal();
  const Tensor a = init({20, 30}, DType::kFloat32, 77);
  EXPECT_EQ(a.dtype(), DType::kFloat32);
  EXPECT_EQ(a.to_vector<float>(), init({20, 30}, DType::kFloat32, 77).to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), init({20, 30}, DType::kFloat32, 78).to_vector<float>());
  // float64 draws the same numbers before rounding.
  const auto a64 = init({20, 30}, DType::kFloat64, 77).to_vector<double>();
  const auto a32 = a.to_vector<float>();
  for (std::size_t i = 0; i < a32.size(); ++i) EXPECT_EQ(a32[i], static_cast<float>(a64[i]));
}

TEST(Initializers, NamesAndConfigs) {
  EXPECT_EQ(Initializer("glorot_uniform").get_config(),
            Config::parse(R"({"class_name": "GlorotUniform", "config": {"seed": null}})"));
  EXPECT_EQ(Initializer(std::string("he_normal")).get_config(),
            Config::parse(R"({"class_name": "HeNormal", "config": {"seed": null}})"));
  EXPECT_EQ(Initializer("zeros").get_config(), Config::parse(R"({"class_name": "Zeros", "config": {}})"));
  EXPECT_EQ(Initializer("Ones").get_config(), Config::parse(R"({"class_name": "Ones", "config": {}})"));
  EXPECT_EQ(initializers::Constant(3.0).get_config(),
            Config::parse(R"({"class_name": "Constant", "config": {"value": 3.0}})"));
  EXPECT_EQ(initializers::RandomNormal().get_config(),
            Config::parse(R"({"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.05, "seed": null}})"));
  EXPECT_EQ(initializers::RandomUniform(-1, 1).get_config(),
            Config::parse(R"({"class_name": "RandomUniform", "config": {"minval": -1.0, "maxval": 1.0, "seed": null}})"));
  for (const char* name : {"glorot_normal", "he_uniform", "lecun_uniform", "lecun_normal", "ones", "random_normal",
                           "random_uniform", "truncated_normal"}) {
    EXPECT_TRUE(static_cast<bool>(Initializer(name))) << name;
  }
}

TEST(Initializers, UnknownNameNamesTheChoices) {
  try {
    Initializer bad("glorot_uniformm");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown initializer 'glorot_uniformm'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("he_normal"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      (void)initializers::from_config(Config::parse(R"({"class_name": "Orthogonal", "config": {}})")),
      ValueError);
  EXPECT_THROW((void)initializers::from_config(Config::parse(R"([1, 2])")), ValueError);
}

TEST(Initializers, FromConfigRoundTripsEveryFactory) {
  const std::vector<Initializer> all = {
      initializers::GlorotUniform(), initializers::GlorotNormal(),  initializers::HeUniform(),
      initializers::HeNormal(),      initializers::LecunUniform(),  initializers::LecunNormal(),
      initializers::Zeros(),         initializers::Ones(),          initializers::Constant(-0.5),
      initializers::RandomNormal(0.1, 0.2), initializers::RandomUniform(-0.3, 0.7)};
  for (const Initializer& init : all) {
    const Initializer back = initializers::from_config(init.get_config());
    EXPECT_EQ(back.get_config(), init.get_config());
    EXPECT_EQ(back({4, 5}, DType::kFloat32, 5).to_vector<float>(), init({4, 5}, DType::kFloat32, 5).to_vector<float>())
        << init.get_config().dump();
  }
  EXPECT_EQ(initializers::from_config(Config("lecun_normal")).get_config()["class_name"], "LecunNormal");
}

TEST(Initializers, KerasVarianceScalingConfigLoads) {
  const Initializer vs = initializers::from_config(Config::parse(
      R"({"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform", "seed": null}})"));
  // fan_out of [100, 600] is 600: limit sqrt(3·2/600).
  expect_uniform(vs({100, 600}, DType::kFloat64, 3), std::sqrt(6.0 / 600.0));
  EXPECT_THROW((void)initializers::from_config(Config::parse(
                   R"({"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_sum"}})")),
               ValueError);
}

TEST(Initializers, ConfigSeedFixesTheDraw) {
  const Initializer seeded =
      initializers::from_config(Config::parse(R"({"class_name": "GlorotUniform", "config": {"seed": 42}})"));
  EXPECT_EQ(seeded.get_config()["config"]["seed"], 42);
  // Keras: a seeded initializer gives the same values whatever seed the layer passes.
  EXPECT_EQ(seeded({3, 4}, DType::kFloat32, 1).to_vector<float>(), seeded({3, 4}, DType::kFloat32, 2).to_vector<float>());
  EXPECT_EQ(seeded({3, 4}, DType::kFloat32, 1).to_vector<float>(),
            initializers::GlorotUniform()({3, 4}, DType::kFloat32, 42).to_vector<float>());
}

TEST(Initializers, CustomCallablesAndErrors) {
  const Initializer custom([](const Shape& shape, DType dtype, uint64_t) { return Tensor::full(shape, 7.0, dtype); });
  EXPECT_EQ(custom({2}, DType::kFloat32, 0).to_vector<float>(), (std::vector<float>{7.0f, 7.0f}));
  EXPECT_TRUE(custom.get_config().is_null());
  const Initializer wrong([](const Shape&, DType, uint64_t) { return Tensor::zeros({3}); });
  EXPECT_THROW((void)wrong({2, 2}, DType::kFloat32, 0), ValueError);
  EXPECT_THROW((void)Initializer()({2}, DType::kFloat32, 0), Error);
  EXPECT_FALSE(static_cast<bool>(Initializer()));
  EXPECT_THROW((void)initializers::HeNormal()({kUnknownDim, 3}, DType::kFloat32, 0), ValueError);
  EXPECT_THROW((void)initializers::HeNormal()({3, 3}, DType::kInt64, 0), ValueError);
  EXPECT_THROW((void)initializers::RandomUniform(1.0, 0.0), ValueError);
}

TEST(RandomSeed, SameSeedSameStream) {
  set_random_seed(123);
  std::vector<uint64_t> first;
  for (int i = 0; i < 5; ++i) first.push_back(next_seed());
  set_random_seed(123);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(next_seed(), first[static_cast<std::size_t>(i)]);
  EXPECT_EQ(std::set<uint64_t>(first.begin(), first.end()).size(), first.size());
  set_random_seed(124);
  EXPECT_NE(next_seed(), first[0]);
}

TEST(RandomSeed, ThreadsDrawEachSeedOnce) {
  set_random_seed(9);
  std::vector<uint64_t> serial;
  for (int i = 0; i < 4000; ++i) serial.push_back(next_seed());
  set_random_seed(9);
  std::vector<std::vector<uint64_t>> drawn(4);
  std::vector<std::thread> threads;
  for (auto& mine : drawn) {
    threads.emplace_back([&mine] {
      for (int i = 0; i < 1000; ++i) mine.push_back(next_seed());
    });
  }
  for (auto& t : threads) t.join();
  std::multiset<uint64_t> all;
  for (const auto& mine : drawn) all.insert(mine.begin(), mine.end());
  EXPECT_EQ(all, std::multiset<uint64_t>(serial.begin(), serial.end()));
}

}  // namespace
}  // namespace normnet

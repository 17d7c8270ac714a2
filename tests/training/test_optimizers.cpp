// Optimizers and schedules: trajectories on a known quadratic against hand-computed values (float64,
// 1e-12), the fused Adam kernel against its reference twin, apply_gradients' contract (skips,
// no recording, global_clipnorm), checkpoint state resuming bit for bit, configs, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/optimizer_update.h"
#include "normnet/ops.h"
#include "normnet/optimizers.h"
#include "normnet/threading.h"
#include "support/expect_throw.h"

namespace normnet {
namespace {

using testing::expect_throw_with;

// f(w) = w₀² + 3·w₁², so g = (2w₀, 6w₁); w starts at (1, −2).
Tensor quadratic_weight(DType dtype = DType::kFloat64) {
  Tensor w = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}).to(dtype);
  w.set_requires_grad(true);
  return w;
}

void quadratic_step(Optimizer& opt, Tensor& w) {
  w.zero_grad();
  const Tensor c = Tensor::from_vector(std::vector<double>{1.0, 3.0}, {2}).to(w.dtype());
  ops::sum(c * w * w).backward();
  opt.apply_gradients({w});
}

// Runs three steps and compares each iterate with values computed by hand (the update rules
// written out in double, independently of normnet).
void expect_trajectory(Optimizer& opt, const std::vector<std::vector<double>>& expected) {
  Tensor w = quadratic_weight();
  for (std::size_t step = 0; step < expected.size(); ++step) {
    quadratic_step(opt, w);
    const auto got = w.to_vector<double>();
    for (std::size_t i = 0; i < 2; ++i) {
      EXPECT_NEAR(got[i], expected[step][i], 1e-12) << opt.name() << " step " << step + 1 << " element " << i;
    }
  }
  EXPECT_EQ(opt.iterations(), static_cast<int64_t>(expected.size()));
}

TEST(SGD, PlainStepIsMinusLrTimesGradient) {
  // w ← w − 0.1·g: w₀ = 1 → 0.8 → 0.64 → 0.512; w₁ = −2 → −2 + 1.2 = −0.8 → −0.32 → −0.128.
  optimizers::SGD opt(0.1);
  expect_trajectory(opt, {{0.8, -0.8}, {0.64, -0.32}, {0.512, -0.128}});
}

TEST(SGD, MomentumFollowsKerasRule) {
  // v ← 0.9v − 0.1g; w ← w + v. w₀: g = 2 → v = −0.2, w = 0.8; g = 1.6 → v = −0.34, w = 0.46;
  // g = 0.92 → v = −0.398, w = 0.062.
  optimizers::SGD opt(0.1);
  opt.momentum(0.9);
  expect_trajectory(opt, {{0.8, -0.8}, {0.46, 0.76}, {0.062, 1.708}});
}

TEST(SGD, NesterovFollowsKerasRule) {
  // v ← 0.9v − 0.1g; w ← w + 0.9v − 0.1g. w₀: v = −0.2, w = 1 − 0.18 − 0.2 = 0.62; g = 1.24 →
  // v = −0.304, w = 0.62 − 0.2736 − 0.124 = 0.2224.
  optimizers::SGD opt(0.1);
  opt.momentum(0.9).nesterov(true);
  expect_trajectory(opt, {{0.62, 0.28}, {0.2224, 0.9328}, {-0.108352, 0.608128}});
}

TEST(Adam, BiasCorrectedStepsMatchHandComputation) {
  // Step 1: m = 0.1g, v = 0.001g², α = 0.1·√0.001/0.1 ⇒ w −= α·0.1g/(√0.001·|g| + 1e-7) ≈ 0.1·sign(g).
  optimizers::Adam opt(0.1);
  expect_trajectory(opt, {{0.900000158113633, -1.900000026352307},
                          {0.8004125019437753, -1.8001665309873853},
                          {0.7015866431267169, -1.7006234524622694}});
}

TEST(Adam, AmsgradMatchesHandComputation) {
  optimizers::Adam opt(0.1);
  opt.beta_1(0.5).beta_2(0.9).amsgrad(true);
  expect_trajectory(opt, {{0.9000000158113858, -1.9000000026352313},
                          {0.8016180557649344, -1.8007533430036295},
                          {0.7059825157383293, -1.7027285418908569}});
}

TEST(AdamW, DecoupledDecayBeforeAdamStep) {
  // w ← w − lr·wd·w (lr 0.1, wd 0.5: w·0.95), then the Adam step.
  optimizers::AdamW opt(0.1, 0.5);
  expect_trajectory(opt, {{0.8500001581136329, -1.8000000263523068},
                          {0.7082487109489476, -1.610412272141938},
                          {0.5749742848968951, -1.4310253016029886}});
  EXPECT_EQ(opt.name(), "adamw");
}

TEST(RMSprop, EpsilonInsideTheSquareRoot) {
  // s = 0.1g², w −= 0.01·g/√(s + 1e-7) ≈ 0.01·√10·sign(g) on the first step.
  optimizers::RMSprop opt(0.01);
  expect_trajectory(opt, {{0.9683772273511625, -1.9683772235081176},
                          {0.9457880301745026, -1.9456096368232982},
                          {0.9270531041033643, -1.9266336820729506}});
}

TEST(RMSprop, MomentumMatchesHandComputation) {
  optimizers::RMSprop opt(0.01);
  opt.rho(0.8).momentum(0.5);
  expect_trajectory(opt, {{0.9776393216225444, -1.9776393202638227},
                          {0.949961078641885, -1.9498759078145345},
                          {0.9221369595495006, -1.9218415065544827}});
}

TEST(Optimizer, Float32WeightsUpdateInPlace) {
  Tensor w = quadratic_weight(DType::kFloat32);
  const float* before = w.data<float>();
  optimizers::Adam opt(0.1);
  quadratic_step(opt, w);
  EXPECT_EQ(w.data<float>(), before);  // the same storage, updated in place
  EXPECT_NEAR(w.to_vector<float>()[0], 0.9f, 1e-6);
  EXPECT_NEAR(w.to_vector<float>()[1], -1.9f, 1e-6);
}

// ---- the fused Adam loop against its reference --------------------------------------------------

template <class T>
void check_adam_kernel(bool amsgrad, double decay) {
  const int64_t n = 100003;  // above the OpenMP threshold, not a multiple of any vector width
  const Tensor w0 = Tensor::randn({n}, 1, DType::kFloat64);
  std::vector<T> w(n), g(n), m(n), v(n), vh(n);
  for (int64_t i = 0; i < n; ++i) w[i] = static_cast<T>(w0.data<double>()[i]);
  std::vector<T> rw = w, rm = m, rv = v, rvh = vh;
  for (int t = 1; t <= 3; ++t) {
    const Tensor gt = Tensor::randn({n}, 10 + t, DType::kFloat64);
    for (int64_t i = 0; i < n; ++i) g[i] = static_cast<T>(gt.data<double>()[i] * (i % 7 == 0 ? 1e-20 : 1.0));
    kernels::cpu::AdamCoefficients c;
    c.lr_t = 1e-3 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
    c.decay = decay;
    kernels::cpu::adam_update(w.data(), g.data(), m.data(), v.data(), vh.data(), n, c, amsgrad);
    kernels::cpu::adam_update_reference(rw.data(), g.data(), rm.data(), rv.data(), rvh.data(), n, c, amsgrad);
  }
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(w[i], rw[i]) << i;
    ASSERT_EQ(m[i], rm[i]) << i;
    ASSERT_EQ(v[i], rv[i]) << i;
    ASSERT_EQ(vh[i], rvh[i]) << i;
  }
}

TEST(OptimizerKernels, FusedAdamEqualsReferenceBitForBit) {
  for (bool amsgrad : {false, true}) {
    for (double decay : {0.0, 4e-6}) {
      check_adam_kernel<float>(amsgrad, decay);
      check_adam_kernel<double>(amsgrad, decay);
    }
  }
}

// ---- apply_gradients' contract ------------------------------------------------------------------

TEST(Optimizer, SkipsWeightsWithoutGradientAndRecordsNothing) {
  Tensor used = quadratic_weight();
  Tensor unused = Tensor::ones({3}, DType::kFloat64).set_requires_grad(true);
  ops::sum(used * used).backward();
  optimizers::SGD opt(0.5);
  opt.apply_gradients({used, unused});
  EXPECT_EQ(unused.to_vector<double>(), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(used.to_vector<double>(), (std::vector<double>{0, 0}));  // w − 0.5·2w
  EXPECT_EQ(opt.iterations(), 1);
  EXPECT_EQ(used.impl()->grad_fn, nullptr);  // still a leaf: the update was not recorded
  EXPECT_TRUE(used.requires_grad());
  const auto state = opt.state({{"used", used}, {"unused", unused}});
  EXPECT_EQ(state.size(), 1u);  // plain SGD has no slots: only "iterations"
}

TEST(Optimizer, GlobalClipnormRescalesAllGradientsTogether) {
  // Gradients (3) and (4): global norm 5; clipnorm 1 scales both by 1/5.
  Tensor a = Tensor::zeros({1}, DType::kFloat64).set_requires_grad(true);
  Tensor b = Tensor::zeros({1}, DType::kFloat64).set_requires_grad(true);
  (ops::sum(a * 3.0) + ops::sum(b * 4.0)).backward();
  optimizers::SGD opt(1.0);
  opt.set_global_clipnorm(1.0);
  opt.apply_gradients({a, b});
  EXPECT_NEAR(a.item(), -0.6, 1e-15);
  EXPECT_NEAR(b.item(), -0.8, 1e-15);
  EXPECT_EQ(a.grad().item(), 3.0);  // the gradient itself is left as backward produced it
  // Below the threshold nothing changes.
  opt.set_global_clipnorm(10.0);
  opt.apply_gradients({a, b});
  EXPECT_NEAR(a.item(), -3.6, 1e-15);
  expect_throw_with<ValueError>([&] { opt.set_global_clipnorm(-1.0); }, {"global_clipnorm", "-1"});
}

TEST(Optimizer, LearningRateFollowsScheduleAndCanBeReplaced) {
  optimizers::SGD opt(schedules::PiecewiseConstantDecay({0}, {1.0, 0.5}));
  Tensor w = Tensor::zeros({1}, DType::kFloat64).set_requires_grad(true);
  EXPECT_EQ(opt.learning_rate(), 1.0);
  ops::sum(w).backward();  // g = 1
  opt.apply_gradients({w});
  EXPECT_EQ(w.item(), -1.0);  // step 0 used lr 1
  EXPECT_EQ(opt.learning_rate(), 0.5);
  opt.apply_gradients({w});
  EXPECT_EQ(w.item(), -1.5);
  opt.set_learning_rate(0.25);
  EXPECT_EQ(opt.learning_rate(), 0.25);
  opt.apply_gradients({w});
  EXPECT_EQ(w.item(), -1.75);
  EXPECT_THROW(opt.set_learning_rate(-1.0), ValueError);
  // A schedule that produces a bad value is caught when it is used.
  optimizers::SGD bad(LearningRateSchedule([](int64_t) { return std::nan(""); }));
  expect_throw_with<ValueError>([&] { bad.apply_gradients({w}); }, {"learning-rate schedule", "nan"});
}

TEST(Optimizer, RejectsMismatchedGradient) {
  Tensor w = Tensor::zeros({2}, DType::kFloat64).set_requires_grad(true);
  w.impl()->grad = Tensor::zeros({3}, DType::kFloat64).impl();  // bypasses set_grad's own check
  optimizers::Adam opt;
  expect_throw_with<ShapeError>([&] { opt.apply_gradients({w}); }, {"adam", "[3]", "[2]"});
}

// ---- checkpoint state ---------------------------------------------------------------------------

// One step on f(w) = Σ (w⁴/4 + 0.1·w): enough curvature that every slot matters.
void train_step(Optimizer& opt, Tensor& w) {
  w.zero_grad();
  ops::sum(ops::square(ops::square(w)) * 0.25 + w * 0.1).backward();
  opt.apply_gradients({w});
}

// Trains 5 steps straight, and 3 steps + state round trip into a fresh optimizer + 2 steps; the
// float32 weights must agree bit for bit. A fresh optimizer without the state must not.
template <class Make>
void expect_resume_is_exact(Make make) {
  Tensor straight_w = Tensor::randn({64}, 3).set_requires_grad(true);
  auto straight = make();
  for (int i = 0; i < 5; ++i) train_step(*straight, straight_w);

  Tensor w = Tensor::randn({64}, 3).set_requires_grad(true);
  auto first = make();
  for (int i = 0; i < 3; ++i) train_step(*first, w);
  const auto state = first->state({{"dense/kernel", w}});
  EXPECT_EQ(state.at("iterations").item(), 3.0);

  Tensor resumed_w = w.clone().set_requires_grad(true);
  Tensor fresh_w = w.clone().set_requires_grad(true);
  auto resumed = make();
  resumed->load_state(state, {{"dense/kernel", resumed_w}});
  EXPECT_EQ(resumed->iterations(), 3);
  auto fresh = make();
  for (int i = 0; i < 2; ++i) {
    train_step(*resumed, resumed_w);
    train_step(*fresh, fresh_w);
  }
  EXPECT_EQ(resumed_w.to_vector<float>(), straight_w.to_vector<float>()) << straight->name();
  EXPECT_NE(fresh_w.to_vector<float>(), straight_w.to_vector<float>()) << straight->name();
}

TEST(OptimizerState, RoundTripResumesBitForBit) {
  expect_resume_is_exact([] {
    auto opt = std::make_shared<optimizers::SGD>(schedules::ExponentialDecay(0.05, 2, 0.5));
    opt->momentum(0.9).nesterov(true);
    return opt;
  });
  expect_resume_is_exact([] {
    auto opt = std::make_shared<optimizers::Adam>(schedules::CosineDecay(0.01, 10));
    opt->amsgrad(true);
    return opt;
  });
  expect_resume_is_exact([] { return std::make_shared<optimizers::AdamW>(0.01, 0.1); });
  expect_resume_is_exact([] {
    auto opt = std::make_shared<optimizers::RMSprop>(0.01);
    opt->momentum(0.5);
    return opt;
  });
}

TEST(OptimizerState, KeysAreWeightNameSlashSlot) {
  Tensor w = quadratic_weight();
  optimizers::Adam opt;
  opt.amsgrad(true);
  quadratic_step(opt, w);
  const auto state = opt.state({{"dense_1/kernel", w}});
  std::vector<std::string> keys;
  for (const auto& [k, v] : state) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"dense_1/kernel/momentum", "dense_1/kernel/velocity",
                                            "dense_1/kernel/velocity_hat", "iterations"}));
  EXPECT_EQ(state.at("iterations").dtype(), DType::kInt64);
  // m = 0.1·g after one step: g = (2, −12).
  EXPECT_NEAR(state.at("dense_1/kernel/momentum").to_vector<double>()[1], -1.2, 1e-15);
  // The state is a copy: stepping again does not change it.
  quadratic_step(opt, w);
  EXPECT_NEAR(state.at("dense_1/kernel/momentum").to_vector<double>()[1], -1.2, 1e-15);
}

TEST(OptimizerState, LoadStateRejectsBadEntries) {
  Tensor w = quadratic_weight();
  optimizers::Adam opt;
  quadratic_step(opt, w);
  const std::vector<NamedWeight> weights = {{"dense/kernel", w}};
  auto state = opt.state(weights);
  optimizers::Adam other;
  auto missing = state;
  missing.erase("iterations");
  expect_throw_with<ValueError>([&] { other.load_state(missing, weights); }, {"iterations"});
  auto unknown = state;
  unknown["conv/kernel/momentum"] = Tensor::zeros({2}, DType::kFloat64);
  expect_throw_with<ValueError>([&] { other.load_state(unknown, weights); }, {"conv/kernel/momentum", "conv/kernel"});
  auto wrong = state;
  wrong["dense/kernel/momentum"] = Tensor::zeros({3}, DType::kFloat64);
  expect_throw_with<ShapeError>([&] { other.load_state(wrong, weights); }, {"dense/kernel/momentum", "[3]", "[2]"});
  for (double bad : {-1.0, 2.5, 1e300}) {  // 1e300 would overflow the cast to int64_t (undefined behaviour)
    auto steps = state;
    steps["iterations"] = Tensor::full({1}, bad, DType::kFloat64);
    expect_throw_with<ValueError>([&] { other.load_state(steps, weights); }, {"\"iterations\" must be an integer"});
  }
  EXPECT_EQ(other.iterations(), 0);  // nothing was changed by the failed loads
}

// ---- schedules ----------------------------------------------------------------------------------

TEST(Schedules, ValuesAtGivenSteps) {
  const auto exp_decay = schedules::ExponentialDecay(0.1, 10, 0.5);
  EXPECT_DOUBLE_EQ(exp_decay(0), 0.1);
  EXPECT_DOUBLE_EQ(exp_decay(5), 0.1 * std::sqrt(0.5));
  EXPECT_DOUBLE_EQ(exp_decay(10), 0.05);
  EXPECT_DOUBLE_EQ(exp_decay(30), 0.0125);
  const auto stairs = schedules::ExponentialDecay(0.1, 10, 0.5, /*staircase=*/true);
  EXPECT_DOUBLE_EQ(stairs(9), 0.1);
  EXPECT_DOUBLE_EQ(stairs(15), 0.05);
  const auto cosine = schedules::CosineDecay(1.0, 100, 0.1);
  EXPECT_DOUBLE_EQ(cosine(0), 1.0);
  EXPECT_NEAR(cosine(50), 0.55, 1e-15);  // 0.9·½ + 0.1
  EXPECT_NEAR(cosine(100), 0.1, 1e-15);
  EXPECT_NEAR(cosine(250), 0.1, 1e-15);  // stays at α·initial after decay_steps
  const auto pieces = schedules::PiecewiseConstantDecay({10, 20}, {1.0, 0.5, 0.1});
  EXPECT_EQ(pieces(0), 1.0);
  EXPECT_EQ(pieces(10), 1.0);  // Keras: inclusive on the left piece
  EXPECT_EQ(pieces(11), 0.5);
  EXPECT_EQ(pieces(20), 0.5);
  EXPECT_EQ(pieces(21), 0.1);
  const LearningRateSchedule constant = 0.3;
  EXPECT_EQ(constant(12345), 0.3);
}

TEST(Schedules, ValidateArguments) {
  expect_throw_with<ValueError>([] { (void)schedules::PiecewiseConstantDecay({10, 20}, {1.0, 0.5}); },
                                {"PiecewiseConstantDecay", "2 values", "2 boundaries"});
  expect_throw_with<ValueError>([] { (void)schedules::PiecewiseConstantDecay({20, 10}, {1.0, 0.5, 0.1}); },
                                {"increase"});
  expect_throw_with<ValueError>([] { (void)schedules::ExponentialDecay(0.1, 0, 0.5); }, {"decay_steps", "0"});
  expect_throw_with<ValueError>([] { (void)schedules::CosineDecay(0.1, 10, 2.0); }, {"alpha"});
  expect_throw_with<ValueError>([] { (void)schedules::ExponentialDecay(-0.1, 10, 0.5); }, {"initial_learning_rate"});
}

TEST(Schedules, ConfigRoundTrip) {
  for (const LearningRateSchedule& s : {schedules::ExponentialDecay(0.1, 10, 0.5, true), schedules::CosineDecay(0.2, 7, 0.1),
                                        schedules::PiecewiseConstantDecay({3, 8}, {0.3, 0.2, 0.1}),
                                        LearningRateSchedule(0.01)}) {
    const LearningRateSchedule back = schedules::from_config(s.get_config());
    EXPECT_EQ(back.get_config(), s.get_config());
    for (int64_t step : {0, 3, 4, 8, 9, 20}) EXPECT_EQ(back(step), s(step));
  }
  EXPECT_THROW((void)schedules::from_config(Config{{"class_name", "Warp"}}), ValueError);
  // Integer fields take JSON integers only (a float went through a C++ cast: undefined behaviour
  // out of range, truncation within it).
  expect_throw_with<ValueError>(
      [] {
        (void)schedules::from_config(Config::parse(
            R"({"class_name": "CosineDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 2e109}})"));
      },
      {"CosineDecay.decay_steps must hold integers, got 2e+109"});
  expect_throw_with<ValueError>(
      [] {
        (void)schedules::from_config(Config::parse(
            R"({"class_name": "PiecewiseConstantDecay", "config": {"boundaries": [3, 7.5], "values": [1, 2, 3]}})"));
      },
      {"PiecewiseConstantDecay.boundaries must hold integers"});
}

// ---- hyper-parameter errors, get, configs ---------------------------------------------------------

TEST(Optimizer, BadHyperParametersThrowWithMessages) {
  expect_throw_with<ValueError>([] { optimizers::SGD opt(-0.1); }, {"SGD", "learning_rate", "-0.1"});
  expect_throw_with<ValueError>([] { optimizers::Adam opt(-1.0); }, {"Adam", "learning_rate"});
  expect_throw_with<ValueError>([] { optimizers::Adam().beta_1(1.0); }, {"Adam", "beta_1", "[0, 1)", "1"});
  expect_throw_with<ValueError>([] { optimizers::Adam().beta_2(-0.5); }, {"beta_2", "-0.5"});
  expect_throw_with<ValueError>([] { optimizers::Adam().epsilon(-1e-7); }, {"epsilon"});
  expect_throw_with<ValueError>([] { optimizers::AdamW(1e-3, -0.1); }, {"AdamW", "weight_decay", "-0.1"});
  expect_throw_with<ValueError>([] { optimizers::SGD().momentum(1.5); }, {"SGD", "momentum", "1.5"});
  expect_throw_with<ValueError>([] { optimizers::RMSprop().rho(1.0); }, {"RMSprop", "rho"});
  expect_throw_with<ValueError>([] { optimizers::RMSprop().momentum(-0.1); }, {"RMSprop", "momentum"});
  EXPECT_THROW(optimizers::SGD(std::nan("")), ValueError);
}

TEST(Optimizer, KerasDefaultsAndNames) {
  EXPECT_DOUBLE_EQ(optimizers::SGD().learning_rate(), 0.01);
  EXPECT_DOUBLE_EQ(optimizers::Adam().learning_rate(), 1e-3);
  EXPECT_DOUBLE_EQ(optimizers::RMSprop().learning_rate(), 1e-3);
  const Config adam = optimizers::Adam().get_config();
  EXPECT_EQ(adam["class_name"], "Adam");
  EXPECT_EQ(adam["config"]["beta_1"], 0.9);
  EXPECT_EQ(adam["config"]["beta_2"], 0.999);
  EXPECT_EQ(adam["config"]["epsilon"], 1e-7);
  EXPECT_EQ(optimizers::AdamW().get_config()["config"]["weight_decay"], 0.004);
  EXPECT_EQ(optimizers::RMSprop().get_config()["config"]["rho"], 0.9);
  EXPECT_EQ(optimizers::get("adam")->name(), "adam");
  EXPECT_EQ(optimizers::get("SGD")->name(), "SGD");
  EXPECT_EQ(optimizers::get("adamw")->get_config()["class_name"], "AdamW");
  EXPECT_EQ(optimizers::get("rmsprop")->name(), "rmsprop");
  expect_throw_with<ValueError>([] { (void)optimizers::get("lion"); }, {"lion"});
}

TEST(Optimizer, ConfigRoundTrip) {
  std::vector<std::shared_ptr<Optimizer>> all;
  auto sgd = std::make_shared<optimizers::SGD>(schedules::ExponentialDecay(0.1, 5, 0.9));
  sgd->momentum(0.8).nesterov(true);
  all.push_back(sgd);
  auto adam = std::make_shared<optimizers::Adam>(2e-3);
  adam->beta_1(0.8).beta_2(0.99).epsilon(1e-8).amsgrad(true);
  all.push_back(adam);
  all.push_back(std::make_shared<optimizers::AdamW>(3e-4, 0.01));
  auto rms = std::make_shared<optimizers::RMSprop>(0.02);
  rms->rho(0.8).momentum(0.1).epsilon(1e-6);
  rms->set_global_clipnorm(1.5);
  all.push_back(rms);
  for (const auto& opt : all) {
    const auto back = optimizers::from_config(opt->get_config());
    EXPECT_EQ(back->get_config(), opt->get_config());
    EXPECT_EQ(back->name(), opt->name());
  }
  EXPECT_THROW((void)optimizers::from_config(Config{{"class_name", "Lion"}}), ValueError);
}

}  // namespace
}  // namespace normnet

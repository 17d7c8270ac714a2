// oneDNN float32 kernels against their naive _reference twins on odd shapes (transposes,
// broadcast batch, stride 2, same padding with odd/even sizes, 1×1 kernels, batch 1), the
// primitive cache (a repeated training step creates no primitive), and concurrent execution.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "core/random.h"
#include "kernel_test_util.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/dnnl_context.h"
#include "kernels/cpu/matmul.h"
#include "normnet/normnet.h"

namespace normnet::kernels::cpu {
namespace {

std::vector<float> random_vector(int64_t n, uint64_t seed) {
  normnet::detail::Rng rng(seed);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = static_cast<float>(rng.normal());
  return v;
}

// Largest |a − b| / (1 + |b|): float32 sums of up to a few thousand products agree to ~1e-5.
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i])) / (1.0 + std::abs(double(b[i])));
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

MatmulDims dims(std::vector<int64_t> a_batch, std::vector<int64_t> b_batch, int64_t m, int64_t k, int64_t n,
                bool ta, bool tb) {
  MatmulDims d;
  d.batch_rank = static_cast<int>(a_batch.size());
  std::copy(a_batch.begin(), a_batch.end(), d.a_batch);
  std::copy(b_batch.begin(), b_batch.end(), d.b_batch);
  d.m = m;
  d.k = k;
  d.n = n;
  d.transpose_a = ta;
  d.transpose_b = tb;
  return d;
}

int64_t product(const int64_t* e, int rank) {
  int64_t p = 1;
  for (int i = 0; i < rank; ++i) p *= e[i];
  return p;
}

void expect_matmul_matches_reference(const MatmulDims& d, bool with_bias) {
  const auto a = random_vector(product(d.a_batch, d.batch_rank) * d.m * d.k, 1);
  const auto b = random_vector(product(d.b_batch, d.batch_rank) * d.k * d.n, 2);
  const auto bias = random_vector(d.n, 3);
  const int64_t c_size = matmul_batch_count(d) * d.m * d.n;
  std::vector<float> fast(c_size, NAN), slow(c_size, NAN);
  matmul_forward(a.data(), b.data(), with_bias ? bias.data() : nullptr, fast.data(), d);
  matmul_reference(a.data(), b.data(), with_bias ? bias.data() : nullptr, slow.data(), d);
  EXPECT_LT(max_rel_diff(fast, slow), 1e-5) << "m " << d.m << " k " << d.k << " n " << d.n << " ta "
                                            << d.transpose_a << " tb " << d.transpose_b;
}

TEST(DnnlMatmul, MatchesReferenceOnOddShapes) {
  const uint64_t fallbacks = dnnl_fallbacks();
  expect_matmul_matches_reference(dims({}, {}, 37, 53, 19, false, false), false);
  expect_matmul_matches_reference(dims({}, {}, 37, 53, 19, false, false), true);
  expect_matmul_matches_reference(dims({}, {}, 1, 1, 1, false, false), true);
  expect_matmul_matches_reference(dims({}, {}, 17, 129, 3, true, false), false);
  expect_matmul_matches_reference(dims({}, {}, 17, 129, 3, false, true), false);
  expect_matmul_matches_reference(dims({}, {}, 17, 129, 3, true, true), false);
  expect_matmul_matches_reference(dims({3}, {3}, 5, 7, 9, false, false), false);
  expect_matmul_matches_reference(dims({3}, {1}, 5, 7, 9, false, false), true);   // folded into [15, 7]
  expect_matmul_matches_reference(dims({3}, {1}, 5, 7, 9, true, false), false);   // not foldable
  expect_matmul_matches_reference(dims({1}, {4}, 5, 7, 9, false, true), false);
  expect_matmul_matches_reference(dims({2, 1}, {1, 3}, 4, 6, 5, false, false), false);
  // Tall with a transposed a (M ≥ 4·K, N ≥ 64, M·K ≥ 2^18): a is transposed into a buffer first
  // (in builds without AVX-512 the packed kernel takes the first two; K < 32 keeps the third off it).
  expect_matmul_matches_reference(dims({}, {}, 2050, 128, 70, true, false), true);
  expect_matmul_matches_reference(dims({}, {}, 2050, 128, 70, true, true), false);
  expect_matmul_matches_reference(dims({}, {}, 16400, 16, 64, true, false), true);
  EXPECT_EQ(dnnl_fallbacks(), fallbacks) << "oneDNN refused a matmul and the reference ran instead";
}

// Long sums (K in the hundreds) against the rounding bound of a (K+1)-term float32 sum,
// K·u·Σ|terms|, rather than a fixed relative difference, which cancellation defeats.
void expect_matmul_within_bound(const MatmulDims& d, bool with_bias) {
  const auto a = random_vector(product(d.a_batch, d.batch_rank) * d.m * d.k, 1);
  const auto b = random_vector(product(d.b_batch, d.batch_rank) * d.k * d.n, 2);
  const auto bias = random_vector(d.n, 3);
  const int64_t c_size = matmul_batch_count(d) * d.m * d.n;
  std::vector<float> fast(c_size, NAN), exact(c_size, NAN), abs_exact(c_size, NAN);
  const auto abs_bias = abs_of(bias);
  matmul_forward(a.data(), b.data(), with_bias ? bias.data() : nullptr, fast.data(), d);
  matmul_reference(a.data(), b.data(), with_bias ? bias.data() : nullptr, exact.data(), d);
  matmul_reference(abs_of(a).data(), abs_of(b).data(), with_bias ? abs_bias.data() : nullptr,
                   abs_exact.data(), d);
  EXPECT_LE(error_over_bound(fast, exact, abs_exact, d.k + 1), 1.0)
      << "m " << d.m << " k " << d.k << " n " << d.n << " ta " << d.transpose_a << " tb " << d.transpose_b
      << " bias " << with_bias;
}

// Large products (M·K·N ≥ 2^22, K ≤ 4·max(M, N)): the packed AVX2 kernel or, in AVX-512 builds,
// dnnl_sgemm with c filled with the bias first; every transpose, by rows and by columns.
TEST(DnnlMatmul, LargeProductsMatchReference) {
  const uint64_t fallbacks = dnnl_fallbacks();
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      const MatmulDims d = dims({}, {}, 300, 200, 100, ta, tb);
      EXPECT_FALSE(matmul_forward_runs_packed(d) && matmul_forward_runs_sgemm(d));
      if (matmul_built_for_avx512()) {
        EXPECT_TRUE(matmul_forward_runs_sgemm(d));
      }
      expect_matmul_within_bound(d, true);
      expect_matmul_within_bound(d, false);
    }
  }
  expect_matmul_within_bound(dims({}, {}, 200, 300, 1100, false, true), true);  // 128 ≤ M < 256, N ≥ 1024
  expect_matmul_within_bound(dims({3}, {1}, 100, 200, 100, false, false),
                             true);  // a's batch folded into rows
  EXPECT_EQ(dnnl_fallbacks(), fallbacks) << "dnnl_sgemm or the matmul primitive failed and the reference ran";
}

TEST(DnnlMatmul, EmptyInnerDimensionWritesBias) {
  const MatmulDims d = dims({}, {}, 2, 0, 3, false, false);
  const std::vector<float> bias{1, 2, 3};
  std::vector<float> c(6, NAN);
  matmul_forward(static_cast<const float*>(nullptr), nullptr, bias.data(), c.data(), d);
  EXPECT_EQ(c, (std::vector<float>{1, 2, 3, 1, 2, 3}));
}

// A single row times an untransposed matrix runs matmul.cpp's own loop (chunks of rows walked
// forwards and backwards on alternate calls), not oneDNN.
TEST(RowTimesMatrix, MatchesReference) {
  expect_matmul_matches_reference(dims({}, {}, 1, 9216, 128, false, false), true);  // the CNN's Dense at batch 1
  expect_matmul_matches_reference(dims({}, {}, 1, 128, 10, false, false), true);
  expect_matmul_matches_reference(dims({}, {}, 1, 37, 200, false, false), false);  // blocks of 128 and 64, a tail of 8
  expect_matmul_matches_reference(dims({}, {}, 1, 4099, 3, false, false), true);   // last chunk short
  expect_matmul_matches_reference(dims({}, {}, 1, 7, 65, true, false), true);      // a stored [K, 1]
  expect_matmul_matches_reference(dims({1, 1}, {1, 1}, 1, 300, 33, false, false), false);  // blocks of 16, a tail of 1
}

TEST(RowTimesMatrix, SameBitsOnEveryCallAndThreadCount) {
  const MatmulDims d = dims({}, {}, 1, 5000, 96, false, false);
  const auto a = random_vector(d.k, 1), b = random_vector(d.k * d.n, 2), bias = random_vector(d.n, 3);
  const int threads = get_num_threads();
  std::vector<float> first(d.n, NAN);
  matmul_forward(a.data(), b.data(), bias.data(), first.data(), d);
  for (int t : {1, 2, 3}) {
    set_num_threads(t);
    for (int call = 0; call < 3; ++call) {  // the walk changes direction on every call
      std::vector<float> c(d.n, NAN);
      matmul_forward(a.data(), b.data(), bias.data(), c.data(), d);
      EXPECT_EQ(c, first) << t << " thread(s), call " << call;
    }
  }
  set_num_threads(threads);
}

// matmul.h promises results that do not depend on the thread count; for oneDNN's matmul that is
// measured here on the CNN's Dense products and on long sums (K = 5000), not assumed.
TEST(DnnlMatmul, SameBitsOnOneAndTwoThreads) {
  const MatmulDims shapes[] = {
      dims({}, {}, 128, 9216, 128, false, false), dims({}, {}, 9216, 128, 128, true, false),
      dims({}, {}, 128, 128, 9216, false, true),  dims({}, {}, 300, 5000, 70, false, false),
      dims({}, {}, 600, 700, 520, false, false),  dims({}, {}, 600, 700, 520, true, true),
      dims({}, {}, 200, 300, 1100, false, true)};
  const int threads = get_num_threads();
  for (const MatmulDims& d : shapes) {
    const auto a = random_vector(d.m * d.k, 1), b = random_vector(d.k * d.n, 2), bias = random_vector(d.n, 3);
    std::vector<float> one(d.m * d.n, NAN), two = one;
    set_num_threads(1);
    matmul_forward(a.data(), b.data(), bias.data(), one.data(), d);
    set_num_threads(2);
    matmul_forward(a.data(), b.data(), bias.data(), two.data(), d);
    EXPECT_EQ(one, two) << "m " << d.m << " k " << d.k << " n " << d.n;
  }
  set_num_threads(threads);
}

TEST(BiasBackward, SumsRows) {
  const std::vector<double> dy{1, 2, 3, 4, 5, 6};
  std::vector<double> db(3, NAN);
  bias_backward(dy.data(), db.data(), 2, 3);
  EXPECT_EQ(db, (std::vector<double>{5, 7, 9}));
}

struct ConvCase {
  int64_t n, h, w, c, kh, kw, o, stride;
  bool same, bias;
};

Conv2dDims conv_dims(const ConvCase& t) {
  const WindowAxis rows = window_axis(t.h, t.kh, t.stride, t.same);
  const WindowAxis cols = window_axis(t.w, t.kw, t.stride, t.same);
  return {t.n, t.h, t.w, t.c, t.kh, t.kw, t.o, rows.out, cols.out, t.stride, t.stride,
          rows.pad_before, cols.pad_before, rows.pad_after, cols.pad_after};
}

TEST(WindowAxis, FollowsTensorFlowSamePadding) {
  // same: out = ceil(in/s), total = max((out − 1)·s + k − in, 0), the extra at the end.
  const WindowAxis a = window_axis(5, 3, 2, true);  // out 3, total 2
  EXPECT_EQ(a.out, 3);
  EXPECT_EQ(a.pad_before, 1);
  EXPECT_EQ(a.pad_after, 1);
  const WindowAxis b = window_axis(6, 3, 2, true);  // out 3, total 1: bottom only
  EXPECT_EQ(b.out, 3);
  EXPECT_EQ(b.pad_before, 0);
  EXPECT_EQ(b.pad_after, 1);
  const WindowAxis c = window_axis(6, 1, 4, true);  // out 2, total max(−1, 0) = 0
  EXPECT_EQ(c.out, 2);
  EXPECT_EQ(c.pad_before + c.pad_after, 0);
  const WindowAxis d = window_axis(7, 3, 2, false);  // valid: (7 − 3)/2 + 1
  EXPECT_EQ(d.out, 3);
}

TEST(DnnlConv2d, MatchesReferenceOnOddShapes) {
  const uint64_t fallbacks = dnnl_fallbacks();
  const ConvCase cases[] = {
      {2, 7, 9, 3, 3, 3, 5, 1, false, true},  {2, 7, 9, 3, 3, 3, 5, 2, false, false},
      {1, 7, 8, 4, 3, 3, 6, 2, true, true},   {3, 6, 6, 2, 3, 2, 4, 2, true, false},
      {2, 5, 5, 8, 1, 1, 16, 1, false, true}, {1, 9, 7, 3, 1, 1, 2, 2, true, true},
      {1, 4, 4, 1, 2, 2, 1, 1, true, true},   {2, 11, 10, 5, 4, 4, 7, 3, true, true},
      {4, 28, 28, 1, 3, 3, 32, 1, false, true}};
  for (const ConvCase& t : cases) {
    const Conv2dDims d = conv_dims(t);
    const auto x = random_vector(d.n * d.h * d.w * d.c, 11);
    const auto k = random_vector(d.kh * d.kw * d.c * d.o, 12);
    const auto b = random_vector(d.o, 13);
    const auto dy = random_vector(d.n * d.oh * d.ow * d.o, 14);
    const float* bias = t.bias ? b.data() : nullptr;
    const std::string what = ::testing::PrintToString(std::vector<int64_t>{t.n, t.h, t.w, t.c, t.kh, t.kw, t.o, t.stride}) +
                             (t.same ? " same" : " valid");

    std::vector<float> y(d.n * d.oh * d.ow * d.o, NAN), y_ref = y;
    conv2d_forward(x.data(), k.data(), bias, y.data(), d);
    conv2d_forward_reference(x.data(), k.data(), bias, y_ref.data(), d);
    EXPECT_LT(max_rel_diff(y, y_ref), 1e-5) << "forward " << what;

    std::vector<float> dx(x.size(), NAN), dx_ref = dx;
    conv2d_backward_data(dy.data(), k.data(), dx.data(), d);
    conv2d_backward_data_reference(dy.data(), k.data(), dx_ref.data(), d);
    EXPECT_LT(max_rel_diff(dx, dx_ref), 1e-5) << "backward data " << what;

    std::vector<float> dk(k.size(), NAN), dk_ref = dk, db(d.o, NAN), db_ref = db;
    conv2d_backward_weights(x.data(), dy.data(), dk.data(), t.bias ? db.data() : nullptr, d);
    conv2d_backward_weights_reference(x.data(), dy.data(), dk_ref.data(), t.bias ? db_ref.data() : nullptr, d);
    EXPECT_LT(max_rel_diff(dk, dk_ref), 1e-4) << "backward weights " << what;
    if (t.bias) {
      EXPECT_LT(max_rel_diff(db, db_ref), 1e-4) << "backward bias " << what;
    }
  }
  EXPECT_EQ(dnnl_fallbacks(), fallbacks) << "oneDNN refused a convolution and the reference ran instead";
}

std::vector<float> abs_of(std::vector<float> v) {
  for (float& x : v) x = std::abs(x);
  return v;
}

// |fast − exact| ≤ γ·(exact Σ|terms|) element by element, γ = K·2⁻²⁴ for sums of K float32
// products (Higham's bound for any summation order); `abs_exact` is the reference on |inputs|.
void expect_within_rounding(const std::vector<float>& fast, const std::vector<float>& exact,
                            const std::vector<float>& abs_exact, int64_t k, const std::string& what) {
  const double gamma = static_cast<double>(k) * 0x1p-24;
  int64_t bad = 0;
  for (std::size_t i = 0; i < fast.size(); ++i) {
    if (!(std::abs(double(fast[i]) - double(exact[i])) <= gamma * double(abs_exact[i]) + 1e-30)) ++bad;
  }
  EXPECT_EQ(bad, 0) << what << ": elements outside K·u·Σ|terms|, K = " << k;
}

// The CNN's second layer (32 → 64 channels, 3×3): long sums, and oneDNN's blocked weights layout
// with the reorders to and from Keras's [KH, KW, C, O].
TEST(DnnlConv2d, MatchesReferenceWithinRoundingAtCnnShape) {
  const uint64_t fallbacks = dnnl_fallbacks();
  const Conv2dDims d = conv_dims({2, 26, 26, 32, 3, 3, 64, 1, false, true});
  const auto x = random_vector(d.n * d.h * d.w * d.c, 21), k = random_vector(d.kh * d.kw * d.c * d.o, 22);
  const auto b = random_vector(d.o, 23), dy = random_vector(d.n * d.oh * d.ow * d.o, 24);
  const auto ax = abs_of(x), ak = abs_of(k), ab = abs_of(b), ady = abs_of(dy);

  std::vector<float> y(d.n * d.oh * d.ow * d.o), y_ref = y, y_abs = y;
  conv2d_forward(x.data(), k.data(), b.data(), y.data(), d);
  conv2d_forward_reference(x.data(), k.data(), b.data(), y_ref.data(), d);
  conv2d_forward_reference(ax.data(), ak.data(), ab.data(), y_abs.data(), d);
  expect_within_rounding(y, y_ref, y_abs, d.kh * d.kw * d.c + 1, "forward");

  std::vector<float> dx(x.size()), dx_ref = dx, dx_abs = dx;
  conv2d_backward_data(dy.data(), k.data(), dx.data(), d);
  conv2d_backward_data_reference(dy.data(), k.data(), dx_ref.data(), d);
  conv2d_backward_data_reference(ady.data(), ak.data(), dx_abs.data(), d);
  expect_within_rounding(dx, dx_ref, dx_abs, d.kh * d.kw * d.o, "backward data");

  std::vector<float> dk(k.size()), dk_ref = dk, dk_abs = dk, db(d.o), db_ref = db, db_abs = db;
  conv2d_backward_weights(x.data(), dy.data(), dk.data(), db.data(), d);
  conv2d_backward_weights_reference(x.data(), dy.data(), dk_ref.data(), db_ref.data(), d);
  conv2d_backward_weights_reference(ax.data(), ady.data(), dk_abs.data(), db_abs.data(), d);
  expect_within_rounding(dk, dk_ref, dk_abs, d.n * d.oh * d.ow, "backward weights");
  expect_within_rounding(db, db_ref, db_abs, d.n * d.oh * d.ow, "backward bias");
  EXPECT_EQ(dnnl_fallbacks(), fallbacks) << "oneDNN refused a convolution and the reference ran instead";
}

// One CNN + Dense training step through the public ops.
void training_step(const Tensor& x, const Tensor& kernel, const Tensor& conv_bias, const Tensor& w,
                   const Tensor& dense_bias) {
  Tensor h = ops::conv2d(x, kernel, conv_bias, {1, 1}, ops::Padding::kValid);
  h = ops::max_pool2d(h, {2, 2});
  h = ops::reshape(h, {x.size(0), -1});
  ops::sum(ops::linear(h, w, dense_bias)).backward();
}

TEST(DnnlCache, RepeatedTrainingStepCreatesNoPrimitive) {
  const Tensor x = Tensor::randn({4, 10, 10, 3}, 1);
  Tensor kernel = Tensor::randn({3, 3, 3, 8}, 2).set_requires_grad(true);
  Tensor conv_bias = Tensor::zeros({8}).set_requires_grad(true);
  Tensor w = Tensor::randn({4 * 4 * 8, 5}, 3).set_requires_grad(true);
  Tensor dense_bias = Tensor::zeros({5}).set_requires_grad(true);
  const uint64_t before = dnnl_primitives_created();
  training_step(x, kernel, conv_bias, w, dense_bias);
  const uint64_t after_first = dnnl_primitives_created();
  EXPECT_GE(after_first - before, 5u);  // conv forward, backward weights, linear forward, two backward products
  for (int step = 0; step < 3; ++step) training_step(x, kernel, conv_bias, w, dense_bias);
  EXPECT_EQ(dnnl_primitives_created(), after_first);
  // A new batch size is a new shape: new primitives.
  training_step(Tensor::randn({2, 10, 10, 3}, 4), kernel, conv_bias, w, dense_bias);
  EXPECT_GT(dnnl_primitives_created(), after_first);
}

TEST(DnnlCache, ConcurrentExecutionFromSeveralThreads) {
  const MatmulDims d = dims({}, {}, 64, 96, 48, false, false);
  const ConvCase t{2, 12, 12, 4, 3, 3, 8, 1, true, true};
  const Conv2dDims cd = conv_dims(t);
  const auto a = random_vector(d.m * d.k, 1), b = random_vector(d.k * d.n, 2);
  const auto x = random_vector(cd.n * cd.h * cd.w * cd.c, 3), k = random_vector(cd.kh * cd.kw * cd.c * cd.o, 4);
  const auto bias = random_vector(cd.o, 5);
  std::vector<float> c_ref(d.m * d.n), y_ref(cd.n * cd.oh * cd.ow * cd.o);
  matmul_reference<float>(a.data(), b.data(), nullptr, c_ref.data(), d);
  conv2d_forward_reference(x.data(), k.data(), bias.data(), y_ref.data(), cd);

  constexpr int kThreads = 4;
  std::vector<double> worst(kThreads, INFINITY);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      double w = 0.0;
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<float> c(c_ref.size()), y(y_ref.size());
        matmul_forward(a.data(), b.data(), nullptr, c.data(), d);
        conv2d_forward(x.data(), k.data(), bias.data(), y.data(), cd);
        w = std::max({w, max_rel_diff(c, c_ref), max_rel_diff(y, y_ref)});
      }
      worst[i] = w;
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_LT(worst[i], 1e-5) << "thread " << i;
}

}  // namespace
}  // namespace normnet::kernels::cpu

// SGEMM (ops::matmul: the packed AVX2 kernel or oneDNN's sgemm, as matmul_forward routes it; oneDNN's own
// dnnl_sgemm beside it as the peer) and convolution at 1024³ and at the reference CNN's shapes
// (batch 128), beside a measured FMA peak, so each figure reads as a fraction of what the core can
// do; and the batch-1 Dense product (a memory-bound row times a matrix) in GB/s.
//   NORMNET_NUM_THREADS=2 build/bench/bench_kernels --benchmark_filter='Fma|Sgemm|RowTimes|Conv|Pool'
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <string>
#include <vector>

#include "core/random.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_direct.h"
#include "kernels/cpu/conv2d_pooled_backward.h"
#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/dnnl_context.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cpu/unary.h"
#include "normnet/normnet.h"

namespace {

using namespace normnet;
using namespace normnet::kernels::cpu;

// ---- FMA peak: independent accumulators hide the FMA latency (4 cycles × 2 pipes needs ≥ 8) ----
// AVX-512: 16 accumulators of 16 lanes; AVX2 with FMA: 12 of 8 lanes (16 registers, two operands).
#if defined(__AVX512F__)
constexpr int kAccumulators = 16, kFmaLanes = 16;
constexpr const char* kFmaName = "AVX-512 FMA";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kAccumulators = 12, kFmaLanes = 8;
constexpr const char* kFmaName = "AVX2 FMA";
#else
constexpr int kAccumulators = 1, kFmaLanes = 0;
constexpr const char* kFmaName = "none";
#endif

double fma_loop(int64_t iterations) {
#if defined(__AVX512F__)
  __m512 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kAccumulators; ++i) sum = _mm512_add_ps(sum, acc[i]);
  alignas(64) float lanes[16];  // summed by hand: GCC 12's _mm512_reduce_add_ps warns (-Wuninitialized)
  _mm512_store_ps(lanes, sum);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kAccumulators; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
#else
  (void)iterations;
  float lanes[1] = {0.0f};
#endif
  double total = 0.0;
  for (float v : lanes) total += v;
  return total;
}

constexpr double kFlopsPerIteration = kAccumulators * kFmaLanes * 2;  // lanes × (mul + add)

void BM_FmaPeak(benchmark::State& state) {
  if (kFmaLanes == 0) {
    state.SkipWithError("built without AVX-512 or AVX2 with FMA (configure with NORMNET_NATIVE=ON)");
    return;
  }
  const int threads = static_cast<int>(state.range(0));
  constexpr int64_t kIterations = 1 << 20;
  double sink = 0.0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += fma_loop(kIterations);
  }
  benchmark::DoNotOptimize(sink);
  state.counters["GFLOP/s"] = benchmark::Counter(kFlopsPerIteration * kIterations * threads * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(std::string(kFmaName) + ", " + std::to_string(threads) + " thread(s)");
}
BENCHMARK(BM_FmaPeak)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- helpers ----
std::vector<float> random_vector(int64_t n, uint64_t seed) {
  normnet::detail::Rng rng(seed);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = static_cast<float>(rng.normal());
  return v;
}

// Labels with oneDNN's implementation of the last primitive run (e.g. brg:avx512_core).
void set_flops(benchmark::State& state, double flops_per_call) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_call * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(dnnl_last_impl() + ", " + std::to_string(get_num_threads()) + " thread(s)");
}

// ---- SGEMM through ops::matmul / ops::linear (what a Dense layer runs) ----
void BM_SgemmOpsMatmul(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  NoGradGuard no_grad;
  const Tensor a = Tensor::randn({m, k}, 1), b = Tensor::randn({k, n}, 2);
  benchmark::DoNotOptimize(ops::matmul(a, b));
  for (auto _ : state) benchmark::DoNotOptimize(ops::matmul(a, b));
  set_flops(state, 2.0 * m * k * n);
  MatmulDims d;
  d.m = m, d.k = k, d.n = n;
  if (matmul_forward_runs_packed(d))
    state.SetLabel("packed AVX2, " + std::to_string(get_num_threads()) + " thread(s)");
  if (matmul_forward_runs_sgemm(d))
    state.SetLabel("oneDNN sgemm, " + std::to_string(get_num_threads()) + " thread(s)");
}
BENCHMARK(BM_SgemmOpsMatmul)->Args({1024, 1024, 1024})->UseRealTime()->Unit(benchmark::kMillisecond);

// The peer in the same run: oneDNN's own sgemm (dnnl_sgemm, row-major, what ops::matmul ran at
// 1024³ before step 25 in builds without AVX-512) on as many OpenMP threads as normnet uses.
void BM_SgemmOneDnn(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const auto a = random_vector(m * k, 1), b = random_vector(k * n, 2);
  std::vector<float> c(static_cast<std::size_t>(m * n));
  omp_set_num_threads(get_num_threads());
  const auto call = [&] { dnnl_sgemm('N', 'N', m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n); };
  call();
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * m * k * n);
  state.SetLabel("oneDNN dnnl_sgemm, " + std::to_string(get_num_threads()) + " thread(s)");
}
BENCHMARK(BM_SgemmOneDnn)->Args({1024, 1024, 1024})->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SgemmOpsLinear(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  NoGradGuard no_grad;
  const Tensor x = Tensor::randn({m, k}, 1), w = Tensor::randn({k, n}, 2), bias = Tensor::randn({n}, 3);
  benchmark::DoNotOptimize(ops::linear(x, w, bias));
  for (auto _ : state) benchmark::DoNotOptimize(ops::linear(x, w, bias));
  set_flops(state, 2.0 * m * k * n);
}
// Dense 9216→128 and 128→10 forward at batch 128.
BENCHMARK(BM_SgemmOpsLinear)->Args({128, 9216, 128})->Args({128, 128, 10})->UseRealTime()->Unit(benchmark::kMicrosecond);

// The kernel with transposes: the two backward products of a Dense layer.
//   dx = dy·Wᵀ: (M, K, N) = (batch, units, inputs), transpose_b
//   dW = xᵀ·dy: (M, K, N) = (inputs, batch, units), transpose_a
void BM_SgemmKernel(benchmark::State& state) {
  MatmulDims d;
  d.m = state.range(0);
  d.k = state.range(1);
  d.n = state.range(2);
  d.transpose_a = state.range(3) != 0;
  d.transpose_b = state.range(4) != 0;
  const auto a = random_vector(d.m * d.k, 1), b = random_vector(d.k * d.n, 2);
  std::vector<float> c(d.m * d.n);
  matmul_forward(a.data(), b.data(), nullptr, c.data(), d);
  for (auto _ : state) {
    matmul_forward(a.data(), b.data(), nullptr, c.data(), d);
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * d.m * d.k * d.n);
  if (matmul_forward_runs_packed(d))
    state.SetLabel("packed AVX2, " + std::to_string(get_num_threads()) + " thread(s)");
  if (matmul_forward_runs_sgemm(d))
    state.SetLabel("oneDNN sgemm, " + std::to_string(get_num_threads()) + " thread(s)");
}
BENCHMARK(BM_SgemmKernel)
    ->ArgNames({"M", "K", "N", "ta", "tb"})
    ->Args({128, 128, 9216, 0, 1})   // Dense 9216→128: dx
    ->Args({9216, 128, 128, 1, 0})   // Dense 9216→128: dW
    ->Args({128, 10, 128, 0, 1})     // Dense 128→10: dx
    ->Args({128, 128, 10, 1, 0})     // Dense 128→10: dW
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---- a single row times a matrix: Dense 9216→128 at batch 1 (issue 7's batch-1 latency) ----
// Memory-bound: GB/s counts b once (4·K·N bytes), the traffic that cannot be avoided. matmul.cpp
// runs its own loop here, not oneDNN; b (4.7 MB) is larger than two L2 caches (2 MB each on the
// Intel VM, 1 MB on Zen 5), so it streams from L3.
void BM_RowTimesMatrix(benchmark::State& state) {
  MatmulDims d;
  d.m = 1;
  d.k = state.range(0);
  d.n = state.range(1);
  const auto a = random_vector(d.k, 1), b = random_vector(d.k * d.n, 2), bias = random_vector(d.n, 3);
  std::vector<float> c(d.n);
  matmul_forward(a.data(), b.data(), bias.data(), c.data(), d);
  for (auto _ : state) {
    matmul_forward(a.data(), b.data(), bias.data(), c.data(), d);
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(4.0 * d.k * d.n * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::to_string(get_num_threads()) + " thread(s)");
}
BENCHMARK(BM_RowTimesMatrix)
    ->ArgNames({"K", "N"})
    ->Args({9216, 128})  // Dense 9216→128
    ->Args({128, 10})    // Dense 128→10
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---- convolution at the CNN's shapes: [128,28,28,1] → Conv(32, 3×3) → Conv(64, 3×3) ----
Conv2dDims cnn_layer(int64_t n, int64_t h, int64_t c, int64_t o) {
  return Conv2dDims{n, h, h, c, 3, 3, o, h - 2, h - 2, 1, 1, 0, 0, 0, 0};
}

enum ConvPass { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

// What ops::conv2d runs (impl 0; labelled "direct" where conv2d.cpp routes the forward
// pass to our direct kernel), or for the forward pass oneDNN's primitive (impl 1) or the direct
// kernel (impl 2) whatever the routing rule says, side by side.
// impl 3: the routed kernels with ops::set_conv2d_algorithm(kWinograd) (oneDNN's jit_wino_4x3 where
// it applies, operands reordered to and from NHWC inside each call; normnet's own Winograd forward
// where the direct kernel would run). impl 4: normnet's own Winograd forward (conv2d_winograd.h)
// whatever the routing rule says.
enum ConvImpl { kRouted = 0, kDnnlForward = 1, kDirectForward = 2, kWinograd = 3, kWinogradForward = 4 };

void BM_Conv2d(benchmark::State& state) {
  const int64_t n = state.range(3);
  const Conv2dDims d = state.range(0) == 1 ? cnn_layer(n, 28, 1, 32) : cnn_layer(n, 26, 32, 64);
  const auto pass = static_cast<ConvPass>(state.range(1));
  const auto impl = static_cast<ConvImpl>(state.range(2));
  if (impl == kDirectForward && !conv2d_direct_forward_supported(d)) {
    return state.SkipWithError(
        "the direct kernel needs an AVX-512 or AVX2 build (NORMNET_NATIVE=ON on such a host)");
  }
  if (impl == kWinogradForward && !conv2d_winograd_forward_supported(d)) {
    return state.SkipWithError("normnet's Winograd forward needs an AVX-512 or AVX2 build and 16k channels");
  }
  const auto x = random_vector(d.n * d.h * d.w * d.c, 1), k = random_vector(d.kh * d.kw * d.c * d.o, 2);
  const auto bias = random_vector(d.o, 3), dy = random_vector(d.n * d.oh * d.ow * d.o, 4);
  std::vector<float> y(dy.size()), dx(x.size()), dk(k.size()), db(d.o);
  auto run = [&] {
    if (pass == kForward && impl == kDnnlForward) conv2d_forward_dnnl(x.data(), k.data(), bias.data(), y.data(), d);
    else if (pass == kForward && impl == kDirectForward) conv2d_direct_forward(x.data(), k.data(), bias.data(), y.data(), d, false);
    else if (pass == kForward && impl == kWinogradForward)
      conv2d_winograd_forward(x.data(), k.data(), bias.data(), y.data(), d, false);
    else if (pass == kForward) conv2d_forward(x.data(), k.data(), bias.data(), y.data(), d);
    else if (pass == kBackwardData) conv2d_backward_data(dy.data(), k.data(), dx.data(), d);
    else conv2d_backward_weights(x.data(), dy.data(), dk.data(), db.data(), d);
  };
  set_conv2d_winograd(impl == kWinograd);
  dnnl_clear_last_impl();
  run();
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  set_conv2d_winograd(false);
  // Direct-convolution FLOPs in every case, so that GFLOP/s compare the times (Winograd does fewer).
  set_flops(state, 2.0 * d.n * d.oh * d.ow * d.o * d.kh * d.kw * d.c);
  const std::string threads = std::to_string(get_num_threads()) + " thread(s)";
  const bool own_winograd =
      impl == kWinogradForward || (impl == kWinograd && pass == kForward && conv2d_forward_runs_direct(d) &&
                                   conv2d_winograd_forward_supported(d));
  if (dnnl_last_impl().empty()) state.SetLabel("direct, " + threads);
  if (impl == kWinograd)
    state.SetLabel("winograd with its reorders, " + threads);  // the last primitive: a reorder
  if (own_winograd) state.SetLabel("normnet winograd, " + threads);
}
BENCHMARK(BM_Conv2d)
    ->ArgNames({"layer", "pass", "impl",
                "batch"})  // pass: 0 forward, 1 backward data, 2 backward weights + bias
    ->ArgsProduct({{1}, {kForward, kBackwardWeights}, {0}, {128}})
    ->ArgsProduct({{2}, {kForward, kBackwardData, kBackwardWeights}, {kRouted, kWinograd}, {128}})
    ->ArgsProduct({{1, 2},
                   {kForward},
                   {kDnnlForward, kDirectForward},
                   {1, 4, 8, 32, 128}})  // the direct kernel vs oneDNN: inference batches
    ->ArgsProduct(
        {{2}, {kForward}, {kWinogradForward}, {1, 4, 8, 32, 128}})  // normnet's Winograd at the same batches
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---- max pooling 2×2 after the second convolution: [128,24,24,64] → [128,12,12,64] ----
// pass 0: forward; 1: the adding backward (reference twin) from x; 2: forward recording the
// argmax (what a training step runs); 3: the write-once backward finding the argmax from x;
// 4: the write-once backward from the recorded argmax (what a training step runs); 5 and 6: passes
// 2 and 4 with x and dx in nChw16c (what a step with Winograd convolutions runs).
void BM_MaxPool2d(benchmark::State& state) {
  const int64_t pass = state.range(0);
  const Pool2dDims d{128, 24, 24, 64, 2, 2, 12, 12, 2, 2, 0, 0};
  const auto x = random_vector(d.n * d.h * d.w * d.c, 1), dy = random_vector(d.n * d.oh * d.ow * d.c, 2);
  std::vector<float> y(dy.size()), dx(x.size());
  std::vector<uint8_t> argmax(dy.size());
  max_pool2d_forward_argmax(x.data(), y.data(), argmax.data(), d);
  for (auto _ : state) {
    switch (pass) {
      case 0: max_pool2d_forward(x.data(), y.data(), d); break;
      case 1: max_pool2d_backward(x.data(), dy.data(), dx.data(), d); break;
      case 2: max_pool2d_forward_argmax(x.data(), y.data(), argmax.data(), d); break;
      case 3: max_pool2d_backward_write(x.data(), dy.data(), dx.data(), d); break;
      case 4: max_pool2d_backward_write_argmax(argmax.data(), dy.data(), dx.data(), d); break;
      case 5: max_pool2d_forward_argmax_blocked16(x.data(), y.data(), argmax.data(), d); break;
      default: max_pool2d_backward_write_argmax_blocked16(argmax.data(), dy.data(), dx.data(), d); break;
    }
    benchmark::ClobberMemory();
  }
  // Bytes the pass must move (4 per float, 1 per argmax): forward reads x and writes y (and the
  // argmax); the adding backward reads x, dy and dx and writes dx; the write-once ones read x (or
  // the argmax) and dy and write dx.
  const double nx = static_cast<double>(x.size()), ny = static_cast<double>(dy.size());
  const double bytes[] = {4 * (nx + ny),      4 * (3 * nx + ny),  4 * (nx + ny) + ny, 4 * (2 * nx + ny),
                          4 * (nx + ny) + ny, 4 * (nx + ny) + ny, 4 * (nx + ny) + ny};
  state.counters["GB/s"] = benchmark::Counter(bytes[pass] * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::to_string(get_num_threads()) + " thread(s)");
}
BENCHMARK(BM_MaxPool2d)->ArgName("pass")->DenseRange(0, 6)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- ReLU on the second convolution's output, [128·24·24, 64] ----
// pass 0: relu in place (forward); 1: dz = dy·[y > 0] and the bias sums into a fresh dz; 2: the
// same into dy's own buffer (what ops::conv2d_relu does with a gradient nobody else holds).
void BM_ReluConv2(benchmark::State& state) {
  const int64_t pass = state.range(0), rows = 128 * 24 * 24, channels = 64, n = rows * channels;
  const auto z = random_vector(n, 1), dy0 = random_vector(n, 2);
  std::vector<float> y(static_cast<std::size_t>(n)), dy(dy0), dz(static_cast<std::size_t>(n)), db(channels);
  relu_forward(z.data(), y.data(), n);
  for (auto _ : state) {
    switch (pass) {
      case 0: relu_forward(y.data(), y.data(), n); break;
      case 1: relu_bias_backward(y.data(), dy.data(), dz.data(), db.data(), rows, channels); break;
      default: relu_bias_backward(y.data(), dy.data(), dy.data(), db.data(), rows, channels); break;
    }
    benchmark::ClobberMemory();
  }
  // Bytes each pass must move: 4 per float read or written.
  const double f = 4.0 * static_cast<double>(n);
  const double bytes[] = {2 * f, 3 * f, 3 * f};
  state.counters["GB/s"] = benchmark::Counter(bytes[pass] * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::to_string(get_num_threads()) + " thread(s)");
}
BENCHMARK(BM_ReluConv2)->ArgName("pass")->DenseRange(0, 2)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- conv2 → ReLU → 2×2 max pooling at batch 128, forward and backward through the ops ----
// fused 0: max_pool2d(conv2d_relu(...)), the two ops; 1: conv2d_relu_max_pool2d, what a model
// runs for Conv2D(relu) → MaxPooling2D. One iteration = a recorded forward pass and backward.
void BM_Conv2ReluPool(benchmark::State& state) {
  const bool fused = state.range(0) != 0;
  Tensor x = Tensor::randn({128, 26, 26, 32}, 1).set_requires_grad(true);  // conv1's output in the CNN
  Tensor k = Tensor::randn({3, 3, 32, 64}, 2).set_requires_grad(true);
  Tensor b = Tensor::randn({64}, 3).set_requires_grad(true);
  const Tensor u = Tensor::randn({128, 12, 12, 64}, 4);
  auto step = [&] {
    const Tensor y = fused ? ops::conv2d_relu_max_pool2d(x, k, b, {1, 1}, ops::Padding::kValid, {2, 2})
                           : ops::max_pool2d(ops::conv2d_relu(x, k, b), {2, 2});
    y.backward(u);
    x.zero_grad();
    k.zero_grad();
    b.zero_grad();
  };
  step();
  for (auto _ : state) step();
  set_flops(state, 3 * 2.0 * 128 * 24 * 24 * 64 * 9 * 32);  // forward, backward data, backward weights
  state.SetLabel(std::to_string(get_num_threads()) + " thread(s)");
}
BENCHMARK(BM_Conv2ReluPool)->ArgName("fused")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- conv2's backward (dx and dkernel) behind a 2×2 max pool, batch 128 ----
// pass 0: the dense chain (the pooled gradient scattered into dz at the argmaxes, then
// conv2d_backward: oneDNN's backward data and weights); 1: conv2d_pooled_backward, only the
// non-zero terms, from the pooled gradient and the argmax.
// The CNN's conv2 backward at batch 128: the dense chain (pooled:0) or the pooled terms
// (pooled:1), with a share of the pooled gradient 0 (zero_percent; 60–88 % in the CNN's training,
// from ReLU after the pool and Dropout).
void BM_Conv2PooledBackward(benchmark::State& state) {
  const bool pooled = state.range(0) != 0;
  const int64_t zero_percent = state.range(1);
  const Conv2dDims d{128, 26, 26, 32, 3, 3, 64, 24, 24, 1, 1, 0, 0, 0, 0};
  const Pool2dDims pd{128, 24, 24, 64, 2, 2, 12, 12, 2, 2, 0, 0};
  if (pooled && !conv2d_pooled_backward_supported(d, pd)) {
    state.SkipWithError("conv2d_pooled_backward does not take this shape in this build");
    return;
  }
  const auto x = random_vector(d.n * d.h * d.w * d.c, 1), k = random_vector(d.kh * d.kw * d.c * d.o, 2);
  const auto z = random_vector(d.n * d.oh * d.ow * d.o, 3),
             dp0 = random_vector(pd.n * pd.oh * pd.ow * pd.c, 4);
  auto dp = dp0;
  for (std::size_t t = 0; t < dp.size(); ++t) {
    if (static_cast<int64_t>((t * 2654435761u) % 100) < zero_percent) dp[t] = 0.0f;  // spread, fixed
  }
  std::vector<float> pooled_z(dp.size()), dz(z.size()), dx(x.size()), dk(k.size());
  std::vector<uint8_t> argmax(dp.size());
  max_pool2d_forward_argmax(z.data(), pooled_z.data(), argmax.data(), pd);
  for (auto _ : state) {
    if (pooled) {
      conv2d_pooled_backward(x.data(), k.data(), argmax.data(), dp.data(), dx.data(), true, dk.data(), d, pd);
    } else {
      max_pool2d_backward_write_argmax(argmax.data(), dp.data(), dz.data(), pd);
      conv2d_backward(x.data(), dz.data(), k.data(), dx.data(), dk.data(), d);
    }
    benchmark::ClobberMemory();
  }
  set_flops(state, 2 * 2.0 * 128 * 24 * 24 * 64 * 9 * 32);  // the dense passes' FLOP, for comparison
  state.SetLabel(std::to_string(get_num_threads()) + " thread(s)");
}
BENCHMARK(BM_Conv2PooledBackward)
    ->ArgNames({"pooled", "zero_percent"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 80})
    ->Args({1, 80})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

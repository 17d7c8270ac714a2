// L2 normalization, forward and forward+backward, through ops::l2_normalize (the real path: the
// caching allocator, the tape, GradSink's zero-filled buffer) and through the raw fused kernel.
// Bytes/s count the minimum traffic: forward reads x and writes y (2·N·4 bytes); forward+backward
// also reads x and dy and writes dx (5·N·4 bytes). Compare with BM_MemoryCopy of the same run, and
// with BM_L2NormalizeTrafficFloor: the same streams with trivial arithmetic, the machine's limit
// for this traffic (on the benchmark machine the four tensors of the channels case, 103 MB, do not
// stay in cache while the copy's two do; docs/benchmarks.md).
//   NORMNET_NUM_THREADS=2 build/bench/bench_kernels --benchmark_filter='MemoryCopy|L2Normalize'
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/l2_normalize.h"
#include "normnet/autograd.h"
#include "normnet/ops/l2_normalize.h"
#include "normnet/threading.h"

namespace {

using normnet::DType;
using normnet::L2NormalizeOptions;
using normnet::Shape;
using normnet::Tensor;

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void set_counters(benchmark::State& state, const Shape& shape, int passes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * passes * numel(shape) * 4);
  state.SetLabel(std::to_string(normnet::get_num_threads()) + " thread(s)");
}

void BM_L2NormalizeForwardOp(benchmark::State& state, Shape shape, std::vector<int> axes) {
  const Tensor x = Tensor::randn(shape, 1);
  const auto opts = L2NormalizeOptions().axis(axes);
  for (auto _ : state) {
    Tensor y = normnet::ops::l2_normalize(x, opts);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_counters(state, shape, 2);
}

void BM_L2NormalizeForwardBackwardOp(benchmark::State& state, Shape shape, std::vector<int> axes) {
  Tensor x = Tensor::randn(shape, 1).set_requires_grad(true);
  const Tensor dy = Tensor::randn(shape, 2);
  const auto opts = L2NormalizeOptions().axis(axes);
  for (auto _ : state) {
    normnet::ops::l2_normalize(x, opts).backward(dy);
    benchmark::DoNotOptimize(x.grad().data<float>());
    x.zero_grad();
  }
  set_counters(state, shape, 5);
}

// The same with three inputs (x, dy) in turn, so that each iteration reads its inputs from memory
// (compare with BM_MemoryCopyFromMemory): BM_L2NormalizeForwardBackwardOp reads one x and one dy
// over and over, and a part of them stays in the last-level cache between iterations.
void BM_L2NormalizeForwardBackwardOpFromMemory(benchmark::State& state, Shape shape, std::vector<int> axes) {
  constexpr int kSets = 3;
  std::vector<Tensor> xs, dys;
  for (int k = 0; k < kSets; ++k) {
    xs.push_back(Tensor::randn(shape, 1 + 2 * k).set_requires_grad(true));
    dys.push_back(Tensor::randn(shape, 2 + 2 * k));
  }
  const auto opts = L2NormalizeOptions().axis(axes);
  int next = 0;
  for (auto _ : state) {
    Tensor& x = xs[next];
    normnet::ops::l2_normalize(x, opts).backward(dys[next]);
    benchmark::DoNotOptimize(x.grad().data<float>());
    x.zero_grad();
    next = (next + 1) % kSets;
  }
  set_counters(state, shape, 5);
}

// The fused kernel's (outer, reduced, inner) view of `axes` (a contiguous block of them).
struct View {
  int64_t outer = 1, reduced = 1, inner = 1;
};
View view_of(const Shape& shape, std::vector<int> axes) {
  View v;
  const int rank = static_cast<int>(shape.size());
  for (int& a : axes) a = a < 0 ? a + rank : a;
  for (int a = 0; a < rank; ++a) {
    if (a >= axes.front() && a <= axes.back())
      v.reduced *= shape[a];
    else
      (a < axes.front() ? v.outer : v.inner) *= shape[a];
  }
  return v;
}

void BM_L2NormalizeForwardKernel(benchmark::State& state, Shape shape, std::vector<int> axes) {
  const View v = view_of(shape, axes);
  const Tensor x = Tensor::randn(shape, 1);
  Tensor y = Tensor::zeros(shape);
  for (auto _ : state) {
    normnet::kernels::cpu::l2_normalize_forward(x.data<float>(), y.data<float>(), nullptr, v.outer, v.reduced,
                                                v.inner, normnet::EpsilonMode::kExact, 0.0);
    benchmark::ClobberMemory();
  }
  set_counters(state, shape, 2);
}

void BM_L2NormalizeForwardBackwardKernel(benchmark::State& state, Shape shape, std::vector<int> axes) {
  const View v = view_of(shape, axes);
  const Tensor x = Tensor::randn(shape, 1), dy = Tensor::randn(shape, 2);
  Tensor y = Tensor::zeros(shape), dx = Tensor::zeros(shape);
  Tensor denom = Tensor::zeros({v.outer * v.inner}, DType::kFloat64);
  for (auto _ : state) {
    normnet::kernels::cpu::l2_normalize_forward(x.data<float>(), y.data<float>(), denom.data<double>(),
                                                v.outer, v.reduced, v.inner, normnet::EpsilonMode::kExact,
                                                0.0);
    normnet::kernels::cpu::l2_normalize_backward(x.data<float>(), dy.data<float>(), denom.data<double>(),
                                                 dx.data<float>(), v.outer, v.reduced, v.inner,
                                                 normnet::EpsilonMode::kExact, /*overwrite=*/true);
    benchmark::ClobberMemory();
  }
  set_counters(state, shape, 5);
}

// The four tensors of the traffic floors: x and dy random, y and dx written.
struct FloorStreams {
  Tensor x, dy, y, dx;
  int64_t n;
  explicit FloorStreams(const Shape& shape)
      : x(Tensor::randn(shape, 1)),
        dy(Tensor::randn(shape, 2)),
        y(Tensor::zeros(shape)),
        dx(Tensor::zeros(shape)),
        n(numel(shape)) {}

  // forward: y = x/2; backward: dx = dy/2 − x/4, with ordinary stores.
  void run_plain(int threads) {
    const float* xp = x.data<float>();
    const float* gp = dy.data<float>();
    float* yp = y.data<float>();
    float* dxp = dx.data<float>();
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] * 0.5f;
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) dxp[i] = gp[i] * 0.5f - xp[i] * 0.25f;
  }

  // Whether run_streamed can stream: AVX2, 32-byte aligned outputs, n a multiple of 8.
  bool can_stream() const {
#if defined(__AVX2__) && defined(__FMA__)
    return n % 8 == 0 && reinterpret_cast<std::uintptr_t>(y.data<float>()) % 32 == 0 &&
           reinterpret_cast<std::uintptr_t>(dx.data<float>()) % 32 == 0;
#else
    return false;
#endif
  }

  // The same with non-temporal stores (requires can_stream()).
  void run_streamed(int threads) {
#if defined(__AVX2__) && defined(__FMA__)
    const float* xp = x.data<float>();
    const float* gp = dy.data<float>();
    float* yp = y.data<float>();
    float* dxp = dx.data<float>();
    const __m256 half = _mm256_set1_ps(0.5f), quarter = _mm256_set1_ps(0.25f);
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 8)
        _mm256_stream_ps(yp + i, _mm256_mul_ps(_mm256_loadu_ps(xp + i), half));
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 8) {
        _mm256_stream_ps(dxp + i, _mm256_fmsub_ps(_mm256_loadu_ps(gp + i), half,
                                                  _mm256_mul_ps(_mm256_loadu_ps(xp + i), quarter)));
      }
      _mm_sfence();
    }
#else
    (void)threads;
#endif
  }
};

// The machine's limit for the fused kernels' memory traffic: the same streams (forward: read x,
// write y; backward: read x and dy, write dx), split between the threads as the kernels split their
// rows, with one multiply-add per element instead of the normalization.
void BM_L2NormalizeTrafficFloor(benchmark::State& state, Shape shape, std::vector<int>) {
  FloorStreams f(shape);
  const int threads = normnet::get_num_threads();
  for (auto _ : state) {
    f.run_plain(threads);
    benchmark::ClobberMemory();
  }
  set_counters(state, shape, 5);
}

// The same streams with the writes non-temporal (AVX2 builds; ordinary stores elsewhere or when a
// buffer is not 32-byte aligned): the limit for the row kernels once they stream their outputs
// (step 26, from 32 MiB of input and output), which ordinary stores' reads for ownership put
// out of the plain floor's reach.
void BM_L2NormalizeTrafficFloorStreamed(benchmark::State& state, Shape shape, std::vector<int>) {
  FloorStreams f(shape);
  const int threads = normnet::get_num_threads();
  const bool streamed = f.can_stream();
  for (auto _ : state) {
    if (streamed)
      f.run_streamed(threads);
    else
      f.run_plain(threads);
    benchmark::ClobberMemory();
  }
  set_counters(state, shape, 5);
  state.SetLabel(std::to_string(threads) + " thread(s), " + (streamed ? "streamed" : "ordinary stores"));
}

struct Case {
  const char* name;
  Shape shape;
  std::vector<int> axes;
};

// The three target shapes (last axis; channels of NHWC), H and W of NHWC and the channels of NCHW
// (PyTorch's F.normalize(x, dim=1)): the inner-block path.
int register_benchmarks() {
  const Case cases[] = {{"rows_256x128", {256, 128}, {-1}},
                        {"rows_4096x512", {4096, 512}, {-1}},
                        {"nhwc_channels_32x56x56x64", {32, 56, 56, 64}, {-1}},
                        {"nhwc_hw_32x56x56x64", {32, 56, 56, 64}, {1, 2}},
                        {"nchw_channels_32x64x56x56", {32, 64, 56, 56}, {1}}};
  using Fn = void (*)(benchmark::State&, Shape, std::vector<int>);
  const std::pair<const char*, Fn> benchmarks[] = {
      {"BM_L2NormalizeForwardOp", BM_L2NormalizeForwardOp},
      {"BM_L2NormalizeForwardBackwardOp", BM_L2NormalizeForwardBackwardOp},
      {"BM_L2NormalizeForwardBackwardOpFromMemory", BM_L2NormalizeForwardBackwardOpFromMemory},
      {"BM_L2NormalizeForwardKernel", BM_L2NormalizeForwardKernel},
      {"BM_L2NormalizeForwardBackwardKernel", BM_L2NormalizeForwardBackwardKernel},
      {"BM_L2NormalizeTrafficFloor", BM_L2NormalizeTrafficFloor},
      {"BM_L2NormalizeTrafficFloorStreamed", BM_L2NormalizeTrafficFloorStreamed}};
  for (const auto& [name, fn] : benchmarks) {
    for (const Case& c : cases) {
      benchmark::RegisterBenchmark((std::string(name) + "/" + c.name).c_str(), fn, c.shape, c.axes)
          ->UseRealTime();
    }
  }
  return 0;
}
const int registered = register_benchmarks();

}  // namespace

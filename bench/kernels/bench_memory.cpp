// Memory-copy bandwidth (read + write bytes per second) at normnet's thread count, at the byte
// sizes of the L2-normalization benchmarks, so memory-bound kernels read as a fraction of it.
//   NORMNET_NUM_THREADS=2 build/bench/bench_kernels --benchmark_filter='MemoryCopy|L2Normalize'
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/allocator.h"
#include "normnet/threading.h"

namespace {

// A 64-byte aligned buffer from normnet's allocator, touched once so that no page faults are timed.
class Buffer {
 public:
  explicit Buffer(std::size_t bytes) : bytes_(bytes), data_(normnet::detail::allocate(bytes)) {
    std::memset(data_, 1, bytes_);
  }
  ~Buffer() { normnet::detail::deallocate(data_, bytes_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  [[nodiscard]] char* data() const { return static_cast<char*>(data_); }

 private:
  std::size_t bytes_;
  void* data_;
};

// Each thread copies one contiguous slice (as the kernels split their vectors).
void parallel_copy(char* dst, const char* src, std::size_t bytes, int threads) {
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    const std::size_t slice = (bytes / n + 63) / 64 * 64;
    const std::size_t begin = std::min(bytes, slice * t), end = std::min(bytes, begin + slice);
    std::memcpy(dst + begin, src + begin, end - begin);
  }
}

// Bytes of float32 [256, 128], [4096, 512], [32, 56, 56, 64]: the L2-normalization shapes.
void BM_MemoryCopy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const int threads =
      bytes < (std::size_t{1} << 18) ? 1 : normnet::get_num_threads();  // as the kernels decide
  Buffer src(bytes), dst(bytes);
  for (auto _ : state) {
    parallel_copy(dst.data(), src.data(), bytes, threads);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(bytes));
  state.SetLabel(std::to_string(threads) + " thread(s), read + write");
}
BENCHMARK(BM_MemoryCopy)->Arg(256 * 128 * 4)->Arg(4096 * 512 * 4)->Arg(32 * 56 * 56 * 64 * 4)->UseRealTime();

// The same copy from memory: each iteration copies the next of three source/destination pairs, so
// a source was last read two copies (4 × bytes of traffic) earlier. BM_MemoryCopy reads one source
// over and over, and at 25.7 MB with non-temporal stores much of it stays in a 32-MiB L3: on the
// Zen 5 VM it ran at 93–124 GB/s where this one ran at 70–74 (docs/benchmarks.md, L2 section).
void BM_MemoryCopyFromMemory(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const int threads = bytes < (std::size_t{1} << 18) ? 1 : normnet::get_num_threads();
  constexpr int kPairs = 3;
  Buffer src[kPairs] = {Buffer(bytes), Buffer(bytes), Buffer(bytes)};
  Buffer dst[kPairs] = {Buffer(bytes), Buffer(bytes), Buffer(bytes)};
  int next = 0;
  for (auto _ : state) {
    parallel_copy(dst[next].data(), src[next].data(), bytes, threads);
    benchmark::ClobberMemory();
    next = (next + 1) % kPairs;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(bytes));
  state.SetLabel(std::to_string(threads) + " thread(s), read + write, " + std::to_string(kPairs) +
                 " pairs in turn");
}
BENCHMARK(BM_MemoryCopyFromMemory)->Arg(32 * 56 * 56 * 64 * 4)->UseRealTime();

}  // namespace

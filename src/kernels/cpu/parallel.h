// Loops that enter an OpenMP parallel region only when they run on more than one thread.
//
// libgomp builds a team even for a region that will run on one thread: on the benchmark machine
// (docs/benchmarks.md) a region with num_threads(1) costs about 0.4 µs and one whose if clause is
// false about 1 µs, where a plain loop over 784 floats takes 0.06 µs. Small tensors (a batch-1
// forward, biases, losses) take the plain loop here instead.
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// body(i) for every i in [0, n): across `threads` OpenMP threads (static schedule, the runtime's
// default split) when threads > 1, else in a plain loop on the calling thread.
template <class Body>
inline void parallel_for(int64_t n, int threads, const Body& body) {
  if (threads <= 1 || n <= 1) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}

// The same for loops whose iterations vectorize: `omp simd` on both paths.
template <class Body>
inline void parallel_for_simd(int64_t n, int threads, const Body& body) {
  if (threads <= 1 || n <= 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for simd num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}

}  // namespace normnet::kernels::cpu

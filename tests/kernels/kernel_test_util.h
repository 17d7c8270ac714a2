// Helpers shared by the raw-kernel tests: reproducible random buffers and a thread-count switch.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {

// n normal values times `scale`, from the library's portable generator.
template <class T>
std::vector<T> random_values(std::size_t n, uint64_t seed, double scale = 3.0) {
  detail::Rng rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(scale * rng.normal());
  return v;
}

// Runs fn() with the kernels limited to `threads` threads.
template <class Fn>
void with_threads(int threads, const Fn& fn) {
  const int before = get_num_threads();
  set_num_threads(threads);
  fn();
  set_num_threads(before);
}

}  // namespace normnet::kernels::cpu

// Helpers shared by the raw-kernel tests: reproducible random buffers, a thread-count switch and the
// error of a fast float32 kernel against the K·u·Σ|terms| bound of its twin.
#pragma once

#include <algorithm>
#include <cmath>
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

// Element-wise |v|: the inputs of a twin run whose results are Σ|terms| (for error_over_bound).
inline std::vector<float> abs_of(std::vector<float> v) {
  for (float& e : v) e = std::abs(e);
  return v;
}

// max over elements of |fast − exact| / (K·u·Σ|terms|), u = 2⁻²⁴: the fast kernel's error as a
// fraction of the bound of a K-term float32 sum; `abs_exact` is the reference on |inputs|.
// Infinity where the error is NaN.
inline double error_over_bound(const std::vector<float>& fast, const std::vector<float>& exact,
                               const std::vector<float>& abs_exact, int64_t k) {
  const double gamma = static_cast<double>(k) * 0x1p-24;
  double worst = 0;
  for (std::size_t i = 0; i < fast.size(); ++i) {
    const double err = std::abs(double(fast[i]) - double(exact[i]));
    if (std::isnan(err)) return INFINITY;
    worst = std::max(worst, err / (gamma * double(abs_exact[i]) + 1e-30));
  }
  return worst;
}

}  // namespace normnet::kernels::cpu

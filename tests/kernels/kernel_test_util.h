// Helpers shared by the raw-kernel tests: reproducible random buffers, a thread-count switch, the
// error of a fast float32 kernel against the K·u·Σ|terms| bound of its twin, and a tiling pool.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/random.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool2d.h"
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

// A valid pool with stride = window over y [d.n, d.oh, d.ow, d.o].
Pool2dDims tiling_pool(const Conv2dDims& d, int64_t ph, int64_t pw) {
  Pool2dDims pd;
  pd.n = d.n, pd.h = d.oh, pd.w = d.ow, pd.c = d.o, pd.ph = ph, pd.pw = pw;
  pd.stride_h = ph, pd.stride_w = pw;
  pd.oh = d.oh / ph, pd.ow = d.ow / pw;
  return pd;
}

// What a convolution pooled in one pass must give, from the convolution's output z: y =
// max_pool2d_relu_forward(z), the argmax bytes of max_pool2d_forward_argmax, and how many of y are
// NaN and how many 0 (for tests to check that their data reaches both cases).
struct PooledReference {
  std::vector<float> y;
  std::vector<uint8_t> argmax;
  int64_t nans = 0, zeros = 0;
};
inline PooledReference pooled_reference(const std::vector<float>& z, const Pool2dDims& pd) {
  PooledReference r;
  r.y.resize(pd.n * pd.oh * pd.ow * pd.c);
  max_pool2d_relu_forward(z.data(), r.y.data(), pd);
  std::vector<float> pooled(r.y.size());
  r.argmax.assign(r.y.size(), 0xEE);
  max_pool2d_forward_argmax(z.data(), pooled.data(), r.argmax.data(), pd);
  for (float v : r.y) r.nans += std::isnan(v), r.zeros += v == 0.0f;
  return r;
}

}  // namespace normnet::kernels::cpu

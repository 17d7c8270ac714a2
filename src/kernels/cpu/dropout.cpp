// Inverted dropout: forward and backward side by side, each draw recomputed from (seed, index).
#include "kernels/cpu/dropout.h"

#include <cmath>

#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;  // ⌊2⁶⁴/φ⌋, splitmix64's increment
// Below this many elements a loop stays on one thread (a memory-bound pass repays a parallel
// region's few microseconds only past ~64k elements; see unary.cpp).
constexpr int64_t kGrain = int64_t{1} << 16;

// splitmix64's output function (Stafford's "Mix13" variant).
inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The stream key of a seed, mixed once so that seeds a multiple of γ apart are unrelated.
inline uint64_t stream_key(uint64_t seed) { return mix(seed ^ 0x5851F42D4C957F2Dull); }

// mask_i ∈ {0, scale}: dropped ⇔ u_i < threshold = ⌈rate·2⁵³⌉.
template <class T>
inline T mask_at(uint64_t key, uint64_t threshold, T scale, int64_t i) {
  const uint64_t u = mix(key + (static_cast<uint64_t>(i) + 1) * kGamma) >> 11;
  return u < threshold ? T(0) : scale;
}

// Runs body(i, mask_i) for i in [0, n): vectorized, across threads past the grain (static
// schedule; an element's value does not depend on which thread computes it). key, threshold and
// scale are plain scalars in the loop: GCC 12 left the loop scalar when its body read them from
// a captured struct ("more than one data ref in stmt"), 9 ns per element.
template <class T, class Body>
inline void for_each_draw(double rate, uint64_t seed, int64_t n, const Body& body) {
  const uint64_t key = stream_key(seed);
  const auto threshold = static_cast<uint64_t>(std::ceil(rate * 0x1.0p53));
  const auto scale = static_cast<T>(1.0 / (1.0 - rate));
  if (n < kGrain) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) body(i, mask_at(key, threshold, scale, i));
    return;
  }
#pragma omp parallel for simd num_threads(get_num_threads()) schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i, mask_at(key, threshold, scale, i));
}

}  // namespace

// y = x·mask  ⇒  dx = dy·mask. A dropped element gives x·0 (so NaN and ±inf stay NaN, as before).
template <class T>
void dropout_forward(const T* x, double rate, uint64_t seed, T* y, int64_t n) {
  for_each_draw<T>(rate, seed, n, [=](int64_t i, T mask) { y[i] = x[i] * mask; });
}
template <class T>
void dropout_backward(double rate, uint64_t seed, const T* dy, T* dx, int64_t n) {
  for_each_draw<T>(rate, seed, n, [=](int64_t i, T mask) { dx[i] += dy[i] * mask; });
}
template <class T>
void dropout_backward_write(double rate, uint64_t seed, const T* dy, T* dx, int64_t n) {
  for_each_draw<T>(rate, seed, n, [=](int64_t i, T mask) { dx[i] = dy[i] * mask; });
}
template <class T>
void dropout_mask(double rate, uint64_t seed, T* mask, int64_t n) {
  for_each_draw<T>(rate, seed, n, [=](int64_t i, T m) { mask[i] = m; });
}

// The draw written out once more, compared in double: u·2⁻⁵³ < rate.
template <class T>
void dropout_forward_reference(const T* x, double rate, uint64_t seed, T* y, int64_t n) {
  const uint64_t key = stream_key(seed);
  const T scale = static_cast<T>(1.0 / (1.0 - rate));
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(mix(key + (static_cast<uint64_t>(i) + 1) * kGamma) >> 11) * 0x1.0p-53;
    y[i] = u < rate ? x[i] * T(0) : x[i] * scale;
  }
}

template void dropout_forward<float>(const float*, double, uint64_t, float*, int64_t);
template void dropout_forward<double>(const double*, double, uint64_t, double*, int64_t);
template void dropout_backward<float>(double, uint64_t, const float*, float*, int64_t);
template void dropout_backward<double>(double, uint64_t, const double*, double*, int64_t);
template void dropout_backward_write<float>(double, uint64_t, const float*, float*, int64_t);
template void dropout_backward_write<double>(double, uint64_t, const double*, double*, int64_t);
template void dropout_mask<float>(double, uint64_t, float*, int64_t);
template void dropout_mask<double>(double, uint64_t, double*, int64_t);
template void dropout_forward_reference<float>(const float*, double, uint64_t, float*, int64_t);
template void dropout_forward_reference<double>(const double*, double, uint64_t, double*, int64_t);

}  // namespace normnet::kernels::cpu

// The Winograd filter transform and its per-thread cache (see conv2d_winograd_filters.h).
//
// G = [ 1/4     0     0]   (Lavin & Gray's F(4×4, 3×3), interpolation points 0, ±1, ±2, ∞)
//     [-1/6 -1/6  -1/6]
//     [-1/6  1/6  -1/6]
//     [1/24 1/12   1/6]
//     [1/24 -1/12  1/6]
//     [   0    0     1]
#include "kernels/cpu/conv2d_winograd_filters.h"

#include <cstring>
#include <vector>

namespace normnet::kernels::cpu::winograd {

#if defined(NORMNET_SIMD_WIDE)
namespace {

using simd::kLanes;
using simd::Vec;

// (u0..u5) = G (g0, g1, g2): u0 = g0/4, u1 = −(g0 + g1 + g2)/6, u2 = −(g0 − g1 + g2)/6,
// u3 = g0/24 + g1/12 + g2/6, u4 = g0/24 − g1/12 + g2/6, u5 = g2.
inline void filter_transform(Vec g0, Vec g1, Vec g2, Vec (&u)[kPatch]) {
  const Vec outer = simd::add(g0, g2), p = times_plus(1.0f / 24, g0, times(1.0f / 6, g2));
  u[0] = times(0.25f, g0);
  u[1] = times(-1.0f / 6, simd::add(outer, g1));
  u[2] = times(-1.0f / 6, simd::sub(outer, g1));
  u[3] = times_plus(1.0f / 12, g1, p);
  u[4] = times_plus(-1.0f / 12, g1, p);
  u[5] = g2;
}

// u[pos][c][o0 + lane] = (G g G^T)[pos] for g = kernel[·, ·, c, o0 + lane], `group` = c·O/lanes + o0/lanes.
void transform_filters(const float* kernel, float* u, const Conv2dDims& d, int64_t group) {
  const int64_t per_c = d.o / kLanes, c = group / per_c, o0 = group % per_c * kLanes;
  const auto tap = [&](int64_t i, int64_t j) {
    return simd::load(kernel + ((i * 3 + j) * d.c + c) * d.o + o0);
  };
  Vec columns[3][kPatch];  // G g, column j
  for (int64_t j = 0; j < 3; ++j) filter_transform(tap(0, j), tap(1, j), tap(2, j), columns[j]);
  for (int64_t a = 0; a < kPatch; ++a) {
    Vec row[kPatch];
    filter_transform(columns[0][a], columns[1][a], columns[2][a], row);
    for (int64_t b = 0; b < kPatch; ++b) {
      simd::store(u + (a * kPatch + b) * position_stride(d) + c * d.o + o0, row[b]);
    }
  }
}

// The transformed filters of the last few kernels that this thread convolved with, each beside a
// copy of the kernel it came from: reused while the kernel's bits are unchanged (inference: the
// transform costs about a quarter of a batch-1 call), recomputed where they differ (training
// updates the weights between calls). Compared by value, not by address, so never stale. At most
// kEntries kernels and kBudgetBytes in all (the least recently used go first); a kernel whose
// entry alone exceeds the budget (C·O above about 100,000) is transformed on every call into a
// buffer that is not kept as an entry.
class FilterCache {
 public:
  static constexpr std::size_t kBudgetBytes = std::size_t{16} << 20;

  // u for `kernel`, and whether it holds its transform already; else room for it (for the
  // caller to fill), remembered with a copy of `kernel` when it fits the budget.
  float* find(const float* kernel, const Conv2dDims& d, bool& hit) {
    const auto kernel_floats = static_cast<std::size_t>(9 * d.c * d.o);
    const auto u_floats = static_cast<std::size_t>(kPositions * position_stride(d));
    for (Entry& e : entries_) {
      if (e.c == d.c && e.o == d.o &&
          std::memcmp(e.kernel.data(), kernel, kernel_floats * sizeof(float)) == 0) {
        e.used = ++clock_;
        hit = true;
        return e.u.data();
      }
    }
    hit = false;
    const std::size_t bytes = (kernel_floats + u_floats) * sizeof(float);
    if (bytes > kBudgetBytes) {
      if (uncached_.size() < u_floats) uncached_.resize(u_floats);
      return uncached_.data();
    }
    Entry& slot = least_recently_used(/*held_only=*/false);
    release(slot);
    while (held_bytes() + bytes > kBudgetBytes) release(least_recently_used(/*held_only=*/true));
    slot.kernel.assign(kernel, kernel + kernel_floats);
    slot.u.resize(u_floats);
    slot.c = d.c;
    slot.o = d.o;
    slot.used = ++clock_;
    return slot.u.data();
  }

  [[nodiscard]] std::size_t held_bytes() const {
    std::size_t bytes = 0;
    for (const Entry& e : entries_) bytes += (e.kernel.capacity() + e.u.capacity()) * sizeof(float);
    return bytes;
  }

 private:
  static constexpr int kEntries = 4;
  struct Entry {
    int64_t c = 0, o = 0;
    std::vector<float> kernel, u;
    uint64_t used = 0;  // 0: empty
  };

  // The least recently used entry: empty ones first, or among the held ones only (there is one
  // while held_bytes() > 0).
  Entry& least_recently_used(bool held_only) {
    Entry* oldest = nullptr;
    for (Entry& e : entries_) {
      if (held_only && e.used == 0) continue;
      if (!oldest || e.used < oldest->used) oldest = &e;
    }
    return *oldest;
  }
  static void release(Entry& e) { e = Entry(); }

  Entry entries_[kEntries];
  std::vector<float> uncached_;
  uint64_t clock_ = 0;
};

FilterCache& filter_cache() {
  thread_local FilterCache cache;
  return cache;
}

}  // namespace

const float* transformed_filters(const float* kernel, const Conv2dDims& d, int threads) {
  bool hit = false;
  float* u = filter_cache().find(kernel, d, hit);
  if (hit) return u;
  const int64_t groups = d.c * d.o / kLanes;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t g = 0; g < groups; ++g) transform_filters(kernel, u, d, g);
  return u;
}

std::size_t cached_filter_bytes() { return filter_cache().held_bytes(); }

#else  // no AVX-512 or AVX2: the Winograd forward does not exist

const float* transformed_filters(const float*, const Conv2dDims&, int) { return nullptr; }
std::size_t cached_filter_bytes() { return 0; }

#endif

}  // namespace normnet::kernels::cpu::winograd

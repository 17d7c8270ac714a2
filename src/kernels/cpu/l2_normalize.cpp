// The fused L2-normalization kernels: contiguous rows (inner == 1, eight at a time; one long
// vector reduced by all threads in fixed chunks), dispatch to the inner-block layout
// (l2_normalize_blocks.cpp), and gathered vectors (the strided form).
#include "kernels/cpu/l2_normalize.h"

#include <omp.h>

#include "kernels/cpu/l2_normalize_blocks.h"
#include "kernels/cpu/l2_normalize_rows.h"
#include "kernels/cpu/l2_normalize_vector.h"
#include "kernels/cpu/parallel.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace l2_detail {
namespace {

// Vectors at least 2·kChunk long are reduced in fixed chunks by all threads (whole tensor,
// all_axes of a small batch); the chunking does not depend on the thread count, so results do not.
constexpr int64_t kChunk = int64_t{1} << 14;
constexpr int64_t kMaxChunks = 256;
// Contiguous rows normalized together, phase by phase (see forward_row_group).
constexpr int64_t kRowGroup = l2_rows::kGroup;

// ---- one long vector, reduced by all threads in fixed chunks ----

struct Chunks {
  int64_t count, len;
  explicit Chunks(int64_t n)
      : count(std::min(kMaxChunks, (n + kChunk - 1) / kChunk)), len((n + count - 1) / count) {}
  int64_t begin(int64_t c) const { return c * len; }
  int64_t size(int64_t c, int64_t n) const { return std::min(n, (c + 1) * len) - c * len; }
};

template <class T, class Acc>
void forward_long_vector(const T* v, T* out, double* denom, int64_t n, const Rule& rule) {
  const Chunks chunks(n);
  Acc partial[kMaxChunks];
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
  for (int64_t c = 0; c < chunks.count; ++c) {
    partial[c] = sum_squares<T, Acc>(v + chunks.begin(c), chunks.size(c, n), Contiguous{});
  }
  Acc s = 0;
  for (int64_t c = 0; c < chunks.count; ++c) s += partial[c];
  double d;
  const Scale sc = finalize<T, Acc>(s, v, n, Contiguous{}, rule, d);
  if (denom) *denom = d;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
  for (int64_t c = 0; c < chunks.count; ++c) {
    scale_vector(v + chunks.begin(c), out + chunks.begin(c), chunks.size(c, n), Contiguous{}, sc);
  }
}

template <class T>
void backward_long_vector(const T* v, const T* g, double d, T* dv, int64_t n, EpsilonMode mode,
                          bool overwrite) {
  const Chunks chunks(n);
  const Scale sc = scale_from_denominator(d, v, n, Contiguous{}, mode);
  double partial[kMaxChunks] = {};
  if (!sc.clamped) {
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t c = 0; c < chunks.count; ++c) {
      partial[c] = dot_dy_y(v + chunks.begin(c), g + chunks.begin(c), chunks.size(c, n), Contiguous{}, sc);
    }
  }
  double t = 0.0;
  for (int64_t c = 0; c < chunks.count; ++c) t += partial[c];
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
  for (int64_t c = 0; c < chunks.count; ++c) {
    const int64_t b = chunks.begin(c);
    if (overwrite) std::fill_n(dv + b, chunks.size(c, n), T(0));
    add_vector_grad(v + b, g + b, dv + b, chunks.size(c, n), Contiguous{}, sc, t);
  }
}

// ---- inner == 1: contiguous rows, kRowGroup at a time ----
// Each phase runs over a group of independent rows before the next begins, so the rows' reduction
// tails, square roots and divisions overlap instead of forming one long dependency chain per row.

// Σv² of kRows consecutive rows: one register of partial sums per row, so that the rows' add
// chains run side by side. Each row's sum has the same order whatever kRows is (a tail group runs
// its rows one at a time), so a row's result does not depend on its position in the batch.
template <class T, class Acc, int64_t kRows>
void group_sum_squares(const T* x, int64_t n, Acc* s) {
  constexpr int64_t L = 64 / static_cast<int64_t>(sizeof(Acc));
  Acc acc[kRows][L] = {};
  int64_t r = 0;
  for (; r + L <= n; r += L) {
    for (int64_t g = 0; g < kRows; ++g) {
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) {
        const auto w = static_cast<Acc>(x[g * n + r + l]);
        acc[g][l] += w * w;
      }
    }
  }
  for (int64_t g = 0; g < kRows; ++g) {
    for (int64_t l = 0; l < n - r; ++l) {
      const auto w = static_cast<Acc>(x[g * n + r + l]);
      acc[g][l] += w * w;
    }
    s[g] = combine_lanes<L / 2>(acc[g]);
  }
}

// Whether the float32 exact-mode row kernels write `out` (rows × n) with non-temporal stores:
// input and output together at least l2_rows::kStreamBytes, and rows that can be streamed.
template <class T, class Acc>
bool streams(const T* out, int64_t rows, int64_t n) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<Acc, double>) {
    return 2 * rows * n * int64_t{sizeof(float)} >= l2_rows::kStreamBytes && l2_rows::stream_aligned(out, n);
  }
  return false;
}

// body(begin, end) over the groups of rows [0, groups): one contiguous range per thread (one call
// on this thread when `threads` is 1); when `stream`, each thread then fences its non-temporal
// stores, so they are in memory before the region ends and anyone reads them.
template <class Body>
void for_group_ranges(int64_t groups, int threads, bool stream, const Body& body) {
  if (threads <= 1 || groups <= 1) {
    body(int64_t{0}, groups);
    if (stream) l2_rows::stream_fence();
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    body(groups * t / nt, groups * (t + 1) / nt);
    if (stream) l2_rows::stream_fence();
  }
}

// One row through the general path (the rows that l2_rows leaves: zero, Inf, NaN, extreme norms).
template <class T, class Acc>
void forward_row(const T* v, T* out, double* denom, int64_t n, const Rule& rule) {
  double d;
  const Scale sc = finalize<T, Acc>(sum_squares<T, Acc>(v, n, Contiguous{}), v, n, Contiguous{}, rule, d);
  if (denom) *denom = d;
  scale_vector(v, out, n, Contiguous{}, sc);
}

// An l2_rows::Rest that runs f(row) (f outlives the kernel call).
template <class F>
l2_rows::Rest rest_of(F& f) {
  return {[](void* ctx, int64_t row) { (*static_cast<F*>(ctx))(row); }, &f};
}

// `rows` rows of n, kRowGroup at a time: float32 in the exact mode (the only one that sums float32
// in double) through the row kernels, one lane per row; the rest group by group.
template <class T, class Acc>
void forward_row_range(const T* x, T* y, double* denom, int64_t rows, int64_t n, const Rule& rule,
                       bool stream) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<Acc, double> && l2_rows::kAvailable) {
    auto general = [&](int64_t row) {
      forward_row<T, Acc>(x + row * n, y + row * n, denom ? denom + row : nullptr, n, rule);
    };
    return l2_rows::exact_forward(x, y, denom, rows, n, stream, rest_of(general));
  }
  for (int64_t o = 0; o < rows; o += kRowGroup) {
    const int64_t count = std::min(kRowGroup, rows - o);
    const T* xg = x + o * n;
    Acc s[kRowGroup];
    if (count == kRowGroup) {
      group_sum_squares<T, Acc, kRowGroup>(xg, n, s);
    } else {
      for (int64_t g = 0; g < count; ++g) group_sum_squares<T, Acc, 1>(xg + g * n, n, s + g);
    }
    Scale sc[kRowGroup];
    for (int64_t g = 0; g < count; ++g) {
      double d;
      sc[g] = finalize<T, Acc>(s[g], xg + g * n, n, Contiguous{}, rule, d);
      if (denom) denom[o + g] = d;
    }
    for (int64_t g = 0; g < count; ++g) scale_vector(xg + g * n, y + (o + g) * n, n, Contiguous{}, sc[g]);
  }
}

template <class T, class Acc>
void forward_rows(const T* x, T* y, double* denom, int64_t rows, int64_t n, const Rule& rule) {
  if (n >= 2 * kChunk) {
    for (int64_t o = 0; o < rows; ++o)
      forward_long_vector<T, Acc>(x + o * n, y + o * n, denom ? denom + o : nullptr, n, rule);
    return;
  }
  const int threads = rows * n >= kParallelMin ? get_num_threads() : 1;
  const int64_t groups = (rows + kRowGroup - 1) / kRowGroup;
  const bool stream = streams<T, Acc>(y, rows, n);
  for_group_ranges(groups, threads, stream, [&](int64_t begin, int64_t end) {
    const int64_t o = begin * kRowGroup;
    forward_row_range<T, Acc>(x + o * n, y + o * n, denom ? denom + o : nullptr,
                              std::min(rows, end * kRowGroup) - o, n, rule, stream);
  });
}

// `overwrite`: dx holds garbage, and every row is written (the general loops add, so the rows
// they take are zeroed first, while they are in cache).
template <class T>
void backward_row_range(const T* x, const T* dy, const double* denom, T* dx, int64_t rows, int64_t n,
                        EpsilonMode mode, bool overwrite, bool stream) {
  auto general = [&](int64_t row) {
    if (overwrite) std::fill_n(dx + row * n, n, T(0));
    const Scale sc = scale_from_denominator(denom[row], x + row * n, n, Contiguous{}, mode);
    backward_vector(x + row * n, dy + row * n, dx + row * n, n, Contiguous{}, sc);
  };
  if constexpr (std::is_same_v<T, float> && l2_rows::kAvailable) {
    return l2_rows::backward(x, dy, denom, dx, rows, n, mode, overwrite, stream, rest_of(general));
  }
  for (int64_t o = 0; o < rows; o += kRowGroup) {
    const int64_t count = std::min(kRowGroup, rows - o);
    if (overwrite) std::fill_n(dx + o * n, count * n, T(0));
    Scale sc[kRowGroup];
    double t[kRowGroup];
    for (int64_t g = 0; g < count; ++g)
      sc[g] = scale_from_denominator(denom[o + g], x + (o + g) * n, n, Contiguous{}, mode);
    for (int64_t g = 0; g < count; ++g) {
      t[g] = sc[g].clamped ? 0.0 : dot_dy_y(x + (o + g) * n, dy + (o + g) * n, n, Contiguous{}, sc[g]);
    }
    for (int64_t g = 0; g < count; ++g)
      add_vector_grad(x + (o + g) * n, dy + (o + g) * n, dx + (o + g) * n, n, Contiguous{}, sc[g], t[g]);
  }
}

template <class T>
void backward_rows(const T* x, const T* dy, const double* denom, T* dx, int64_t rows, int64_t n,
                   EpsilonMode mode, bool overwrite) {
  if (n >= 2 * kChunk) {
    for (int64_t o = 0; o < rows; ++o)
      backward_long_vector(x + o * n, dy + o * n, denom[o], dx + o * n, n, mode, overwrite);
    return;
  }
  const int threads = rows * n >= kParallelMin ? get_num_threads() : 1;
  const int64_t groups = (rows + kRowGroup - 1) / kRowGroup;
  const bool stream = overwrite && streams<T, double>(dx, rows, n);
  for_group_ranges(groups, threads, stream, [&](int64_t begin, int64_t end) {
    const int64_t o = begin * kRowGroup;
    backward_row_range(x + o * n, dy + o * n, denom + o, dx + o * n, std::min(rows, end * kRowGroup) - o, n,
                       mode, overwrite, stream);
  });
}

template <class T, class Acc>
void forward_fused(const T* x, T* y, double* denom, int64_t outer, int64_t n, int64_t inner,
                   const Rule& rule) {
  if (inner == 1) return forward_rows<T, Acc>(x, y, denom, outer, n, rule);
  forward_blocks(x, y, denom, outer, n, inner, rule.mode, rule.epsilon);
}

}  // namespace
}  // namespace l2_detail

template <class T>
void l2_normalize_forward(const T* x, T* y, double* denom, int64_t outer, int64_t reduced, int64_t inner,
                          EpsilonMode mode, double epsilon) {
  const l2_detail::Rule rule{mode, epsilon};
  // The exact mode sums float32 squares in double (their range fits); the compatibility modes sum
  // in T, reproducing the frameworks' overflow and underflow.
  if (mode == EpsilonMode::kExact)
    l2_detail::forward_fused<T, double>(x, y, denom, outer, reduced, inner, rule);
  else
    l2_detail::forward_fused<T, T>(x, y, denom, outer, reduced, inner, rule);
}

template <class T>
void l2_normalize_backward(const T* x, const T* dy, const double* denom, T* dx, int64_t outer,
                           int64_t reduced, int64_t inner, EpsilonMode mode, bool overwrite) {
  if (inner == 1) return l2_detail::backward_rows(x, dy, denom, dx, outer, reduced, mode, overwrite);
  l2_detail::backward_blocks(x, dy, denom, dx, outer, reduced, inner, mode, overwrite);
}

template <class T>
void l2_normalize_forward_strided(const T* x, T* y, double* denom, const int64_t* bases, int64_t count,
                                  const int64_t* offsets, int64_t reduced, EpsilonMode mode, double epsilon) {
  const l2_detail::Rule rule{mode, epsilon};
  const l2_detail::Gathered at{offsets};
  const int threads = count * reduced >= l2_detail::kParallelMin ? get_num_threads() : 1;
  parallel_for(count, threads, [&](int64_t k) {
    const T* v = x + bases[k];
    double d;
    const l2_detail::Scale sc =
        mode == EpsilonMode::kExact
            ? l2_detail::finalize<T, double>(l2_detail::sum_squares<T, double>(v, reduced, at), v, reduced,
                                             at, rule, d)
            : l2_detail::finalize<T, T>(l2_detail::sum_squares<T, T>(v, reduced, at), v, reduced, at, rule,
                                        d);
    if (denom) denom[k] = d;
    l2_detail::scale_vector(v, y + bases[k], reduced, at, sc);
  });
}

template <class T>
void l2_normalize_backward_strided(const T* x, const T* dy, const double* denom, T* dx, const int64_t* bases,
                                   int64_t count, const int64_t* offsets, int64_t reduced, EpsilonMode mode,
                                   bool overwrite) {
  const l2_detail::Gathered at{offsets};
  const int threads = count * reduced >= l2_detail::kParallelMin ? get_num_threads() : 1;
  parallel_for(count, threads, [&](int64_t k) {
    const T* v = x + bases[k];
    const l2_detail::Scale sc = l2_detail::scale_from_denominator(denom[k], v, reduced, at, mode);
    if (overwrite) {
      for (int64_t r = 0; r < reduced; ++r) dx[bases[k] + offsets[r]] = T(0);
    }
    l2_detail::backward_vector(v, dy + bases[k], dx + bases[k], reduced, at, sc);
  });
}

template void l2_normalize_forward<float>(const float*, float*, double*, int64_t, int64_t, int64_t,
                                          EpsilonMode, double);
template void l2_normalize_backward<float>(const float*, const float*, const double*, float*, int64_t,
                                           int64_t, int64_t, EpsilonMode, bool);
template void l2_normalize_forward_strided<float>(const float*, float*, double*, const int64_t*, int64_t,
                                                  const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_backward_strided<float>(const float*, const float*, const double*, float*,
                                                   const int64_t*, int64_t, const int64_t*, int64_t,
                                                   EpsilonMode, bool);
template void l2_normalize_forward<double>(const double*, double*, double*, int64_t, int64_t, int64_t,
                                           EpsilonMode, double);
template void l2_normalize_backward<double>(const double*, const double*, const double*, double*, int64_t,
                                            int64_t, int64_t, EpsilonMode, bool);
template void l2_normalize_forward_strided<double>(const double*, double*, double*, const int64_t*, int64_t,
                                                   const int64_t*, int64_t, EpsilonMode, double);
template void l2_normalize_backward_strided<double>(const double*, const double*, const double*, double*,
                                                    const int64_t*, int64_t, const int64_t*, int64_t,
                                                    EpsilonMode, bool);

}  // namespace normnet::kernels::cpu

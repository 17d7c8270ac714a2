// Softmax family kernels. The last axis (inner = 1) runs row by row over contiguous memory; any
// other axis runs over tiles of kTile adjacent columns, so the loops over j stay contiguous and
// vectorize while k strides by `inner`. Per-column accumulators live on the stack.
#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/unary.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

constexpr int64_t kTile = 64;              // columns of one tile (inner > 1)
constexpr int64_t kGrain = int64_t{1} << 14;  // elements below which one thread does it all

// Calls work(o, j0, w) for each task: one row (inner = 1) or one tile of w ≤ kTile columns
// starting at column j0 of slab o. Tasks touch disjoint outputs, so any split is race-free and
// every output is computed in the same order whatever the thread count.
template <class Work>
void for_each_task(int64_t outer, int64_t K, int64_t inner, const Work& work) {
  const int64_t tiles = (inner + kTile - 1) / kTile;
  const int64_t tasks = outer * tiles;
  const bool parallel = tasks > 1 && outer * K * inner >= kGrain;
  parallel_for(tasks, parallel ? get_num_threads() : 1, [&](int64_t t) {
    const int64_t o = t / tiles;
    const int64_t j0 = (t % tiles) * kTile;
    work(o, j0, std::min(kTile, inner - j0));
  });
}

template <class T>
T row_max(const T* x, int64_t K) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < K; ++k) m = x[k] > m ? x[k] : m;
  return m;
}

// Column maxima of a tile: m[j] = maxₖ x[k·inner + j].
template <class T>
void tile_max(const T* x, int64_t K, int64_t inner, int64_t w, T* m) {
  std::fill(m, m + w, -std::numeric_limits<T>::infinity());
  for (int64_t k = 0; k < K; ++k) {
    const T* xk = x + k * inner;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) m[j] = xk[j] > m[j] ? xk[j] : m[j];
  }
}

}  // namespace

// y = eˣ⁻ᵐ/s, s = Σₖ eˣ⁻ᵐ  ⇒  dx = y ⊙ (dy − ⟨dy, y⟩)
template <class T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t K, int64_t inner) {
  for_each_task(outer, K, inner, [&](int64_t o, int64_t j0, int64_t w) {
    const T* xs = x + o * K * inner + j0;
    T* ys = y + o * K * inner + j0;
    if (inner == 1) {
      const T m = row_max(xs, K);
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < K; ++k) {
        ys[k] = simd_exp(xs[k] - m);
        s += ys[k];
      }
#pragma omp simd
      for (int64_t k = 0; k < K; ++k) ys[k] = static_cast<T>(ys[k] / s);
      return;
    }
    T m[kTile];
    double s[kTile] = {};
    tile_max(xs, K, inner, w, m);
    for (int64_t k = 0; k < K; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        ys[k * inner + j] = simd_exp(xs[k * inner + j] - m[j]);
        s[j] += ys[k * inner + j];
      }
    }
    for (int64_t k = 0; k < K; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) ys[k * inner + j] = static_cast<T>(ys[k * inner + j] / s[j]);
    }
  });
}

template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t K, int64_t inner) {
  for_each_task(outer, K, inner, [&](int64_t o, int64_t j0, int64_t w) {
    const int64_t base = o * K * inner + j0;
    const T* ys = y + base;
    const T* dys = dy + base;
    T* dxs = dx + base;
    if (inner == 1) {
      double dot = 0.0;
#pragma omp simd reduction(+ : dot)
      for (int64_t k = 0; k < K; ++k) dot += static_cast<double>(dys[k]) * ys[k];
      const T d = static_cast<T>(dot);
#pragma omp simd
      for (int64_t k = 0; k < K; ++k) dxs[k] += ys[k] * (dys[k] - d);
      return;
    }
    double dot[kTile] = {};
    for (int64_t k = 0; k < K; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) dot[j] += static_cast<double>(dys[k * inner + j]) * ys[k * inner + j];
    }
    for (int64_t k = 0; k < K; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        dxs[k * inner + j] += ys[k * inner + j] * (dys[k * inner + j] - static_cast<T>(dot[j]));
      }
    }
  });
}

// y = x − m − ln s, s = Σₖ eˣ⁻ᵐ  ⇒  dx = dy − softmax(x)·Σₖ dy = dy − eʸ·Σₖ dy.
// x − m is formed in double, so for float32 the only rounding is the final one.
template <class T>
void log_softmax_forward(const T* x, T* y, int64_t outer, int64_t K, int64_t inner) {
  for_each_task(outer, K, inner, [&](int64_t o, int64_t j0, int64_t w) {
    const T* xs = x + o * K * inner + j0;
    T* ys = y + o * K * inner + j0;
    if (inner == 1) {
      const T m = row_max(xs, K);
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < K; ++k) s += simd_exp(xs[k] - m);
      const double log_s = std::log(s);
#pragma omp simd
      for (int64_t k = 0; k < K; ++k) ys[k] = static_cast<T>((static_cast<double>(xs[k]) - m) - log_s);
      return;
    }
    T m[kTile];
    double s[kTile] = {};
    tile_max(xs, K, inner, w, m);
    for (int64_t k = 0; k < K; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) s[j] += simd_exp(xs[k * inner + j] - m[j]);
    }
    for (int64_t j = 0; j < w; ++j) s[j] = std::log(s[j]);
    for (int64_t k = 0; k < K; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        ys[k * inner + j] = static_cast<T>((static_cast<double>(xs[k * inner + j]) - m[j]) - s[j]);
      }
    }
  });
}

template <class T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t K, int64_t inner) {
  for_each_task(outer, K, inner, [&](int64_t o, int64_t j0, int64_t w) {
    const int64_t base = o * K * inner + j0;
    const T* ys = y + base;
    const T* dys = dy + base;
    T* dxs = dx + base;
    if (inner == 1) {
      double total = 0.0;
#pragma omp simd reduction(+ : total)
      for (int64_t k = 0; k < K; ++k) total += dys[k];
      const T t = static_cast<T>(total);
#pragma omp simd
      for (int64_t k = 0; k < K; ++k) dxs[k] += dys[k] - simd_exp(ys[k]) * t;
      return;
    }
    double total[kTile] = {};
    for (int64_t k = 0; k < K; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) total[j] += dys[k * inner + j];
    }
    for (int64_t k = 0; k < K; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        dxs[k * inner + j] += dys[k * inner + j] - simd_exp(ys[k * inner + j]) * static_cast<T>(total[j]);
      }
    }
  });
}

template <class T>
void softmax_reference(const T* x, T* y, int64_t outer, int64_t K, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      auto at = [&](int64_t k) { return (o * K + k) * inner + j; };
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < K; ++k) m = std::max(m, static_cast<double>(x[at(k)]));
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += std::exp(x[at(k)] - m);
      for (int64_t k = 0; k < K; ++k) y[at(k)] = static_cast<T>(std::exp(x[at(k)] - m) / s);
    }
  }
}

template <class T>
void log_softmax_reference(const T* x, T* y, int64_t outer, int64_t K, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      auto at = [&](int64_t k) { return (o * K + k) * inner + j; };
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < K; ++k) m = std::max(m, static_cast<double>(x[at(k)]));
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += std::exp(x[at(k)] - m);
      for (int64_t k = 0; k < K; ++k) y[at(k)] = static_cast<T>(x[at(k)] - m - std::log(s));
    }
  }
}

// loss = Σₙ (lseₙ − xₙ,ₗₙ)  ⇒  dxₙ,c = softmax(xₙ)_c − [c = lₙ] = e^{xₙ,c − lseₙ} − [c = lₙ]
template <class T>
double sparse_softmax_cross_entropy_forward(const T* logits, const int64_t* labels, int64_t N, int64_t C,
                                            double* lse, double* row_loss) {
  parallel_for(N, N > 1 && N * C >= kGrain ? get_num_threads() : 1, [=](int64_t n) {
    const T* row = logits + n * C;
    const T m = row_max(row, C);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += simd_exp(row[c] - m);
    lse[n] = static_cast<double>(m) + std::log(s);
    row_loss[n] = lse[n] - static_cast<double>(row[labels[n]]);
  });
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) total += row_loss[n];
  return total;
}

template <class T>
void sparse_softmax_cross_entropy_backward(const T* logits, const int64_t* labels, const double* lse, double scale,
                                           int64_t N, int64_t C, T* dlogits) {
  parallel_for(N, N > 1 && N * C >= kGrain ? get_num_threads() : 1, [=](int64_t n) {
    const T* row = logits + n * C;
    T* drow = dlogits + n * C;
    const double shift = lse[n];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) drow[c] += static_cast<T>(scale * std::exp(static_cast<double>(row[c]) - shift));
    drow[labels[n]] -= static_cast<T>(scale);
  });
}

// Explicit instantiations for float and double.
template void softmax_forward<float>(const float*, float*, int64_t, int64_t, int64_t);
template void softmax_forward<double>(const double*, double*, int64_t, int64_t, int64_t);
template void softmax_backward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t);
template void softmax_backward<double>(const double*, const double*, double*, int64_t, int64_t, int64_t);
template void log_softmax_forward<float>(const float*, float*, int64_t, int64_t, int64_t);
template void log_softmax_forward<double>(const double*, double*, int64_t, int64_t, int64_t);
template void log_softmax_backward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t);
template void log_softmax_backward<double>(const double*, const double*, double*, int64_t, int64_t, int64_t);
template void softmax_reference<float>(const float*, float*, int64_t, int64_t, int64_t);
template void softmax_reference<double>(const double*, double*, int64_t, int64_t, int64_t);
template void log_softmax_reference<float>(const float*, float*, int64_t, int64_t, int64_t);
template void log_softmax_reference<double>(const double*, double*, int64_t, int64_t, int64_t);
template double sparse_softmax_cross_entropy_forward<float>(const float*, const int64_t*, int64_t, int64_t, double*,
                                                            double*);
template double sparse_softmax_cross_entropy_forward<double>(const double*, const int64_t*, int64_t, int64_t, double*,
                                                             double*);
template void sparse_softmax_cross_entropy_backward<float>(const float*, const int64_t*, const double*, double, int64_t,
                                                           int64_t, float*);
template void sparse_softmax_cross_entropy_backward<double>(const double*, const int64_t*, const double*, double,
                                                            int64_t, int64_t, double*);

}  // namespace normnet::kernels::cpu

// Sum and max over [outer, R, inner] views, vectorized along the contiguous axis and spread
// over OpenMP threads along outer (or along R for one long vector).
#include "kernels/cpu/reduce.h"

#include <type_traits>

#include "kernels/cpu/parallel.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {
constexpr int64_t kParallelThreshold = 1 << 15;

int threads_for(int64_t work) { return work >= kParallelThreshold ? normnet::get_num_threads() : 1; }

// float accumulates in double; double and int64 in themselves.
template <class T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
}  // namespace

template <class T>
void sum_forward(const T* x, T* out, int64_t outer, int64_t reduce, int64_t inner) {
  const int threads = threads_for(outer * reduce * inner);
  if (inner == 1) {
    if (outer == 1) {
      Acc<T> acc = 0;
      if (threads == 1) {  // no OpenMP region for one thread (kernels/cpu/parallel.h)
#pragma omp simd reduction(+ : acc)
        for (int64_t r = 0; r < reduce; ++r) acc += static_cast<Acc<T>>(x[r]);
      } else {
#pragma omp parallel for simd reduction(+ : acc) num_threads(threads)
        for (int64_t r = 0; r < reduce; ++r) acc += static_cast<Acc<T>>(x[r]);
      }
      out[0] = static_cast<T>(acc);
      return;
    }
    parallel_for(outer, threads, [=](int64_t o) {
      const T* row = x + o * reduce;
      Acc<T> acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t r = 0; r < reduce; ++r) acc += static_cast<Acc<T>>(row[r]);
      out[o] = static_cast<T>(acc);
    });
    return;
  }
  if (outer >= threads) {
    parallel_for(outer, threads, [=](int64_t o) {
      T* dst = out + o * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] = T(0);
      for (int64_t r = 0; r < reduce; ++r) {
        const T* src = x + (o * reduce + r) * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
      }
    });
    return;
  }
  // Few outer blocks: split the inner axis across threads instead.
  for (int64_t o = 0; o < outer; ++o) {
    T* dst = out + o * inner;
    parallel_for(inner, threads, [=](int64_t i) {
      T acc = T(0);
      for (int64_t r = 0; r < reduce; ++r) acc += x[(o * reduce + r) * inner + i];
      dst[i] = acc;
    });
  }
}

template <class T>
void max_forward(const T* x, T* out, int64_t* argmax, int64_t outer, int64_t reduce, int64_t inner) {
  const int threads = threads_for(outer * reduce * inner);
  parallel_for(outer, threads, [=](int64_t o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* src = x + o * reduce * inner + i;
      T best = src[0];
      int64_t at = 0;
      for (int64_t r = 1; r < reduce && best == best; ++r) {
        const T v = src[r * inner];
        if (v > best || v != v) {
          best = v;
          at = r;
        }
      }
      out[o * inner + i] = best;
      argmax[o * inner + i] = at;
    }
  });
}

template <class T>
void max_backward(const T* dy, const int64_t* argmax, T* dx, int64_t outer, int64_t reduce, int64_t inner) {
  const int threads = threads_for(outer * inner);
  parallel_for(outer, threads, [=](int64_t o) {
    for (int64_t i = 0; i < inner; ++i) {
      dx[(o * reduce + argmax[o * inner + i]) * inner + i] += dy[o * inner + i];
    }
  });
}

template <class T>
void sum_reference(const T* x, T* out, int64_t outer, int64_t reduce, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      Acc<T> acc = 0;
      for (int64_t r = 0; r < reduce; ++r) acc += x[(o * reduce + r) * inner + i];
      out[o * inner + i] = static_cast<T>(acc);
    }
  }
}

template void sum_forward<float>(const float*, float*, int64_t, int64_t, int64_t);
template void max_forward<float>(const float*, float*, int64_t*, int64_t, int64_t, int64_t);
template void max_backward<float>(const float*, const int64_t*, float*, int64_t, int64_t, int64_t);
template void sum_reference<float>(const float*, float*, int64_t, int64_t, int64_t);
template void sum_forward<double>(const double*, double*, int64_t, int64_t, int64_t);
template void max_forward<double>(const double*, double*, int64_t*, int64_t, int64_t, int64_t);
template void max_backward<double>(const double*, const int64_t*, double*, int64_t, int64_t, int64_t);
template void sum_reference<double>(const double*, double*, int64_t, int64_t, int64_t);
template void sum_forward<int64_t>(const int64_t*, int64_t*, int64_t, int64_t, int64_t);
template void max_forward<int64_t>(const int64_t*, int64_t*, int64_t*, int64_t, int64_t, int64_t);
template void max_backward<int64_t>(const int64_t*, const int64_t*, int64_t*, int64_t, int64_t, int64_t);
template void sum_reference<int64_t>(const int64_t*, int64_t*, int64_t, int64_t, int64_t);

}  // namespace normnet::kernels::cpu

// Embedding gather and scatter-add.
#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>

#include <omp.h>

#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {
constexpr int64_t kGrain = int64_t{1} << 16;  // elements copied/added below which one thread works
}

// y[i, :] = table[idx[i], :]  ⇒  dtable[idx[i], :] += dy[i, :]
template <class T>
void embedding_forward(const T* table, const int64_t* indices, int64_t n, int64_t D, T* y) {
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) if (n * D >= kGrain)
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(y + i * D, table + indices[i] * D, static_cast<std::size_t>(D) * sizeof(T));
  }
}

template <class T>
void embedding_backward(const int64_t* indices, const T* dy, int64_t n, int64_t D, T* dtable) {
  const int threads = n * D >= kGrain ? static_cast<int>(std::clamp<int64_t>(D, 1, get_num_threads())) : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int64_t parts = omp_get_num_threads();
    const int64_t part = omp_get_thread_num();
    const int64_t d0 = D * part / parts;
    const int64_t d1 = D * (part + 1) / parts;
    for (int64_t i = 0; i < n; ++i) {
      const T* src = dy + i * D;
      T* dst = dtable + indices[i] * D;
#pragma omp simd
      for (int64_t d = d0; d < d1; ++d) dst[d] += src[d];
    }
  }
}

template <class T>
void embedding_backward_reference(const int64_t* indices, const T* dy, int64_t n, int64_t D, T* dtable) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t d = 0; d < D; ++d) dtable[indices[i] * D + d] += dy[i * D + d];
  }
}

// Explicit instantiations for float and double.
template void embedding_forward<float>(const float*, const int64_t*, int64_t, int64_t, float*);
template void embedding_forward<double>(const double*, const int64_t*, int64_t, int64_t, double*);
template void embedding_backward<float>(const int64_t*, const float*, int64_t, int64_t, float*);
template void embedding_backward<double>(const int64_t*, const double*, int64_t, int64_t, double*);
template void embedding_backward_reference<float>(const int64_t*, const float*, int64_t, int64_t, float*);
template void embedding_backward_reference<double>(const int64_t*, const double*, int64_t, int64_t, double*);

}  // namespace normnet::kernels::cpu

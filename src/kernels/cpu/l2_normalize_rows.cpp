// The short-row L2-normalization kernels in builds with neither AVX-512 nor AVX2: every row is
// left to the general loops of l2_normalize.cpp (kAvailable is false, so they are never called).
// The kernels themselves: l2_normalize_rows_avx512.cpp and l2_normalize_rows_avx2.cpp.
#include "kernels/cpu/l2_normalize_rows.h"

#if !defined(__AVX512F__) && !(defined(__AVX2__) && defined(__FMA__))

namespace normnet::kernels::cpu::l2_rows {

void exact_forward(const float*, float*, double*, int64_t rows, int64_t, bool, Rest rest) {
  for (int64_t row = 0; row < rows; ++row) rest.fn(rest.ctx, row);
}
void backward(const float*, const float*, const double*, float*, int64_t rows, int64_t, EpsilonMode, bool,
              bool, Rest rest) {
  for (int64_t row = 0; row < rows; ++row) rest.fn(rest.ctx, row);
}
void stream_fence() {}
bool streams_available() { return false; }

}  // namespace normnet::kernels::cpu::l2_rows

#endif

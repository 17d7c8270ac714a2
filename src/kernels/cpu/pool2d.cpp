// Max and average pooling (NHWC): channels innermost so that every loop reads contiguous rows.
// Forward parallelizes over output pixels; backward over (batch, channel block), because
// overlapping windows (stride < pool) add into the same input element; the write-once backward
// of tiling windows over output rows.
#include "kernels/cpu/pool2d.h"

#include <algorithm>

#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

constexpr int64_t kChannelBlock = 64;

// The real input rows [begin, end) of output row p (likewise columns).
struct Range {
  int64_t begin, end;
};
Range window_rows(int64_t p, int64_t stride, int64_t pad, int64_t window, int64_t extent) {
  const int64_t start = p * stride - pad;
  return {std::max<int64_t>(start, 0), std::min(start + window, extent)};
}

// Replaces `best` by v when v is larger, or the first NaN: ties keep the earlier element.
template <class T>
bool takes_over(T v, T best) {
  return v > best || (v != v && best == best);
}

bool parallel_worth_it(const Pool2dDims& d) { return d.n * d.oh * d.ow * d.c * d.ph * d.pw > 32768; }

}  // namespace

template <class T>
void max_pool2d_forward(const T* x, T* y, const Pool2dDims& d) {
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t p = 0; p < d.oh; ++p) {
      for (int64_t q = 0; q < d.ow; ++q) {
        const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
        const Range cols = window_rows(q, d.stride_w, d.pad_left, d.pw, d.w);
        T* out = y + ((n * d.oh + p) * d.ow + q) * d.c;
        const T* first = x + ((n * d.h + rows.begin) * d.w + cols.begin) * d.c;
        std::copy(first, first + d.c, out);
        for (int64_t h = rows.begin; h < rows.end; ++h) {
          for (int64_t w = cols.begin; w < cols.end; ++w) {
            const T* in = x + ((n * d.h + h) * d.w + w) * d.c;
            for (int64_t c = 0; c < d.c; ++c) out[c] = takes_over(in[c], out[c]) ? in[c] : out[c];
          }
        }
      }
    }
  }
}

// where[j] = offset of the argmax pixel's channel c0 in the window (rows × cols) of image n, for
// the channels [c0, c0 + width): the first maximal element in row-major window order, or the
// first NaN (see the header for ties).
template <class T>
void window_argmax(const T* x, const Pool2dDims& d, int64_t n, Range rows, Range cols, int64_t c0, int64_t width,
                   int64_t* where) {
  T best[kChannelBlock];
  const int64_t start = ((n * d.h + rows.begin) * d.w + cols.begin) * d.c + c0;
  for (int64_t j = 0; j < width; ++j) {
    best[j] = x[start + j];
    where[j] = start;
  }
  for (int64_t h = rows.begin; h < rows.end; ++h) {
    for (int64_t w = cols.begin; w < cols.end; ++w) {
      const int64_t at = ((n * d.h + h) * d.w + w) * d.c + c0;
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) {
        const T v = x[at + j];
        const bool take = takes_over(v, best[j]);
        best[j] = take ? v : best[j];
        where[j] = take ? at : where[j];
      }
    }
  }
}

// y = max_window x  ⇒  dx[argmax] += dy (one element per window; see the header for ties).
template <class T>
void max_pool2d_backward(const T* x, const T* dy, T* dx, const Pool2dDims& d) {
  const int64_t blocks = (d.c + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kChannelBlock, width = std::min(kChannelBlock, d.c - c0);
      int64_t where[kChannelBlock];
      for (int64_t p = 0; p < d.oh; ++p) {
        for (int64_t q = 0; q < d.ow; ++q) {
          const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
          const Range cols = window_rows(q, d.stride_w, d.pad_left, d.pw, d.w);
          window_argmax(x, d, n, rows, cols, c0, width, where);
          const T* g = dy + ((n * d.oh + p) * d.ow + q) * d.c + c0;
          for (int64_t j = 0; j < width; ++j) dx[where[j] + j] += g[j];
        }
      }
    }
  }
}

bool pool_windows_tile(const Pool2dDims& d) {
  const auto covers = [](int64_t out, int64_t window, int64_t stride, int64_t pad, int64_t extent) {
    return stride == window && pad >= 0 && out * window - pad >= extent;
  };
  return covers(d.oh, d.ph, d.stride_h, d.pad_top, d.h) && covers(d.ow, d.pw, d.stride_w, d.pad_left, d.w);
}

// The same argmax as max_pool2d_backward; then every element of the window is written: dy at
// the argmax, 0 elsewhere. Windows do not overlap, so output rows (n, p) are independent.
template <class T>
void max_pool2d_backward_write(const T* x, const T* dy, T* dx, const Pool2dDims& d) {
  const int64_t blocks = (d.c + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t p = 0; p < d.oh; ++p) {
      const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
      for (int64_t q = 0; q < d.ow; ++q) {
        const Range cols = window_rows(q, d.stride_w, d.pad_left, d.pw, d.w);
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t c0 = blk * kChannelBlock, width = std::min(kChannelBlock, d.c - c0);
          int64_t where[kChannelBlock];
          window_argmax(x, d, n, rows, cols, c0, width, where);
          const T* g = dy + ((n * d.oh + p) * d.ow + q) * d.c + c0;
          for (int64_t h = rows.begin; h < rows.end; ++h) {
            for (int64_t w = cols.begin; w < cols.end; ++w) {
              const int64_t at = ((n * d.h + h) * d.w + w) * d.c + c0;
#pragma omp simd
              for (int64_t j = 0; j < width; ++j) dx[at + j] = where[j] == at ? g[j] : T(0);
            }
          }
        }
      }
    }
  }
}

template <class T>
void avg_pool2d_forward(const T* x, T* y, const Pool2dDims& d) {
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t p = 0; p < d.oh; ++p) {
      for (int64_t q = 0; q < d.ow; ++q) {
        const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
        const Range cols = window_rows(q, d.stride_w, d.pad_left, d.pw, d.w);
        const T count = static_cast<T>((rows.end - rows.begin) * (cols.end - cols.begin));
        T* out = y + ((n * d.oh + p) * d.ow + q) * d.c;
        std::fill(out, out + d.c, T(0));
        for (int64_t h = rows.begin; h < rows.end; ++h) {
          for (int64_t w = cols.begin; w < cols.end; ++w) {
            const T* in = x + ((n * d.h + h) * d.w + w) * d.c;
            for (int64_t c = 0; c < d.c; ++c) out[c] += in[c];
          }
        }
        for (int64_t c = 0; c < d.c; ++c) out[c] /= count;
      }
    }
  }
}

// y = (1/count) Σ_window x  ⇒  dx[window] += dy / count
template <class T>
void avg_pool2d_backward(const T* dy, T* dx, const Pool2dDims& d) {
  const int64_t blocks = (d.c + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kChannelBlock, width = std::min(kChannelBlock, d.c - c0);
      T share[kChannelBlock];
      for (int64_t p = 0; p < d.oh; ++p) {
        for (int64_t q = 0; q < d.ow; ++q) {
          const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
          const Range cols = window_rows(q, d.stride_w, d.pad_left, d.pw, d.w);
          const T count = static_cast<T>((rows.end - rows.begin) * (cols.end - cols.begin));
          const T* g = dy + ((n * d.oh + p) * d.ow + q) * d.c + c0;
          for (int64_t j = 0; j < width; ++j) share[j] = g[j] / count;
          for (int64_t h = rows.begin; h < rows.end; ++h) {
            for (int64_t w = cols.begin; w < cols.end; ++w) {
              T* out = dx + ((n * d.h + h) * d.w + w) * d.c + c0;
              for (int64_t j = 0; j < width; ++j) out[j] += share[j];
            }
          }
        }
      }
    }
  }
}

template void max_pool2d_forward<float>(const float*, float*, const Pool2dDims&);
template void max_pool2d_forward<double>(const double*, double*, const Pool2dDims&);
template void max_pool2d_backward<float>(const float*, const float*, float*, const Pool2dDims&);
template void max_pool2d_backward<double>(const double*, const double*, double*, const Pool2dDims&);
template void max_pool2d_backward_write<float>(const float*, const float*, float*, const Pool2dDims&);
template void max_pool2d_backward_write<double>(const double*, const double*, double*, const Pool2dDims&);
template void avg_pool2d_forward<float>(const float*, float*, const Pool2dDims&);
template void avg_pool2d_forward<double>(const double*, double*, const Pool2dDims&);
template void avg_pool2d_backward<float>(const float*, float*, const Pool2dDims&);
template void avg_pool2d_backward<double>(const double*, double*, const Pool2dDims&);

}  // namespace normnet::kernels::cpu

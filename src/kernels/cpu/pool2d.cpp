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

// Calls visit(n, rows, cols, out) for every output pixel, in parallel: the window's real input rows
// and columns, and the pixel's offset in y (times C).
template <class Visit>
void for_each_window(const Pool2dDims& d, Visit visit) {
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t p = 0; p < d.oh; ++p) {
      for (int64_t q = 0; q < d.ow; ++q) {
        visit(n, window_rows(p, d.stride_h, d.pad_top, d.ph, d.h), window_rows(q, d.stride_w, d.pad_left, d.pw, d.w),
              ((n * d.oh + p) * d.ow + q) * d.c);
      }
    }
  }
}

}  // namespace

// out[c] = max over the window (rows × cols) of image n, all channels.
template <class T>
void window_max(const T* x, const Pool2dDims& d, int64_t n, Range rows, Range cols, T* out) {
  const T* first = x + ((n * d.h + rows.begin) * d.w + cols.begin) * d.c;
  std::copy(first, first + d.c, out);
  for (int64_t h = rows.begin; h < rows.end; ++h) {
    for (int64_t w = cols.begin; w < cols.end; ++w) {
      const T* in = x + ((n * d.h + h) * d.w + w) * d.c;
      for (int64_t c = 0; c < d.c; ++c) out[c] = takes_over(in[c], out[c]) ? in[c] : out[c];
    }
  }
}

template <class T>
void max_pool2d_forward(const T* x, T* y, const Pool2dDims& d) {
  for_each_window(d, [=, &d](int64_t n, Range rows, Range cols, int64_t out_at) {
    window_max(x, d, n, rows, cols, y + out_at);
  });
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

bool max_pool2d_argmax_fits(const Pool2dDims& d) { return d.ph * d.pw <= 256; }

// y as max_pool2d_forward computes it; then the window is walked backwards and argmax set at every
// element equal to the maximum (or NaN when it is NaN), so that the first such element's position
// stays. That is the element the forward pass kept: a later element equal to the running maximum
// never takes over. (Positions count the real elements row-major with row stride PW.)
template <class T>
void max_pool2d_forward_argmax(const T* x, T* y, uint8_t* argmax, const Pool2dDims& d) {
  for_each_window(d, [=, &d](int64_t n, Range rows, Range cols, int64_t out_at) {
    T* out = y + out_at;
    window_max(x, d, n, rows, cols, out);
    uint8_t* k = argmax + out_at;
    for (int64_t h = rows.end - 1; h >= rows.begin; --h) {
      for (int64_t w = cols.end - 1; w >= cols.begin; --w) {
        const auto pos = static_cast<uint8_t>((h - rows.begin) * d.pw + (w - cols.begin));
        const T* in = x + ((n * d.h + h) * d.w + w) * d.c;
#pragma omp simd
        for (int64_t c = 0; c < d.c; ++c) {
          const bool is_max = in[c] == out[c] || (in[c] != in[c] && out[c] != out[c]);
          k[c] = is_max ? pos : k[c];
        }
      }
    }
  });
}

// dx[window element at position k] = dy if k is the recorded argmax, else 0.
template <class T>
void max_pool2d_backward_write_argmax(const uint8_t* argmax, const T* dy, T* dx, const Pool2dDims& d) {
#pragma omp parallel for collapse(2) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t p = 0; p < d.oh; ++p) {
      const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
      for (int64_t q = 0; q < d.ow; ++q) {
        const Range cols = window_rows(q, d.stride_w, d.pad_left, d.pw, d.w);
        const int64_t out_at = ((n * d.oh + p) * d.ow + q) * d.c;
        const T* g = dy + out_at;
        const uint8_t* k = argmax + out_at;
        for (int64_t h = rows.begin; h < rows.end; ++h) {
          for (int64_t w = cols.begin; w < cols.end; ++w) {
            const auto pos = static_cast<uint8_t>((h - rows.begin) * d.pw + (w - cols.begin));
            T* out = dx + ((n * d.h + h) * d.w + w) * d.c;
#pragma omp simd
            for (int64_t c = 0; c < d.c; ++c) out[c] = k[c] == pos ? g[c] : T(0);
          }
        }
      }
    }
  }
}

// nChw16c: plane (n, b) holds channels [16·b, 16·b + 16) of image n as H·W pixels of 16 floats.
// Each thread takes whole output rows of one plane, so it reads the plane's rows in order. The
// maximum and its position in one pass: an element replaces the running maximum when it is
// larger, or the first NaN, so the position kept is that of the first maximal element (or first
// NaN), as max_pool2d_forward_argmax finds it.
void max_pool2d_forward_argmax_blocked16(const float* x, float* y, uint8_t* argmax, const Pool2dDims& d) {
  const int64_t blocks = d.c / 16;
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t p = 0; p < d.oh; ++p) {
        const float* plane = x + (n * blocks + b) * d.h * d.w * 16;
        const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
        for (int64_t q = 0; q < d.ow; ++q) {
          const Range cols = window_rows(q, d.stride_w, d.pad_left, d.pw, d.w);
          // 32-bit positions so that the compiler keeps the 16 lanes in one vector register.
          float best[16];
          int32_t where[16];
          const float* first = plane + (rows.begin * d.w + cols.begin) * 16;
          for (int j = 0; j < 16; ++j) {
            best[j] = first[j];
            where[j] = 0;
          }
          for (int64_t h = rows.begin; h < rows.end; ++h) {
            for (int64_t w = cols.begin; w < cols.end; ++w) {
              const auto pos = static_cast<int32_t>((h - rows.begin) * d.pw + (w - cols.begin));
              const float* in = plane + (h * d.w + w) * 16;
#pragma omp simd
              for (int j = 0; j < 16; ++j) {
                const bool take = takes_over(in[j], best[j]);
                best[j] = take ? in[j] : best[j];
                where[j] = take ? pos : where[j];
              }
            }
          }
          const int64_t out_at = ((n * d.oh + p) * d.ow + q) * d.c + b * 16;
          std::copy(best, best + 16, y + out_at);
          for (int j = 0; j < 16; ++j) argmax[out_at + j] = static_cast<uint8_t>(where[j]);
        }
      }
    }
  }
}

// dx[window element at position k] = dy if k is the recorded argmax, else 0; dx in nChw16c.
void max_pool2d_backward_write_argmax_blocked16(const uint8_t* argmax, const float* dy, float* dx,
                                                const Pool2dDims& d) {
  const int64_t blocks = d.c / 16;
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t p = 0; p < d.oh; ++p) {
        float* plane = dx + (n * blocks + b) * d.h * d.w * 16;
        const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
        for (int64_t q = 0; q < d.ow; ++q) {
          const Range cols = window_rows(q, d.stride_w, d.pad_left, d.pw, d.w);
          const int64_t out_at = ((n * d.oh + p) * d.ow + q) * d.c + b * 16;
          const float* g = dy + out_at;
          int32_t k[16];  // 32-bit, as in the forward pass
          for (int j = 0; j < 16; ++j) k[j] = argmax[out_at + j];
          for (int64_t h = rows.begin; h < rows.end; ++h) {
            for (int64_t w = cols.begin; w < cols.end; ++w) {
              const auto pos = static_cast<int32_t>((h - rows.begin) * d.pw + (w - cols.begin));
              float* out = plane + (h * d.w + w) * 16;
#pragma omp simd
              for (int j = 0; j < 16; ++j) out[j] = k[j] == pos ? g[j] : 0.0f;
            }
          }
        }
      }
    }
  }
}

template <class T>
void avg_pool2d_forward(const T* x, T* y, const Pool2dDims& d) {
  for_each_window(d, [=, &d](int64_t n, Range rows, Range cols, int64_t out_at) {
    const T count = static_cast<T>((rows.end - rows.begin) * (cols.end - cols.begin));
    T* out = y + out_at;
    std::fill(out, out + d.c, T(0));
    for (int64_t h = rows.begin; h < rows.end; ++h) {
      for (int64_t w = cols.begin; w < cols.end; ++w) {
        const T* in = x + ((n * d.h + h) * d.w + w) * d.c;
        for (int64_t c = 0; c < d.c; ++c) out[c] += in[c];
      }
    }
    for (int64_t c = 0; c < d.c; ++c) out[c] /= count;
  });
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
template void max_pool2d_forward_argmax<float>(const float*, float*, uint8_t*, const Pool2dDims&);
template void max_pool2d_forward_argmax<double>(const double*, double*, uint8_t*, const Pool2dDims&);
template void max_pool2d_backward_write_argmax<float>(const uint8_t*, const float*, float*, const Pool2dDims&);
template void max_pool2d_backward_write_argmax<double>(const uint8_t*, const double*, double*, const Pool2dDims&);
template void avg_pool2d_forward<float>(const float*, float*, const Pool2dDims&);
template void avg_pool2d_forward<double>(const double*, double*, const Pool2dDims&);
template void avg_pool2d_backward<float>(const float*, float*, const Pool2dDims&);
template void avg_pool2d_backward<double>(const double*, double*, const Pool2dDims&);

}  // namespace normnet::kernels::cpu

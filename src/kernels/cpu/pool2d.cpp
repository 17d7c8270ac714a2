// Max and average pooling (NHWC): channels innermost so that every loop reads contiguous rows.
// Forward parallelizes over output pixels; backward over (batch, channel block), because
// overlapping windows (stride < pool) add into the same input element; the write-once backward
// of tiling windows over output rows.
#include "kernels/cpu/pool2d.h"

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

template <class T>
void max_pool2d_relu_forward(const T* x, T* y, const Pool2dDims& d) {
  for_each_window(d, [=, &d](int64_t n, Range rows, Range cols, int64_t out_at) {
    T* out = y + out_at;
    window_max(x, d, n, rows, cols, out);
    for (int64_t c = 0; c < d.c; ++c) out[c] = out[c] > T(0) || out[c] != out[c] ? out[c] : T(0);  // in L1 still
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
// NaN), as max_pool2d_forward_argmax finds it. One 16-channel vector per window element.
namespace {

#if defined(__AVX512F__)
// best, where (positions) over one window of one plane; y and argmax get 16 channels each.
void window_argmax16(const float* plane, const Pool2dDims& d, Range rows, Range cols, float* y, uint8_t* argmax) {
  __m512 best = _mm512_loadu_ps(plane + (rows.begin * d.w + cols.begin) * 16);
  __m512i where = _mm512_setzero_si512();
  for (int64_t h = rows.begin; h < rows.end; ++h) {
    for (int64_t w = cols.begin; w < cols.end; ++w) {
      const __m512 v = _mm512_loadu_ps(plane + (h * d.w + w) * 16);
      // takes_over: v > best, or v is NaN and best is not
      const __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                             (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
      best = _mm512_mask_mov_ps(best, take, v);
      where = _mm512_mask_mov_epi32(where, take,
                                    _mm512_set1_epi32(static_cast<int>((h - rows.begin) * d.pw + (w - cols.begin))));
    }
  }
  _mm512_storeu_ps(y, best);
  // The masked forms of the two conversions here and below: GCC 12's plain ones start from an
  // undefined register and warn (-Wmaybe-uninitialized) once inlined.
  _mm_storeu_si128(reinterpret_cast<__m128i*>(argmax), _mm512_maskz_cvtepi32_epi8(0xFFFF, where));
}

// The 16 channels of dx at every element of one window: dy where the recorded argmax is.
void window_write16(const float* dy, const uint8_t* argmax, const Pool2dDims& d, Range rows, Range cols,
                    float* plane) {
  const __m512 g = _mm512_loadu_ps(dy);
  const __m512i k = _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(argmax)));
  for (int64_t h = rows.begin; h < rows.end; ++h) {
    for (int64_t w = cols.begin; w < cols.end; ++w) {
      const int pos = static_cast<int>((h - rows.begin) * d.pw + (w - cols.begin));
      const __mmask16 at = _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(pos));
      _mm512_storeu_ps(plane + (h * d.w + w) * 16, _mm512_maskz_mov_ps(at, g));
    }
  }
}
#else
void window_argmax16(const float* plane, const Pool2dDims& d, Range rows, Range cols, float* y, uint8_t* argmax) {
  const float* first = plane + (rows.begin * d.w + cols.begin) * 16;
  for (int j = 0; j < 16; ++j) {
    float best = first[j];
    int64_t where = 0;
    for (int64_t h = rows.begin; h < rows.end; ++h) {
      for (int64_t w = cols.begin; w < cols.end; ++w) {
        const float v = plane[(h * d.w + w) * 16 + j];
        if (takes_over(v, best)) best = v, where = (h - rows.begin) * d.pw + (w - cols.begin);
      }
    }
    y[j] = best;
    argmax[j] = static_cast<uint8_t>(where);
  }
}

void window_write16(const float* dy, const uint8_t* argmax, const Pool2dDims& d, Range rows, Range cols,
                    float* plane) {
  for (int64_t h = rows.begin; h < rows.end; ++h) {
    for (int64_t w = cols.begin; w < cols.end; ++w) {
      const auto pos = static_cast<uint8_t>((h - rows.begin) * d.pw + (w - cols.begin));
      float* out = plane + (h * d.w + w) * 16;
      for (int j = 0; j < 16; ++j) out[j] = argmax[j] == pos ? dy[j] : 0.0f;
    }
  }
}
#endif

// Calls visit(plane offset, output offset, rows, cols) for every window of every plane, in
// parallel over (image, channel block, output row).
template <class Visit>
void for_each_window16(const Pool2dDims& d, Visit visit) {
  const int64_t blocks = d.c / 16;
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (parallel_worth_it(d))
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t p = 0; p < d.oh; ++p) {
        const int64_t plane = (n * blocks + b) * d.h * d.w * 16;
        const Range rows = window_rows(p, d.stride_h, d.pad_top, d.ph, d.h);
        for (int64_t q = 0; q < d.ow; ++q) {
          visit(plane, ((n * d.oh + p) * d.ow + q) * d.c + b * 16, rows,
                window_rows(q, d.stride_w, d.pad_left, d.pw, d.w));
        }
      }
    }
  }
}

}  // namespace

void max_pool2d_forward_argmax_blocked16(const float* x, float* y, uint8_t* argmax, const Pool2dDims& d) {
  for_each_window16(d, [=, &d](int64_t plane, int64_t out_at, Range rows, Range cols) {
    window_argmax16(x + plane, d, rows, cols, y + out_at, argmax + out_at);
  });
}

// dx[window element at position k] = dy if k is the recorded argmax, else 0; dx in nChw16c.
void max_pool2d_backward_write_argmax_blocked16(const uint8_t* argmax, const float* dy, float* dx,
                                                const Pool2dDims& d) {
  for_each_window16(d, [=, &d](int64_t plane, int64_t out_at, Range rows, Range cols) {
    window_write16(dy + out_at, argmax + out_at, d, rows, cols, dx + plane);
  });
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
template void max_pool2d_relu_forward<float>(const float*, float*, const Pool2dDims&);
template void max_pool2d_relu_forward<double>(const double*, double*, const Pool2dDims&);
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

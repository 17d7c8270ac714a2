// The naive twins of the convolution kernels, for float64 and for tests: one output element at a
// time as a gather over the window, summed in double.
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/matmul.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {

// y[n,p,q,o] = bias[o] + Σ_{i,j,c} x[n, p·sh − pt + i, q·sw − pl + j, c] · kernel[i,j,c,o]
template <class T>
void conv2d_forward_reference(const T* x, const T* kernel, const T* bias, T* y, const Conv2dDims& d) {
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (d.n * d.oh * d.ow > 64)
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t p = 0; p < d.oh; ++p) {
      for (int64_t q = 0; q < d.ow; ++q) {
        T* out = y + ((n * d.oh + p) * d.ow + q) * d.o;
        for (int64_t o = 0; o < d.o; ++o) {
          double acc = bias ? static_cast<double>(bias[o]) : 0.0;
          for (int64_t i = 0; i < d.kh; ++i) {
            const int64_t h = p * d.stride_h - d.pad_top + i;
            if (h < 0 || h >= d.h) continue;
            for (int64_t j = 0; j < d.kw; ++j) {
              const int64_t w = q * d.stride_w - d.pad_left + j;
              if (w < 0 || w >= d.w) continue;
              const T* in = x + ((n * d.h + h) * d.w + w) * d.c;
              const T* k = kernel + (i * d.kw + j) * d.c * d.o + o;
              for (int64_t c = 0; c < d.c; ++c)
                acc += static_cast<double>(in[c]) * static_cast<double>(k[c * d.o]);
            }
          }
          out[o] = static_cast<T>(acc);
        }
      }
    }
  }
}

// dx[n,h,w,c] = Σ over (i, j) and the output pixels (p, q) with h = p·sh − pt + i, w = q·sw − pl + j
//               of Σ_o dy[n,p,q,o] · kernel[i,j,c,o]
template <class T>
void conv2d_backward_data_reference(const T* dy, const T* kernel, T* dx, const Conv2dDims& d) {
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (d.n * d.h * d.w > 64)
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t h = 0; h < d.h; ++h) {
      for (int64_t w = 0; w < d.w; ++w) {
        T* out = dx + ((n * d.h + h) * d.w + w) * d.c;
        for (int64_t c = 0; c < d.c; ++c) {
          double acc = 0.0;
          for (int64_t i = 0; i < d.kh; ++i) {
            const int64_t tp = h + d.pad_top - i;
            if (tp < 0 || tp % d.stride_h != 0 || tp / d.stride_h >= d.oh) continue;
            for (int64_t j = 0; j < d.kw; ++j) {
              const int64_t tq = w + d.pad_left - j;
              if (tq < 0 || tq % d.stride_w != 0 || tq / d.stride_w >= d.ow) continue;
              const T* g = dy + ((n * d.oh + tp / d.stride_h) * d.ow + tq / d.stride_w) * d.o;
              const T* k = kernel + ((i * d.kw + j) * d.c + c) * d.o;
              for (int64_t o = 0; o < d.o; ++o) acc += static_cast<double>(g[o]) * static_cast<double>(k[o]);
            }
          }
          out[c] = static_cast<T>(acc);
        }
      }
    }
  }
}

// dkernel[i,j,c,o] = Σ_{n,p,q} x[n, p·sh − pt + i, q·sw − pl + j, c] · dy[n,p,q,o];  dbias[o] = Σ dy[..., o]
template <class T>
void conv2d_backward_weights_reference(const T* x, const T* dy, T* dkernel, T* dbias, const Conv2dDims& d) {
#pragma omp parallel for collapse(3) num_threads(get_num_threads()) if (d.kh * d.kw * d.c > 16)
  for (int64_t i = 0; i < d.kh; ++i) {
    for (int64_t j = 0; j < d.kw; ++j) {
      for (int64_t c = 0; c < d.c; ++c) {
        T* out = dkernel + ((i * d.kw + j) * d.c + c) * d.o;
        for (int64_t o = 0; o < d.o; ++o) {
          double acc = 0.0;
          for (int64_t n = 0; n < d.n; ++n) {
            for (int64_t p = 0; p < d.oh; ++p) {
              const int64_t h = p * d.stride_h - d.pad_top + i;
              if (h < 0 || h >= d.h) continue;
              for (int64_t q = 0; q < d.ow; ++q) {
                const int64_t w = q * d.stride_w - d.pad_left + j;
                if (w < 0 || w >= d.w) continue;
                acc += static_cast<double>(x[((n * d.h + h) * d.w + w) * d.c + c]) *
                       static_cast<double>(dy[((n * d.oh + p) * d.ow + q) * d.o + o]);
              }
            }
          }
          out[o] = static_cast<T>(acc);
        }
      }
    }
  }
  if (dbias) bias_backward(dy, dbias, d.n * d.oh * d.ow, d.o);
}

template void conv2d_forward_reference<float>(const float*, const float*, const float*, float*,
                                              const Conv2dDims&);
template void conv2d_forward_reference<double>(const double*, const double*, const double*, double*,
                                               const Conv2dDims&);
template void conv2d_backward_data_reference<float>(const float*, const float*, float*, const Conv2dDims&);
template void conv2d_backward_data_reference<double>(const double*, const double*, double*,
                                                     const Conv2dDims&);
template void conv2d_backward_weights_reference<float>(const float*, const float*, float*, float*,
                                                       const Conv2dDims&);
template void conv2d_backward_weights_reference<double>(const double*, const double*, double*, double*,
                                                        const Conv2dDims&);

}  // namespace normnet::kernels::cpu

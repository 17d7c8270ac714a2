// 2-d convolution, float32: which kernel runs each pass. Normnet's direct kernels (conv2d_direct.h)
// or, under set_conv2d_winograd, its Winograd forward (conv2d_winograd.h) where they apply; else
// oneDNN's primitives (conv2d_onednn.h), its Winograd kernels included when chosen; the naive
// loops (conv2d_reference.cpp) where oneDNN fails at run time, and for float64.
#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels/cpu/conv2d_direct.h"
#include "kernels/cpu/conv2d_onednn.h"
#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/dnnl_context.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/unary.h"

namespace normnet::kernels::cpu {
namespace {

std::atomic<bool> g_winograd{false};  // set_conv2d_winograd

// The direct kernel runs the forward pass wherever it takes the shape. At small batches oneDNN's
// fixed cost per call dominates (conv2 32→64 at 24×24, batch 1: 89 µs direct against 126 µs).
// Builds without AVX-512 (oneDNN's jit:avx2 kernels): the CNN's conv2 at batch 128 took 23.4–23.7
// ms direct against 26.6–26.7 ms in oneDNN, conv1 with its ReLU 0.84–0.89 ms against 0.92–1.00 ms
// for oneDNN and the ReLU pass (AVX2 VM, 2026-12-01, docs/benchmarks.md steps 22–23). AVX-512 (AMD
// Zen 5, 2026-12-02, step 29): conv2 at batch 128 7.54 ms direct (91 % of the FMA peak) against
// 8.02 ms in oneDNN's brgconv, conv1 268 µs direct against 251 µs; only the direct kernels fuse
// the pooling, and a training step took 0.331 of libtorch's time against 0.368 when AVX-512
// builds sent calls of more than 4096 output pixels to oneDNN.

bool empty_output(const Conv2dDims& d) { return d.n == 0 || d.oh == 0 || d.ow == 0 || d.o == 0; }

// The Winograd kernels where chosen and available; false sends the caller to the direct ones
// (also when oneDNN fails at run time, e.g. out of memory for its buffers).
bool winograd_forward_or_false(const float* x, const float* kernel, const float* bias, float* y,
                               const Conv2dDims& d, bool y_blocked16 = false, float* x_blocked16 = nullptr) {
  try {
    return conv2d_onednn::winograd_forward(x, kernel, bias, y, d, y_blocked16, x_blocked16);
  } catch (const dnnl::error&) {
    return false;
  }
}

bool winograd_backward_or_false(const float* x, const float* dy, const float* kernel, float* dx, float* dkernel,
                                const Conv2dDims& d, bool blocked16 = false) {
  if (!g_winograd.load() && !blocked16) return false;
  try {
    return conv2d_onednn::winograd_backward(x, dy, kernel, dx, dkernel, d, blocked16);
  } catch (const dnnl::error&) {
    return false;
  }
}

template <class T>
void fill_zero(T* p, int64_t count) {
  for (int64_t i = 0; i < count; ++i) p[i] = T(0);
}

}  // namespace

WindowAxis window_axis(int64_t in, int64_t window, int64_t stride, bool same) {
  if (!same) return {(in - window) / stride + 1, 0, 0};
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + window - in, 0);
  return {out, total / 2, total - total / 2};
}

bool conv2d_forward_runs_direct(const Conv2dDims& d) { return conv2d_direct_forward_supported(d); }

void conv2d_forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d,
                    bool relu) {
  if (empty_output(d)) return;
  if (conv2d_forward_runs_direct(d)) {
    if (g_winograd.load() && conv2d_winograd_forward_supported(d)) {
      return conv2d_winograd_forward(x, kernel, bias, y, d, relu);
    }
    return conv2d_direct_forward(x, kernel, bias, y, d, relu);
  }
  const bool winograd = g_winograd.load() && winograd_forward_or_false(x, kernel, bias, y, d);
  if (!winograd) conv2d_forward_dnnl(x, kernel, bias, y, d);
  if (relu) relu_forward(y, y, d.n * d.oh * d.ow * d.o);
}

bool conv2d_forward_max_pool_relu(const float* x, const float* kernel, const float* bias, float* y,
                                  const Conv2dDims& d, const Pool2dDims& pd, uint8_t* argmax) {
  if (empty_output(d) || !conv2d_forward_runs_direct(d)) return false;
  if (g_winograd.load() && conv2d_winograd_forward_supported(d)) {
    return conv2d_winograd_forward_max_pool_relu(x, kernel, bias, y, d, pd, argmax);
  }
  return conv2d_direct_forward_max_pool_relu(x, kernel, bias, y, d, pd, argmax);
}

void conv2d_forward(const double* x, const double* kernel, const double* bias, double* y, const Conv2dDims& d,
                    bool relu) {
  conv2d_forward_reference(x, kernel, bias, y, d);
  if (relu) relu_forward(y, y, d.n * d.oh * d.ow * d.o);
}

void conv2d_forward_dnnl(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d) {
  if (empty_output(d)) return;
  try {
    conv2d_onednn::forward(x, kernel, bias, y, d);
  } catch (const dnnl::error&) {
    dnnl_note_fallback();
    conv2d_forward_reference(x, kernel, bias, y, d);
  }
}

void conv2d_backward_data(const float* dy, const float* kernel, float* dx, const Conv2dDims& d) {
  if (d.n * d.h * d.w * d.c == 0) return;
  if (empty_output(d)) return fill_zero(dx, d.n * d.h * d.w * d.c);
  if (winograd_backward_or_false(nullptr, dy, kernel, dx, nullptr, d)) return;
  try {
    conv2d_onednn::backward_data(dy, kernel, dx, d);
  } catch (const dnnl::error&) {
    dnnl_note_fallback();
    conv2d_backward_data_reference(dy, kernel, dx, d);
  }
}

void conv2d_backward_data(const double* dy, const double* kernel, double* dx, const Conv2dDims& d) {
  conv2d_backward_data_reference(dy, kernel, dx, d);
}

void conv2d_backward_weights(const float* x, const float* dy, float* dkernel, float* dbias, const Conv2dDims& d) {
  if (d.kh * d.kw * d.c * d.o == 0) return;
  if (empty_output(d)) {
    fill_zero(dkernel, d.kh * d.kw * d.c * d.o);
    if (dbias) fill_zero(dbias, d.o);
    return;
  }
  if (!winograd_backward_or_false(x, dy, nullptr, nullptr, dkernel, d)) {
    try {
      conv2d_onednn::backward_weights(x, dy, dkernel, d);
    } catch (const dnnl::error&) {
      dnnl_note_fallback();
      conv2d_backward_weights_reference(x, dy, dkernel, dbias, d);
      return;
    }
  }
  if (dbias) bias_backward(dy, dbias, d.n * d.oh * d.ow, d.o);
}

void conv2d_backward(const float* x, const float* dy, const float* kernel, float* dx, float* dkernel,
                     const Conv2dDims& d) {
  const bool data = dx && d.n * d.h * d.w * d.c > 0;
  const bool weights = dkernel && d.kh * d.kw * d.c * d.o > 0;
  if (data && weights && !empty_output(d) &&
      winograd_backward_or_false(x, dy, kernel, dx, dkernel, d)) {
    return;
  }
  if (dx) conv2d_backward_data(dy, kernel, dx, d);
  if (dkernel) conv2d_backward_weights(x, dy, dkernel, nullptr, d);
}

void conv2d_backward(const double* x, const double* dy, const double* kernel, double* dx, double* dkernel,
                     const Conv2dDims& d) {
  if (dx) conv2d_backward_data(dy, kernel, dx, d);
  if (dkernel) conv2d_backward_weights(x, dy, dkernel, nullptr, d);
}

bool conv2d_forward_may_use_winograd(const Conv2dDims& d) {
  if (!g_winograd.load() || !conv2d_onednn::winograd_shape(d) || empty_output(d) ||
      d.n * d.h * d.w * d.c == 0)
    return false;
  return !conv2d_forward_runs_direct(d);
}

bool conv2d_forward_winograd_blocked16(const float* x, const float* kernel, const float* bias, float* y,
                                       float* x_blocked16, const Conv2dDims& d) {
  if (!conv2d_forward_may_use_winograd(d)) return false;
  return winograd_forward_or_false(x, kernel, bias, y, d, /*y_blocked16=*/true, x_blocked16);
}

namespace {

// [n, h, w, c] from nChw16c (c a multiple of 16).
std::vector<float> nhwc_from_blocked16(const float* v, int64_t n, int64_t h, int64_t w, int64_t c) {
  const int64_t blocks = c / 16, pixels = h * w;
  std::vector<float> plain(static_cast<std::size_t>(n * pixels * c));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t at = 0; at < pixels; ++at) {
        for (int64_t j = 0; j < 16; ++j) {
          const int64_t from = ((i * blocks + b) * pixels + at) * 16 + j;
          plain[static_cast<std::size_t>((i * pixels + at) * c + b * 16 + j)] = v[from];
        }
      }
    }
  }
  return plain;
}

}  // namespace

void conv2d_backward_blocked16(const float* x, const float* dy, const float* kernel, float* dx, float* dkernel,
                               const Conv2dDims& d) {
  if (winograd_backward_or_false(x, dy, kernel, dx, dkernel, d, /*blocked16=*/true)) return;
  // oneDNN refused at run time (e.g. out of memory): x and dy back to NHWC for the direct kernels.
  const std::vector<float> plain_x = nhwc_from_blocked16(x, d.n, d.h, d.w, d.c);
  const std::vector<float> plain_dy = nhwc_from_blocked16(dy, d.n, d.oh, d.ow, d.o);
  conv2d_backward(plain_x.data(), plain_dy.data(), kernel, dx, dkernel, d);
}

void set_conv2d_winograd(bool on) { g_winograd.store(on); }
bool conv2d_winograd() { return g_winograd.load(); }

void conv2d_backward_weights(const double* x, const double* dy, double* dkernel, double* dbias,
                             const Conv2dDims& d) {
  conv2d_backward_weights_reference(x, dy, dkernel, dbias, d);
}

}  // namespace normnet::kernels::cpu

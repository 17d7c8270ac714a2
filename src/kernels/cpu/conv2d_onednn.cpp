// Convolutions through oneDNN primitives, cached per shape (dnnl_context.h): the direct passes
// (NHWC activations, weights in oneDNN's layout through cached reorders) and oneDNN's Winograd
// kernels (AVX-512 builds; blocked activations). conv2d.cpp decides when these run.
#include "kernels/cpu/conv2d_onednn.h"

#include <mutex>
#include <set>
#include <string>

#include "kernels/cpu/dnnl_context.h"

namespace normnet::kernels::cpu::conv2d_onednn {

using dnnl::algorithm;
using dnnl::prop_kind;
using tag = dnnl::memory::format_tag;
using dims_t = dnnl::memory::dims;

namespace {

// oneDNN names logical dims in NCHW / OIHW order; the format tags give the physical layout.
// Activations stay NHWC; the weights layout is oneDNN's choice (`any`): with Keras's hwio forced,
// oneDNN 2.6 falls back to its im2col "gemm:jit" convolution, whose NHWC backward passes ran
// 50–100× slower than forward on the Fashion-MNIST CNN (docs/benchmarks.md); with `any` it picks
// its direct AVX-512 kernels, and a small cached reorder converts the kernel (or its gradient).
struct ConvDescs {
  dnnl::memory::desc x, kernel, kernel_any, bias, y;
  dnnl::memory::desc x_any, y_any;  // activations in oneDNN's choice of layout (Winograd only)
  dims_t strides, pad_l, pad_r;
};

ConvDescs conv_descs(const Conv2dDims& d) {
  const auto f32 = dnnl::memory::data_type::f32;
  return ConvDescs{dnnl::memory::desc({d.n, d.c, d.h, d.w}, f32, tag::nhwc),
                   dnnl::memory::desc({d.o, d.c, d.kh, d.kw}, f32, tag::hwio),
                   dnnl::memory::desc({d.o, d.c, d.kh, d.kw}, f32, tag::any),
                   dnnl::memory::desc({d.o}, f32, tag::a),
                   dnnl::memory::desc({d.n, d.o, d.oh, d.ow}, f32, tag::nhwc),
                   dnnl::memory::desc({d.n, d.c, d.h, d.w}, f32, tag::any),
                   dnnl::memory::desc({d.n, d.o, d.oh, d.ow}, f32, tag::any),
                   {d.stride_h, d.stride_w},
                   {d.pad_top, d.pad_left},
                   {d.pad_bottom, d.pad_right}};
}

DnnlKey conv_key(DnnlKind kind, const Conv2dDims& d, bool bias) {
  return {kind, d.n,        d.h,        d.w,       d.c,        d.kh,         d.kw,        d.o, d.oh,
          d.ow, d.stride_h, d.stride_w, d.pad_top, d.pad_left, d.pad_bottom, d.pad_right, bias};
}

dnnl::convolution_forward::desc forward_desc(const ConvDescs& m, bool bias) {
  if (bias) {
    return {prop_kind::forward_training,
            algorithm::convolution_direct,
            m.x,
            m.kernel_any,
            m.bias,
            m.y,
            m.strides,
            m.pad_l,
            m.pad_r};
  }
  return {prop_kind::forward_training,
          algorithm::convolution_direct,
          m.x,
          m.kernel_any,
          m.y,
          m.strides,
          m.pad_l,
          m.pad_r};
}

// This thread's buffer for weights in the layout `p` uses.
float* weights_buffer(const DnnlPrimitive& p) {
  float* buffer = dnnl_thread_buffer(0, p.weights.get_size());
  if (!buffer) throw dnnl::error(dnnl_out_of_memory, "normnet: cannot allocate a convolution weights buffer");
  return buffer;
}

// The kernel in the layout `p` reads: `kernel` itself when that is hwio, else a reordered copy.
const float* kernel_for(const DnnlPrimitive& p, const ConvDescs& m, const float* kernel, DnnlKey key) {
  if (p.weights == m.kernel) return kernel;
  float* buffer = weights_buffer(p);
  dnnl_reorder(std::move(key), m.kernel, kernel, p.weights, buffer);
  return buffer;
}

// oneDNN 2.6's first choice for an NHWC forward pass is brgconv; with few input channels its
// direct jit kernel is faster. Walking next_impl() over the Fashion-MNIST CNN's first layer (1→32
// channels, 28×28, batch 128, 2 threads, fastest of 12 calls, two runs): jit:avx512_core 0.48 and
// 0.52 ms, jit:avx2 0.60, brgconv:avx512_core 0.69 and 0.72, gemm:jit 0.95–1.27; for its second
// (32→64) jit and brgconv tie (9.26 vs 9.42 ms). A fixed rule, not a timing, so that the kernel
// (and the bits it produces) cannot change between runs.
constexpr int64_t kJitMaxInputChannels = 8;
constexpr const char* kJitImpl = "jit:avx512_core";

dnnl::convolution_forward::primitive_desc forward_pd(const ConvDescs& m, const Conv2dDims& d, bool bias,
                                                     const dnnl::primitive_attr& attr) {
  // The iterator behind next_impl() keeps a pointer to the operation descriptor: it must outlive
  // the walk (a temporary desc made next_impl() end after the first choice).
  const dnnl::convolution_forward::desc desc = forward_desc(m, bias);
  dnnl::convolution_forward::primitive_desc pd(desc, attr, dnnl_engine());
  if (d.c > kJitMaxInputChannels) return pd;
  do {
    if (std::string(pd.impl_info_str()) == kJitImpl) return pd;
  } while (pd.next_impl());
  return {desc, attr, dnnl_engine()};  // no jit kernel for this shape: the first choice
}

}  // namespace

void forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d) {
  const ConvDescs m = conv_descs(d);
  const DnnlKey key = conv_key(kDnnlConvForward, d, bias);
  const DnnlPrimitive& p = dnnl_cached_primitive(
      key, [&](const dnnl::primitive_attr& attr) { return forward_pd(m, d, bias != nullptr, attr); });
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl_wrap(m.x, x)},
      {DNNL_ARG_WEIGHTS, dnnl_wrap(p.weights, kernel_for(p, m, kernel, key))},
      {DNNL_ARG_DST, dnnl_wrap(m.y, y)}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl_wrap(m.bias, bias);
  dnnl_execute(p, args);
}

void backward_data(const float* dy, const float* kernel, float* dx, const Conv2dDims& d) {
  const ConvDescs m = conv_descs(d);
  const DnnlKey key = conv_key(kDnnlConvBackwardData, d, false);
  const DnnlPrimitive& p = dnnl_cached_primitive(key, [&](const dnnl::primitive_attr& attr) {
    const dnnl::convolution_forward::primitive_desc hint(forward_desc(m, false), dnnl_engine());
    const dnnl::convolution_backward_data::desc desc(algorithm::convolution_direct, m.x, m.kernel_any, m.y,
                                                     m.strides, m.pad_l, m.pad_r);
    return dnnl::convolution_backward_data::primitive_desc(desc, attr, dnnl_engine(), hint);
  });
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_DIFF_DST, dnnl_wrap(m.y, dy)},
      {DNNL_ARG_WEIGHTS, dnnl_wrap(p.weights, kernel_for(p, m, kernel, key))},
      {DNNL_ARG_DIFF_SRC, dnnl_wrap(m.x, dx)}};
  dnnl_execute(p, args);
}

// dkernel only: oneDNN 2.6's NHWC backward weights (jit:avx512_core) sums the bias gradient in a
// scalar-latency SSE loop (perf: 3 % of a Fashion-MNIST CNN training step); with the bias it ran
// 10–80 % longer than without (24 → 28 and 36 → 46 ms for the CNN's second convolution, 4.0 → 7.3
// ms for its first, standalone, machine loaded). bias_backward, or ops::conv2d_relu's fused relu
// pass, computes it instead.
void backward_weights(const float* x, const float* dy, float* dkernel, const Conv2dDims& d) {
  const ConvDescs m = conv_descs(d);
  const DnnlKey key = conv_key(kDnnlConvBackwardWeights, d, false);
  const DnnlPrimitive& p = dnnl_cached_primitive(key, [&](const dnnl::primitive_attr& attr) {
    const dnnl::convolution_forward::primitive_desc hint(forward_desc(m, false), dnnl_engine());
    const dnnl::convolution_backward_weights::desc desc(algorithm::convolution_direct, m.x, m.kernel_any, m.y,
                                                        m.strides, m.pad_l, m.pad_r);
    return dnnl::convolution_backward_weights::primitive_desc(desc, attr, dnnl_engine(), hint);
  });
  const bool plain = p.weights == m.kernel;
  float* dweights = plain ? dkernel : weights_buffer(p);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl_wrap(m.x, x)},
                                             {DNNL_ARG_DIFF_DST, dnnl_wrap(m.y, dy)},
                                             {DNNL_ARG_DIFF_WEIGHTS, dnnl_wrap(p.weights, dweights)}};
  dnnl_execute(p, args);
  if (!plain) dnnl_reorder(key, p.weights, dweights, m.kernel, dkernel);
}

// ---- Winograd (opt-in: set_conv2d_winograd) ----
// oneDNN's jit_wino_4x3 kernels compute F(4×4, 3×3) Winograd convolutions: each 6×6 input tile is
// transformed (B^T·d·B), multiplied elementwise by the transformed kernel (G·g·G^T) and summed over
// channels, and transformed back (A^T·m·A) into a 4×4 output tile: 36 instead of 144
// multiplications per tile and channel pair, i.e. 4× fewer multiply-adds in the dominant batched
// products. The transforms' constants (up to 8 in A^T, 5 in B^T) scale the rounding error, which
// is therefore larger than the direct convolution's (tests bound it). They read and write
// activations in blocked layouts only (nChw16c), so operands are reordered to and from NHWC unless
// the caller hands them over in nChw16c (the *_blocked16 entry points).
// Backward passes: dx = the transposed convolution and dkernel = Σ x ⊗ dy, as for the direct ones.

// Where Winograd does less work: oneDNN 2.6 also accepts channel counts that are not multiples of
// 16 by padding them to 16, which for the Fashion-MNIST CNN's first convolution (1 → 32 channels)
// would multiply 16× more input channels than exist.
bool winograd_shape(const Conv2dDims& d) {
  return d.kh == 3 && d.kw == 3 && d.stride_h == 1 && d.stride_w == 1 && d.c % 16 == 0 && d.o % 16 == 0;
}

namespace {

// Shapes for which oneDNN has no Winograd kernel (it has them for AVX-512 CPUs only): asked once
// per shape, then the direct kernels run without asking again.
struct RefusedShapes {
  std::mutex mutex;
  std::set<DnnlKey> keys;
};

RefusedShapes& refused_shapes() {
  static RefusedShapes* r = new RefusedShapes();
  return *r;
}

dnnl::convolution_forward::desc winograd_forward_desc(const ConvDescs& m, prop_kind kind, bool bias) {
  if (bias) {
    return {
        kind,   algorithm::convolution_winograd, m.x_any, m.kernel_any, m.bias, m.y_any, m.strides, m.pad_l,
        m.pad_r};
  }
  return {kind, algorithm::convolution_winograd, m.x_any, m.kernel_any, m.y_any, m.strides, m.pad_l, m.pad_r};
}

dnnl::primitive_desc_base make_winograd(DnnlKind kind, const ConvDescs& m, bool bias,
                                        const dnnl::primitive_attr& attr) {
  // The inference-time forward also in training: the training variant ran 2.5× slower (17–20 vs
  // 7 ms on conv2 of the Fashion-MNIST CNN, batch 128), and a convolution's backward passes need
  // nothing from its forward primitive (no workspace).
  if (kind == kDnnlConvWinogradForward) {
    return dnnl::convolution_forward::primitive_desc(
        winograd_forward_desc(m, prop_kind::forward_inference, bias), attr, dnnl_engine());
  }
  const dnnl::convolution_forward::primitive_desc hint(
      winograd_forward_desc(m, prop_kind::forward_training, false), dnnl_engine());
  if (kind == kDnnlConvWinogradBackwardData) {
    const dnnl::convolution_backward_data::desc desc(algorithm::convolution_winograd, m.x_any, m.kernel_any,
                                                     m.y_any, m.strides, m.pad_l, m.pad_r);
    return dnnl::convolution_backward_data::primitive_desc(desc, attr, dnnl_engine(), hint);
  }
  const dnnl::convolution_backward_weights::desc desc(algorithm::convolution_winograd, m.x_any, m.kernel_any,
                                                      m.y_any, m.strides, m.pad_l, m.pad_r);
  return dnnl::convolution_backward_weights::primitive_desc(desc, attr, dnnl_engine(), hint);
}

// The cached Winograd primitive of `kind` for this shape, or null where oneDNN has none.
const DnnlPrimitive* winograd_primitive(DnnlKind kind, const ConvDescs& m, const Conv2dDims& d, bool bias) {
  if (!winograd_shape(d)) return nullptr;
  const DnnlKey key = conv_key(kind, d, bias);
  RefusedShapes& refused = refused_shapes();
  {
    std::lock_guard<std::mutex> lock(refused.mutex);
    if (refused.keys.count(key)) return nullptr;
  }
  try {
    return &dnnl_cached_primitive(
        key, [&](const dnnl::primitive_attr& attr) { return make_winograd(kind, m, bias, attr); });
  } catch (const dnnl::error&) {
    std::lock_guard<std::mutex> lock(refused.mutex);
    refused.keys.insert(key);
    return nullptr;
  }
}

// Reorder keys: the primitive's key and which operand (the layouts follow from both).
enum WinogradOperand : int64_t { kOperandX = 101, kOperandY = 102, kOperandDx = 103, kOperandDy = 104 };

DnnlKey operand_key(DnnlKind kind, const Conv2dDims& d, bool bias, WinogradOperand operand) {
  DnnlKey key = conv_key(kind, d, bias);
  key.push_back(operand);
  return key;
}

float* blocked_buffer(int slot, const dnnl::memory::desc& desc) {
  float* buffer = dnnl_thread_buffer(slot, desc.get_size());
  if (!buffer) throw dnnl::error(dnnl_out_of_memory, "normnet: cannot allocate a Winograd activation buffer");
  return buffer;
}

// oneDNN's nChw16c layout of an NHWC-shaped activation [n, h, w, c] (c a multiple of 16: no padding).
dnnl::memory::desc blocked16_desc(int64_t n, int64_t c, int64_t h, int64_t w) {
  return dnnl::memory::desc({n, c, h, w}, dnnl::memory::data_type::f32, tag::nChw16c);
}

}  // namespace

// y = conv(x, kernel) + bias by Winograd, y NHWC or (y_blocked16) nChw16c, x reordered into
// x_blocked16 when given (else a scratch buffer); false (nothing written) where oneDNN has no
// kernel for this shape.
bool winograd_forward(const float* x, const float* kernel, const float* bias, float* y, const Conv2dDims& d,
                      bool y_blocked16, float* x_blocked16) {
  const ConvDescs m = conv_descs(d);
  const DnnlKind kind = kDnnlConvWinogradForward;
  const bool with_bias = bias != nullptr;
  const DnnlPrimitive* p = winograd_primitive(kind, m, d, with_bias);
  if (!p || (y_blocked16 && p->dst != blocked16_desc(d.n, d.o, d.oh, d.ow))) return false;
  if (x_blocked16 && p->src != blocked16_desc(d.n, d.c, d.h, d.w)) return false;
  // Without a caller's buffer x goes to a scratch slot: 3 when y is the caller's too (slot 3 also
  // holds dx in a Winograd backward pass, so inference after training reuses its memory), else 2.
  float* x_blocked = x_blocked16 ? x_blocked16 : blocked_buffer(y_blocked16 ? 3 : 2, p->src);
  float* y_blocked = y_blocked16 ? y : blocked_buffer(3, p->dst);
  dnnl_reorder(operand_key(kind, d, with_bias, kOperandX), m.x, x, p->src, x_blocked);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl_wrap(p->src, x_blocked)},
      {DNNL_ARG_WEIGHTS, dnnl_wrap(p->weights, kernel_for(*p, m, kernel, conv_key(kind, d, with_bias)))},
      {DNNL_ARG_DST, dnnl_wrap(p->dst, y_blocked)}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl_wrap(m.bias, bias);
  dnnl_execute(*p, args);
  if (!y_blocked16) dnnl_reorder(operand_key(kind, d, with_bias, kOperandY), p->dst, y_blocked, m.y, y);
  return true;
}

// dx and dkernel (either may be null) by Winograd from x and dy, both NHWC or (blocked16) both
// nChw16c; each reordered (dy once for both passes) where its layout is not the kernels'. False
// (nothing written) where oneDNN has no kernel for this shape.
bool winograd_backward(const float* x, const float* dy, const float* kernel, float* dx, float* dkernel,
                       const Conv2dDims& d, bool blocked16) {
  const ConvDescs m = conv_descs(d);
  const DnnlPrimitive* data = dx ? winograd_primitive(kDnnlConvWinogradBackwardData, m, d, false) : nullptr;
  const DnnlPrimitive* weights =
      dkernel ? winograd_primitive(kDnnlConvWinogradBackwardWeights, m, d, false) : nullptr;
  if ((dx && !data) || (dkernel && !weights)) return false;
  if (!data && !weights) return true;
  const dnnl::memory::desc dy_desc = weights ? weights->dst : data->dst;
  if (data && weights && data->dst != weights->dst) return false;  // never seen: both read nChw16c
  const DnnlKind dy_kind = weights ? kDnnlConvWinogradBackwardWeights : kDnnlConvWinogradBackwardData;
  const dnnl::memory::desc given = blocked16 ? blocked16_desc(d.n, d.o, d.oh, d.ow) : m.y;
  const float* dy_blocked = dy;
  if (given != dy_desc) {
    float* buffer = blocked_buffer(2, dy_desc);
    DnnlKey key = operand_key(dy_kind, d, false, kOperandDy);
    key.push_back(blocked16);
    dnnl_reorder(std::move(key), given, dy, dy_desc, buffer);
    dy_blocked = buffer;
  }
  if (weights) {
    const DnnlKind kind = kDnnlConvWinogradBackwardWeights;
    const dnnl::memory::desc x_given = blocked16 ? blocked16_desc(d.n, d.c, d.h, d.w) : m.x;
    const float* x_blocked = x;
    if (x_given != weights->src) {
      float* buffer = blocked_buffer(3, weights->src);
      DnnlKey key = operand_key(kind, d, false, kOperandX);
      key.push_back(blocked16);
      dnnl_reorder(std::move(key), x_given, x, weights->src, buffer);
      x_blocked = buffer;
    }
    float* dweights = weights_buffer(*weights);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, dnnl_wrap(weights->src, x_blocked)},
        {DNNL_ARG_DIFF_DST, dnnl_wrap(dy_desc, dy_blocked)},
        {DNNL_ARG_DIFF_WEIGHTS, dnnl_wrap(weights->weights, dweights)}};
    dnnl_execute(*weights, args);
    dnnl_reorder(conv_key(kind, d, false), weights->weights, dweights, m.kernel, dkernel);
  }
  if (data) {
    const DnnlKind kind = kDnnlConvWinogradBackwardData;
    float* dx_blocked = blocked_buffer(3, data->src);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_DIFF_DST, dnnl_wrap(dy_desc, dy_blocked)},
        {DNNL_ARG_WEIGHTS, dnnl_wrap(data->weights, kernel_for(*data, m, kernel, conv_key(kind, d, false)))},
        {DNNL_ARG_DIFF_SRC, dnnl_wrap(data->src, dx_blocked)}};
    dnnl_execute(*data, args);
    dnnl_reorder(operand_key(kind, d, false, kOperandDx), data->src, dx_blocked, m.x, dx);
  }
  return true;
}

}  // namespace normnet::kernels::cpu::conv2d_onednn

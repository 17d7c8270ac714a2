// oneDNN plumbing shared by the matmul and convolution kernels: the CPU engine, a stream per
// thread, and a cache of primitives keyed by op kind and every shape, stride, padding and flag,
// so that a training step creates no primitive after its first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace normnet::kernels::cpu {

// The one CPU engine.
[[nodiscard]] dnnl::engine& dnnl_engine();

// Identifies a primitive: an op-kind tag first, then extents, strides, paddings and flags. The
// cache appends the thread count itself (oneDNN sizes its parallel work when a primitive is made).
using DnnlKey = std::vector<int64_t>;

// Op-kind tags, the first element of a DnnlKey.
enum DnnlKind : int64_t {
  kDnnlMatmul = 1,
  kDnnlConvForward = 2,
  kDnnlConvBackwardData = 3,
  kDnnlConvBackwardWeights = 4,
  kDnnlReorder = 5,
  kDnnlConvWinogradForward = 6,
  kDnnlConvWinogradBackwardData = 7,
  kDnnlConvWinogradBackwardWeights = 8,
};

// A cached primitive with its scratchpad size. Every primitive is made with a user-managed
// scratchpad (oneDNN's library scratchpad would tie a primitive to the thread that created it),
// which dnnl_execute() supplies from a per-thread buffer.
struct DnnlPrimitive {
  dnnl::primitive primitive;
  dnnl::memory::desc scratchpad;
  // The weights layout oneDNN chose (diff weights for a backward-weights primitive); zero when
  // the primitive has none. Convolutions let oneDNN pick it and reorder to Keras's layout.
  dnnl::memory::desc weights;
  // Its source (or diff source) and destination (or diff destination) layouts: what a Winograd
  // convolution, which reads and writes blocked activations only, needs its operands reordered to.
  dnnl::memory::desc src, dst;
  std::string impl;  // oneDNN's implementation name, e.g. "brg:avx512_core"
};

// Builds a primitive descriptor with the given attributes (scratchpad mode set to user).
using DnnlMaker = std::function<dnnl::primitive_desc_base(const dnnl::primitive_attr&)>;

// The primitive for `key`, made by `make` the first time it is asked for. Thread-safe (the cache
// is guarded by a mutex). Throws dnnl::error when oneDNN cannot make it.
[[nodiscard]] const DnnlPrimitive& dnnl_cached_primitive(DnnlKey key, const DnnlMaker& make);

// Runs `p` on this thread's stream with `args` and waits for it. Before running, the calling
// thread's OpenMP thread count is aligned with normnet::get_num_threads(). Safe to call from
// several threads at once, also with the same primitive.
void dnnl_execute(const DnnlPrimitive& p, std::unordered_map<int, dnnl::memory>& args);

// Aligns the calling thread's OpenMP thread count with normnet::get_num_threads(), for oneDNN
// calls outside dnnl_execute (dnnl_sgemm).
void dnnl_sync_threads();

// Copies `from` (layout `a`) into `to` (layout `b`) through a cached reorder primitive; `key`
// identifies the pair of layouts (kDnnlReorder is prepended).
void dnnl_reorder(DnnlKey key, const dnnl::memory::desc& a, const float* from, const dnnl::memory::desc& b,
                  float* to);

// A per-thread buffer of at least `bytes` (64-byte aligned) for `slot` 0 to 3, kept and grown
// across calls: weights (slot 0) and blocked activations (slots 2 and 3) in oneDNN's layouts while
// a convolution runs. Null if allocation fails.
[[nodiscard]] float* dnnl_thread_buffer(int slot, std::size_t bytes);

// A plain (strided) float32 memory descriptor.
[[nodiscard]] dnnl::memory::desc dnnl_plain_desc(const dnnl::memory::dims& dims,
                                                 const dnnl::memory::dims& strides);
// Wraps a caller's buffer (no copy) as oneDNN memory.
[[nodiscard]] dnnl::memory dnnl_wrap(const dnnl::memory::desc& desc, const float* data);

// How many primitives the cache has made since the process started.
[[nodiscard]] uint64_t dnnl_primitives_created();
// How many times a kernel could not use oneDNN (dnnl::error) and ran its reference loop instead.
[[nodiscard]] uint64_t dnnl_fallbacks();
void dnnl_note_fallback();
// "kind 1 [..key..]: impl" for every cached primitive, in creation order (for benchmarks).
[[nodiscard]] std::vector<std::string> dnnl_cached_impls();
// oneDNN's implementation name of the primitive this thread executed last ("" if none since the
// last dnnl_clear_last_impl()).
[[nodiscard]] std::string dnnl_last_impl();
void dnnl_clear_last_impl();

}  // namespace normnet::kernels::cpu

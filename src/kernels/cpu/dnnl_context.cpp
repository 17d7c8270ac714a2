// The oneDNN engine, per-thread streams and scratchpads, and the primitive cache.
#include "kernels/cpu/dnnl_context.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

struct Cache {
  std::mutex mutex;
  std::map<DnnlKey, DnnlPrimitive> entries;  // node-based: references stay valid
  std::vector<const std::pair<const DnnlKey, DnnlPrimitive>*> order;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: primitives may be used during static teardown
  return *c;
}

std::atomic<uint64_t> g_created{0};
std::atomic<uint64_t> g_fallbacks{0};
thread_local const DnnlPrimitive* t_last_executed = nullptr;

// A buffer that grows to the largest size asked of it; oneDNN's CPU stream is synchronous, so a
// per-thread buffer is never used by two executions at once.
struct GrowingBuffer {
  void* data = nullptr;
  std::size_t bytes = 0;
  GrowingBuffer() = default;
  GrowingBuffer(const GrowingBuffer&) = delete;
  GrowingBuffer& operator=(const GrowingBuffer&) = delete;
  ~GrowingBuffer() { std::free(data); }
  void* get(std::size_t want) {
    if (want > bytes) {
      const std::size_t rounded = (want + 63) / 64 * 64;
      std::free(data);
      data = std::aligned_alloc(64, rounded);
      bytes = data ? rounded : 0;
    }
    return data;
  }
};

void* thread_scratchpad(std::size_t bytes) {
  thread_local GrowingBuffer buffer;
  return buffer.get(bytes);
}

}  // namespace

// oneDNN (OpenMP runtime) uses omp_get_max_threads() of the calling thread, which for a thread
// other than the one that called set_num_threads() is still the process default.
void dnnl_sync_threads() {
  const int n = get_num_threads();
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
}

dnnl::engine& dnnl_engine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

const DnnlPrimitive& dnnl_cached_primitive(DnnlKey key, const DnnlMaker& make) {
  dnnl_sync_threads();
  key.push_back(get_num_threads());
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto found = c.entries.find(key);
  if (found != c.entries.end()) return found->second;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::primitive_desc_base pd = make(attr);
  dnnl::memory::desc weights = pd.query_md(dnnl::query::weights_md);
  if (weights.is_zero()) weights = pd.query_md(dnnl::query::diff_weights_md);
  dnnl::memory::desc src = pd.query_md(dnnl::query::src_md);
  if (src.is_zero()) src = pd.query_md(dnnl::query::diff_src_md);
  dnnl::memory::desc dst = pd.query_md(dnnl::query::dst_md);
  if (dst.is_zero()) dst = pd.query_md(dnnl::query::diff_dst_md);
  DnnlPrimitive made{dnnl::primitive(pd.get()), pd.scratchpad_desc(), weights, src, dst, pd.impl_info_str()};
  auto inserted = c.entries.emplace(std::move(key), std::move(made)).first;
  c.order.push_back(&*inserted);
  g_created.fetch_add(1);
  return inserted->second;
}

void dnnl_execute(const DnnlPrimitive& p, std::unordered_map<int, dnnl::memory>& args) {
  dnnl_sync_threads();
  const std::size_t scratch_bytes = p.scratchpad.get_size();
  if (scratch_bytes > 0) {
    void* scratch = thread_scratchpad(scratch_bytes);
    if (!scratch) throw dnnl::error(dnnl_out_of_memory, "normnet: cannot allocate a oneDNN scratchpad");
    args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(p.scratchpad, dnnl_engine(), scratch);
  }
  thread_local dnnl::stream stream(dnnl_engine());
  p.primitive.execute(stream, args);
  stream.wait();
  t_last_executed = &p;
}

void dnnl_reorder(DnnlKey key, const dnnl::memory::desc& a, const float* from, const dnnl::memory::desc& b,
                  float* to) {
  key.insert(key.begin(), kDnnlReorder);
  const DnnlPrimitive& p = dnnl_cached_primitive(std::move(key), [&](const dnnl::primitive_attr& attr) {
    return dnnl::reorder::primitive_desc(dnnl_engine(), a, dnnl_engine(), b, attr);
  });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_FROM, dnnl_wrap(a, from)}, {DNNL_ARG_TO, dnnl_wrap(b, to)}};
  dnnl_execute(p, args);
}

float* dnnl_thread_buffer(int slot, std::size_t bytes) {
  thread_local GrowingBuffer buffers[4];
  return static_cast<float*>(buffers[slot & 3].get(bytes));
}

dnnl::memory::desc dnnl_plain_desc(const dnnl::memory::dims& dims, const dnnl::memory::dims& strides) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

dnnl::memory dnnl_wrap(const dnnl::memory::desc& desc, const float* data) {
  // oneDNN takes a non-const handle for every argument; inputs are only read.
  return dnnl::memory(desc, dnnl_engine(), const_cast<float*>(data));
}

uint64_t dnnl_primitives_created() { return g_created.load(); }
uint64_t dnnl_fallbacks() { return g_fallbacks.load(); }
void dnnl_note_fallback() { g_fallbacks.fetch_add(1); }

std::string dnnl_last_impl() { return t_last_executed ? t_last_executed->impl : std::string(); }
void dnnl_clear_last_impl() { t_last_executed = nullptr; }

std::vector<std::string> dnnl_cached_impls() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::vector<std::string> lines;
  for (const auto* entry : c.order) {
    std::ostringstream line;
    line << "kind " << entry->first[0] << " [";
    for (std::size_t i = 1; i < entry->first.size(); ++i) line << (i > 1 ? ", " : "") << entry->first[i];
    line << "]: " << entry->second.impl;
    lines.push_back(line.str());
  }
  return lines;
}

}  // namespace normnet::kernels::cpu

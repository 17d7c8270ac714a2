// Size-class caching allocator. Classes are 4 per power of two (x1, x1.25, x1.5, x1.75), so a
// block wastes at most 25%; freed blocks wait in their class's free list for the next request.
#include "core/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace normnet::detail {
namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kMinBlock = 64;
// Blocks above this size are cached too; the cap only bounds the total held while free.
constexpr std::size_t kMaxCachedBytes = std::size_t{4} << 30;

std::size_t size_class(std::size_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  std::size_t power = kMinBlock;
  while (power * 2 < bytes) power *= 2;  // power < bytes <= 2*power
  // Quarter steps, but never finer than the alignment: aligned_alloc needs a multiple of it.
  const std::size_t step = std::max(power / 4, kAlignment);
  std::size_t size = power;
  while (size < bytes) size += step;
  return size;
}

struct Cache {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<void*>> free_lists;
  AllocatorStats stats;
};

Cache& cache() {
  static Cache* instance = new Cache();  // never destroyed: tensors may outlive static teardown
  return *instance;
}

// The AllocationBudget of this thread (no limit by default).
constexpr std::size_t kNoLimit = ~std::size_t{0};
thread_local std::size_t t_budget_limit = kNoLimit;
thread_local std::size_t t_budget_used = 0;

}  // namespace

AllocationBudget::AllocationBudget(std::size_t bytes) : previous_limit_(t_budget_limit), previous_used_(t_budget_used) {
  t_budget_limit = bytes;
  t_budget_used = 0;
}

AllocationBudget::~AllocationBudget() {
  t_budget_limit = previous_limit_;
  t_budget_used = previous_used_;
}

void* allocate(std::size_t bytes) {
  if (bytes > (std::size_t{1} << 62)) throw std::bad_alloc();  // size_class would overflow
  const std::size_t size = size_class(bytes);
  if (t_budget_limit != kNoLimit) {
    if (size > t_budget_limit - t_budget_used) throw std::bad_alloc();
    t_budget_used += size;
  }
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_lists.find(size);
    if (it != c.free_lists.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= size;
      ++c.stats.hits;
      return ptr;
    }
    ++c.stats.misses;
  }
  void* ptr = std::aligned_alloc(kAlignment, size);
  if (!ptr) {
    empty_allocator_cache();
    ptr = std::aligned_alloc(kAlignment, size);
    if (!ptr) throw std::bad_alloc();
  }
  return ptr;
}

void deallocate(void* ptr, std::size_t bytes) noexcept {
  if (!ptr) return;
  const std::size_t size = size_class(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.stats.cached_bytes + size <= kMaxCachedBytes) {
      try {
        c.free_lists[size].push_back(ptr);
        c.stats.cached_bytes += size;
        return;
      } catch (...) {
        // fall through and free
      }
    }
  }
  std::free(ptr);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void empty_allocator_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, list] : c.free_lists) {
    for (void* ptr : list) std::free(ptr);
    list.clear();
  }
  c.stats.cached_bytes = 0;
}

}  // namespace normnet::detail

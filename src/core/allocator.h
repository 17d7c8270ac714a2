// The caching allocator: 64-byte aligned blocks, recycled by size class so that a training loop
// stops calling malloc/free (and faulting fresh pages) after its first step.
#pragma once

#include <cstddef>
#include <cstdint>

namespace normnet::detail {

// A block of at least `bytes` bytes, 64-byte aligned; never null (throws std::bad_alloc).
void* allocate(std::size_t bytes);
// Returns a block obtained from allocate(bytes) with the same `bytes`.
void deallocate(void* ptr, std::size_t bytes) noexcept;

// While alive, allocate() on this thread throws std::bad_alloc once the bytes it handed out since
// the budget began (frees not subtracted) would exceed `bytes`. load_model rebuilds an untrusted
// architecture under one, so a tiny hostile file cannot ask for gigabytes of weights.
class AllocationBudget {
 public:
  explicit AllocationBudget(std::size_t bytes);
  ~AllocationBudget();
  AllocationBudget(const AllocationBudget&) = delete;
  AllocationBudget& operator=(const AllocationBudget&) = delete;

 private:
  std::size_t previous_limit_, previous_used_;
};

struct AllocatorStats {
  std::size_t cached_bytes = 0;  // held in the cache, free for reuse
  uint64_t hits = 0;             // allocations served from the cache
  uint64_t misses = 0;           // allocations that went to the system
};
AllocatorStats allocator_stats();
// Gives every cached block back to the system.
void empty_allocator_cache();

// A reference-counted buffer; tensors share one through std::shared_ptr.
class Storage {
 public:
  explicit Storage(std::size_t bytes) : bytes_(bytes), data_(allocate(bytes)) {}
  ~Storage() { deallocate(data_, bytes_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  [[nodiscard]] void* data() const { return data_; }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_;
  void* data_;
};

}  // namespace normnet::detail

// Batching for fit/evaluate/predict without copying the dataset: an epoch is an order of sample
// indices (a seeded permutation when shuffling), and a batch is a gather of its rows into a
// buffer that is reused while nobody else holds it.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.h"
#include "normnet/tensor.h"

namespace normnet::detail {

// Indices begin, begin+1, ..., end-1; shuffled by Fisher–Yates with `rng` when `shuffle`.
[[nodiscard]] std::vector<int64_t> epoch_order(int64_t begin, int64_t end, bool shuffle, Rng& rng);

// Copies rows of a [N, ...] tensor into a [count, ...] batch. The buffer of the previous call is
// written again when this gatherer is its only holder (no graph, no caller kept it); otherwise
// a new one is allocated (from the caching allocator), so a batch a caller kept never changes.
class RowGatherer {
 public:
  // Rows indices[0..count) of `source` (contiguous, batch axis first); indices must be in range.
  [[nodiscard]] Tensor gather(const Tensor& source, const int64_t* indices, int64_t count);

 private:
  Tensor buffer_;
};

// One RowGatherer per tensor of a list (a model's inputs, or its targets).
class BatchGatherer {
 public:
  [[nodiscard]] std::vector<Tensor> gather(const std::vector<Tensor>& sources, const int64_t* indices, int64_t count);

 private:
  std::vector<RowGatherer> rows_;
};

// Number of batches of `batch_size` covering `n` samples (the last one may be smaller).
[[nodiscard]] inline int64_t batch_count(int64_t n, int64_t batch_size) { return (n + batch_size - 1) / batch_size; }

}  // namespace normnet::detail

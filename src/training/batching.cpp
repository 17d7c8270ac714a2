// Epoch orders and row gathers for the training loop (see batching.h).
#include "training/batching.h"

#include <cstring>
#include <numeric>

#include "core/allocator.h"

namespace normnet::detail {

std::vector<int64_t> epoch_order(int64_t begin, int64_t end, bool shuffle, Rng& rng) {
  std::vector<int64_t> order(static_cast<std::size_t>(end > begin ? end - begin : 0));
  std::iota(order.begin(), order.end(), begin);
  if (shuffle) {
    // Fisher–Yates from the back: every permutation equally likely, the same on every platform.
    for (std::size_t i = order.size(); i > 1; --i) {
      const std::size_t j = static_cast<std::size_t>(rng.below(i));
      std::swap(order[i - 1], order[j]);
    }
  }
  return order;
}

Tensor RowGatherer::gather(const Tensor& source, const int64_t* indices, int64_t count) {
  if (source.is_symbolic() || source.dim() == 0) {
    throw ValueError(str("batching: expected a real tensor with a sample axis, got shape ", source.shape()));
  }
  Shape shape = source.shape();
  const int64_t n = shape[0];
  shape[0] = count;
  const std::size_t row_bytes = static_cast<std::size_t>(n == 0 ? 0 : source.numel() / n) * dtype_size(source.dtype());

  // Reuse the last buffer only when it is ours alone: a graph or a caller holding the previous
  // batch keeps its values.
  const bool reusable = buffer_.defined() && buffer_.impl().use_count() == 1 &&
                        buffer_.impl()->storage.use_count() == 1 && buffer_.dtype() == source.dtype() &&
                        buffer_.shape() == shape;
  if (reusable) {
    buffer_.impl()->mask.reset();
    buffer_.impl()->grad.reset();
    buffer_.impl()->requires_grad = false;
  } else {
    buffer_ = Tensor::empty(shape, source.dtype());
  }

  const auto* src = static_cast<const unsigned char*>(source.impl()->storage->data());
  auto* dst = static_cast<unsigned char*>(buffer_.impl()->storage->data());
  for (int64_t i = 0; i < count; ++i) {
    const int64_t row = indices[i];
    if (row < 0 || row >= n) {
      throw ValueError(str("batching: sample index ", row, " out of range for shape ", source.shape()));
    }
    std::memcpy(dst + static_cast<std::size_t>(i) * row_bytes, src + static_cast<std::size_t>(row) * row_bytes, row_bytes);
  }
  return buffer_;
}

std::vector<Tensor> BatchGatherer::gather(const std::vector<Tensor>& sources, const int64_t* indices, int64_t count) {
  if (rows_.size() != sources.size()) rows_.assign(sources.size(), RowGatherer());
  std::vector<Tensor> out;
  out.reserve(sources.size());
  for (std::size_t k = 0; k < sources.size(); ++k) out.push_back(rows_[k].gather(sources[k], indices, count));
  return out;
}

}  // namespace normnet::detail

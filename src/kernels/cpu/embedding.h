// Embedding lookup: rows of a [V, D] table gathered by int64 indices, and the scatter-add of
// their gradient. Raw loops; indices must already be checked to lie in [0, V).
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// T is float or double. n = number of indices; y and dy are [n, D].

// y[i, :] = table[idx[i], :]      ⇒ dtable[idx[i], :] += dy[i, :]   (repeated indices add up)
template <class T> void embedding_forward(const T* table, const int64_t* indices, int64_t n, int64_t D, T* y);
// Splits the D columns among threads: each table element is written by one thread, in index
// order, so the result is race-free and the same for every thread count.
template <class T> void embedding_backward(const int64_t* indices, const T* dy, int64_t n, int64_t D, T* dtable);
// Naive twin of embedding_backward: one thread, row by row.
template <class T> void embedding_backward_reference(const int64_t* indices, const T* dy, int64_t n, int64_t D,
                                                     T* dtable);

}  // namespace normnet::kernels::cpu

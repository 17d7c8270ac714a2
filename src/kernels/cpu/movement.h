// Raw loops that move elements: axis permutation (blocked transpose), and the row-block copies
// behind slice and concat. They know nothing of autograd, allocate nothing and throw nothing.
//
// Shape letters: a tensor cut at an axis is viewed as [outer, row], where `outer` is the product
// of the extents before the axis and `row` = extent(axis) · (product of the extents after it).
// Instantiated for float, double and int64_t, and (forward only) for uint8_t.
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// ---- permute: y = x with axes reordered, y.shape[k] = x.shape[perm[k]] ----

// Simplifies a permutation of x [x_shape] (rank `rank`) into an equivalent one of lower rank:
// axes of extent 1 are dropped, and input axes that stay adjacent and in order are merged.
// Writes the reduced output extents and, per output axis, the stride of x along it; both arrays
// must hold `rank` entries. Returns the reduced rank (0 when x has a single element).
int permute_plan(int rank, const int64_t* x_shape, const int* perm, int64_t* out_shape,
                 int64_t* x_strides);

// y [out_shape] (contiguous) = x read at Σ index_k · x_strides[k], for a plan of permute_plan.
// When the fastest output axis is contiguous in x, rows are copied straight; otherwise the two
// axes that are contiguous in x and in y are transposed in cache-sized tiles. OpenMP over tiles
// and outer axes.
template <class T>
void permute_forward(const T* x, T* y, int rank, const int64_t* out_shape, const int64_t* x_strides);

// The naive twin: one multi-index decomposition per element, no planning, no threads.
template <class T>
void permute_reference(const T* x, T* y, int rank, const int64_t* x_shape, const int* perm);

// ---- slice / concat: blocks of rows between [outer, x_row] and [outer, y_row] ----

// y [outer, y_row] = x [outer, x_row] columns offset <= c < offset + y_row.
template <class T>
void slice_forward(const T* x, T* y, int64_t outer, int64_t x_row, int64_t y_row, int64_t offset);

// dx [outer, x_row] columns offset <= c < offset + dy_row += dy [outer, dy_row]; the rest of dx
// is left as it is.
template <class T>
void slice_backward(const T* dy, T* dx, int64_t outer, int64_t x_row, int64_t dy_row, int64_t offset);

// y [outer, y_row] columns offset <= c < offset + x_row = x [outer, x_row] (one concat input).
template <class T>
void concat_forward(const T* x, T* y, int64_t outer, int64_t x_row, int64_t y_row, int64_t offset);

}  // namespace normnet::kernels::cpu

// Broadcasting binary elementwise kernels. Operands are addressed through per-axis strides over
// the output's shape (stride 0 on a broadcast axis), so one loop serves every broadcast pattern.
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

enum class BinaryOp {
  kAdd,      // a + b
  kSub,      // a - b
  kMul,      // a * b
  kDiv,      // a / b
  kMaximum,  // max(a, b)
  kMinimum,  // min(a, b)
  kPow,      // a ^ b
  kGreaterEqual,  // 1 where a >= b else 0 (for maximum's backward)
  kLessEqual,     // 1 where a <= b else 0 (for minimum's backward)
};

// out[i] = op(a[offset_a(i)], b[offset_b(i)]) over the row-major index space `shape` (rank
// `rank`); a_strides / b_strides give each operand's element stride per output axis (0 where it
// is broadcast).
template <class T>
void binary_forward(BinaryOp op, const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides,
                    T* out, const int64_t* shape, int rank);

// out[i] = x[offset(i)]: materializes a broadcast (x_strides as above).
template <class T>
void broadcast_copy(const T* x, const int64_t* x_strides, T* out, const int64_t* shape, int rank);

}  // namespace normnet::kernels::cpu

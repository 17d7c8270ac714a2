// Broadcasting binary kernels: a flat vectorized loop when each operand is dense or a scalar,
// otherwise one strided row loop per run of the last axis, rows spread over OpenMP threads.
#include "kernels/cpu/binary.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

constexpr int64_t kParallelThreshold = 1 << 15;

template <class T, class F>
void run(F f, const T* a, const int64_t* as, const T* b, const int64_t* bs, T* out, const int64_t* shape,
         int rank) {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[i];
  if (n == 0) return;
  // Dense or scalar operands: one flat loop.
  bool a_dense = true, b_dense = true, a_scalar = true, b_scalar = true;
  int64_t expect = 1;
  for (int i = rank - 1; i >= 0; --i) {
    if (shape[i] == 1) continue;
    a_dense = a_dense && as[i] == expect;
    b_dense = b_dense && bs[i] == expect;
    a_scalar = a_scalar && as[i] == 0;
    b_scalar = b_scalar && bs[i] == 0;
    expect *= shape[i];
  }
  const int threads = n >= kParallelThreshold ? normnet::get_num_threads() : 1;
  // One loop per case, so that each operand is a contiguous load or a broadcast register (an
  // index i·stride with a runtime stride of 0 or 1 compiled to one scalar load per element).
  if (a_dense && b_dense) return parallel_for_simd(n, threads, [=](int64_t i) { out[i] = f(a[i], b[i]); });
  if (a_dense && b_scalar) {
    const T bv = b[0];
    return parallel_for_simd(n, threads, [=](int64_t i) { out[i] = f(a[i], bv); });
  }
  if (a_scalar && b_dense) {
    const T av = a[0];
    return parallel_for_simd(n, threads, [=](int64_t i) { out[i] = f(av, b[i]); });
  }
  if (a_scalar && b_scalar) {
    const T v = f(a[0], b[0]);
    return parallel_for_simd(n, threads, [=](int64_t i) { out[i] = v; });
  }
  // General: rows of the last axis.
  const int64_t inner = rank > 0 ? shape[rank - 1] : 1;
  const int64_t rows = n / inner;
  const int64_t sa = rank > 0 ? as[rank - 1] : 0, sb = rank > 0 ? bs[rank - 1] : 0;
  parallel_for(rows, threads, [=](int64_t r) {
    int64_t rem = r, oa = 0, ob = 0;
    for (int i = rank - 2; i >= 0; --i) {
      const int64_t idx = rem % shape[i];
      rem /= shape[i];
      oa += idx * as[i];
      ob += idx * bs[i];
    }
    const T* pa = a + oa;
    const T* pb = b + ob;
    T* po = out + r * inner;
#pragma omp simd
    for (int64_t j = 0; j < inner; ++j) po[j] = f(pa[j * sa], pb[j * sb]);
  });
}

}  // namespace

template <class T>
void binary_forward(BinaryOp op, const T* a, const int64_t* as, const T* b, const int64_t* bs, T* out,
                    const int64_t* shape, int rank) {
  switch (op) {
    case BinaryOp::kAdd: run<T>([](T x, T y) { return x + y; }, a, as, b, bs, out, shape, rank); break;
    case BinaryOp::kSub: run<T>([](T x, T y) { return x - y; }, a, as, b, bs, out, shape, rank); break;
    case BinaryOp::kMul: run<T>([](T x, T y) { return x * y; }, a, as, b, bs, out, shape, rank); break;
    case BinaryOp::kDiv: run<T>([](T x, T y) { return x / y; }, a, as, b, bs, out, shape, rank); break;
    // NaN in either operand propagates (x > y and x < y are both false for NaN, so test x != x).
    case BinaryOp::kMaximum:
      run<T>([](T x, T y) { return (x != x || x >= y) ? x : y; }, a, as, b, bs, out, shape, rank);
      break;
    case BinaryOp::kMinimum:
      run<T>([](T x, T y) { return (x != x || x <= y) ? x : y; }, a, as, b, bs, out, shape, rank);
      break;
    case BinaryOp::kPow: run<T>([](T x, T y) { return std::pow(x, y); }, a, as, b, bs, out, shape, rank); break;
    case BinaryOp::kGreaterEqual:
      run<T>([](T x, T y) { return x >= y ? T(1) : T(0); }, a, as, b, bs, out, shape, rank);
      break;
    case BinaryOp::kLessEqual:
      run<T>([](T x, T y) { return x <= y ? T(1) : T(0); }, a, as, b, bs, out, shape, rank);
      break;
  }
}

template <class T>
void broadcast_copy(const T* x, const int64_t* xs, T* out, const int64_t* shape, int rank) {
  std::vector<int64_t> zeros(static_cast<std::size_t>(rank), 0);
  run<T>([](T v, T) { return v; }, x, xs, x, zeros.data(), out, shape, rank);
}

template void binary_forward<float>(BinaryOp, const float*, const int64_t*, const float*, const int64_t*, float*,
                                    const int64_t*, int);
template void binary_forward<double>(BinaryOp, const double*, const int64_t*, const double*, const int64_t*,
                                     double*, const int64_t*, int);
template void binary_forward<int64_t>(BinaryOp, const int64_t*, const int64_t*, const int64_t*, const int64_t*,
                                      int64_t*, const int64_t*, int);
template void broadcast_copy<float>(const float*, const int64_t*, float*, const int64_t*, int);
template void broadcast_copy<double>(const double*, const int64_t*, double*, const int64_t*, int);
template void broadcast_copy<int64_t>(const int64_t*, const int64_t*, int64_t*, const int64_t*, int);

}  // namespace normnet::kernels::cpu

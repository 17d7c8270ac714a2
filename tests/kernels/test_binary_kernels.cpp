// Raw binary kernels: every dense/scalar operand pattern of the flat loop and the strided row loop
// give op(a, b) element by element (non-commutative ops catch swapped operands), on one thread
// and on two; and the parallel_for helpers visit every index exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/cpu/binary.h"
#include "kernels/cpu/parallel.h"
#include "kernels/kernel_test_util.h"

namespace normnet::kernels::cpu {
namespace {

// out = op(a, b) over `shape` with the given strides, computed element by element.
std::vector<float> expected(BinaryOp op, const std::vector<float>& a, const std::vector<int64_t>& as,
                            const std::vector<float>& b, const std::vector<int64_t>& bs, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> out(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
      const int64_t idx = rem % shape[d];
      rem /= shape[d];
      oa += idx * as[d];
      ob += idx * bs[d];
    }
    const float x = a[static_cast<std::size_t>(oa)], y = b[static_cast<std::size_t>(ob)];
    out[static_cast<std::size_t>(i)] = op == BinaryOp::kSub ? x - y : x / y;
  }
  return out;
}

TEST(BinaryKernels, EveryOperandPatternOnOneAndTwoThreads) {
  // 3 × 20000 elements: past the kernel's parallel threshold; 3 × 5: below it.
  for (const int64_t cols : {int64_t{5}, int64_t{20000}}) {
    const std::vector<int64_t> shape{3, cols};
    const std::size_t n = static_cast<std::size_t>(3 * cols);
    const auto dense_a = random_values<float>(n, 1), dense_b = random_values<float>(n, 2);
    const std::vector<float> scalar_a{2.5f}, scalar_b{-0.75f};
    const auto row_b = random_values<float>(static_cast<std::size_t>(cols), 3);  // broadcast over rows
    struct Case {
      const char* name;
      const std::vector<float>& a;
      std::vector<int64_t> as;
      const std::vector<float>& b;
      std::vector<int64_t> bs;
    };
    const std::vector<Case> cases = {
        {"dense, dense", dense_a, {cols, 1}, dense_b, {cols, 1}},
        {"dense, scalar", dense_a, {cols, 1}, scalar_b, {0, 0}},
        {"scalar, dense", scalar_a, {0, 0}, dense_b, {cols, 1}},
        {"scalar, scalar", scalar_a, {0, 0}, scalar_b, {0, 0}},
        {"dense, row broadcast", dense_a, {cols, 1}, row_b, {0, 1}},
        {"row broadcast, dense", row_b, {0, 1}, dense_b, {cols, 1}},
    };
    for (const Case& c : cases) {
      for (const BinaryOp op : {BinaryOp::kSub, BinaryOp::kDiv}) {
        const std::vector<float> want = expected(op, c.a, c.as, c.b, c.bs, shape);
        for (const int threads : {1, 2}) {
          std::vector<float> out(n, -1.0f);
          with_threads(threads, [&] {
            binary_forward(op, c.a.data(), c.as.data(), c.b.data(), c.bs.data(), out.data(), shape.data(), 2);
          });
          for (std::size_t i = 0; i < n; ++i) {
            ASSERT_EQ(out[i], want[i]) << c.name << ", op " << static_cast<int>(op) << ", " << threads
                                       << " thread(s), " << cols << " columns, element " << i;
          }
        }
      }
    }
  }
}

TEST(ParallelFor, VisitsEveryIndexOnceWithAndWithoutARegion) {
  for (const int threads : {0, 1, 2, 3}) {
    for (const int64_t n : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{7}, int64_t{1000}}) {
      std::vector<std::atomic<int>> visits(static_cast<std::size_t>(n));
      parallel_for(n, threads, [&](int64_t i) { visits[static_cast<std::size_t>(i)].fetch_add(1); });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(visits[static_cast<std::size_t>(i)].load(), 1) << threads << " " << n << " " << i;
      std::vector<int> writes(static_cast<std::size_t>(n), 0);
      int* w = writes.data();
      parallel_for_simd(n, threads, [=](int64_t i) { w[i] += static_cast<int>(i) + 1; });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(writes[static_cast<std::size_t>(i)], i + 1) << threads << " " << n;
    }
  }
}

}  // namespace
}  // namespace normnet::kernels::cpu

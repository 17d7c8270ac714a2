// The loops that run a short-row kernel (l2_normalize_rows.h) over many rows, eight at a time.
//
// A group is two phases: its sums (eight rows read from memory) and its writes (the rows read
// again from L1, the results stored). run_phased runs them one after the other; run_pipelined
// computes the sums of group j + 1 between the row writes of group j, so that the next rows' loads
// are in flight while this group's stores drain, as in a copy. On Zen 5 the forward over
// [32, 56, 56, 64] ran at 0.56–0.76 of the copy bandwidth as phases and at 0.92–1.10 pipelined
// (docs/benchmarks.md, step 34). The AVX-512 backward is pipelined too, its two inputs prefetched
// kPrefetchBytes ahead (step 35: pipelined alone it was 0–20 % slower than as phases); the AVX2
// backward, not measured that way on an AVX2 machine, stays as phases. Every row gets the same
// operations in the same order either way, so the bits do not depend on the loop.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/l2_normalize_rows.h"

namespace normnet::kernels::cpu::l2_rows {

// How far ahead of the row being summed the AVX-512 backward prefetches x and dy (into L1): on
// Zen 5, forward + backward over [32, 56, 56, 64] at 0.53–0.75 of the one-source copy and
// 0.93–1.09 of the copy from memory, against 0.50–0.55 and 0.70–0.97 as phases; 1 and 4 KiB ahead
// did worse than 2 (docs/benchmarks.md, step 35).
inline constexpr int64_t kPrefetchBytes = 2048;

// Prefetches the n floats kPrefetchBytes past row (a prefetch never faults: past the end of a
// buffer it is harmless).
inline void prefetch_ahead(const float* row, int64_t n) {
  const auto p = reinterpret_cast<std::uintptr_t>(row) + kPrefetchBytes;
  for (int64_t b = 0; b < n * int64_t{sizeof(float)}; b += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(p + static_cast<std::uintptr_t>(b)), 0, 3);
}

// The factors of one group: row g is written by the kernel when bit g of `fast` is set, with its
// two floats p[g] and q[g] (forward: 1/‖v‖ as hi + lo; backward: a and b); the other live rows go
// to the caller's Rest.
struct GroupFactors {
  unsigned fast = 0;
  alignas(32) float p[kGroup] = {};
  alignas(32) float q[kGroup] = {};
};

// The arguments of a forward and a backward kernel (each ISA's Forward and Backward derive from
// these); kN > 0 fixes the row length at compile time (the loops unroll), kN = 0 reads runtime_n.
template <int64_t kN>
struct ForwardArgs {
  const float* x;
  float* y;
  double* denom;
  int64_t runtime_n;
  int64_t n() const { return kN > 0 ? kN : runtime_n; }
};

template <int64_t kN>
struct BackwardArgs {
  const float* x;
  const float* dy;
  const double* denom;
  float* dx;
  int64_t runtime_n;
  EpsilonMode mode;
  bool overwrite;
  int64_t n() const { return kN > 0 ? kN : runtime_n; }
};

// A kernel K provides
//   Partial                     one row's partial sums (a register or two);
//   static Partial zero();      the sums of a row past the end;
//   Partial partial(row);       the sums of row `row`;
//   void factors(group, live, const Partial* s, GroupFactors& f);  the group's factors from its
//                               kGroup rows' sums (the first `live` real), stored denominators;
//   void write(row, p, q);      the row's output.

// The number of rows of group j of `rows`.
inline int group_size(int64_t j, int64_t rows) {
  return static_cast<int>(std::min<int64_t>(kGroup, rows - j * kGroup));
}

// Hands the live rows of a group that `fast` leaves to rest.
inline void hand_rest(int64_t first, int live, unsigned fast, Rest rest) {
  for (unsigned left = ((1u << live) - 1u) & ~fast; left != 0; left &= left - 1)
    rest.fn(rest.ctx, first + __builtin_ctz(left));
}

// Kernel k over rows [0, rows), each group's sums before its writes.
template <class K>
void run_phased(const K& k, int64_t rows, Rest rest) {
  for (int64_t j = 0; j * kGroup < rows; ++j) {
    const int live = group_size(j, rows);
    const int64_t first = j * kGroup;
    typename K::Partial s[kGroup];
    for (int g = 0; g < kGroup; ++g) s[g] = g < live ? k.partial(first + g) : K::zero();
    GroupFactors f;
    k.factors(j, live, s, f);
    for (int g = 0; g < live; ++g) {
      if ((f.fast >> g) & 1u) k.write(first + g, f.p[g], f.q[g]);
    }
    hand_rest(first, live, f.fast, rest);
  }
}

// Kernel k over rows [0, rows), the sums of each group between the writes of the one before.
template <class K>
void run_pipelined(const K& k, int64_t rows, Rest rest) {
  if (rows <= 0) return;
  const int64_t groups = (rows + kGroup - 1) / kGroup;
  typename K::Partial s[kGroup];
  GroupFactors f;
  int live = group_size(0, rows);
  for (int g = 0; g < kGroup; ++g) s[g] = g < live ? k.partial(g) : K::zero();
  k.factors(0, live, s, f);
  for (int64_t j = 0; j < groups; ++j) {
    const int next = j + 1 < groups ? group_size(j + 1, rows) : 0;
    const int64_t first = j * kGroup;
    for (int g = 0; g < kGroup; ++g) {
      if (next > 0) s[g] = g < next ? k.partial(first + kGroup + g) : K::zero();
      if ((f.fast >> g) & 1u) k.write(first + g, f.p[g], f.q[g]);
    }
    hand_rest(first, live, f.fast, rest);
    if (next > 0) k.factors(j + 1, next, s, f);
    live = next;
  }
}

// exact_forward for an ISA's kernel Forward<kN, kStream> (kN: by_length).
template <template <int64_t, bool> class Forward>
void run_forward(const float* x, float* y, double* denom, int64_t rows, int64_t n, bool stream, Rest rest) {
  by_length(n, [&](auto length) {
    if (stream)
      run_pipelined(Forward<length.value, true>{{x, y, denom, n}}, rows, rest);
    else
      run_pipelined(Forward<length.value, false>{{x, y, denom, n}}, rows, rest);
  });
}

}  // namespace normnet::kernels::cpu::l2_rows

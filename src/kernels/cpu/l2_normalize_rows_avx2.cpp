// The short-row L2-normalization kernels (l2_normalize_rows.h) for AVX2 with FMA: a group's eight
// double lanes are two 256-bit halves (rows 0–3 and 4–7), and every sum adds the same terms in the
// same order as the AVX-512 code (l2_normalize_rows_avx512.cpp), so both builds give the same bits.
//   forward  y = v/‖v‖, ‖v‖ = sqrt(Σv²) summed in double;
//   backward dv = (dy − y·⟨dy, y⟩)/‖v‖ = dy·a − v·b with a = 1/‖v‖, b = a²·⟨dy, y⟩.
#include <cfloat>

#include "kernels/cpu/l2_normalize_rows.h"
#include "kernels/cpu/l2_normalize_rows_loops.h"

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#include <immintrin.h>

namespace normnet::kernels::cpu::l2_rows {

namespace {

// 32-bit lanes [0, left) set, left clamped to [0, 8]: the masked loads and stores of a row's tail.
__m256i tail_mask(int64_t left) {
  const int count = static_cast<int>(left < 0 ? 0 : left > 8 ? 8 : left);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Eight doubles: lanes 0–3 and 4–7 of the AVX-512 code's one register.
struct Lanes8 {
  __m256d lo, hi;
};

// The 64-bit lanes g (g < 4) of `bits` >> 4·half as all-ones masks.
__m256d lane_mask(unsigned bits, int half) {
  const __m256i bit = _mm256_setr_epi64x(1, 2, 4, 8);
  const __m256i set =
      _mm256_and_si256(_mm256_set1_epi64x(static_cast<int64_t>((bits >> (4 * half)) & 15u)), bit);
  return _mm256_castsi256_pd(_mm256_cmpeq_epi64(set, bit));
}

unsigned bits_of(__m256d lo_mask, __m256d hi_mask) {
  return static_cast<unsigned>(_mm256_movemask_pd(lo_mask)) |
         static_cast<unsigned>(_mm256_movemask_pd(hi_mask)) << 4;
}

unsigned in_range(const Lanes8& v, double low, double high) {
  const auto half = [&](__m256d x) {
    return _mm256_and_pd(_mm256_cmp_pd(x, _mm256_set1_pd(low), _CMP_GE_OQ),
                         _mm256_cmp_pd(x, _mm256_set1_pd(high), _CMP_LE_OQ));  // false for NaN
  };
  return bits_of(half(v.lo), half(v.hi));
}

// Σ a_r·b_r of one row in double, as the AVX-512 row_dot's eight partial sums: per 16 floats,
// acc[0] and acc[1] take floats 0–3 and 4–7 (its first accumulator), acc[2] and acc[3] floats
// 8–11 and 12–15 (its second); the tail is one masked step with zeros beyond the row, as there.
template <bool kSquare>
Lanes8 row_dot(const float* a, const float* b, int64_t n) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  const auto step = [&](__m256 va, __m256 vb, int q) {  // floats 8q to 8q + 7 of the 16
    const __m256d a0 = _mm256_cvtps_pd(_mm256_castps256_ps128(va));
    const __m256d a1 = _mm256_cvtps_pd(_mm256_extractf128_ps(va, 1));
    if constexpr (kSquare) {
      acc[2 * q] = _mm256_fmadd_pd(a0, a0, acc[2 * q]);
      acc[2 * q + 1] = _mm256_fmadd_pd(a1, a1, acc[2 * q + 1]);
    } else {
      acc[2 * q] = _mm256_fmadd_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(vb)), acc[2 * q]);
      acc[2 * q + 1] = _mm256_fmadd_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(vb, 1)), acc[2 * q + 1]);
    }
  };
  int64_t r = 0;
  for (; r + 16 <= n; r += 16) {
    for (int q = 0; q < 2; ++q) {
      const __m256 va = _mm256_loadu_ps(a + r + 8 * q);
      step(va, kSquare ? va : _mm256_loadu_ps(b + r + 8 * q), q);
    }
  }
  if (r < n) {
    for (int q = 0; q < 2; ++q) {
      const __m256i m = tail_mask(n - r - 8 * q);
      const __m256 va = _mm256_maskload_ps(a + r + 8 * q, m);
      step(va, kSquare ? va : _mm256_maskload_ps(b + r + 8 * q, m), q);
    }
  }
  return {_mm256_add_pd(acc[0], acc[2]), _mm256_add_pd(acc[1], acc[3])};
}

// Lane g of the result = ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) over the eight lanes of
// s[g], for four rows: the AVX-512 lane_sums' order. hadd(x, y) = [x0 + x1, y0 + y1, x2 + x3, y2 + y3].
__m256d four_row_sums(const Lanes8* s) {
  const auto pairs = [&](__m256d Lanes8::*part) {
    const __m256d h01 = _mm256_hadd_pd(s[0].*part, s[1].*part), h23 = _mm256_hadd_pd(s[2].*part, s[3].*part);
    return _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20), _mm256_permute2f128_pd(h01, h23, 0x31));
  };
  return _mm256_add_pd(pairs(&Lanes8::lo), pairs(&Lanes8::hi));
}

// The per-row sums of a group, transposed: rows 0–3 in lo, 4–7 in hi.
Lanes8 group_sums(const Lanes8* s) { return {four_row_sums(s), four_row_sums(s + 4)}; }

// The floats hi (inv rounded) and lo (inv − hi rounded) of each row, as the AVX-512 code splits them.
void split_to_floats(const Lanes8& inv, float* his, float* los) {
  const __m128 h0 = _mm256_cvtpd_ps(inv.lo), h1 = _mm256_cvtpd_ps(inv.hi);
  _mm_storeu_ps(his, h0);
  _mm_storeu_ps(his + 4, h1);
  _mm_storeu_ps(los, _mm256_cvtpd_ps(_mm256_sub_pd(inv.lo, _mm256_cvtps_pd(h0))));
  _mm_storeu_ps(los + 4, _mm256_cvtpd_ps(_mm256_sub_pd(inv.hi, _mm256_cvtps_pd(h1))));
}

Lanes8 reciprocal(const Lanes8& d) {
  const __m256d one = _mm256_set1_pd(1.0);
  return {_mm256_div_pd(one, d.lo), _mm256_div_pd(one, d.hi)};
}

// y's eight floats at out: streamed (32-byte aligned, see stream_aligned) or stored.
template <bool kStream>
void store8(float* out, __m256 v) {
  if constexpr (kStream)
    _mm256_stream_ps(out, v);
  else
    _mm256_storeu_ps(out, v);
}

// The forward as a kernel of run_pipelined (kN: ForwardArgs).
template <int64_t kN, bool kStream>
struct Forward : ForwardArgs<kN> {
  using ForwardArgs<kN>::x, ForwardArgs<kN>::y, ForwardArgs<kN>::denom, ForwardArgs<kN>::n;

  using Partial = Lanes8;
  static Partial zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }

  Partial partial(int64_t row) const {
    const float* v = x + row * n();
    return row_dot<true>(v, v, n());
  }

  void factors(int64_t group, int rows, const Partial* sums, GroupFactors& f) const {
    const unsigned live = (1u << rows) - 1u;
    const Lanes8 s = group_sums(sums);
    const Lanes8 d = {_mm256_sqrt_pd(s.lo), _mm256_sqrt_pd(s.hi)};
    const Lanes8 inv = reciprocal(d);
    // 1/d = hi + lo in two floats: fma(v, hi, v·lo) is v/d rounded once (see l2_normalize_rows_avx512.cpp).
    f.fast = live & in_range(s, kTinySum, DBL_MAX) & in_range(inv, 0x1p-100, static_cast<double>(FLT_MAX));
    if (denom) {
      alignas(32) double ds[kGroup];
      _mm256_store_pd(ds, d.lo);
      _mm256_store_pd(ds + 4, d.hi);
      for (int g = 0; g < rows; ++g) {
        if ((f.fast >> g) & 1u) denom[group * kGroup + g] = ds[g];
      }
    }
    split_to_floats(inv, f.p, f.q);
  }

  void write(int64_t row, float hi, float lo) const {
    const __m256 h = _mm256_set1_ps(hi), l = _mm256_set1_ps(lo);
    const float* v = x + row * n();
    float* out = y + row * n();
    int64_t r = 0;
    for (; r + 8 <= n(); r += 8) {
      const __m256 w = _mm256_loadu_ps(v + r);
      store8<kStream>(out + r, _mm256_fmadd_ps(w, h, _mm256_mul_ps(w, l)));
    }
    if (r < n()) {  // (never when streaming: n is a multiple of 8)
      const __m256i m = tail_mask(n() - r);
      const __m256 w = _mm256_maskload_ps(v + r, m);
      _mm256_maskstore_ps(out + r, m, _mm256_fmadd_ps(w, h, _mm256_mul_ps(w, l)));
    }
  }
};

// The backward as a kernel of run_phased.
template <int64_t kN, bool kStream>
struct Backward : BackwardArgs<kN> {
  using BackwardArgs<kN>::x, BackwardArgs<kN>::dy, BackwardArgs<kN>::denom, BackwardArgs<kN>::dx,
      BackwardArgs<kN>::mode, BackwardArgs<kN>::overwrite, BackwardArgs<kN>::n;

  using Partial = Lanes8;
  static Partial zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }

  Partial partial(int64_t row) const { return row_dot<false>(dy + row * n(), x + row * n(), n()); }

  void factors(int64_t group, int rows, const Partial* sums, GroupFactors& f) const {
    const unsigned live = (1u << rows) - 1u;
    alignas(32) double ds[kGroup] = {};
    for (int g = 0; g < rows; ++g) ds[g] = denom[group * kGroup + g];
    const Lanes8 d = {_mm256_load_pd(ds), _mm256_load_pd(ds + 4)};
    const __m256d sign = _mm256_set1_pd(-0.0);
    // The forward's factor 1/|d| (negative d: clamped by ε, where y = v·inv with inv constant, t = 0).
    const Lanes8 inv = reciprocal({_mm256_andnot_pd(sign, d.lo), _mm256_andnot_pd(sign, d.hi)});
    unsigned ok = live, clamped = 0;
    if (mode == EpsilonMode::kExact) {
      ok &= in_range(d, kSafeLow, kSafeHigh);  // else: zero, NaN or rescaled vectors
    } else {
      const __m256d zero = _mm256_setzero_pd();
      clamped = bits_of(_mm256_cmp_pd(d.lo, zero, _CMP_LT_OQ), _mm256_cmp_pd(d.hi, zero, _CMP_LT_OQ));
    }
    // dv = dy·a − v·b with a = inv, b = inv²·t, t = inv·⟨dy, v⟩ = ⟨dy, y⟩ (0 for rows not taken).
    const Lanes8 dots = group_sums(sums);
    const unsigned with_t = live & ~clamped;
    const Lanes8 t = {_mm256_and_pd(lane_mask(with_t, 0), _mm256_mul_pd(inv.lo, dots.lo)),
                      _mm256_and_pd(lane_mask(with_t, 1), _mm256_mul_pd(inv.hi, dots.hi))};
    const Lanes8 b = {_mm256_mul_pd(_mm256_mul_pd(inv.lo, inv.lo), t.lo),
                      _mm256_mul_pd(_mm256_mul_pd(inv.hi, inv.hi), t.hi)};
    const Lanes8 abs_b = {_mm256_andnot_pd(sign, b.lo), _mm256_andnot_pd(sign, b.hi)};
    const __m256d zero = _mm256_setzero_pd();
    const unsigned b_ok =
        bits_of(_mm256_cmp_pd(b.lo, zero, _CMP_EQ_OQ), _mm256_cmp_pd(b.hi, zero, _CMP_EQ_OQ)) |
        in_range(abs_b, 0x1p-100, 0x1p100);
    f.fast = ok & in_range(inv, 0x1p-100, 0x1p100) & b_ok;
    _mm_store_ps(f.p, _mm256_cvtpd_ps(inv.lo));
    _mm_store_ps(f.p + 4, _mm256_cvtpd_ps(inv.hi));
    _mm_store_ps(f.q, _mm256_cvtpd_ps(b.lo));
    _mm_store_ps(f.q + 4, _mm256_cvtpd_ps(b.hi));
  }

  // One float FMA per lane, as in l2_normalize_rows_avx512.cpp.
  void write(int64_t row, float a, float b) const {
    const __m256 a_g = _mm256_set1_ps(a), b_g = _mm256_set1_ps(b);
    const float* v = x + row * n();
    const float* gy = dy + row * n();
    float* dv = dx + row * n();
    const auto grad = [&](int64_t r, __m256i m) {
      const __m256 term = _mm256_fmsub_ps(_mm256_maskload_ps(gy + r, m), a_g,
                                          _mm256_mul_ps(_mm256_maskload_ps(v + r, m), b_g));
      return overwrite ? term : _mm256_add_ps(_mm256_maskload_ps(dv + r, m), term);
    };
    const __m256i all = _mm256_set1_epi32(-1);
    int64_t r = 0;
    for (; r + 8 <= n(); r += 8) store8<kStream>(dv + r, grad(r, all));
    if (r < n()) _mm256_maskstore_ps(dv + r, tail_mask(n() - r), grad(r, tail_mask(n() - r)));
  }
};

}  // namespace

void exact_forward(const float* x, float* y, double* denom, int64_t rows, int64_t n, bool stream, Rest rest) {
  run_forward<Forward>(x, y, denom, rows, n, stream, rest);
}

void backward(const float* x, const float* dy, const double* denom, float* dx, int64_t rows, int64_t n,
              EpsilonMode mode, bool overwrite, bool stream, Rest rest) {
  by_length(n, [&](auto length) {
    if (stream && overwrite)
      run_phased(Backward<length.value, true>{{x, dy, denom, dx, n, mode, overwrite}}, rows, rest);
    else
      run_phased(Backward<length.value, false>{{x, dy, denom, dx, n, mode, overwrite}}, rows, rest);
  });
}

void stream_fence() { _mm_sfence(); }
bool streams_available() { return true; }

}  // namespace normnet::kernels::cpu::l2_rows

#endif

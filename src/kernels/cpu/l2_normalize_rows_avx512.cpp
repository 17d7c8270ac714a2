// The short-row L2-normalization kernels (l2_normalize_rows.h) for AVX-512: a group's eight rows
// take one double lane each of a 512-bit register.
//   forward  y = v/‖v‖, ‖v‖ = sqrt(Σv²) summed in double;
//   backward dv = (dy − y·⟨dy, y⟩)/‖v‖ = dy·a − v·b with a = 1/‖v‖, b = a²·⟨dy, y⟩.
#include <cfloat>
#include <cstdint>

#include "kernels/cpu/l2_normalize_rows.h"
#include "kernels/cpu/l2_normalize_rows_loops.h"

#if defined(__AVX512F__)
// GCC 12's AVX-512 header initializes _mm512_undefined_pd() from itself, which -Wuninitialized
// reports at every inlined unpack and shuffle (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace normnet::kernels::cpu::l2_rows {

namespace {

__mmask16 tail_mask(int64_t left) { return static_cast<__mmask16>((1u << left) - 1u); }

// The 16 floats of v at out: streamed (out 32-byte aligned, see stream_aligned; one 512-bit
// non-temporal store where out is 64-byte aligned, else two 256-bit ones) or stored.
template <bool kStream>
void store16(float* out, __m512 v) {
  if constexpr (kStream) {
    if (reinterpret_cast<std::uintptr_t>(out) % 64 == 0) return _mm512_stream_ps(out, v);
    _mm256_stream_ps(out, _mm512_castps512_ps256(v));
    _mm256_stream_ps(out + 8, _mm512_extractf32x8_ps(v, 1));
  } else {
    _mm512_storeu_ps(out, v);
  }
}

// The last n − r < 16 floats of a row: streamed as eight (n is a multiple of 8 when streaming) or
// stored under a mask.
template <bool kStream>
void store_tail(float* out, __m512 v, int64_t left) {
  if constexpr (kStream) {
    _mm256_stream_ps(out, _mm512_castps512_ps256(v));  // left == 8
  } else {
    _mm512_mask_storeu_ps(out, tail_mask(left), v);
  }
}

// Σ a_r·b_r of one row in double, as eight partial sums: two accumulators take the low and high
// halves of each 16 floats, the last partial vector masked. float·float is exact in double.
// Inlined with the row length kN as a constant (0: runtime_n), so that rows of 32 and 64 floats
// unroll: GCC 12 kept group_dots and lane_sums out of line, and a forward + backward over 64
// channels ran at 0.50 of the copy bandwidth on Zen 5 (docs/benchmarks.md, step 30).
template <bool kSquare, int64_t kN>
[[gnu::always_inline]] inline __m512d row_dot(const float* a, const float* b, int64_t runtime_n) {
  const int64_t n = kN > 0 ? kN : runtime_n;
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  // Each half of 16 floats is loaded as 256 bits straight into the conversion (no extract shuffle).
  const auto term = [](__m512d a_half, __m512d b_half, __m512d acc) {
    return _mm512_fmadd_pd(a_half, kSquare ? a_half : b_half, acc);
  };
  int64_t r = 0;
  for (; r + 16 <= n; r += 16) {
    const __m512d a0 = _mm512_cvtps_pd(_mm256_loadu_ps(a + r)),
                  a1 = _mm512_cvtps_pd(_mm256_loadu_ps(a + r + 8));
    acc0 = term(a0, kSquare ? a0 : _mm512_cvtps_pd(_mm256_loadu_ps(b + r)), acc0);
    acc1 = term(a1, kSquare ? a1 : _mm512_cvtps_pd(_mm256_loadu_ps(b + r + 8)), acc1);
  }
  if (r < n) {
    const __mmask16 m = tail_mask(n - r);
    const __m512 va = _mm512_maskz_loadu_ps(m, a + r);
    const __m512 vb = kSquare ? va : _mm512_maskz_loadu_ps(m, b + r);
    acc0 =
        term(_mm512_cvtps_pd(_mm512_castps512_ps256(va)), _mm512_cvtps_pd(_mm512_castps512_ps256(vb)), acc0);
    acc1 = term(_mm512_cvtps_pd(_mm512_extractf32x8_ps(va, 1)),
                _mm512_cvtps_pd(_mm512_extractf32x8_ps(vb, 1)), acc1);
  }
  return _mm512_add_pd(acc0, acc1);
}

// Lane g of the result = the sum of the eight lanes of s[g] (a transpose folded into the adds).
[[gnu::always_inline]] inline __m512d lane_sums(const __m512d* s) {
  __m512d pairs[4];  // 128-bit block k of pairs[j] holds the k-th pair sums of rows 2j and 2j + 1
  for (int j = 0; j < 4; ++j) {
    pairs[j] =
        _mm512_add_pd(_mm512_unpacklo_pd(s[2 * j], s[2 * j + 1]), _mm512_unpackhi_pd(s[2 * j], s[2 * j + 1]));
  }
  __m512d quads[2];  // blocks: rows (4j, 4j+1) twice, then (4j+2, 4j+3) twice, each half summed
  for (int j = 0; j < 2; ++j) {
    const __m512d a = pairs[2 * j], b = pairs[2 * j + 1];
    quads[j] = _mm512_add_pd(_mm512_shuffle_f64x2(a, b, 0x88), _mm512_shuffle_f64x2(a, b, 0xDD));
  }
  return _mm512_add_pd(_mm512_shuffle_f64x2(quads[0], quads[1], 0x88),
                       _mm512_shuffle_f64x2(quads[0], quads[1], 0xDD));
}

__mmask8 in_range(__m512d v, double low, double high) {
  return _mm512_cmp_pd_mask(v, _mm512_set1_pd(low), _CMP_GE_OQ) &
         _mm512_cmp_pd_mask(v, _mm512_set1_pd(high), _CMP_LE_OQ);  // false for NaN
}

__mmask8 live_mask(int rows) { return static_cast<__mmask8>((1u << rows) - 1u); }

// The forward as a kernel of run_pipelined (kN: ForwardArgs).
template <int64_t kN, bool kStream>
struct Forward : ForwardArgs<kN> {
  using ForwardArgs<kN>::x, ForwardArgs<kN>::y, ForwardArgs<kN>::denom, ForwardArgs<kN>::n;

  using Partial = __m512d;
  static Partial zero() { return _mm512_setzero_pd(); }

  [[gnu::always_inline]] Partial partial(int64_t row) const {
    const float* v = x + row * n();
    return row_dot<true, kN>(v, v, n());
  }

  [[gnu::always_inline]] void factors(int64_t group, int rows, const Partial* sums, GroupFactors& f) const {
    const __mmask8 live = live_mask(rows);
    const __m512d s = lane_sums(sums);
    const __m512d d = _mm512_sqrt_pd(s);
    const __m512d inv = _mm512_div_pd(_mm512_set1_pd(1.0), d);
    // 1/d = hi + lo in two floats: fma(v, hi, v·lo) is v/d rounded once (within 2^-48 relative),
    // as in scale_vector; hi must stay inside float's normal range.
    const __mmask8 fast =
        live & in_range(s, kTinySum, DBL_MAX) & in_range(inv, 0x1p-100, static_cast<double>(FLT_MAX));
    const __m256 hi = _mm512_cvtpd_ps(inv);
    if (denom) _mm512_mask_storeu_pd(denom + group * kGroup, fast, d);
    _mm256_store_ps(f.p, hi);
    _mm256_store_ps(f.q, _mm512_cvtpd_ps(_mm512_sub_pd(inv, _mm512_cvtps_pd(hi))));
    f.fast = fast;
  }

  [[gnu::always_inline]] void write(int64_t row, float hi, float lo) const {
    const __m512 h = _mm512_set1_ps(hi), l = _mm512_set1_ps(lo);
    const float* v = x + row * n();
    float* out = y + row * n();
    int64_t r = 0;
    for (; r + 16 <= n(); r += 16) {
      const __m512 w = _mm512_loadu_ps(v + r);
      store16<kStream>(out + r, _mm512_fmadd_ps(w, h, _mm512_mul_ps(w, l)));
    }
    if (r < n()) {
      const __m512 w = _mm512_maskz_loadu_ps(tail_mask(n() - r), v + r);
      store_tail<kStream>(out + r, _mm512_fmadd_ps(w, h, _mm512_mul_ps(w, l)), n() - r);
    }
  }
};

// The backward as a kernel of run_pipelined.
template <int64_t kN>
struct Backward : BackwardArgs<kN> {
  using BackwardArgs<kN>::x, BackwardArgs<kN>::dy, BackwardArgs<kN>::denom, BackwardArgs<kN>::dx,
      BackwardArgs<kN>::mode, BackwardArgs<kN>::overwrite, BackwardArgs<kN>::n;

  using Partial = __m512d;
  static Partial zero() { return _mm512_setzero_pd(); }

  // The row's sums, its two inputs prefetched kPrefetchBytes ahead (l2_normalize_rows_loops.h).
  [[gnu::always_inline]] Partial partial(int64_t row) const {
    prefetch_ahead(dy + row * n(), n());
    prefetch_ahead(x + row * n(), n());
    return row_dot<false, kN>(dy + row * n(), x + row * n(), n());
  }

  [[gnu::always_inline]] void factors(int64_t group, int rows, const Partial* sums, GroupFactors& f) const {
    const __mmask8 live = live_mask(rows);
    const __m512d d = _mm512_maskz_loadu_pd(live, denom + group * kGroup);
    // The forward's factor 1/|d| (negative d: clamped by ε, where y = v·inv with inv constant, t = 0).
    const __m512d inv = _mm512_div_pd(_mm512_set1_pd(1.0), _mm512_abs_pd(d));
    __mmask8 ok = live;
    __mmask8 clamped = 0;
    if (mode == EpsilonMode::kExact) {
      ok &= in_range(d, kSafeLow, kSafeHigh);  // else: zero, NaN or rescaled vectors
    } else {
      clamped = _mm512_cmp_pd_mask(d, _mm512_setzero_pd(), _CMP_LT_OQ);
    }
    // dv = dy·a − v·b with a = inv, b = inv²·t, t = inv·⟨dy, v⟩ = ⟨dy, y⟩.
    const __m512d t = _mm512_maskz_mul_pd(static_cast<__mmask8>(live & ~clamped), inv, lane_sums(sums));
    const __m512d b = _mm512_mul_pd(_mm512_mul_pd(inv, inv), t);
    const __mmask8 b_ok = _mm512_cmp_pd_mask(b, _mm512_setzero_pd(), _CMP_EQ_OQ) |
                          in_range(_mm512_abs_pd(b), 0x1p-100, 0x1p100);
    f.fast = ok & in_range(inv, 0x1p-100, 0x1p100) & b_ok;
    _mm256_store_ps(f.p, _mm512_cvtpd_ps(inv));
    _mm256_store_ps(f.q, _mm512_cvtpd_ps(b));
  }

  // One float FMA per lane (as add_vector_grad): each term within a few float ulps of the double
  // result, the precision that dy itself carries.
  [[gnu::always_inline]] void write(int64_t row, float a, float b) const {
    const __m512 a_g = _mm512_set1_ps(a), b_g = _mm512_set1_ps(b);
    const float* v = x + row * n();
    const float* gy = dy + row * n();
    float* dv = dx + row * n();
    const auto grad = [&](int64_t r, __mmask16 m) {
      const __m512 term = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, gy + r), a_g,
                                          _mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + r), b_g));
      return overwrite ? term : _mm512_add_ps(_mm512_maskz_loadu_ps(m, dv + r), term);
    };
    int64_t r = 0;
    for (; r + 16 <= n(); r += 16) _mm512_storeu_ps(dv + r, grad(r, 0xFFFF));
    if (r < n()) _mm512_mask_storeu_ps(dv + r, tail_mask(n() - r), grad(r, tail_mask(n() - r)));
  }
};

}  // namespace

void exact_forward(const float* x, float* y, double* denom, int64_t rows, int64_t n, bool stream, Rest rest) {
  run_forward<Forward>(x, y, denom, rows, n, stream, rest);
}

// Ordinary stores for dx: on Zen 5 a streamed dx made the forward + backward over [32, 56, 56, 64]
// slower than streaming y alone, run as phases (0.42–0.61 of the copy bandwidth against
// 0.46–0.78, medians of 12; docs/benchmarks.md, step 30) and in a pipelined loop, with and without
// prefetching (steps 34 and 35).
void backward(const float* x, const float* dy, const double* denom, float* dx, int64_t rows, int64_t n,
              EpsilonMode mode, bool overwrite, bool, Rest rest) {
  by_length(n, [&](auto length) {
    run_pipelined(Backward<length.value>{{x, dy, denom, dx, n, mode, overwrite}}, rows, rest);
  });
}

void stream_fence() { _mm_sfence(); }
bool streams_available() { return true; }

}  // namespace normnet::kernels::cpu::l2_rows

#endif

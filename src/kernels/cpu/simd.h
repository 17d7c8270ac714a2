// One vector of floats of the widest kind the build targets, for kernels written once for
// AVX-512, AVX2 + FMA and SSE2 (conv2d_direct.cpp, conv2d_winograd.cpp,
// conv2d_pooled_backward.cpp).
//
//   kSimdWide:  AVX-512 (16 lanes, 32 registers) or AVX2 with FMA (8 lanes, 16 registers)
//   kSimd:      one of those, or SSE2 (4 lanes, 16 registers; multiply then add, two roundings)
//
// Kernels keep at most kAccumulators vectors of accumulators in registers (24 of AVX-512's 32,
// 12 of the 16 otherwise), leaving room for operands.
#pragma once

#include <cstdint>

// For #if around code that uses the vector functions below.
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define NORMNET_SIMD_WIDE 1
#endif
#if defined(__SSE2__)
#define NORMNET_SIMD 1
#endif

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace normnet::kernels::cpu::simd {

#if defined(__AVX512F__)

constexpr bool kSimd = true, kSimdWide = true;
constexpr int64_t kLanes = 16;
constexpr int kAccumulators = 24;
using Vec = __m512;
inline Vec load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec broadcast(float v) { return _mm512_set1_ps(v); }
inline Vec zero() { return _mm512_setzero_ps(); }
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
// a·b + c with one rounding.
inline Vec multiply_add(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
// relu as ops::relu: v where v > 0 or v is NaN, else +0.
inline Vec relu(Vec v) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
}
// Max pooling's step: v replaces best where v > best, or where v is NaN and best is not (the
// first NaN of a window wins).
inline Vec take_larger(Vec best, Vec v) {
  const __mmask16 take =
      _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
      (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
  return _mm512_mask_mov_ps(best, take, v);
}
// take_larger that also notes where: at = m where v replaced best.
inline void take_larger_noting(Vec& best, Vec& at, Vec v, Vec m) {
  const __mmask16 take =
      _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
      (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
  best = _mm512_mask_mov_ps(best, take, v);
  at = _mm512_mask_mov_ps(at, take, m);
}
// out[l] = v[l] for lanes holding whole numbers in [0, 255] (take_larger_noting's window indices).
inline void store_bytes(uint8_t* out, Vec v) {
  // (The maskz forms: GCC 12's plain ones start from _mm512_undefined, which -Wmaybe-uninitialized
  // reports at every use, GCC bug 105593.)
  const __m512i i = _mm512_maskz_cvttps_epi32(0xFFFF, v);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_maskz_cvtepi32_epi8(0xFFFF, i));
}

#elif defined(__AVX2__) && defined(__FMA__)

constexpr bool kSimd = true, kSimdWide = true;
constexpr int64_t kLanes = 8;
constexpr int kAccumulators = 12;
using Vec = __m256;
inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec broadcast(float v) { return _mm256_set1_ps(v); }
inline Vec zero() { return _mm256_setzero_ps(); }
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec multiply_add(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec relu(Vec v) { return _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NLE_UQ), v); }
inline Vec take_larger(Vec best, Vec v) {
  const Vec take =
      _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ),
                   _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(best, best, _CMP_ORD_Q)));
  return _mm256_blendv_ps(best, v, take);
}
inline void take_larger_noting(Vec& best, Vec& at, Vec v, Vec m) {
  const Vec take =
      _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ),
                   _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(best, best, _CMP_ORD_Q)));
  best = _mm256_blendv_ps(best, v, take);
  at = _mm256_blendv_ps(at, m, take);
}
inline void store_bytes(uint8_t* out, Vec v) {
  const __m256i i = _mm256_cvttps_epi32(v);
  const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(words, words));
}

#elif defined(__SSE2__)

constexpr bool kSimd = true, kSimdWide = false;
constexpr int64_t kLanes = 4;
constexpr int kAccumulators = 12;
using Vec = __m128;
inline Vec load(const float* p) { return _mm_loadu_ps(p); }
inline void store(float* p, Vec v) { _mm_storeu_ps(p, v); }
inline Vec broadcast(float v) { return _mm_set1_ps(v); }
inline Vec zero() { return _mm_setzero_ps(); }
inline Vec add(Vec a, Vec b) { return _mm_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm_sub_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm_mul_ps(a, b); }
inline Vec multiply_add(Vec a, Vec b, Vec c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }

#else

constexpr bool kSimd = false, kSimdWide = false;
constexpr int64_t kLanes = 1;
constexpr int kAccumulators = 1;

#endif

}  // namespace normnet::kernels::cpu::simd

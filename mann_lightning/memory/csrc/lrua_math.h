// Scalar and vector math of the fused kernels (exp, 32-byte vectors, sums across lanes, the
// softmax); included by lrua_general.h, so by every kernel file.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace mann_lrua {

#define MANN_INLINE __attribute__((always_inline)) inline
#define MANN_INLINE_LAMBDA __attribute__((always_inline))

// exp(x) for the softmax of eq. 3, where x = K - max K <= 0: a branch-free polynomial the
// compiler vectorises (a libm call per slot cost half the forward step). Cody-Waite reduction
// to r in [-ln2/2, ln2/2], a Taylor polynomial (degree 7 in float, 13 in double: truncation
// below half a unit in the last place), then 2^k put into the exponent bits. Arguments below
// -87 (float) / -708 (double) give exp of that bound (under 1e-37 / 1e-307, next to the
// softmax's largest term of 1); NaN stays NaN.
// exp(r) for |r| <= ln2/2: the Taylor polynomial of exp_nonpositive below (degree 7 in
// float, 13 in double), on a scalar or a vector X of T (vexp_nonpositive below).
template <typename T, typename X>
MANN_INLINE X exp_reduced(X r) {
  if constexpr (sizeof(T) == 4) {
    return T(1) + r * (T(1) + r * (T(1. / 2) + r * (T(1. / 6) + r * (T(1. / 24) + r * (T(1. / 120)
        + r * (T(1. / 720) + r * T(1. / 5040)))))));
  } else {
    constexpr T c[14] = {1., 1., 1. / 2, 1. / 6, 1. / 24, 1. / 120, 1. / 720, 1. / 5040,
                         1. / 40320, 1. / 362880, 1. / 3628800, 1. / 39916800,
                         1. / 479001600, 1. / 6227020800};
    X p = X{} + c[13];
    for (int i = 12; i >= 0; --i) p = p * r + c[i];
    return p;
  }
}

template <typename T>
MANN_INLINE T exp_nonpositive(T x) {
  constexpr bool f32 = sizeof(T) == 4;
  using Int = std::conditional_t<f32, int32_t, int64_t>;
  constexpr T lo = f32 ? T(-87.0) : T(-708.0);
  constexpr T log2e = T(1.4426950408889634074);
  constexpr T ln2_hi = f32 ? T(0.693359375) : T(6.93147180369123816490e-01);
  constexpr T ln2_lo = f32 ? T(-2.12194440e-4) : T(1.90821492927058770002e-10);
  constexpr T shifter = f32 ? T(12582912.0) : T(6755399441055744.0);  // 1.5 * 2^mantissa
  const T xc = x >= lo ? x : lo;  // NaN too: no float-to-int conversion of a NaN below
  const T kf = (xc * log2e + shifter) - shifter;  // round to nearest
  const T r = (xc - kf * ln2_hi) - kf * ln2_lo;
  const T p = exp_reduced<T>(r);
  const Int bits = (static_cast<Int>(kf) + (f32 ? 127 : 1023)) << (f32 ? 23 : 52);
  T scale;
  __builtin_memcpy(&scale, &bits, sizeof(T));
  return x == x ? p * scale : x;
}

template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(32)));
};
template <typename T>
using V = typename VecOf<T>::type;
static_assert(sizeof(V<float>) == 32 && sizeof(V<double>) == 32, "32-byte vectors");

template <typename T>
constexpr int64_t lanes() {
  return 32 / sizeof(T);
}

template <typename T>
MANN_INLINE V<T> vload(const T* p) {
  V<T> v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T>
MANN_INLINE void vstore(T* p, V<T> v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

template <typename T>
MANN_INLINE T hsum(V<T> v) {
  T a[lanes<T>()];
  __builtin_memcpy(a, &v, sizeof(v));
  if constexpr (lanes<T>() == 8) {
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
  } else {
    return (a[0] + a[2]) + (a[1] + a[3]);
  }
}

// hsum of lanes<T>() vectors at once: lane i of the result is hsum(v[i]), bit for bit (the
// same additions in the same order), with a few shuffles instead of one reduction per vector.
// With AVX; elsewhere one hsum per vector.
template <typename T>
MANN_INLINE V<T> hsum_lanes(const V<T>* v) {
#if defined(__AVX__)
  if constexpr (sizeof(T) == 4) {
    const auto half = [v](int a, int b) {  // [lo(v[a]) + hi(v[a]) | lo(v[b]) + hi(v[b])]
      const __m256 x = (__m256)v[a], y = (__m256)v[b];
      return _mm256_add_ps(_mm256_permute2f128_ps(x, y, 0x20), _mm256_permute2f128_ps(x, y, 0x31));
    };
    const __m256 lo = _mm256_hadd_ps(half(0, 4), half(1, 5));
    const __m256 hi = _mm256_hadd_ps(half(2, 6), half(3, 7));
    return (V<T>)_mm256_hadd_ps(lo, hi);
  } else {
    const auto half = [v](int a, int b) {
      const __m256d x = (__m256d)v[a], y = (__m256d)v[b];
      return _mm256_add_pd(_mm256_permute2f128_pd(x, y, 0x20), _mm256_permute2f128_pd(x, y, 0x31));
    };
    return (V<T>)_mm256_hadd_pd(half(0, 2), half(1, 3));
  }
#else
  T out[lanes<T>()];
  for (int64_t i = 0; i < lanes<T>(); ++i) out[i] = hsum<T>(v[i]);
  return vload<T>(out);
#endif
}

// count (<= lanes) consecutive values as a vector, the other lanes zero; and back.
template <typename T>
MANN_INLINE V<T> vload_n(const T* p, int64_t count) {
  if (count == lanes<T>()) return vload<T>(p);
  T a[lanes<T>()] = {};
  for (int64_t i = 0; i < count; ++i) a[i] = p[i];
  return vload<T>(a);
}

template <typename T>
MANN_INLINE void vstore_n(T* p, V<T> v, int64_t count) {
  if (count == lanes<T>()) return vstore<T>(p, v);
  T a[lanes<T>()];
  vstore<T>(a, v);
  for (int64_t i = 0; i < count; ++i) p[i] = a[i];
}

// Square roots lane by lane (correctly rounded, as std::sqrt).
template <typename T>
MANN_INLINE V<T> vsqrt(V<T> x) {
#if defined(__AVX__)
  if constexpr (sizeof(T) == 4) {
    return (V<T>)_mm256_sqrt_ps((__m256)x);
  } else {
    return (V<T>)_mm256_sqrt_pd((__m256d)x);
  }
#else
  T a[lanes<T>()];
  vstore<T>(a, x);
  for (int64_t i = 0; i < lanes<T>(); ++i) a[i] = std::sqrt(a[i]);
  return vload<T>(a);
#endif
}

// exp_nonpositive on 32-byte vectors, lane by lane equal to the scalar one (the compiler does
// not vectorise the scalar loop: its selects). ntm_kernels.h's vlog_positive uses VI too.
template <typename T>
struct IntVecOf;
template <>
struct IntVecOf<float> {
  typedef int32_t type __attribute__((vector_size(32)));
};
template <>
struct IntVecOf<double> {
  typedef int64_t type __attribute__((vector_size(32)));
};
template <typename T>
using VI = typename IntVecOf<T>::type;

template <typename T>
MANN_INLINE V<T> vexp_nonpositive(V<T> x) {
  constexpr bool f32 = sizeof(T) == 4;
  using Int = std::conditional_t<f32, int32_t, int64_t>;
  constexpr T log2e = T(1.4426950408889634074);
  constexpr T ln2_hi = f32 ? T(0.693359375) : T(6.93147180369123816490e-01);
  constexpr T ln2_lo = f32 ? T(-2.12194440e-4) : T(1.90821492927058770002e-10);
  constexpr T shifter = f32 ? T(12582912.0) : T(6755399441055744.0);
  const V<T> lo = V<T>{} + (f32 ? T(-87.0) : T(-708.0)), sh = V<T>{} + shifter;
  const V<T> xc = x >= lo ? x : lo;  // NaN fails the comparison: no NaN reaches the bits
  const V<T> t = xc * log2e + sh;
  const V<T> kf = t - sh;  // round to nearest
  const V<T> r = (xc - kf * ln2_hi) - kf * ln2_lo;
  const V<T> p = exp_reduced<T>(r);
  VI<T> tb, sb;
  const V<T> shv = sh;
  __builtin_memcpy(&tb, &t, sizeof(t));
  __builtin_memcpy(&sb, &shv, sizeof(shv));
  const VI<T> bits = ((tb - sb) + Int(f32 ? 127 : 1023)) << (f32 ? 23 : 52);  // 2^k
  V<T> scale;
  __builtin_memcpy(&scale, &bits, sizeof(bits));
  return x == x ? p * scale : x;
}

// w = softmax(z) over n slots, the exponentials on vectors.
template <typename T>
MANN_INLINE void softmax(const T* __restrict z, T* __restrict w, int64_t n) {
  constexpr int64_t L = lanes<T>();
  T mx = z[0];
  int64_t t = 1;
  if (n >= 2 * L) {  // the largest on vectors, then across lanes: the same value (a NaN
    V<T> vm = vload<T>(z);  // anywhere makes every output NaN either way)
    for (t = L; t + L <= n; t += L) {
      const V<T> v = vload<T>(z + t);
      vm = v > vm ? v : vm;
    }
    T lane[L];
    vstore<T>(lane, vm);
    for (int64_t i = 0; i < L; ++i) mx = lane[i] > mx ? lane[i] : mx;
  }
  for (; t < n; ++t) mx = z[t] > mx ? z[t] : mx;
  V<T> acc = {};
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const V<T> e = vexp_nonpositive<T>(vload<T>(z + i) - mx);
    vstore<T>(w + i, e);
    acc += e;
  }
  T total = hsum<T>(acc);
  for (; i < n; ++i) {
    w[i] = exp_nonpositive<T>(z[i] - mx);
    total += w[i];
  }
  const T inv = T(1) / total;
  for (int64_t t = 0; t < n; ++t) w[t] *= inv;
}

}  // namespace mann_lrua

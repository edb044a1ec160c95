// General loops of the fused LRUA step (any heads and word size); included by lrua_step.cpp.
#pragma once

#include <ATen/Parallel.h>

#include "lrua_args.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

namespace mann_lrua {

#define MANN_INLINE __attribute__((always_inline)) inline

// exp(x) for the softmax of eq. 3, where x = K - max K <= 0: a branch-free polynomial the
// compiler vectorises (a libm call per slot cost half the forward step). Cody-Waite reduction
// to r in [-ln2/2, ln2/2], a Taylor polynomial (degree 7 in float, 13 in double: truncation
// below half a unit in the last place), then 2^k put into the exponent bits. Arguments below
// -87 (float) / -708 (double) give exp of that bound (under 1e-37 / 1e-307, next to the
// softmax's largest term of 1); NaN stays NaN.
// exp(r) for |r| <= ln2/2: the Taylor polynomial of exp_nonpositive below (degree 7 in
// float, 13 in double), on a scalar or a vector X of T (ntm_kernels.h's vexp_nonpositive).
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

// Dot products: eight partial sums (one vector register), added as a tree. A sequential sum
// over the lanes (what `omp simd reduction` gives) costs more than the products at W = 40.
constexpr int64_t kLanes = 8;

template <typename T>
MANN_INLINE T tree_sum(const T* acc) {
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

template <typename T>
MANN_INLINE T dot(const T* a, const T* b, int64_t w) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= w; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  T s = tree_sum(acc);
  for (; i < w; ++i) s += a[i] * b[i];
  return s;
}

// out[h * stride] = k[h] . x for the H rows of k ([H, W]), four heads per pass over x.
template <typename T>
MANN_INLINE void dots(const T* k, const T* x, int64_t H, int64_t W, T* out, int64_t stride) {
  int64_t h = 0;
  for (; h + 4 <= H; h += 4) {
    const T* k0 = k + h * W;
    T acc[4][kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= W; i += kLanes) {
      for (int64_t r = 0; r < 4; ++r) {
        for (int64_t j = 0; j < kLanes; ++j) acc[r][j] += k0[r * W + i + j] * x[i + j];
      }
    }
    for (int64_t r = 0; r < 4; ++r) {
      T s = tree_sum(acc[r]);
      for (int64_t t = i; t < W; ++t) s += k0[r * W + t] * x[t];
      out[(h + r) * stride] = s;
    }
  }
  for (; h < H; ++h) out[h * stride] = dot(k + h * W, x, W);
}

// w = softmax(s) over n slots (eq. 3): the max and the sum in eight lanes each, the
// exponentials vectorised.
template <typename T>
MANN_INLINE void softmax_row(const T* s, T* w, int64_t n) {
  T lane[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) lane[j] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) lane[j] = s[i + j] > lane[j] ? s[i + j] : lane[j];
  }
  T mx = lane[0];
  for (int64_t j = 1; j < kLanes; ++j) mx = lane[j] > mx ? lane[j] : mx;
  for (int64_t t = i; t < n; ++t) mx = s[t] > mx ? s[t] : mx;
  for (int64_t t = 0; t < n; ++t) w[t] = exp_nonpositive<T>(s[t] - mx);
  for (int64_t j = 0; j < kLanes; ++j) lane[j] = 0;
  for (i = 0; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) lane[j] += w[i + j];
  }
  T total = tree_sum(lane);
  for (int64_t t = i; t < n; ++t) total += w[t];
  const T inv = T(1) / total;
  for (int64_t t = 0; t < n; ++t) w[t] *= inv;
}

template <typename T>
void forward_kernel(const ForwardArgs<T>& a) {
  const int64_t B = a.B, H = a.H, N = a.N, W = a.W;
  const T eps = a.eps;
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> knorm(H), acc(H * W);
    for (int64_t b = begin; b < end; ++b) {
      const auto [k, g, m0, r0, l, m, wr, wwb, s, mn, rd, e] = ForwardEpisode<T>(a, b);
      for (int64_t h = 0; h < H; ++h) knorm[h] = std::sqrt(dot(k + h * W, k + h * W, W));
      // eq. 7 (w^w), eq. 8 (M_t), the norms and scaled dots of eq. 2, row by row.
      for (int64_t n = 0; n < N; ++n) {
        T* row = m + n * W;
        const T* old = m0 + n * W;
        if (n == e) {
          for (int64_t i = 0; i < W; ++i) row[i] = 0;
        } else {
          for (int64_t i = 0; i < W; ++i) row[i] = old[i];
        }
        for (int64_t h = 0; h < H; ++h) {
          const T w_hn = l[n] + g[h] * (r0[h * N + n] - l[n]);
          wwb[h * N + n] = w_hn;
          const T* kh = k + h * W;
          for (int64_t i = 0; i < W; ++i) row[i] += w_hn * kh[i];
        }
        mn[n] = std::sqrt(dot(row, row, W));
        dots(k, row, H, W, s + n, N);
        for (int64_t h = 0; h < H; ++h) s[h * N + n] /= knorm[h] * mn[n] + eps;
      }
      // eq. 3 (softmax over slots), eq. 4 (reads).
      for (int64_t h = 0; h < H; ++h) softmax_row(s + h * N, wr + h * N, N);  // eq. 3
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t n = 0; n < N; ++n) {
        const T* row = m + n * W;
        for (int64_t h = 0; h < H; ++h) {
          const T wn = wr[h * N + n];
          for (int64_t i = 0; i < W; ++i) acc[h * W + i] += wn * row[i];
        }
      }
      std::copy(acc.begin(), acc.end(), rd);
    }
  });
}

template <typename T>
void backward_kernel(const BackwardArgs<T>& a) {
  const int64_t B = a.B, H = a.H, N = a.N, W = a.W;
  const T eps = a.eps;
  const T tiny = std::numeric_limits<T>::min();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> knorm(H), gknorm(H), rowsum(H), gw(H * N), gdots(H * N), gwwb(H * N);
    std::vector<T> cm(N);
    for (int64_t b = begin; b < end; ++b) {
      const auto [k, g, r0, l, m, wr, wwb, s, mn, gr, grw, gwwin, gin, gko, ggo, gm, grwo, e] =
          BackwardEpisode<T>(a, b);
      T* gk = gko;
      for (int64_t h = 0; h < H; ++h) {
        knorm[h] = std::sqrt(dot(k + h * W, k + h * W, W));
        rowsum[h] = 0;
        gknorm[h] = 0;
      }
      // eq. 4 into w^r: g_w = g_rw + g_r M^T; then eq. 3's softmax backward needs sum_n w g_w.
      for (int64_t n = 0; n < N; ++n) {
        const T* row = m + n * W;
        dots(gr, row, H, W, gw.data() + n, N);
        for (int64_t h = 0; h < H; ++h) {
          const T v = grw[h * N + n] + gw[h * N + n];
          gw[h * N + n] = v;
          rowsum[h] += wr[h * N + n] * v;
        }
      }
      // eqs. 3 and 2: g_sim, then dots / (|k| |M| + eps) into the dots and the two norms.
      for (int64_t n = 0; n < N; ++n) cm[n] = 0;
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t n = 0; n < N; ++n) {
          const int64_t i = h * N + n;
          const T gsim = wr[i] * (gw[i] - rowsum[h]);
          const T den = knorm[h] * mn[n] + eps;
          const T gd = gsim / den;
          const T gden = -gd * s[i];
          gdots[i] = gd;
          gknorm[h] += gden * mn[n];
          cm[n] += gden * knorm[h];
        }
      }
      for (int64_t n = 0; n < N; ++n) cm[n] /= std::max(mn[n], tiny);
      for (int64_t i = 0; i < H * W; ++i) gk[i] = 0;
      // Into M_t (eq. 4, the dots and norms of eq. 2), then eq. 8 into w^w and the keys.
      for (int64_t n = 0; n < N; ++n) {
        const T* row = m + n * W;
        T* grow = gm + n * W;
        const T* gin_row = gin + n * W;
        for (int64_t i = 0; i < W; ++i) grow[i] = gin_row[i] + cm[n] * row[i];
        for (int64_t h = 0; h < H; ++h) {
          const T a_hn = wr[h * N + n];
          const T d = gdots[h * N + n];
          const T* grh = gr + h * W;
          const T* kh = k + h * W;
          for (int64_t i = 0; i < W; ++i) grow[i] += a_hn * grh[i] + d * kh[i];
        }
        for (int64_t h = 0; h < H; ++h) {
          const T d = gdots[h * N + n];
          const T w_hn = wwb[h * N + n];
          T* gkh = gk + h * W;
          for (int64_t i = 0; i < W; ++i) gkh[i] += d * row[i] + w_hn * grow[i];
        }
        dots(k, grow, H, W, gwwb.data() + n, N);
        for (int64_t h = 0; h < H; ++h) gwwb[h * N + n] += gwwin[h * N + n];
        if (n == e) {
          for (int64_t i = 0; i < W; ++i) grow[i] = 0;
        }
      }
      for (int64_t h = 0; h < H; ++h) {
        const T c = gknorm[h] / std::max(knorm[h], tiny);
        const T* kh = k + h * W;
        T* gkh = gk + h * W;
        for (int64_t i = 0; i < W; ++i) gkh[i] += c * kh[i];
        // eq. 7: w^w = w^lu + g (w^r_{t-1} - w^lu).
        T gg = 0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t i = h * N + n;
          gg += gwwb[i] * (r0[i] - l[n]);
          grwo[i] = gwwb[i] * g[h];
        }
        ggo[h] = gg;
      }
    }
  });
}

}  // namespace mann_lrua

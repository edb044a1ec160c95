// Loops of the fused NTM-style step's forward (Graves et al. 2014 eqs. 2-9), and what both
// directions share; included (through ntm_fast.h) by ntm_step.cpp. The backward's general
// loops are in ntm_backward_loops.h.
//
// One batch element at a time: its [N, W] memory stays in cache while the write heads address
// M_{t-1} (eqs. 5-9), erase and add (eqs. 3-4), and the read heads address M_t and read it
// (eq. 2). Same math and order as mann_lightning/memory/ntm.py, whose docstrings give the
// equations; the activations (softplus, sigmoid, the shift's softmax, tanh) stay in PyTorch.
#pragma once

#include <ATen/Parallel.h>

#include "lrua_fast.h"  // dot, dots, exp_nonpositive, the 32-byte vectors V<T>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace mann_ntm {

using mann_lrua::dot;
using mann_lrua::dots;
using mann_lrua::exp_nonpositive;
using mann_lrua::hsum;
using mann_lrua::kLanes;
using mann_lrua::lanes;
using mann_lrua::softmax;
using mann_lrua::tree_sum;
using mann_lrua::V;
using mann_lrua::vexp_nonpositive;
using mann_lrua::VI;
using mann_lrua::vload;
using mann_lrua::vstore;

// log(x) for x > 0 (eq. 9's log(w~ + eps)), branch-free so the compiler vectorises it (a
// libm call per slot cost a fifth of the forward step): x = 2^k m with m in [sqrt(1/2),
// sqrt(2)), log m = 2 atanh(u) = 2 (u + u^3/3 + ...), u = (m - 1) / (m + 1), |u| < 0.172;
// terms to u^13 (float) / u^27 (double) leave under half a unit in the last place.
template <typename T>
MANN_INLINE T log_positive(T x) {
  constexpr bool f32 = sizeof(T) == 4;
  using Int = std::conditional_t<f32, int32_t, int64_t>;
  constexpr int mant = f32 ? 23 : 52;
  constexpr T ln2 = T(0.69314718055994530942);
  constexpr Int sqrt_half = f32 ? Int(0x3f3504f3) : Int(0x3fe6a09e667f3bcdLL);  // its bits
  Int bits;
  __builtin_memcpy(&bits, &x, sizeof(T));
  const Int k = (bits - sqrt_half) >> mant;  // x = 2^k m, m in [sqrt(1/2), sqrt(2))
  const Int mbits = bits - k * (Int(1) << mant);
  T m;
  __builtin_memcpy(&m, &mbits, sizeof(T));
  const T u = (m - T(1)) / (m + T(1)), u2 = u * u;
  T p;
  if constexpr (f32) {
    p = T(1. / 13);
    for (int i = 11; i >= 1; i -= 2) p = p * u2 + T(1) / T(i);
  } else {
    p = T(1. / 27);
    for (int i = 25; i >= 1; i -= 2) p = p * u2 + T(1) / T(i);
  }
  return x == x ? T(2) * u * p + static_cast<T>(k) * ln2 : x;  // NaN stays NaN
}

// log on 32-byte vectors (lrua_math.h's VI), lane by lane equal to log_positive.
template <typename T>
MANN_INLINE V<T> vlog_positive(V<T> x) {
  constexpr bool f32 = sizeof(T) == 4;
  using Int = std::conditional_t<f32, int32_t, int64_t>;
  constexpr int mant = f32 ? 23 : 52;
  constexpr T ln2 = T(0.69314718055994530942);
  constexpr Int sqrt_half = f32 ? Int(0x3f3504f3) : Int(0x3fe6a09e667f3bcdLL);
  VI<T> bits;
  __builtin_memcpy(&bits, &x, sizeof(x));
  const VI<T> k = (bits - sqrt_half) >> mant;
  const VI<T> mbits = bits - k * (Int(1) << mant);
  V<T> m;
  __builtin_memcpy(&m, &mbits, sizeof(m));
  const V<T> u = (m - T(1)) / (m + T(1)), u2 = u * u;
  V<T> p = V<T>{} + (f32 ? T(1. / 13) : T(1. / 27));
  for (int i = f32 ? 11 : 25; i >= 1; i -= 2) p = p * u2 + T(1) / T(i);
  const V<T> kf = __builtin_convertvector(k, V<T>);
  return x == x ? T(2) * u * p + kf * ln2 : x;
}

// lg = log(x + eps), z = gamma lg over n slots (eq. 9), on vectors.
template <typename T>
MANN_INLINE void log_scaled(const T* __restrict x, T eps, T gamma, T* __restrict lg,
                            T* __restrict z, int64_t n) {
  constexpr int64_t L = lanes<T>();
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const V<T> v = vlog_positive<T>(vload<T>(x + i) + eps);
    vstore<T>(lg + i, v);
    vstore<T>(z + i, gamma * v);
  }
  for (; i < n; ++i) {
    lg[i] = log_positive(x[i] + eps);
    z[i] = gamma * lg[i];
  }
}

// out[h * stride + n] = k[h] . M(n) for H keys [H, W] and the N rows of m [N, W]: with
// 32-byte vectors where W is a whole number of them (one pass over each row for four heads).
template <typename T>
void row_dots(const T* __restrict k, int64_t H, const T* __restrict m, int64_t N, int64_t W,
              T* __restrict out, int64_t stride) {
  constexpr int64_t L = lanes<T>();
  if (W % L != 0) {
    for (int64_t n = 0; n < N; ++n) dots(k, m + n * W, H, W, out + n, stride);
    return;
  }
  const int64_t nv = W / L;
  for (int64_t h0 = 0; h0 < H; h0 += 4) {
    const int64_t hb = H - h0 < 4 ? H - h0 : 4;
    const T* kb = k + h0 * W;
    for (int64_t n = 0; n < N; ++n) {
      const T* row = m + n * W;
      V<T> acc0 = {}, acc1 = {}, acc2 = {}, acc3 = {};
      for (int64_t j = 0; j < nv; ++j) {
        const V<T> r = vload<T>(row + j * L);
        acc0 += vload<T>(kb + j * L) * r;
        if (hb > 1) acc1 += vload<T>(kb + W + j * L) * r;
        if (hb > 2) acc2 += vload<T>(kb + 2 * W + j * L) * r;
        if (hb > 3) acc3 += vload<T>(kb + 3 * W + j * L) * r;
      }
      T* o = out + h0 * stride + n;
      o[0] = hsum<T>(acc0);
      if (hb > 1) o[stride] = hsum<T>(acc1);
      if (hb > 2) o[2 * stride] = hsum<T>(acc2);
      if (hb > 3) o[3 * stride] = hsum<T>(acc3);
    }
  }
}

// Saved per head for backward, planes of aux [B, kPlanes, heads, N]: the cosine similarity K
// (eq. 5), the content weights w^c (eq. 5), the gated w^g (eq. 7), the shifted w~ (eq. 8)
// and log(w~ + eps) (eq. 9).
constexpr int64_t kPlanes = 5;

struct Sizes {
  int64_t B, Hw, Hr, N, W, S;
  int64_t heads() const { return Hw + Hr; }
};

// One group of heads (the write or the read heads) of one batch element: its parameters
// (already activated: beta, g, gamma >= 0, s a distribution) and its saved planes.
template <typename T>
struct Heads {
  const T *k, *beta, *g, *s, *gamma;
  T* aux;            // plane p of head h at aux[p * plane + h * N]
  int64_t H, plane;  // heads in the group; heads * N of the whole element
};

// One pass over an [N, W] memory: its row norms ||M(i)|| into `mn` and the H keys' dots
// k_h . M(i) into out[h * N + i] (eq. 5).
template <typename T>
void norms_and_dots(const T* k, int64_t H, const T* m, int64_t N, int64_t W, T* mn, T* out) {
  for (int64_t n = 0; n < N; ++n) {
    const T* row = m + n * W;
    mn[n] = std::sqrt(dot(row, row, W));
    row_dots(k, H, row, 1, W, out + n, N);
  }
}

// Eqs. 3-4 for one write head (the usual case), M_t(i) = M_{t-1}(i) (1 - w(i) e) + w(i) a,
// with each new row's norm and the read keys' dots (into out[h * N + i]) taken while the row
// is in cache.
template <typename T>
void write_one(const T* __restrict m0, const T* __restrict w, const T* __restrict e,
               const T* __restrict a, T* __restrict m, const T* kr, int64_t Hr, T* mn, T* out,
               int64_t N, int64_t W) {
  for (int64_t n = 0; n < N; ++n) {
    const T wn = w[n];
    const T* __restrict old = m0 + n * W;
    T* __restrict row = m + n * W;
    for (int64_t x = 0; x < W; ++x) row[x] = old[x] * (T(1) - wn * e[x]) + wn * a[x];
    mn[n] = std::sqrt(dot(row, row, W));
    row_dots(kr, Hr, row, 1, W, out + n, N);
  }
}

// dst[i] = sum_j s[j] src[(i - (j - S/2)) mod N]: eq. 8's circular convolution, each offset
// as at most two straight runs the compiler vectorises (its transpose, in the backward, reads
// a padded copy: ntm_address_backward.h).
template <typename T>
void circular_shift(const T* __restrict src, const T* __restrict s, int64_t S, int64_t N,
                    T* __restrict dst) {
  for (int64_t i = 0; i < N; ++i) dst[i] = 0;
  for (int64_t j = 0; j < S; ++j) {
    const int64_t off = ((j - S / 2) % N + N) % N;  // dst[i] += s[j] src[i - off]
    const T c = s[j];
    for (int64_t i = off; i < N; ++i) dst[i] += c * src[i - off];
    for (int64_t i = 0; i < off; ++i) dst[i] += c * src[i - off + N];
  }
}

// Eqs. 5-9 for the heads of `hd` from their dots k . M(i) (in the first aux plane) and the
// row norms `mn`: weights w [H, N].
template <typename T>
void address(const Heads<T>& hd, const T* mn, const T* prev, T* w, T* tmp, const Sizes& z,
             T eps, T seps) {
  const int64_t N = z.N, W = z.W, S = z.S, P = hd.plane;
  for (int64_t h = 0; h < hd.H; ++h) {
    const T* k = hd.k + h * W;
    T* __restrict cos = hd.aux + h * N;
    T* __restrict content = cos + P;
    T* __restrict gated = cos + 2 * P;
    T* __restrict shifted = cos + 3 * P;
    T* __restrict lg = cos + 4 * P;
    T* __restrict z1 = tmp;
    const T* __restrict p = prev + h * N;
    const T kn = std::sqrt(dot(k, k, W)), beta = hd.beta[h], g = hd.g[h], gamma = hd.gamma[h];
    for (int64_t n = 0; n < N; ++n) {
      cos[n] = cos[n] / (kn * mn[n] + eps);  // eq. 5's K
      z1[n] = beta * cos[n];
    }
    softmax(z1, content, N);  // w^c, eq. 5
    for (int64_t n = 0; n < N; ++n) gated[n] = g * content[n] + (T(1) - g) * p[n];  // eq. 7
    circular_shift(gated, hd.s + h * S, S, N, shifted);  // eq. 8
    log_scaled(shifted, seps, gamma, lg, z1, N);  // eq. 9 as softmax(gamma log(w~ + eps))
    softmax(z1, w + h * N, N);
  }
}

}  // namespace mann_ntm

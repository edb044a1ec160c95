// Vectorised fused LRUA step for four heads and words of 4, 5 or 10 vectors of 32 bytes (the
// paper's 4 x 40 in float32); included by lrua_step.cpp after lrua_general.h.
#pragma once

#include "lrua_general.h"

namespace mann_lrua {

// ---------------------------------------------------------------- fast path: H = 4
// Rows held as NV vectors of 32 bytes (GCC/Clang vector extensions: AVX on x86, NEON pairs
// on ARM), keys and read gradients in registers, one pass per row for each direction.
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

template <typename T, int64_t NV>
void forward_fast(const ForwardArgs<T>& a) {
  const int64_t B = a.B, N = a.N;
  constexpr int64_t H = 4, L = lanes<T>(), W = NV * L;
  const T eps = a.eps;
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const auto [k, g, m0, r0, l, m, wr, wwb, s, mn, rd, e] = ForwardEpisode<T>(a, b);
      V<T> kv[H][NV];
      T knorm[H];
      for (int64_t h = 0; h < H; ++h) {
        V<T> acc = {};
        for (int64_t j = 0; j < NV; ++j) {
          kv[h][j] = vload<T>(k + h * W + j * L);
          acc += kv[h][j] * kv[h][j];
        }
        knorm[h] = std::sqrt(hsum<T>(acc));
      }
      for (int64_t n = 0; n < N; ++n) {
        T w[H];
        for (int64_t h = 0; h < H; ++h) {
          w[h] = l[n] + g[h] * (r0[h * N + n] - l[n]);  // eq. 7
          wwb[h * N + n] = w[h];
        }
        V<T> row[NV];
        V<T> nn = {}, d0 = {}, d1 = {}, d2 = {}, d3 = {};
        for (int64_t j = 0; j < NV; ++j) {
          V<T> r = n == e ? V<T>{} : vload<T>(m0 + n * W + j * L);
          r += w[0] * kv[0][j];  // eq. 8
          r += w[1] * kv[1][j];
          r += w[2] * kv[2][j];
          r += w[3] * kv[3][j];
          row[j] = r;
          vstore<T>(m + n * W + j * L, r);
          nn += r * r;
          d0 += kv[0][j] * r;
          d1 += kv[1][j] * r;
          d2 += kv[2][j] * r;
          d3 += kv[3][j] * r;
        }
        const T norm = std::sqrt(hsum<T>(nn));
        mn[n] = norm;  // eq. 2
        s[n] = hsum<T>(d0) / (knorm[0] * norm + eps);
        s[N + n] = hsum<T>(d1) / (knorm[1] * norm + eps);
        s[2 * N + n] = hsum<T>(d2) / (knorm[2] * norm + eps);
        s[3 * N + n] = hsum<T>(d3) / (knorm[3] * norm + eps);
      }
      for (int64_t h = 0; h < H; ++h) softmax_row(s + h * N, wr + h * N, N);  // eq. 3
      V<T> acc[H][NV] = {};  // eq. 4
      for (int64_t n = 0; n < N; ++n) {
        const T a0 = wr[n], a1 = wr[N + n], a2 = wr[2 * N + n], a3 = wr[3 * N + n];
        for (int64_t j = 0; j < NV; ++j) {
          const V<T> r = vload<T>(m + n * W + j * L);
          acc[0][j] += a0 * r;
          acc[1][j] += a1 * r;
          acc[2][j] += a2 * r;
          acc[3][j] += a3 * r;
        }
      }
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t j = 0; j < NV; ++j) vstore<T>(rd + h * W + j * L, acc[h][j]);
      }
    }
  });
}

template <typename T, int64_t NV>
void backward_fast(const BackwardArgs<T>& a) {
  const int64_t B = a.B, N = a.N;
  constexpr int64_t H = 4, L = lanes<T>(), W = NV * L;
  const T eps = a.eps;
  const T tiny = std::numeric_limits<T>::min();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> gw(H * N), gdots(H * N), cm(N);
    for (int64_t b = begin; b < end; ++b) {
      const auto [k, g, r0, l, m, wr, wwb, s, mn, gr, grw, gwwin, gin, gko, ggo, gm, grwo, e] =
          BackwardEpisode<T>(a, b);
      V<T> kv[H][NV], grv[H][NV], gk[H][NV] = {};
      T knorm[H], rowsum[H] = {}, gknorm[H] = {};
      for (int64_t h = 0; h < H; ++h) {
        V<T> acc = {};
        for (int64_t j = 0; j < NV; ++j) {
          kv[h][j] = vload<T>(k + h * W + j * L);
          grv[h][j] = vload<T>(gr + h * W + j * L);
          acc += kv[h][j] * kv[h][j];
        }
        knorm[h] = std::sqrt(hsum<T>(acc));
      }
      // eq. 4 into w^r (g_w = g_rw + g_r M^T), and eq. 3's sum_n w g_w.
      for (int64_t n = 0; n < N; ++n) {
        V<T> d0 = {}, d1 = {}, d2 = {}, d3 = {};
        for (int64_t j = 0; j < NV; ++j) {
          const V<T> r = vload<T>(m + n * W + j * L);
          d0 += grv[0][j] * r;
          d1 += grv[1][j] * r;
          d2 += grv[2][j] * r;
          d3 += grv[3][j] * r;
        }
        const T v[H] = {hsum<T>(d0), hsum<T>(d1), hsum<T>(d2), hsum<T>(d3)};
        for (int64_t h = 0; h < H; ++h) {
          const T x = grw[h * N + n] + v[h];
          gw[h * N + n] = x;
          rowsum[h] += wr[h * N + n] * x;
        }
      }
      // eqs. 3 and 2 into the dots and the two norms.
      for (int64_t n = 0; n < N; ++n) cm[n] = 0;
      for (int64_t h = 0; h < H; ++h) {
        T gkn = 0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t i = h * N + n;
          const T gd = wr[i] * (gw[i] - rowsum[h]) / (knorm[h] * mn[n] + eps);
          const T gden = -gd * s[i];
          gdots[i] = gd;
          gkn += gden * mn[n];
          cm[n] += gden * knorm[h];
        }
        gknorm[h] = gkn;
      }
      // Into M_t, then eq. 8 into w^w and the keys; the erased row gets no gradient.
      for (int64_t n = 0; n < N; ++n) {
        const T c = cm[n] / std::max(mn[n], tiny);
        const T wn[H] = {wr[n], wr[N + n], wr[2 * N + n], wr[3 * N + n]};
        const T d[H] = {gdots[n], gdots[N + n], gdots[2 * N + n], gdots[3 * N + n]};
        const T w[H] = {wwb[n], wwb[N + n], wwb[2 * N + n], wwb[3 * N + n]};
        V<T> e0 = {}, e1 = {}, e2 = {}, e3 = {};
        for (int64_t j = 0; j < NV; ++j) {
          const V<T> r = vload<T>(m + n * W + j * L);
          V<T> x = vload<T>(gin + n * W + j * L) + c * r;
          for (int64_t h = 0; h < H; ++h) x += wn[h] * grv[h][j] + d[h] * kv[h][j];
          for (int64_t h = 0; h < H; ++h) gk[h][j] += d[h] * r + w[h] * x;
          e0 += kv[0][j] * x;
          e1 += kv[1][j] * x;
          e2 += kv[2][j] * x;
          e3 += kv[3][j] * x;
          vstore<T>(gm + n * W + j * L, n == e ? V<T>{} : x);
        }
        const T v[H] = {hsum<T>(e0), hsum<T>(e1), hsum<T>(e2), hsum<T>(e3)};
        for (int64_t h = 0; h < H; ++h) {
          const int64_t i = h * N + n;
          const T gww = gwwin[i] + v[h];
          grwo[i] = gww * g[h];  // eq. 7
          gdots[i] = gww * (r0[i] - l[n]);      // reused: g_gate's terms
        }
      }
      for (int64_t h = 0; h < H; ++h) {
        const T c = gknorm[h] / std::max(knorm[h], tiny);
        for (int64_t j = 0; j < NV; ++j) {
          vstore<T>(gko + h * W + j * L, gk[h][j] + c * kv[h][j]);
        }
        T gg = 0;
        for (int64_t n = 0; n < N; ++n) gg += gdots[h * N + n];
        ggo[h] = gg;
      }
    }
  });
}

}  // namespace mann_lrua

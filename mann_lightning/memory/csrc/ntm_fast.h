// Vectorised passes of the fused NTM-style step over the memory's rows, for words of 2, 4, 5
// or 10 vectors of 32 bytes (the paper's 40 in float32 and float64) and at most four heads
// per group: each row held in registers, the dot products of L rows summed across lanes at
// once (hsum_lanes), the reads accumulated in registers. Included by ntm_step.cpp after
// ntm_kernels.h, whose general loops (any word, any heads) compute the same values.
#pragma once

#include "ntm_kernels.h"

#include <type_traits>

namespace mann_ntm {

using mann_lrua::hsum_lanes;
using mann_lrua::prefetch;
using mann_lrua::row_blocks;
using mann_lrua::vload_n;
using mann_lrua::vsqrt;
using mann_lrua::vstore_n;

constexpr int64_t kFastHeads = 4;

template <int64_t NV>
using Vectors = std::integral_constant<int64_t, NV>;

// f(Vectors<NV>{}) for a word of W = NV vectors (NV in 2, 4, 5, 10) and at most kFastHeads
// heads per group; f(Vectors<0>{}) otherwise (the general loops).
template <typename T, typename F>
MANN_INLINE void with_vectors(int64_t W, int64_t Hw, int64_t Hr, F&& f) {
  const bool fits = W % lanes<T>() == 0 && Hw <= kFastHeads && Hr <= kFastHeads;
  const int64_t nv = fits ? W / lanes<T>() : 0;
  switch (nv) {
    case 2: return f(Vectors<2>{});
    case 4: return f(Vectors<4>{});
    case 5: return f(Vectors<5>{});
    case 10: return f(Vectors<10>{});
    default: return f(Vectors<0>{});
  }
}

// Eqs. 3-4 for one write head on vectors: M_t(i) = M_{t-1}(i) (1 - w(i) e) + w(i) a. The
// forward and the backward's recomputation both call this, so they agree bit for bit.
template <typename T>
MANN_INLINE V<T> written(V<T> old, T w, V<T> e, V<T> a) {
  return old * (T(1) - w * e) + w * a;
}

// For each of the N rows (NV vectors each), row(n, r) puts M(n) into r; the H (<= 4) keys'
// dots k_h . M(n) go to out[h * N + n] and, with Norm, ||M(n)|| to mn[n]. L rows at a time,
// so that the sums across lanes and the square roots run as vectors.
template <typename T, int64_t NV, bool Norm, typename Row>
MANN_INLINE void row_dots_v(const T* k, int64_t H, int64_t N, T* out, T* mn, Row&& row) {
  constexpr int64_t L = lanes<T>(), W = NV * L;
  V<T> kv[kFastHeads][NV] = {};  // missing heads stay zero: their dots are not stored
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t j = 0; j < NV; ++j) kv[h][j] = vload<T>(k + h * W + j * L);
  }
  V<T> part[kFastHeads + 1][L] = {};
  const auto one_row = [&](int64_t n, int64_t i) MANN_INLINE_LAMBDA {
    V<T> r[NV];
    row(n, r);
    V<T> nn = {}, d0 = {}, d1 = {}, d2 = {}, d3 = {};
    for (int64_t j = 0; j < NV; ++j) {
      if constexpr (Norm) nn += r[j] * r[j];
      d0 += kv[0][j] * r[j];
      d1 += kv[1][j] * r[j];
      d2 += kv[2][j] * r[j];
      d3 += kv[3][j] * r[j];
    }
    part[0][i] = nn;
    part[1][i] = d0;
    part[2][i] = d1;
    part[3][i] = d2;
    part[4][i] = d3;
  };
  row_blocks(N, L, one_row, [&](int64_t n0, int64_t count) MANN_INLINE_LAMBDA {
    if constexpr (Norm) vstore_n<T>(mn + n0, vsqrt<T>(hsum_lanes<T>(part[0])), count);
    for (int64_t h = 0; h < H; ++h) {
      vstore_n<T>(out + h * N + n0, hsum_lanes<T>(part[1 + h]), count);
    }
  });
}

// Eq. 2 for Hr (<= 4) read heads: r_h = sum_i w^r_h(i) M(i) into rd [Hr, W], the sums in
// registers (in the order of the general loop: row by row).
template <typename T, int64_t NV>
void read_v(const T* __restrict wr, int64_t Hr, const T* __restrict m, int64_t N,
            T* __restrict rd) {
  constexpr int64_t L = lanes<T>(), W = NV * L;
  V<T> acc[kFastHeads][NV] = {};
  for (int64_t n = 0; n < N; ++n) {
    T c[kFastHeads];
    for (int64_t h = 0; h < kFastHeads; ++h) c[h] = h < Hr ? wr[h * N + n] : T(0);
    for (int64_t j = 0; j < NV; ++j) {
      const V<T> r = vload<T>(m + n * W + j * L);
      for (int64_t h = 0; h < kFastHeads; ++h) acc[h][j] += c[h] * r;
    }
  }
  for (int64_t h = 0; h < Hr; ++h) {
    for (int64_t j = 0; j < NV; ++j) vstore<T>(rd + h * W + j * L, acc[h][j]);
  }
}

// memory_grads_one (ntm_kernels.h) on rows of NV vectors: dL/dM_t(i) from later steps, the
// reads and the read addressing, through eqs. 3-4 into dL/dM_{t-1} (gm0), dL/dw^w (adds to
// gw), dL/de and dL/da (add to ge, ga); the read keys' gradients into gk. Clears gmn. Asks
// for the next batch element's M_{t-1} (`next`, may be null) in the outer caches meanwhile.
template <typename T, int64_t NV>
void memory_grads_one_v(const T* __restrict m0, const T* __restrict w, const T* __restrict e,
                        const T* __restrict a, const T* __restrict gmin,
                        const T* __restrict wr, const T* __restrict gr, int64_t Hr,
                        const T* __restrict dd, const T* __restrict k,
                        const T* __restrict kscale, const T* __restrict mn,
                        T* __restrict gmn, T* __restrict gk, T* __restrict gm0,
                        T* __restrict gw, T* __restrict ge, T* __restrict ga, int64_t N,
                        const T* next) {
  constexpr int64_t L = lanes<T>(), W = NV * L;
  V<T> ev[NV], av[NV], gev[NV], gav[NV];
  for (int64_t j = 0; j < NV; ++j) {
    ev[j] = vload<T>(e + j * L);
    av[j] = vload<T>(a + j * L);
    gev[j] = vload<T>(ge + j * L);
    gav[j] = vload<T>(ga + j * L);
  }
  for (int64_t h = 0; h < Hr; ++h) {
    for (int64_t j = 0; j < NV; ++j) {
      vstore<T>(gk + h * W + j * L, kscale[h] * vload<T>(k + h * W + j * L));
    }
  }
  V<T> part[L] = {};
  const auto one_row = [&](int64_t n, int64_t i) MANN_INLINE_LAMBDA {
    if (next != nullptr) prefetch(next + n * W, W);
    const T wn = w[n];
    const T scale = mn[n] > 0 ? gmn[n] / mn[n] : T(0);
    gmn[n] = 0;
    V<T> o[NV], r[NV], g[NV];
    for (int64_t j = 0; j < NV; ++j) {
      o[j] = vload<T>(m0 + n * W + j * L);
      r[j] = written<T>(o[j], wn, ev[j], av[j]);  // M_t(i)
      g[j] = vload<T>(gmin + n * W + j * L) + scale * r[j];
    }
    for (int64_t h = 0; h < Hr; ++h) {
      const T c = wr[h * N + n], d = dd[h * N + n];
      for (int64_t j = 0; j < NV; ++j) {
        g[j] += c * vload<T>(gr + h * W + j * L) + d * vload<T>(k + h * W + j * L);
        vstore<T>(gk + h * W + j * L, vload<T>(gk + h * W + j * L) + d * r[j]);
      }
    }
    V<T> acc = {};
    for (int64_t j = 0; j < NV; ++j) {
      vstore<T>(gm0 + n * W + j * L, g[j] * (T(1) - wn * ev[j]));
      acc += g[j] * (av[j] - o[j] * ev[j]);
      gev[j] -= g[j] * o[j] * wn;
      gav[j] += g[j] * wn;
    }
    part[i] = acc;
  };
  row_blocks(N, L, one_row, [&](int64_t n0, int64_t count) MANN_INLINE_LAMBDA {
    vstore_n<T>(gw + n0, vload_n<T>(gw + n0, count) + hsum_lanes<T>(part), count);
  });
  for (int64_t j = 0; j < NV; ++j) {
    vstore<T>(ge + j * L, gev[j]);
    vstore<T>(ga + j * L, gav[j]);
  }
}

}  // namespace mann_ntm

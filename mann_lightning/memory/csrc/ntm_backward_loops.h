// General loops of the fused NTM-style step's backward (any word, any heads): the keys' and
// the memory's gradients after the addressing's backward (ntm_address_backward.h), and for one
// write head the passes through eqs. 3-4. ntm_fast.h has their vectorised forms. Included by
// ntm_step.cpp.
#pragma once

#include "ntm_kernels.h"

#include <cmath>
#include <cstdint>

namespace mann_ntm {

// The keys' and the memory's gradients from `address_backward`'s: dL/dk_h = kscale_h k_h +
// sum_i dd[h, i] M(i); dL/dM(i) += sum_h dd[h, i] k_h + dL/d||M(i)|| M(i) / ||M(i)|| (0 for
// a zero row); clears `gmn`.
template <typename T, int64_t NV>
void rows_backward_v(const T* __restrict k, int64_t H, const T* __restrict dd,
                     const T* __restrict kscale, const T* __restrict m, const T* __restrict mn,
                     T* __restrict gmn, T* __restrict gk, T* __restrict gm, int64_t N) {
  constexpr int64_t L = lanes<T>(), W = NV * L;  // rows of NV vectors, dL/dM(i) in registers
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t x = 0; x < W; ++x) gk[h * W + x] = kscale[h] * k[h * W + x];
  }
  for (int64_t n = 0; n < N; ++n) {
    const T scale = mn[n] > 0 ? gmn[n] / mn[n] : T(0);
    gmn[n] = 0;
    V<T> row[NV], g[NV];
    for (int64_t j = 0; j < NV; ++j) {
      row[j] = vload<T>(m + n * W + j * L);
      g[j] = vload<T>(gm + n * W + j * L) + scale * row[j];
    }
    for (int64_t h = 0; h < H; ++h) {
      const T d = dd[h * N + n];
      for (int64_t j = 0; j < NV; ++j) {
        g[j] += d * vload<T>(k + h * W + j * L);
        vstore<T>(gk + h * W + j * L, vload<T>(gk + h * W + j * L) + d * row[j]);
      }
    }
    for (int64_t j = 0; j < NV; ++j) vstore<T>(gm + n * W + j * L, g[j]);
  }
}

template <typename T>
void rows_backward(const T* __restrict k, int64_t H, const T* __restrict dd,
                   const T* __restrict kscale, const T* __restrict m, const T* __restrict mn,
                   T* __restrict gmn, T* __restrict gk, T* __restrict gm, int64_t N,
                   int64_t W) {
  const int64_t nv = W % lanes<T>() == 0 ? W / lanes<T>() : 0;
  if (nv == 4) return rows_backward_v<T, 4>(k, H, dd, kscale, m, mn, gmn, gk, gm, N);
  if (nv == 5) return rows_backward_v<T, 5>(k, H, dd, kscale, m, mn, gmn, gk, gm, N);
  if (nv == 10) return rows_backward_v<T, 10>(k, H, dd, kscale, m, mn, gmn, gk, gm, N);
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t x = 0; x < W; ++x) gk[h * W + x] = kscale[h] * k[h * W + x];
  }
  for (int64_t n = 0; n < N; ++n) {
    const T* __restrict row = m + n * W;
    T* __restrict grow = gm + n * W;
    const T scale = mn[n] > 0 ? gmn[n] / mn[n] : T(0);
    gmn[n] = 0;
    for (int64_t x = 0; x < W; ++x) grow[x] += scale * row[x];
    for (int64_t h = 0; h < H; ++h) {
      const T d = dd[h * N + n];
      const T* __restrict kh = k + h * W;
      T* __restrict gkh = gk + h * W;
      for (int64_t x = 0; x < W; ++x) {
        grow[x] += d * kh[x];
        gkh[x] += d * row[x];
      }
    }
  }
}

// ---------------------------------------------------------------- backward, one write head
// M_t's rows are recomputed from M_{t-1} (eqs. 3-4: two products per value) instead of
// being read again: a step's backward then reads one saved memory, not two, and the
// gradient of M_t is taken through eqs. 3-4 in the same pass that forms it.

// dL/dw^r(h, i) = g_r(h) . M_t(i) plus what later steps sent (`grw`), into `gwr` [Hr, N].
template <typename T>
void read_weight_grads_one(const T* __restrict m0, const T* __restrict w, const T* __restrict e,
                           const T* __restrict a, const T* __restrict gr, int64_t Hr,
                           const T* __restrict grw, T* __restrict gwr, T* __restrict row,
                           T* __restrict tmp, int64_t N, int64_t W) {
  for (int64_t n = 0; n < N; ++n) {
    const T wn = w[n];
    const T* __restrict old = m0 + n * W;
    for (int64_t x = 0; x < W; ++x) row[x] = old[x] * (T(1) - wn * e[x]) + wn * a[x];
    row_dots(gr, Hr, row, 1, W, tmp, 1);
    for (int64_t h = 0; h < Hr; ++h) gwr[h * N + n] = tmp[h] + grw[h * N + n];
  }
}

// dL/dM_t(i) from later steps (`gmin`), the reads (eq. 2) and the read addressing (`dd`,
// `kscale`, `gmn` of `address_backward`), taken through eqs. 3-4 at once: dL/dM_{t-1} into
// `gm0`, and adds to dL/dw^w (`gw`, [N]), dL/de, dL/da ([W]); dL/dk of the read heads into
// `gk` [Hr, W]. Clears `gmn`.
template <typename T>
void memory_grads_one(const T* __restrict m0, const T* __restrict w, const T* __restrict e,
                      const T* __restrict a, const T* __restrict gmin, const T* __restrict wr,
                      const T* __restrict gr, int64_t Hr, const T* __restrict dd,
                      const T* __restrict k, const T* __restrict kscale,
                      const T* __restrict mn, T* __restrict gmn, T* __restrict gk,
                      T* __restrict gm0, T* __restrict gw, T* __restrict ge,
                      T* __restrict ga, T* __restrict row, T* __restrict grow, int64_t N,
                      int64_t W) {
  for (int64_t h = 0; h < Hr; ++h) {
    for (int64_t x = 0; x < W; ++x) gk[h * W + x] = kscale[h] * k[h * W + x];
  }
  for (int64_t n = 0; n < N; ++n) {
    const T wn = w[n];
    const T* __restrict old = m0 + n * W;
    const T* __restrict gin = gmin + n * W;
    const T scale = mn[n] > 0 ? gmn[n] / mn[n] : T(0);
    gmn[n] = 0;
    for (int64_t x = 0; x < W; ++x) {
      row[x] = old[x] * (T(1) - wn * e[x]) + wn * a[x];  // M_t(i)
      grow[x] = gin[x] + scale * row[x];
    }
    for (int64_t h = 0; h < Hr; ++h) {
      const T c = wr[h * N + n], d = dd[h * N + n];
      const T* __restrict gh = gr + h * W;
      const T* __restrict kh = k + h * W;
      T* __restrict gkh = gk + h * W;
      for (int64_t x = 0; x < W; ++x) {
        grow[x] += c * gh[x] + d * kh[x];
        gkh[x] += d * row[x];
      }
    }
    T* __restrict out = gm0 + n * W;
    T acc[kLanes] = {};
    int64_t x = 0;
    for (; x + kLanes <= W; x += kLanes) {
      for (int64_t j = 0; j < kLanes; ++j) {
        const T gv = grow[x + j], o = old[x + j], ex = e[x + j];
        out[x + j] = gv * (T(1) - wn * ex);
        acc[j] += gv * (a[x + j] - o * ex);
        ge[x + j] -= gv * o * wn;
        ga[x + j] += gv * wn;
      }
    }
    T total = tree_sum(acc);
    for (; x < W; ++x) {
      const T gv = grow[x], o = old[x];
      out[x] = gv * (T(1) - wn * e[x]);
      total += gv * (a[x] - o * e[x]);
      ge[x] -= gv * o * wn;
      ga[x] += gv * wn;
    }
    gw[n] += total;
  }
}

}  // namespace mann_ntm

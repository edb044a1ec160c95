// The fused NTM-style forward step of one batch element (Graves et al. 2014 eqs. 2-9):
// the write heads address M_{t-1} (eqs. 5-9), erase and add (eqs. 3-4), the read heads
// address M_t and read it (eq. 2). Vectorised passes (ntm_fast.h) where the word is a whole
// number of 32-byte vectors and a group has at most four heads, else the general loops
// (ntm_kernels.h). Included by ntm_step.cpp.
#pragma once

#include "ntm_fast.h"

#include <algorithm>
#include <cstdint>

namespace mann_ntm {

// One element's step: e, a [Hw, W]; M_{t-1} m0 [N, W] and previous weights prw [Hr, N], pww
// [Hw, N] in; M_t m [N, W], weights wr [Hr, N], wwb [Hw, N], row norms mn [2, N] (of M_{t-1},
// M_t) and reads rd [Hr, W] out, the saved planes into the heads' aux; tmp [N] scratch.
// `next` (may be null): the next element's M_{t-1}, asked for in the outer caches meanwhile.
template <typename T>
void forward_element(const Heads<T>& writes, const Heads<T>& readh, const T* e, const T* a,
                     const T* m0, const T* prw, const T* pww, T* m, T* wr, T* wwb, T* mn,
                     T* rd, T* tmp, const T* next, const Sizes& z, T e_cos, T e_sharp) {
  const int64_t Hw = z.Hw, Hr = z.Hr, N = z.N, W = z.W;
  const T* k = writes.k;
  T* ax = writes.aux;
  with_vectors<T>(W, Hw, Hr, [&](auto vectors) {
    constexpr int64_t NV = decltype(vectors)::value, L = lanes<T>();
    if constexpr (NV > 0) {  // eq. 5 against M_{t-1}
      row_dots_v<T, NV, true>(k, Hw, N, ax, mn, [&](int64_t n, V<T>* r) {
        for (int64_t j = 0; j < NV; ++j) r[j] = vload<T>(m0 + n * W + j * L);
      });
    } else {
      norms_and_dots(k, Hw, m0, N, W, mn, ax);
    }
    address(writes, mn, pww, wwb, tmp, z, e_cos, e_sharp);
    if (Hw == 1) {  // eqs. 3-4, and eq. 5's dots against M_t, in one pass
      if constexpr (NV > 0) {
        row_dots_v<T, NV, true>(readh.k, Hr, N, readh.aux, mn + N, [&](int64_t n, V<T>* r) {
          if (next != nullptr) prefetch(next + n * W, W);
          const T wn = wwb[n];
          for (int64_t j = 0; j < NV; ++j) {
            r[j] = written<T>(vload<T>(m0 + n * W + j * L), wn, vload<T>(e + j * L),
                              vload<T>(a + j * L));
            vstore<T>(m + n * W + j * L, r[j]);
          }
        });
      } else {
        write_one(m0, wwb, e, a, m, readh.k, Hr, mn + N, readh.aux, N, W);
      }
    } else {
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t x = 0; x < W; ++x) {
          T keep = 1, added = 0;
          for (int64_t h = 0; h < Hw; ++h) {
            keep *= T(1) - wwb[h * N + n] * e[h * W + x];
            added += wwb[h * N + n] * a[h * W + x];
          }
          m[n * W + x] = m0[n * W + x] * keep + added;
        }
      }
      norms_and_dots(readh.k, Hr, m, N, W, mn + N, readh.aux);
    }
    address(readh, mn + N, prw, wr, tmp, z, e_cos, e_sharp);
    if constexpr (NV > 0) {  // eq. 2: r = sum_i w^r(i) M(i)
      read_v<T, NV>(wr, Hr, m, N, rd);
    } else {
      std::fill(rd, rd + Hr * W, T(0));
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t h = 0; h < Hr; ++h) {
          const T c = wr[h * N + n];
          for (int64_t x = 0; x < W; ++x) rd[h * W + x] += c * m[n * W + x];
        }
      }
    }
  });
}

}  // namespace mann_ntm

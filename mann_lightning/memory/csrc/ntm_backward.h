// The backward of the fused NTM-style step's reads (eq. 2), the read heads' addressing (eqs.
// 5-9 against M_t) and the write (eqs. 3-4) for one batch element, down to dL/dM_{t-1} and
// dL/dw^w; ntm_step.cpp then takes the write heads' addressing back. Vectorised passes
// (ntm_fast.h) for one write head and words of whole 32-byte vectors, else the general loops
// (ntm_backward_loops.h). Included by ntm_step.cpp.
#pragma once

#include "ntm_address_backward.h"
#include "ntm_backward_loops.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace mann_ntm {

// One thread's scratch for the backward of its batch elements.
template <typename T>
struct Scratch {
  std::vector<T> gm, gwr, gww, gmn, t1, t2, f, dd, kscale, row;
  explicit Scratch(const Sizes& z)
      : gm(z.N * z.W), gwr(z.Hr * z.N), gww(z.Hw * z.N), gmn(z.N, T(0)), t1(z.N + z.S),
        t2(z.N), f(z.Hw), dd(z.heads() * z.N), kscale(z.heads()), row(z.W) {}
};

// From dL/dr (gr [Hr, W]), dL/dw^r_t (grw [Hr, N]), dL/dw^w_t (gwwin [Hw, N]) and dL/dM_t
// (gmin [N, W]) sent back by later steps: the read heads' parameter gradients (gbe, gg, gs,
// gga at the read heads' places), dL/dw^r_{t-1} (gprw), the read keys' gradients (gk
// [Hr, W]), dL/dM_{t-1} (gm0), dL/de and dL/da (ge, gad [Hw, W]), and dL/dw^w_t into sc.gww
// for the write heads' addressing, still to take. m0 = M_{t-1}, m = M_t, mn their row norms
// [2, N]; `next` (may be null): the next element's M_{t-1}, prefetched.
template <typename T>
void reads_and_write_backward(const Heads<T>& readh, const T* m0, const T* m, const T* wwb,
                              const T* e, const T* a, const T* gr, const T* grw,
                              const T* gwwin, const T* gmin, const T* wr, const T* prw,
                              const T* mn, const T* next, Scratch<T>& sc, T* gbe, T* gg,
                              T* gs, T* gga, T* gprw, T* gk, T* gm0, T* ge, T* gad,
                              const Sizes& z, T e_cos, T e_sharp) {
  const int64_t Hw = z.Hw, Hr = z.Hr, N = z.N, W = z.W, S = z.S;
  T *gwr = sc.gwr.data(), *dd = sc.dd.data(), *kscale = sc.kscale.data(), *gmn = sc.gmn.data();
  T *gww = sc.gww.data(), *gm = sc.gm.data();
  std::copy(gwwin, gwwin + Hw * N, gww);
  std::fill(ge, ge + Hw * W, T(0));
  std::fill(gad, gad + Hw * W, T(0));
  if (Hw == 1) {  // eq. 2, the read addressing and eqs. 3-4 in two passes over M_{t-1}
    with_vectors<T>(W, Hw, Hr, [&](auto vectors) {
      constexpr int64_t NV = decltype(vectors)::value, L = lanes<T>();
      if constexpr (NV > 0) {  // dL/dw^r(h, i) = g_r(h) . M_t(i), M_t recomputed
        row_dots_v<T, NV, false>(gr, Hr, N, gwr, nullptr, [&](int64_t n, V<T>* r) {
          const T wn = wwb[n];
          for (int64_t j = 0; j < NV; ++j) {
            r[j] = written<T>(vload<T>(m0 + n * W + j * L), wn, vload<T>(e + j * L),
                              vload<T>(a + j * L));
          }
        });
        for (int64_t i = 0; i < Hr * N; ++i) gwr[i] += grw[i];
      } else {
        read_weight_grads_one(m0, wwb, e, a, gr, Hr, grw, gwr, sc.row.data(), kscale, N, W);
      }
      address_backward(readh, mn + N, prw, wr, gwr, gbe + Hw, gg + Hw, gs + Hw * S, gga + Hw,
                       gprw, dd, kscale, gmn, sc.t1.data(), sc.t2.data(), z, e_cos, e_sharp);
      if constexpr (NV > 0) {
        memory_grads_one_v<T, NV>(m0, wwb, e, a, gmin, wr, gr, Hr, dd, readh.k, kscale, mn + N,
                                  gmn, gk + Hw * W, gm0, gww, ge, gad, N, next);
      } else {
        memory_grads_one(m0, wwb, e, a, gmin, wr, gr, Hr, dd, readh.k, kscale, mn + N, gmn,
                         gk + Hw * W, gm0, gww, ge, gad, sc.row.data(), gm, N, W);
      }
    });
    return;
  }
  // eq. 2 backward: dL/dw^r(i) = g_r . M(i) (plus what later steps sent), dL/dM(i).
  std::copy(gmin, gmin + N * W, gm);
  row_dots(gr, Hr, m, N, W, gwr, N);
  for (int64_t i = 0; i < Hr * N; ++i) gwr[i] += grw[i];
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t h = 0; h < Hr; ++h) {
      const T c = wr[h * N + n];
      for (int64_t x = 0; x < W; ++x) gm[n * W + x] += c * gr[h * W + x];
    }
  }
  address_backward(readh, mn + N, prw, wr, gwr, gbe + Hw, gg + Hw, gs + Hw * S, gga + Hw, gprw,
                   dd, kscale, gmn, sc.t1.data(), sc.t2.data(), z, e_cos, e_sharp);
  rows_backward(readh.k, Hr, dd, kscale, m, mn + N, gmn, gk + Hw * W, gm, N, W);
  // eqs. 3-4 backward: M_t = M_{t-1} prod_h (1 - w^w_h e_h) + sum_h w^w_h a_h.
  T* f = sc.f.data();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t x = 0; x < W; ++x) {
      T keep = 1;
      for (int64_t h = 0; h < Hw; ++h) {
        f[h] = T(1) - wwb[h * N + n] * e[h * W + x];
        keep *= f[h];
      }
      const T gv = gm[n * W + x], old = m0[n * W + x];
      gm0[n * W + x] = gv * keep;
      for (int64_t h = 0; h < Hw; ++h) {
        T others = 1;  // the product without head h (no division: a factor may be 0)
        for (int64_t j = 0; j < Hw; ++j) others *= j == h ? T(1) : f[j];
        const T w = wwb[h * N + n];
        gww[h * N + n] += gv * (a[h * W + x] - old * others * e[h * W + x]);
        ge[h * W + x] -= gv * old * others * w;
        gad[h * W + x] += gv * w;
      }
    }
  }
}

}  // namespace mann_ntm

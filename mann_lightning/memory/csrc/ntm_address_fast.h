// The backward of eqs. 5-9's addressing on vectors (ntm_kernels.h's address_backward with its
// passes over the slots fused); included by ntm_step.cpp.
#pragma once

#include "ntm_fast.h"

#include <cmath>
#include <cstdint>

namespace mann_ntm {

constexpr int64_t kFastShifts = 7;

// address_backward (ntm_kernels.h) for N a whole number of vectors and S <= kFastShifts:
// four passes over the slots instead of fifteen. dL/dw~ goes into a circularly padded copy
// `pad` [N + S - 1] (pad[i + half] = dL/dw~(i)), so that eq. 8's sums over the shifts, for
// dL/ds and for dL/dw^g, are straight vector loads at pad + i + j.
template <typename T>
void address_backward_v(const Heads<T>& hd, const T* mn, const T* prev, const T* w,
                        const T* gw, T* gbeta, T* gg, T* gs, T* ggamma, T* gprev, T* dd,
                        T* kscale, T* gmn, T* pad, T* c, const Sizes& z, T eps, T seps) {
  constexpr int64_t L = lanes<T>();
  const int64_t N = z.N, W = z.W, S = z.S, half = S / 2, P = hd.plane;
  for (int64_t h = 0; h < hd.H; ++h) {
    const T* __restrict cos = hd.aux + h * N;
    const T* __restrict content = cos + P;
    const T* __restrict gated = cos + 2 * P;
    const T* __restrict shifted = cos + 3 * P;
    const T* __restrict lg = cos + 4 * P;
    const T* __restrict wh = w + h * N;
    const T* __restrict gwh = gw + h * N;
    const T* __restrict p = prev + h * N;
    const T* __restrict s = hd.s + h * S;
    const T* k = hd.k + h * W;
    T* __restrict d = dd + h * N;
    T* __restrict gp = gprev + h * N;
    const T beta = hd.beta[h], g = hd.g[h], gamma = hd.gamma[h];
    V<T> acc = {};
    for (int64_t i = 0; i < N; i += L) acc += vload<T>(gwh + i) * vload<T>(wh + i);
    const T total = hsum<T>(acc);
    acc = V<T>{};  // eq. 9: dL/dz, dL/dgamma, then dL/dw~ into pad
    for (int64_t i = 0; i < N; i += L) {
      const V<T> dz = vload<T>(wh + i) * (vload<T>(gwh + i) - total);
      acc += dz * vload<T>(lg + i);
      vstore<T>(pad + half + i, dz * gamma / (vload<T>(shifted + i) + seps));
    }
    ggamma[h] = hsum<T>(acc);
    for (int64_t i = 0; i < half; ++i) {
      pad[i] = pad[N + i];
      pad[half + N + i] = pad[half + i];
    }
    // eq. 8: dL/ds(j) = sum_i w^g(i) dL/dw~(i + j - half); dL/dw^g(i) = sum_j s(j) dL/dw~(i
    // + j - half); eq. 7 into dL/dg and the previous weights; dL/dw^c into c.
    V<T> gsv[kFastShifts] = {}, ggv = {}, tcv = {};
    for (int64_t i = 0; i < N; i += L) {
      const V<T> gt = vload<T>(gated + i), ct = vload<T>(content + i);
      V<T> dwg = {};
      for (int64_t j = 0; j < S; ++j) {
        const V<T> x = vload<T>(pad + i + j);
        gsv[j] += gt * x;
        dwg += s[j] * x;
      }
      vstore<T>(gp + i, (T(1) - g) * dwg);
      ggv += dwg * (ct - vload<T>(p + i));
      const V<T> dwc = g * dwg;
      tcv += dwc * ct;
      vstore<T>(c + i, dwc);
    }
    for (int64_t j = 0; j < S; ++j) gs[h * S + j] = hsum<T>(gsv[j]);
    gg[h] = hsum<T>(ggv);
    const T total_c = hsum<T>(tcv);
    // The content softmax (eq. 5), then K = k . M(i) / (||k|| ||M(i)|| + eps); a zero norm's
    // gradient is taken as 0.
    const T kn = std::sqrt(dot(k, k, W));
    V<T> gbv = {}, ksv = {};
    for (int64_t i = 0; i < N; i += L) {
      const V<T> cs = vload<T>(cos + i), m = vload<T>(mn + i);
      const V<T> dbk = vload<T>(content + i) * (vload<T>(c + i) - total_c);  // dL/d(beta K)
      gbv += dbk * cs;
      const V<T> q = beta * dbk / (kn * m + eps);  // dL/d(k . M(i))
      vstore<T>(d + i, q);
      const V<T> dprod = -q * cs;  // dL/d(||k|| ||M(i)||)
      vstore<T>(gmn + i, vload<T>(gmn + i) + dprod * kn);
      ksv += dprod * m;
    }
    gbeta[h] = hsum<T>(gbv);
    kscale[h] = kn > 0 ? hsum<T>(ksv) / kn : T(0);
  }
}

// address_backward_v where it applies, else the general loops.
template <typename T>
void address_backward_any(const Heads<T>& hd, const T* mn, const T* prev, const T* w,
                          const T* gw, T* gbeta, T* gg, T* gs, T* ggamma, T* gprev, T* dd,
                          T* kscale, T* gmn, T* t1, T* t2, const Sizes& z, T eps, T seps) {
  if (z.N % lanes<T>() == 0 && z.S <= kFastShifts) {
    return address_backward_v(hd, mn, prev, w, gw, gbeta, gg, gs, ggamma, gprev, dd, kscale,
                              gmn, t1, t2, z, eps, seps);
  }
  address_backward(hd, mn, prev, w, gw, gbeta, gg, gs, ggamma, gprev, dd, kscale, gmn, t1, t2,
                   z, eps, seps);
}

}  // namespace mann_ntm

// The backward of eqs. 5-9's addressing (`address` in ntm_kernels.h) on vectors; included by
// ntm_step.cpp.
#pragma once

#include "ntm_fast.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace mann_ntm {

// The first n lanes of v, the others 0 (n <= lanes).
template <typename T>
MANN_INLINE V<T> first_lanes(V<T> v, int64_t n) {
  if (n == lanes<T>()) return v;
  T a[lanes<T>()];
  vstore<T>(a, v);
  for (int64_t i = n; i < lanes<T>(); ++i) a[i] = 0;
  return vload<T>(a);
}

// f(i, n) for the blocks [i, i + n) of N slots: n == L as a constant for the whole blocks
// (their loads and stores need no count), then the shorter last block if any.
template <typename T, typename F>
MANN_INLINE void slot_blocks(int64_t N, F&& f) {
  constexpr int64_t L = lanes<T>();
  int64_t i = 0;
  for (; i + L <= N; i += L) f(i, std::integral_constant<int64_t, L>{});
  if (i < N) f(i, N - i);
}

constexpr int64_t kFusedShifts = 7;  // eq. 8's dL/ds summed in the pass for S up to this

// Backward of `address` given dL/dw (`gw`, [H, N]), per head: the gradients of beta, g,
// gamma [H], s [H, S] and the previous weights [H, N]; dL/d(k . M(i)) into `dd` [H, N],
// dL/d||k|| / ||k|| into `kscale` [H] (0 for a zero key), and adds dL/d||M(i)|| to `gmn`
// [N]. `rows_backward` or `memory_grads_one` then take these to the keys and the memory.
// Four passes over the slots, L at a time (the last block may be shorter). dL/dw~ goes
// into a circularly padded copy `pad` [N + S - 1] (pad[i + half] = dL/dw~(i)), so that eq.
// 8's sums over the shifts, for dL/ds and for dL/dw^g, read straight runs at pad + i + j;
// dL/dw^c goes into `c` [N].
template <typename T>
void address_backward(const Heads<T>& hd, const T* mn, const T* prev, const T* w, const T* gw,
                      T* gbeta, T* gg, T* gs, T* ggamma, T* gprev, T* dd, T* kscale, T* gmn,
                      T* pad, T* c, const Sizes& z, T eps, T seps) {
  const int64_t N = z.N, W = z.W, S = z.S, half = S / 2, P = hd.plane;
  const auto ld = [](const T* p, int64_t n) MANN_INLINE_LAMBDA { return vload_n<T>(p, n); };
  for (int64_t h = 0; h < hd.H; ++h) {
    const T* __restrict cos = hd.aux + h * N;  // the planes saved by `address`
    const T* __restrict content = cos + P;
    const T* __restrict gated = cos + 2 * P;
    const T* __restrict shifted = cos + 3 * P;
    const T* __restrict lg = cos + 4 * P;
    const T *wh = w + h * N, *gwh = gw + h * N, *p = prev + h * N, *s = hd.s + h * S;
    T *d = dd + h * N, *gp = gprev + h * N;
    const T beta = hd.beta[h], g = hd.g[h], gamma = hd.gamma[h];
    V<T> acc = {};
    slot_blocks<T>(N, [&](int64_t i, auto n) MANN_INLINE_LAMBDA {
      acc += ld(gwh + i, n) * ld(wh + i, n);
    });
    const T total = hsum<T>(acc);
    acc = V<T>{};  // eq. 9: dL/dz, dL/dgamma, then dL/dw~ into pad
    slot_blocks<T>(N, [&](int64_t i, auto n) MANN_INLINE_LAMBDA {
      const V<T> dz = ld(wh + i, n) * (ld(gwh + i, n) - total);
      acc += dz * ld(lg + i, n);
      vstore_n<T>(pad + half + i, dz * gamma / (ld(shifted + i, n) + seps), n);
    });
    ggamma[h] = hsum<T>(acc);
    for (int64_t i = 0; i < half; ++i) {
      pad[i] = pad[N + i];
      pad[half + N + i] = pad[half + i];
    }
    // eq. 8: dL/ds(j) = sum_i w^g(i) dL/dw~(i + j - half); dL/dw^g(i) = sum_j s(j) dL/dw~(i
    // + j - half); eq. 7 into dL/dg and the previous weights; dL/dw^c into c.
    const bool fused = S <= kFusedShifts;
    V<T> gsv[kFusedShifts] = {}, ggv = {}, tcv = {};
    slot_blocks<T>(N, [&](int64_t i, auto n) MANN_INLINE_LAMBDA {
      const V<T> gt = ld(gated + i, n), ct = ld(content + i, n);
      V<T> dwg = {};
      for (int64_t j = 0; j < S; ++j) {
        const V<T> x = ld(pad + i + j, n);
        if (fused) gsv[j] += gt * x;
        dwg += s[j] * x;
      }
      vstore_n<T>(gp + i, (T(1) - g) * dwg, n);
      ggv += dwg * (ct - ld(p + i, n));
      const V<T> dwc = g * dwg;
      tcv += dwc * ct;
      vstore_n<T>(c + i, dwc, n);
    });
    for (int64_t j = 0; j < S; ++j) {
      gs[h * S + j] = fused ? hsum<T>(gsv[j]) : dot(gated, pad + j, N);
    }
    gg[h] = hsum<T>(ggv);
    const T total_c = hsum<T>(tcv);
    // The content softmax (eq. 5), then K = k . M(i) / (||k|| ||M(i)|| + eps); a zero norm's
    // gradient is taken as 0.
    const T kn = std::sqrt(dot(hd.k + h * W, hd.k + h * W, W));
    V<T> gbv = {}, ksv = {};
    slot_blocks<T>(N, [&](int64_t i, auto n) MANN_INLINE_LAMBDA {
      const V<T> cs = ld(cos + i, n), m = ld(mn + i, n);
      const V<T> dbk = ld(content + i, n) * (ld(c + i, n) - total_c);  // dL/d(beta K)
      gbv += dbk * cs;
      // dL/d(k . M(i)); lanes past the last slot cleared (0 / (0 + eps) may be NaN)
      const V<T> q = first_lanes<T>(beta * dbk / (kn * m + eps), n);
      vstore_n<T>(d + i, q, n);
      const V<T> dprod = -q * cs;  // dL/d(||k|| ||M(i)||)
      vstore_n<T>(gmn + i, ld(gmn + i, n) + dprod * kn, n);
      ksv += dprod * m;
    });
    gbeta[h] = hsum<T>(gbv);
    kscale[h] = kn > 0 ? hsum<T>(ksv) / kn : T(0);
  }
}

}  // namespace mann_ntm

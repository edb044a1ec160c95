// Eq. 6 of the LRUA memory in the fused kernels: the least-used slots (least_of for the slot
// that a write erases, mark_least for w^lu_t); included by lrua_general.h.
#pragma once

#include "lrua_math.h"  // MANN_INLINE

#include <cstdint>

namespace mann_lrua {

// Index of the least of x[0..n) (the first of equal ones; the first NaN if any, as
// torch.argmin), skipping the slots where skip is nonzero (skip may be null).
template <typename T>
MANN_INLINE int64_t least_of(const T* x, int64_t n, const T* skip) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (skip != nullptr && skip[i] != 0) continue;
    if (best < 0 || (x[best] == x[best] && (x[i] < x[best] || x[i] != x[i]))) best = i;
  }
  return best;
}

// lu[i] = 1 on the H slots of least u (eq. 6), the same ones as H rounds of least_of (a NaN
// counts as least; ties: the lower index), in one pass that keeps the H least so far sorted.
template <typename T>
MANN_INLINE void mark_least(const T* u, int64_t N, int64_t H, T* lu) {
  constexpr int64_t kMax = 16;
  if (H > kMax) {
    for (int64_t r = 0; r < H; ++r) lu[least_of<T>(u, N, lu)] = 1;
    return;
  }
  const auto before = [](T x, T y) { return y == y && (x != x || x < y); };  // as least_of
  T val[kMax];
  int64_t idx[kMax], count = 0;
  for (int64_t i = 0; i < N; ++i) {
    const T x = u[i];
    if (count == H && !before(x, val[H - 1])) continue;
    int64_t p = count < H ? count++ : H - 1;
    for (; p > 0 && before(x, val[p - 1]); --p) {
      val[p] = val[p - 1];
      idx[p] = idx[p - 1];
    }
    val[p] = x;
    idx[p] = i;
  }
  for (int64_t r = 0; r < count; ++r) lu[idx[r]] = 1;
}

}  // namespace mann_lrua

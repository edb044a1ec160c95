// Vectorised fused LRUA step for four heads and words of 4, 5 or 10 vectors of 32 bytes (the
// paper's 4 x 40 in float32); included by lrua_step.cpp after lrua_general.h.
#pragma once

#include "lrua_general.h"

namespace mann_lrua {

// Asks for [p, p + count) in the outer caches ahead of its use, one hint per 64-byte line
// (nothing for a null p). Inside an episode the backward's saved tensors come from RAM.
template <typename T>
MANN_INLINE void prefetch(const T* p, int64_t count) {
  if (p == nullptr) return;
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t i = 0; i < count * int64_t(sizeof(T)); i += 64) __builtin_prefetch(c + i, 0, 2);
}

// Rows 0..n in blocks of L: row(n, i) for each row of a block (i: its place in the block),
// then finish(n0, count) for the block of count rows from n0 (count < L only in the last).
template <typename Row, typename Finish>
MANN_INLINE void row_blocks(int64_t n, int64_t L, Row&& row, Finish&& finish) {
  for (int64_t n0 = 0; n0 < n; n0 += L) {
    const int64_t count = n - n0 < L ? n - n0 : L;
    for (int64_t i = 0; i < count; ++i) row(n0 + i, i);
    finish(n0, count);
  }
}

// ---------------------------------------------------------------- fast path: H = 4
// Rows held as NV vectors of 32 bytes (GCC/Clang vector extensions: AVX on x86, NEON pairs
// on ARM), keys and read gradients in registers, one pass per row for each direction.
template <typename T, int64_t NV>
void forward_fast(const ForwardArgs<T>& a) {
  const int64_t B = a.B, N = a.N;
  constexpr int64_t H = 4, L = lanes<T>(), W = NV * L;
  const T eps = a.eps;
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      begin_step(a, b);
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
      for (int64_t h = 0; h < H; ++h) {  // eq. 7
        for (int64_t n = 0; n < N; ++n) wwb[h * N + n] = l[n] + g[h] * (r0[h * N + n] - l[n]);
      }
      // Eq. 8 into row n, then its squared norm and the four keys' dots (eq. 2) as vectors
      // whose lanes are still to be summed: part[0][i], part[1 + h][i].
      const auto write_row = [&](int64_t n, V<T> (*part)[L], int64_t i) MANN_INLINE_LAMBDA {
        const T w0 = wwb[n], w1 = wwb[N + n], w2 = wwb[2 * N + n], w3 = wwb[3 * N + n];
        V<T> nn = {}, d0 = {}, d1 = {}, d2 = {}, d3 = {};
        for (int64_t j = 0; j < NV; ++j) {
          V<T> r = n == e ? V<T>{} : vload<T>(m0 + n * W + j * L);
          r += w0 * kv[0][j];
          r += w1 * kv[1][j];
          r += w2 * kv[2][j];
          r += w3 * kv[3][j];
          vstore<T>(m + n * W + j * L, r);
          nn += r * r;
          d0 += kv[0][j] * r;
          d1 += kv[1][j] * r;
          d2 += kv[2][j] * r;
          d3 += kv[3][j] * r;
        }
        part[0][i] = nn;
        part[1][i] = d0;
        part[2][i] = d1;
        part[3][i] = d2;
        part[4][i] = d3;
      };
      // L rows at a time, so that their sums across lanes, norms and divisions run as vectors
      // (lanes past the last row are computed and not stored).
      V<T> part[H + 1][L];
      row_blocks(N, L, [&](int64_t n, int64_t i) MANN_INLINE_LAMBDA { write_row(n, part, i); },
                 [&](int64_t n0, int64_t count) MANN_INLINE_LAMBDA {
                   const V<T> norm = vsqrt<T>(hsum_lanes<T>(part[0]));
                   vstore_n<T>(mn + n0, norm, count);
                   for (int64_t h = 0; h < H; ++h) {
                     const V<T> dots = hsum_lanes<T>(part[1 + h]);
                     vstore_n<T>(s + h * N + n0, dots / (knorm[h] * norm + eps), count);
                   }
                 });
      for (int64_t h = 0; h < H; ++h) softmax(s + h * N, wr + h * N, N);  // eq. 3
      V<T> acc[H][NV] = {};  // eq. 4
      for (int64_t n = 0; n < N; ++n) {
        if (b + 1 < end) prefetch(m0 + (N + n) * W, W);  // the next element's M_{t-1}
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
      end_step(a, b);
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
    std::vector<T> gw(H * N), gdots(H * N), cm(N), gden(N);
    for (int64_t b = begin; b < end; ++b) {
      const auto [k, g, r0, l, m, wr, wwb, s, mn, gr, grw, gwwin, gin, gko, ggo, gm, grwo, e] =
          BackwardEpisode<T>(a, b);
      // The next element's saved tensors are asked for while this one computes: its
      // weights now, its memory row by row in the first pass, the incoming gradient in the
      // second.
      const bool more = b + 1 < end;
      if (more) {
        for (const T* p : {s, wr, wwb, r0}) prefetch(p + H * N, H * N);
        prefetch(mn + N, N);
      }
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
      // eq. 4 into w^r: g_w = g_rw + g_r M^T, L rows at a time (their sums across lanes as
      // vectors); then eq. 3's sum_n w g_w.
      V<T> part[H][L];
      const auto read_grads = [&](int64_t n, int64_t i) MANN_INLINE_LAMBDA {
        if (more) prefetch(m + (N + n) * W, W);
        V<T> d0 = {}, d1 = {}, d2 = {}, d3 = {};
        for (int64_t j = 0; j < NV; ++j) {
          const V<T> r = vload<T>(m + n * W + j * L);
          d0 += grv[0][j] * r;
          d1 += grv[1][j] * r;
          d2 += grv[2][j] * r;
          d3 += grv[3][j] * r;
        }
        part[0][i] = d0;
        part[1][i] = d1;
        part[2][i] = d2;
        part[3][i] = d3;
      };
      row_blocks(N, L, read_grads, [&](int64_t n0, int64_t count) MANN_INLINE_LAMBDA {
        for (int64_t h = 0; h < H; ++h) {
          const int64_t i = h * N + n0;
          vstore_n<T>(gw.data() + i, vload_n<T>(grw + i, count) + hsum_lanes<T>(part[h]), count);
        }
      });
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t h = 0; h < H; ++h) rowsum[h] += wr[h * N + n] * gw[h * N + n];
      }
      // eqs. 3 and 2 into the dots and the two norms.
      for (int64_t n = 0; n < N; ++n) cm[n] = 0;
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t n = 0; n < N; ++n) {  // vectorised
          const int64_t i = h * N + n;
          const T gd = wr[i] * (gw[i] - rowsum[h]) / (knorm[h] * mn[n] + eps);
          gden[n] = -gd * s[i];
          gdots[i] = gd;
          cm[n] += gden[n] * knorm[h];
        }
        T gkn = 0;
        for (int64_t n = 0; n < N; ++n) gkn += gden[n] * mn[n];
        gknorm[h] = gkn;
      }
      for (int64_t n = 0; n < N; ++n) cm[n] /= std::max(mn[n], tiny);
      // Into M_t, then eq. 8 into w^w and the keys (the erased row gets no gradient), L rows
      // at a time; the sums into w^w as vectors.
      const auto memory_grads = [&](int64_t n, int64_t i) MANN_INLINE_LAMBDA {
        const T c = cm[n];
        const T wn[H] = {wr[n], wr[N + n], wr[2 * N + n], wr[3 * N + n]};
        const T d[H] = {gdots[n], gdots[N + n], gdots[2 * N + n], gdots[3 * N + n]};
        const T w[H] = {wwb[n], wwb[N + n], wwb[2 * N + n], wwb[3 * N + n]};
        if (more) prefetch(gin + (N + n) * W, W);
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
        part[0][i] = e0;
        part[1][i] = e1;
        part[2][i] = e2;
        part[3][i] = e3;
      };
      row_blocks(N, L, memory_grads, [&](int64_t n0, int64_t count) MANN_INLINE_LAMBDA {
        const V<T> lu = vload_n<T>(l + n0, count);
        for (int64_t h = 0; h < H; ++h) {
          const int64_t i = h * N + n0;
          const V<T> gww = vload_n<T>(gwwin + i, count) + hsum_lanes<T>(part[h]);
          vstore_n<T>(grwo + i, gww * g[h], count);  // eq. 7
          const V<T> gate_terms = gww * (vload_n<T>(r0 + i, count) - lu);  // g_gate's terms
          vstore_n<T>(gdots.data() + i, gate_terms, count);  // reused
        }
      });
      for (int64_t h = 0; h < H; ++h) {
        const T c = gknorm[h] / std::max(knorm[h], tiny);
        for (int64_t j = 0; j < NV; ++j) {
          vstore<T>(gko + h * W + j * L, gk[h][j] + c * kv[h][j]);
        }
        T gg = 0;
        for (int64_t n = 0; n < N; ++n) gg += gdots[h * N + n];
        ggo[h] = gg * (T(1) - g[h]) * g[h];  // through the sigmoid of eq. 7
      }
    }
  });
}

}  // namespace mann_lrua

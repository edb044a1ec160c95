// The fused LRUA operators' arguments as raw pointers, and one batch element's slices of them;
// included by lrua_general.h.
#pragma once

#include <cstdint>

namespace mann_lrua {

// The operators' tensors as raw pointers (contiguous, batch first), and one batch element's
// slices of them: what every kernel below walks through.
template <typename T>
struct ForwardArgs {
  const T *keys, *alpha, *memory, *prev_rw, *lu, *usage;
  T gamma, eps;
  T *reads, *new_memory, *rw, *ww, *new_usage, *new_lu, *gate, *sim, *mnorm;
  int64_t* erase;  // written by begin_step, as gate: both then read by the step
  int64_t B, H, N, W;
  int64_t alpha_row;  // alpha's row stride: a column slice of the interface output is read in place
};

template <typename T>
struct ForwardEpisode {
  const T *k, *g, *m0, *r0, *l;
  T *m, *wr, *wwb, *s, *mn, *rd;
  int64_t e;
  ForwardEpisode(const ForwardArgs<T>& a, int64_t b)
      : k(a.keys + b * a.H * a.W), g(a.gate + b * a.H), m0(a.memory + b * a.N * a.W),
        r0(a.prev_rw + b * a.H * a.N), l(a.lu + b * a.N), m(a.new_memory + b * a.N * a.W),
        wr(a.rw + b * a.H * a.N), wwb(a.ww + b * a.H * a.N), s(a.sim + b * a.H * a.N),
        mn(a.mnorm + b * a.N), rd(a.reads + b * a.H * a.W), e(a.erase[b]) {}
};

template <typename T>
struct BackwardArgs {
  const T *g_reads, *g_mem, *g_rw, *g_ww, *keys, *gate, *prev_rw, *lu;
  const int64_t* erase;
  const T *m, *rw, *ww, *sim, *mnorm;
  T eps;
  T *g_keys, *g_gate, *g_memory, *g_prev_rw;
  int64_t B, H, N, W;
};

template <typename T>
struct BackwardEpisode {
  const T *k, *g, *r0, *l, *m, *wr, *wwb, *s, *mn, *gr, *grw, *gwwin, *gin;
  T *gko, *ggo, *gm, *grwo;
  int64_t e;
  BackwardEpisode(const BackwardArgs<T>& a, int64_t b)
      : k(a.keys + b * a.H * a.W), g(a.gate + b * a.H), r0(a.prev_rw + b * a.H * a.N),
        l(a.lu + b * a.N), m(a.m + b * a.N * a.W), wr(a.rw + b * a.H * a.N),
        wwb(a.ww + b * a.H * a.N), s(a.sim + b * a.H * a.N), mn(a.mnorm + b * a.N),
        gr(a.g_reads + b * a.H * a.W), grw(a.g_rw + b * a.H * a.N),
        gwwin(a.g_ww + b * a.H * a.N), gin(a.g_mem + b * a.N * a.W),
        gko(a.g_keys + b * a.H * a.W), ggo(a.g_gate + b * a.H), gm(a.g_memory + b * a.N * a.W),
        grwo(a.g_prev_rw + b * a.H * a.N), e(a.erase[b]) {}
};

}  // namespace mann_lrua

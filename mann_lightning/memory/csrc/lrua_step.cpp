// One LRUA step (eqs. 2-8 of Santoro et al. 2016) and its backward, fused per episode.
//
// For each batch element: the write gates' sigmoid and the slot of least usage (eqs. 7-8,
// begin_step), then, while the [N, W] memory (20 KB at the paper's 128 x 40) stays in cache,
// the write (eq. 8), its row norms and the keys' dots (eq. 2), the softmax (eq. 3) and the
// reads (eq. 4); last the usage and least-used weights (eqs. 5-6, end_step, no gradient). The
// batched products and separate passes of the op-by-op version each read the whole memory
// again. Batch elements run in parallel
// (at::parallel_for, torch's thread count). Same math as lrua_function.py, whose docstring
// gives the equations; mann_lightning/memory/fused_lrua.py builds and registers this file.
// The kernels: lrua_general.h (any sizes) and lrua_fast.h (4 heads, vectorised words).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "lrua_fast.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

namespace {

using at::Tensor;
using mann_lrua::backward_fast;
using mann_lrua::backward_kernel;
using mann_lrua::forward_fast;
using mann_lrua::forward_kernel;
using mann_lrua::lanes;

// Shapes and dtypes of one step's tensors: a mismatch would read out of bounds. The gate is
// sigmoid(alpha) in the backward, alpha in the forward: both [B, H].
void check_inputs(const Tensor& keys, const Tensor& gate, const Tensor& memory,
                  const Tensor& read_weights, const Tensor& least_used) {
  TORCH_CHECK(keys.dim() == 3 && memory.dim() == 3,
              "mann_lrua: keys [B, H, W] and memory [B, N, W] expected, got ", keys.sizes(),
              " and ", memory.sizes());
  const int64_t B = keys.size(0), H = keys.size(1), W = keys.size(2), N = memory.size(1);
  TORCH_CHECK(memory.size(0) == B && memory.size(2) == W, "mann_lrua: memory ", memory.sizes(),
              " does not match keys ", keys.sizes());
  TORCH_CHECK(gate.sizes() == at::IntArrayRef({B, H}), "mann_lrua: alpha (forward) / gate (backward) must be [B, H], got ",
              gate.sizes());
  TORCH_CHECK(read_weights.sizes() == at::IntArrayRef({B, H, N}),
              "mann_lrua: read_weights must be [B, H, N], got ", read_weights.sizes());
  TORCH_CHECK(least_used.sizes() == at::IntArrayRef({B, N}),
              "mann_lrua: least_used must be [B, N], got ", least_used.sizes());
  TORCH_CHECK(N > 0 && H > 0 && W > 0, "mann_lrua: empty memory or keys");
  for (const Tensor* t : {&keys, &gate, &memory, &read_weights, &least_used}) {
    TORCH_CHECK(t->device().is_cpu(), "mann_lrua: CPU tensors only");
  }
  for (const Tensor* t : {&gate, &memory, &read_weights, &least_used}) {
    TORCH_CHECK(t->scalar_type() == keys.scalar_type(), "mann_lrua: all floating inputs must be ",
                keys.scalar_type(), ", got ", t->scalar_type());
  }
}

// The backward's erase indices ([B] int64, each a slot).
void check_step(const Tensor& keys, const Tensor& gate, const Tensor& memory,
                const Tensor& read_weights, const Tensor& least_used, const Tensor& erase) {
  check_inputs(keys, gate, memory, read_weights, least_used);
  const int64_t B = keys.size(0), N = memory.size(1);
  TORCH_CHECK(erase.sizes() == at::IntArrayRef({B}) && erase.scalar_type() == at::kLong,
              "mann_lrua: erase must be int64 [B], got ", erase.sizes());
  TORCH_CHECK(erase.device().is_cpu(), "mann_lrua: CPU tensors only");
  const int64_t* e = erase.contiguous().data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK(e[b] >= 0 && e[b] < N, "mann_lrua: erase index ", e[b], " outside [0, ", N, ")");
  }
}

void check_saved(const Tensor& keys, const Tensor& memory, const std::vector<Tensor>& same_nn,
                 const std::vector<Tensor>& same_hn, const Tensor& mnorm) {
  const int64_t B = keys.size(0), H = keys.size(1), N = memory.size(1);
  for (const Tensor& t : same_nn) {
    TORCH_CHECK(t.sizes() == memory.sizes() && t.scalar_type() == keys.scalar_type(),
                "mann_lrua: backward got a memory-shaped tensor of ", t.sizes());
  }
  for (const Tensor& t : same_hn) {
    TORCH_CHECK(t.sizes() == at::IntArrayRef({B, H, N}) && t.scalar_type() == keys.scalar_type(),
                "mann_lrua: backward got a [B, H, N] tensor of ", t.sizes());
  }
  TORCH_CHECK(mnorm.sizes() == at::IntArrayRef({B, N}), "mann_lrua: memory_norm must be [B, N]");
}

std::vector<Tensor> lrua_forward(const Tensor& keys_, const Tensor& alpha_, const Tensor& memory_,
                                 const Tensor& prev_rw_, const Tensor& lu_, const Tensor& usage_,
                                 double gamma, double eps) {
  check_inputs(keys_, alpha_, memory_, prev_rw_, lu_);
  const int64_t B = keys_.size(0), H = keys_.size(1), W = keys_.size(2), N = memory_.size(1);
  TORCH_CHECK(usage_.sizes() == at::IntArrayRef({B, N}) && usage_.scalar_type() == keys_.scalar_type()
                  && usage_.device().is_cpu(),
              "mann_lrua: usage must be [B, N] of the keys' dtype on the CPU, got ", usage_.sizes());
  const Tensor keys = keys_.contiguous(), memory = memory_.contiguous();
  const Tensor prev_rw = prev_rw_.contiguous(), lu = lu_.contiguous(), usage = usage_.contiguous();
  // alpha is read in place when its rows are contiguous (the interface output's last H
  // columns): no copy per step.
  const Tensor alpha = alpha_.stride(1) == 1 || H == 1 ? alpha_ : alpha_.contiguous();
  Tensor reads = at::empty({B, H, W}, keys.options());
  Tensor new_memory = at::empty({B, N, W}, keys.options());
  Tensor rw = at::empty({B, H, N}, keys.options());
  Tensor ww = at::empty({B, H, N}, keys.options());
  Tensor new_usage = at::empty({B, N}, keys.options());
  Tensor new_lu = at::empty({B, N}, keys.options());
  Tensor gate = at::empty({B, H}, keys.options());
  Tensor erase = at::empty({B}, keys.options().dtype(at::kLong));
  Tensor sim = at::empty({B, H, N}, keys.options());
  Tensor mnorm = at::empty({B, N}, keys.options());
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "mann_lrua_forward", [&] {
    using T = scalar_t;
    const mann_lrua::ForwardArgs<T> args{
        keys.data_ptr<T>(), alpha.data_ptr<T>(), memory.data_ptr<T>(), prev_rw.data_ptr<T>(),
        lu.data_ptr<T>(), usage.data_ptr<T>(), static_cast<T>(gamma), static_cast<T>(eps),
        reads.data_ptr<T>(), new_memory.data_ptr<T>(), rw.data_ptr<T>(), ww.data_ptr<T>(),
        new_usage.data_ptr<T>(), new_lu.data_ptr<T>(), gate.data_ptr<T>(), sim.data_ptr<T>(),
        mnorm.data_ptr<T>(), erase.data_ptr<int64_t>(), B, H, N, W, alpha.stride(0)};
    const int64_t nv = W % lanes<T>() == 0 && H == 4 ? W / lanes<T>() : 0;
    auto kernel = nv == 4 ? forward_fast<T, 4>
                : nv == 5 ? forward_fast<T, 5>
                : nv == 10 ? forward_fast<T, 10> : forward_kernel<T>;
    kernel(args);
  });
  return {reads, new_memory, rw, ww, new_usage, new_lu, gate, erase, sim, mnorm};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> lrua_backward(
    const Tensor& g_reads_, const Tensor& g_mem_, const Tensor& g_rw_, const Tensor& g_ww_,
    const Tensor& keys_, const Tensor& gate_, const Tensor& prev_rw_, const Tensor& lu_,
    const Tensor& erase_, const Tensor& m_, const Tensor& rw_, const Tensor& ww_,
    const Tensor& sim_, const Tensor& mnorm_, double eps) {
  check_step(keys_, gate_, m_, prev_rw_, lu_, erase_);
  check_saved(keys_, m_, {g_mem_}, {g_rw_, g_ww_, rw_, ww_, sim_}, mnorm_);
  TORCH_CHECK(g_reads_.sizes() == keys_.sizes(), "mann_lrua: g_reads must match keys");
  const Tensor g_reads = g_reads_.contiguous(), g_mem = g_mem_.contiguous();
  const Tensor g_rw = g_rw_.contiguous(), g_ww = g_ww_.contiguous();
  const Tensor keys = keys_.contiguous(), gate = gate_.contiguous(), prev_rw = prev_rw_.contiguous();
  const Tensor lu = lu_.contiguous(), erase = erase_.contiguous(), m = m_.contiguous();
  const Tensor rw = rw_.contiguous(), ww = ww_.contiguous(), sim = sim_.contiguous();
  const Tensor mnorm = mnorm_.contiguous();
  const int64_t B = keys.size(0), H = keys.size(1), W = keys.size(2), N = m.size(1);
  Tensor g_keys = at::empty_like(keys), g_gate = at::empty_like(gate);
  Tensor g_memory = at::empty_like(m), g_prev_rw = at::empty_like(prev_rw);
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "mann_lrua_backward", [&] {
    using T = scalar_t;
    const mann_lrua::BackwardArgs<T> args{
        g_reads.data_ptr<T>(), g_mem.data_ptr<T>(), g_rw.data_ptr<T>(), g_ww.data_ptr<T>(),
        keys.data_ptr<T>(), gate.data_ptr<T>(), prev_rw.data_ptr<T>(), lu.data_ptr<T>(),
        erase.data_ptr<int64_t>(), m.data_ptr<T>(), rw.data_ptr<T>(), ww.data_ptr<T>(),
        sim.data_ptr<T>(), mnorm.data_ptr<T>(), static_cast<T>(eps), g_keys.data_ptr<T>(),
        g_gate.data_ptr<T>(), g_memory.data_ptr<T>(), g_prev_rw.data_ptr<T>(), B, H, N, W};
    const int64_t nv = W % lanes<T>() == 0 && H == 4 ? W / lanes<T>() : 0;
    auto kernel = nv == 4 ? backward_fast<T, 4>
                : nv == 5 ? backward_fast<T, 5>
                : nv == 10 ? backward_fast<T, 10> : backward_kernel<T>;
    kernel(args);
  });
  return {g_keys, g_gate, g_memory, g_prev_rw};
}

}  // namespace

TORCH_LIBRARY(mann_lrua, m) {
  m.def(
      "forward(Tensor keys, Tensor alpha, Tensor memory, Tensor read_weights, Tensor least_used, "
      "Tensor usage, float gamma, float eps) -> Tensor[]");
  m.def(
      "backward(Tensor g_reads, Tensor g_memory, Tensor g_read_weights, Tensor g_write_weights, "
      "Tensor keys, Tensor gate, Tensor read_weights, Tensor least_used, Tensor erase, "
      "Tensor memory, Tensor new_read_weights, Tensor write_weights, Tensor similarity, "
      "Tensor memory_norm, float eps) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mann_lrua, CPU, m) {
  m.impl("forward", &lrua_forward);
  m.impl("backward", &lrua_backward);
}

// One NTM-style memory step (Graves et al. 2014 eqs. 2-9) and its backward, fused per episode.
//
// The op-by-op step runs some forty operators over the batch, two batched products of tiny
// matrices per addressing, and its backward as many again. Here each batch element's memory
// stays in cache through the whole step; batch elements run in parallel (at::parallel_for,
// torch's thread count). ntm_kernels.h and ntm_backward_loops.h have the general loops (any
// word, any heads), ntm_fast.h their vectorised forms (words of whole 32-byte vectors, at most
// four heads per group), ntm_forward.h one element's forward, ntm_address_backward.h the
// addressing's backward (on vectors, any sizes); mann_lightning/memory/fused_ntm.py builds
// and registers this file.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "ntm_backward.h"  // and the other ntm_*.h
#include "ntm_forward.h"

#include <algorithm>
#include <initializer_list>
#include <tuple>
#include <vector>

namespace {

using at::Tensor;
using mann_ntm::Heads;
using mann_ntm::kPlanes;
using mann_ntm::Sizes;

// The step's inputs, in schema order: keys [B, H, W], beta, gate, gamma [B, H], shift
// [B, H, S], erase and add [B, Hw, W], memory [B, N, W], read weights [B, Hr, N], write weights
// [B, Hw, N]; H = Hw + Hr, write heads first. A mismatch would read out of bounds.
Sizes check_step(const std::vector<Tensor>& in) {
  const Tensor &keys = in[0], &shift = in[3], &erase = in[5], &memory = in[7];
  TORCH_CHECK(keys.dim() == 3 && memory.dim() == 3 && shift.dim() == 3 && erase.dim() == 3,
              "mann_ntm: keys [B, H, W], shift [B, H, S], erase [B, Hw, W] and memory "
              "[B, N, W] expected, got ", keys.sizes(), ", ", shift.sizes(), ", ",
              erase.sizes(), " and ", memory.sizes());
  const int64_t B = keys.size(0), H = keys.size(1), W = keys.size(2), Hw = erase.size(1);
  const Sizes z{B, Hw, H - Hw, memory.size(1), W, shift.size(2)};
  TORCH_CHECK(z.Hr > 0 && Hw > 0 && z.N > 0 && W > 0 && z.S % 2 == 1 && z.S <= z.N,
              "mann_ntm: need read and write heads, a non-empty memory and an odd number of "
              "shifts of at most N, got keys ", keys.sizes(), ", erase ", erase.sizes(),
              ", shift ", shift.sizes(), ", memory ", memory.sizes());
  const std::vector<std::vector<int64_t>> shapes = {
      {B, H, W}, {B, H}, {B, H}, {B, H, z.S}, {B, H}, {B, Hw, W}, {B, Hw, W},
      {B, z.N, W}, {B, z.Hr, z.N}, {B, Hw, z.N}};
  const char* names[] = {"keys", "beta", "gate", "shift", "gamma", "erase", "add",
                         "memory", "read_weights", "write_weights"};
  for (size_t i = 0; i < shapes.size(); ++i) {
    TORCH_CHECK(in[i].sizes() == at::IntArrayRef(shapes[i]), "mann_ntm: ", names[i],
                " must be ", at::IntArrayRef(shapes[i]), ", got ", in[i].sizes());
    TORCH_CHECK(in[i].device().is_cpu(), "mann_ntm: CPU tensors only");
    TORCH_CHECK(in[i].scalar_type() == keys.scalar_type(), "mann_ntm: all inputs must be ",
                keys.scalar_type(), ", got ", in[i].scalar_type(), " for ", names[i]);
  }
  return z;
}

// The step's inputs in schema order, each contiguous (a copy only where it is not), except
// the keys: a batch element's [H, W] block packed is enough (Element steps between elements
// by the batch stride), so a slice of the interface output is read in place, not copied.
std::vector<Tensor> step_inputs(std::initializer_list<const Tensor*> tensors) {
  std::vector<Tensor> in;
  for (const Tensor* t : tensors) {
    const bool packed_keys = in.empty() && t->dim() == 3
                             && (t->size(2) == 1 || t->stride(2) == 1)
                             && (t->size(1) == 1 || t->stride(1) == t->size(2));
    in.push_back(packed_keys ? *t : t->contiguous());
  }
  return in;
}

template <typename T>
const T* ptr(const Tensor& t) {
  return t.data_ptr<T>();
}

// One batch element's slices of the ten inputs (schema order).
template <typename T>
struct Element {
  const T *k, *beta, *gate, *shift, *gamma, *erase, *add, *memory, *rw, *ww;
  Element(const std::vector<Tensor>& in, const Sizes& z, int64_t b)
      : k(ptr<T>(in[0]) + b * in[0].stride(0)), beta(ptr<T>(in[1]) + b * z.heads()),
        gate(ptr<T>(in[2]) + b * z.heads()), shift(ptr<T>(in[3]) + b * z.heads() * z.S),
        gamma(ptr<T>(in[4]) + b * z.heads()), erase(ptr<T>(in[5]) + b * z.Hw * z.W),
        add(ptr<T>(in[6]) + b * z.Hw * z.W), memory(ptr<T>(in[7]) + b * z.N * z.W),
        rw(ptr<T>(in[8]) + b * z.Hr * z.N), ww(ptr<T>(in[9]) + b * z.Hw * z.N) {}
};

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> ntm_forward(
    const Tensor& keys, const Tensor& beta, const Tensor& gate, const Tensor& shift,
    const Tensor& gamma, const Tensor& erase, const Tensor& add, const Tensor& memory,
    const Tensor& read_weights, const Tensor& write_weights, double eps, double sharpen_eps) {
  const std::vector<Tensor> in = step_inputs(
      {&keys, &beta, &gate, &shift, &gamma, &erase, &add, &memory, &read_weights, &write_weights});
  const Sizes z = check_step(in);
  const int64_t B = z.B, Hw = z.Hw, Hr = z.Hr, H = z.heads(), N = z.N, W = z.W, S = z.S;
  const auto opts = keys.options();
  Tensor reads = at::empty({B, Hr, W}, opts), new_memory = at::empty({B, N, W}, opts);
  Tensor rw = at::empty({B, Hr, N}, opts), ww = at::empty({B, Hw, N}, opts);
  Tensor aux = at::empty({B, kPlanes, H, N}, opts), norms = at::empty({B, 2, N}, opts);
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "mann_ntm_forward", [&] {
    using T = scalar_t;
    const T e_cos = static_cast<T>(eps), e_sharp = static_cast<T>(sharpen_eps);
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> tmp(N);
      for (int64_t b = begin; b < end; ++b) {
        const auto [k, be, g, s, ga, e, a, m0, prw, pww] = Element<T>(in, z, b);
        T* m = new_memory.data_ptr<T>() + b * N * W;
        T *wr = rw.data_ptr<T>() + b * Hr * N, *wwb = ww.data_ptr<T>() + b * Hw * N;
        T *ax = aux.data_ptr<T>() + b * kPlanes * H * N, *mn = norms.data_ptr<T>() + b * 2 * N;
        T* rd = reads.data_ptr<T>() + b * Hr * W;
        const Heads<T> writes{k, be, g, s, ga, ax, Hw, H * N};
        const Heads<T> readh{k + Hw * W, be + Hw, g + Hw, s + Hw * S, ga + Hw, ax + Hw * N, Hr,
                             H * N};
        mann_ntm::forward_element(writes, readh, e, a, m0, prw, pww, m, wr, wwb, mn, rd,
                                  tmp.data(), b + 1 < end ? m0 + N * W : nullptr, z, e_cos,
                                  e_sharp);
      }
    });
  });
  return {reads, new_memory, rw, ww, aux, norms};
}

std::vector<Tensor> ntm_backward(
    const Tensor& g_reads, const Tensor& g_memory, const Tensor& g_rw, const Tensor& g_ww,
    const Tensor& keys, const Tensor& beta, const Tensor& gate, const Tensor& shift,
    const Tensor& gamma, const Tensor& erase, const Tensor& add, const Tensor& memory,
    const Tensor& read_weights, const Tensor& write_weights, const Tensor& new_memory,
    const Tensor& new_rw, const Tensor& new_ww, const Tensor& aux, const Tensor& norms,
    double eps, double sharpen_eps) {
  const std::vector<Tensor> in = step_inputs(
      {&keys, &beta, &gate, &shift, &gamma, &erase, &add, &memory, &read_weights, &write_weights});
  const Sizes z = check_step(in);
  const int64_t B = z.B, Hw = z.Hw, Hr = z.Hr, H = z.heads(), N = z.N, W = z.W, S = z.S;
  const std::vector<std::pair<const Tensor*, std::vector<int64_t>>> saved = {
      {&g_reads, {B, Hr, W}}, {&g_memory, {B, N, W}}, {&g_rw, {B, Hr, N}},
      {&g_ww, {B, Hw, N}},    {&new_memory, {B, N, W}}, {&new_rw, {B, Hr, N}},
      {&new_ww, {B, Hw, N}},  {&aux, {B, kPlanes, H, N}}, {&norms, {B, 2, N}}};
  std::vector<Tensor> sv;
  for (const auto& [t, shape] : saved) {
    TORCH_CHECK(t->sizes() == at::IntArrayRef(shape) && t->scalar_type() == keys.scalar_type()
                    && t->device().is_cpu(),
                "mann_ntm: backward expected a CPU ", keys.scalar_type(), " tensor of ",
                at::IntArrayRef(shape), ", got ", t->sizes());
    sv.push_back(t->contiguous());
  }
  std::vector<Tensor> out;  // gradients of the ten inputs, in their order, all written below
  for (const Tensor& t : in) out.push_back(at::empty(t.sizes(), t.options()));
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "mann_ntm_backward", [&] {
    using T = scalar_t;
    const T e_cos = static_cast<T>(eps), e_sharp = static_cast<T>(sharpen_eps);
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      mann_ntm::Scratch<T> sc(z);
      for (int64_t b = begin; b < end; ++b) {
        const auto [k, be, g, s, ga, e, a, m0, prw, pww] = Element<T>(in, z, b);
        const T *gr = ptr<T>(sv[0]) + b * Hr * W, *gmin = ptr<T>(sv[1]) + b * N * W;
        const T *grw = ptr<T>(sv[2]) + b * Hr * N, *gwwin = ptr<T>(sv[3]) + b * Hw * N;
        const T *m = ptr<T>(sv[4]) + b * N * W, *wr = ptr<T>(sv[5]) + b * Hr * N;
        const T *wwb = ptr<T>(sv[6]) + b * Hw * N, *mn = ptr<T>(sv[8]) + b * 2 * N;
        T* ax = sv[7].data_ptr<T>() + b * kPlanes * H * N;  // read only
        T *gk = out[0].data_ptr<T>() + b * H * W, *gbe = out[1].data_ptr<T>() + b * H;
        T *gg = out[2].data_ptr<T>() + b * H, *gs = out[3].data_ptr<T>() + b * H * S;
        T *gga = out[4].data_ptr<T>() + b * H, *ge = out[5].data_ptr<T>() + b * Hw * W;
        T *gad = out[6].data_ptr<T>() + b * Hw * W, *gm0 = out[7].data_ptr<T>() + b * N * W;
        T *gprw = out[8].data_ptr<T>() + b * Hr * N, *gpww = out[9].data_ptr<T>() + b * Hw * N;
        const Heads<T> writes{k, be, g, s, ga, ax, Hw, H * N};
        const Heads<T> readh{k + Hw * W, be + Hw, g + Hw, s + Hw * S, ga + Hw, ax + Hw * N, Hr,
                             H * N};
        if (b + 1 < end) {  // the next element's saved planes, asked for while this one works
          mann_ntm::prefetch(ax + kPlanes * H * N, kPlanes * H * N);
          for (const T* p : {prw, wr}) mann_ntm::prefetch(p + Hr * N, Hr * N);
          for (const T* p : {pww, wwb}) mann_ntm::prefetch(p + Hw * N, Hw * N);
          mann_ntm::prefetch(mn + 2 * N, 2 * N);
        }
        mann_ntm::reads_and_write_backward(readh, m0, m, wwb, e, a, gr, grw, gwwin, gmin, wr, prw,
                                           mn, b + 1 < end ? m0 + N * W : nullptr, sc, gbe, gg,
                                           gs, gga, gprw, gk, gm0, ge, gad, z, e_cos, e_sharp);
        mann_ntm::address_backward(writes, mn, pww, wwb, sc.gww.data(), gbe, gg, gs, gga, gpww,
                                   sc.dd.data(), sc.kscale.data(), sc.gmn.data(), sc.t1.data(),
                                   sc.t2.data(), z, e_cos, e_sharp);
        mann_ntm::rows_backward(k, Hw, sc.dd.data(), sc.kscale.data(), m0, mn, sc.gmn.data(), gk,
                                gm0, N, W);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(mann_ntm, m) {
  m.def(
      "forward(Tensor keys, Tensor beta, Tensor gate, Tensor shift, Tensor gamma, Tensor erase, "
      "Tensor add, Tensor memory, Tensor read_weights, Tensor write_weights, float eps, "
      "float sharpen_eps) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "backward(Tensor g_reads, Tensor g_memory, Tensor g_read_weights, "
      "Tensor g_write_weights, Tensor keys, Tensor beta, Tensor gate, Tensor shift, "
      "Tensor gamma, Tensor erase, Tensor add, Tensor memory, Tensor read_weights, "
      "Tensor write_weights, Tensor new_memory, Tensor new_read_weights, "
      "Tensor new_write_weights, Tensor aux, Tensor memory_norms, float eps, "
      "float sharpen_eps) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(mann_ntm, CPU, m) {
  m.impl("forward", &ntm_forward);
  m.impl("backward", &ntm_backward);
}

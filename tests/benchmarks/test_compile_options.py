"""``benchmarks/compile_options.py`` compares variants that compute the library's function."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from compile_options import VARIANTS, SortedLRUA  # noqa: E402

from mann_lightning.memory import LRUAMemory  # noqa: E402
from mann_lightning.memory.lrua import least_used_weights_by_argmin  # noqa: E402


def test_sort_variant_is_eq_6_of_the_library() -> None:
    """The ``sort-eq6`` variant's eqs. 5-6 give the usage and least-used weights of the
    library's, and of the argmin rounds the library uses under compile (ties included)."""
    gen = torch.Generator().manual_seed(0)
    usage = torch.randint(0, 3, (32, 16), generator=gen).double()
    reads = torch.randint(0, 2, (32, 4, 16), generator=gen).double() / 4
    writes = torch.randint(0, 2, (32, 4, 16), generator=gen).double() / 4
    sorted_usage, sorted_lu = SortedLRUA(16, 5, 4).usage_step(usage, reads, writes)
    library_usage, library_lu = LRUAMemory(16, 5, 4).usage_step(usage, reads, writes)
    torch.testing.assert_close(sorted_usage, library_usage, rtol=0, atol=0)
    torch.testing.assert_close(sorted_lu, library_lu, rtol=0, atol=0)
    torch.testing.assert_close(
        sorted_lu, least_used_weights_by_argmin(library_usage, 4), rtol=0, atol=0
    )


def test_every_variant_builds_an_lrua() -> None:
    for name, (memory, options) in VARIANTS.items():
        assert isinstance(memory(8), LRUAMemory), name
        assert set(options) <= {"cpp_wrapper", "size_asserts", "alignment_asserts"}, name


def test_per_step_weight_grad_variant_turns_the_deferral_off() -> None:
    """Inside the variant's step the library takes the per-step gradient; outside, the
    deferred one again."""
    from compile_options import per_step_weight_grad  # noqa: E402

    from mann_lightning import episode_loop
    from mann_lightning.model import MANN

    controller = MANN(6, 3, memory=LRUAMemory(8, 4, 2), controller_size=5).controller
    seen = []
    per_step_weight_grad(lambda: seen.append(episode_loop.defers_weight_grad(controller)))()
    assert seen == [False] and episode_loop.defers_weight_grad(controller)

"""Memory persistence: when the MANN's recurrent state (external memory included) is wiped.

Santoro et al. 2016 wipe the memory at the start of every episode (``wipe="episode"``);
their Fig. 3 shows what happens when it is not wiped (proactive interference). One policy
serves ``mann fit`` (:class:`~mann_lightning.module.MANNModule`) and the continual layer
(``continual.EpisodicMANN``):

* ``"episode"``: every batch of episodes starts from an empty memory (the paper).
* ``"experience"``: the final state of a training batch is carried (detached) into the next
  batch, row ``b`` into row ``b``, and wiped when a new experience starts (in ``mann fit``:
  at the start of every training epoch).
* ``"never"``: carried across batches and experiences, never wiped.

The carried state is detached (no gradient flows between batches) and is part of every
checkpoint: :meth:`MemoryCarry.state_dict` stores its tensors as a flat list, so loading needs
no pickled classes, and :meth:`MemoryCarry.load_state_dict` rebuilds the nested state on the
next :meth:`MemoryCarry.initial` from the model's own ``initial_state`` as a template. Under
DDP every process carries its own state (its own batches): :func:`gather_carried` collects
them all for the checkpoint and :func:`own_carried` gives each resuming process its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch.distributed as dist
from torch import Tensor

from .model import map_state

WipePolicy = Literal["episode", "experience", "never"]
WIPE_POLICIES: tuple[str, ...] = get_args(WipePolicy)

#: ``initial_state(batch_size)``: a fresh state whose structure the carried one shares.
StateTemplate = Callable[[int], Any]


def check_wipe(wipe: str) -> WipePolicy:
    """Return ``wipe`` if it names a policy, else raise a ``ValueError`` saying the choices."""
    if wipe not in WIPE_POLICIES:
        raise ValueError(
            f"Unknown memory wipe policy {wipe!r}; use one of {', '.join(map(repr, WIPE_POLICIES))}."
        )
    return wipe  # type: ignore[return-value]


def resolve_wipe(wipe: str, persist_memory: bool | None) -> WipePolicy:
    """The wipe policy from ``wipe`` and its deprecated spelling ``persist_memory``.

    ``persist_memory=True`` means ``"never"``, ``False`` means ``"episode"``; ``None`` leaves
    ``wipe`` in charge.

    Raises:
        ValueError: when both are set and disagree, or ``wipe`` names no policy.
    """
    if persist_memory is not None:
        if wipe != "episode" and wipe != ("never" if persist_memory else "episode"):
            raise ValueError(
                f"persist_memory={persist_memory} contradicts wipe={wipe!r}; set only wipe "
                "(persist_memory is its deprecated spelling)."
            )
        wipe = "never" if persist_memory else "episode"
    return check_wipe(wipe)


def state_leaves(state: Any) -> list[Tensor | None]:
    """The tensors of a nested state (NamedTuples, tuples, ``None``) in a fixed order."""
    if state is None or isinstance(state, Tensor):
        return [state]
    if isinstance(state, tuple):
        return [leaf for value in state for leaf in state_leaves(value)]
    raise TypeError(f"Cannot flatten a recurrent state containing {type(state).__name__}.")


def fill_state(template: Any, leaves: list[Tensor | None]) -> Any:
    """Rebuild a state shaped like ``template`` from :func:`state_leaves` output."""
    remaining = list(leaves)

    def build(node: Any) -> Any:
        if node is None or isinstance(node, Tensor):
            leaf = remaining.pop(0)
            if (leaf is None) != (node is None) or (
                leaf is not None and leaf.shape != node.shape  # type: ignore[union-attr]
            ):
                raise ValueError(
                    "The saved memory state does not match this model's state "
                    f"(saved {None if leaf is None else tuple(leaf.shape)}, model "
                    f"{None if node is None else tuple(node.shape)}); the checkpoint comes "
                    "from a model of another size."
                )
            return None if leaf is None else leaf.to(node.device, node.dtype)
        values = [build(value) for value in node]
        return type(node)(*values) if hasattr(node, "_fields") else tuple(values)

    state = build(template)
    if remaining:
        raise ValueError("The saved memory state has more tensors than this model's state.")
    return state


class MemoryCarry:
    """The recurrent state carried between training batches under a wipe policy.

    Args:
        wipe: ``"episode"``, ``"experience"`` or ``"never"`` (see the module docstring).

    Use: ``state = carry.initial(batch_size, template)`` before a training batch (``None``
    means "start fresh"), ``carry.keep(final_state)`` after it, ``carry.new_experience()``
    at an experience (or epoch) boundary.
    """

    def __init__(self, wipe: WipePolicy = "episode") -> None:
        self.wipe = check_wipe(wipe)
        self.state: Any = None
        self._pending: dict[str, Any] | None = None  # loaded, rebuilt at the next initial()

    @property
    def carries(self) -> bool:
        """Whether the policy carries state between batches at all."""
        return self.wipe != "episode"

    def initial(self, batch_size: int, template: StateTemplate) -> Any:
        """The state a training batch of ``batch_size`` episodes starts from (``None``: fresh).

        A carried state of another batch size (e.g. a short last batch) is not used.
        """
        if not self.carries:
            return None
        state = self.peek(template)
        if state is None or carried_batch_size(state) != batch_size:
            return None
        return state

    def peek(self, template: StateTemplate) -> Any:
        """The carried state as it is (any batch size), or ``None``; changes nothing."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.state = fill_state(template(pending["batch_size"]), pending["leaves"])
        return self.state

    def keep(self, final_state: Any) -> None:
        """Carry ``final_state`` (detached) into the next batch, if the policy carries.

        On a GPU the state is copied: a compiled episode replayed as a CUDA graph
        (``compile="episode"``) writes its next outputs into the same buffers."""
        if self.carries:
            self.state = map_state(final_state, _carried)
            self._pending = None

    def wipe_now(self) -> None:
        """Forget the carried state."""
        self.state, self._pending = None, None

    def new_experience(self) -> None:
        """An experience (or ``mann fit`` epoch) starts: wipe under ``"experience"``."""
        if self.wipe == "experience":
            self.wipe_now()

    def state_dict(self) -> dict[str, Any]:
        """The policy and carried tensors (flat, CPU-agnostic), for checkpoints."""
        if self._pending is not None:
            return {"wipe": self.wipe, **self._pending}
        if self.state is None:
            return {"wipe": self.wipe, "batch_size": 0, "leaves": []}
        return {
            "wipe": self.wipe,
            "batch_size": carried_batch_size(self.state),
            "leaves": state_leaves(self.state),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the nested state is rebuilt lazily."""
        self.state = None
        self._pending = None
        if state.get("batch_size", 0) and state.get("leaves"):
            self._pending = {"batch_size": int(state["batch_size"]), "leaves": state["leaves"]}


def gather_carried(own: dict[str, Any], world_size: int) -> list[dict[str, Any]] | None:
    """Every process's :meth:`MemoryCarry.state_dict` in rank order (tensors on the CPU).

    Collective: every process must call it (Lightning runs ``on_save_checkpoint`` on all
    ranks). ``None`` for a single process or without an initialised process group.
    """
    if world_size <= 1 or not dist.is_available() or not dist.is_initialized():
        return None
    leaves = [None if leaf is None else leaf.detach().cpu() for leaf in own.get("leaves", [])]
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, {**own, "leaves": leaves})
    return gathered


def own_carried(checkpoint: dict[str, Any], rank: int, world_size: int) -> tuple[Any, str | None]:
    """The carried state this process resumes from, and a warning when it is not its own.

    Args:
        checkpoint: The loaded checkpoint (``carried_memory``, and ``carried_memory_ranks``
            when written by several processes).
        rank: This process's global rank.
        world_size: The processes of this run.

    Returns:
        ``(state, warning)``: ``state`` is ``None`` for a checkpoint without carried memory
        or a rank the checkpoint has no state for (it starts empty).
    """
    saved = checkpoint.get("carried_memory_ranks")
    if saved is None:
        state = checkpoint.get("carried_memory")
        carried = bool(state and state.get("batch_size"))
        if world_size > 1 and carried:
            return state, (
                f"The checkpoint's carried memory comes from one process; all {world_size} "
                "processes of this run continue from it. Resume with the number of processes "
                "that wrote it for an exact continuation."
            )
        return state, None
    if len(saved) == world_size:
        return saved[rank], None
    return (saved[rank] if rank < len(saved) else None), (
        f"The checkpoint holds the carried memory of {len(saved)} processes, this run has "
        f"{world_size}: each process continues from the memory of the same rank (if any, else "
        "an empty one). Resume with --trainer.devices/num_nodes as when it was written for an "
        "exact continuation."
    )


def carried_batch_size(state: Any) -> int:
    """Batch size of a nested state (the first dimension of its first tensor)."""
    for leaf in state_leaves(state):
        if leaf is not None:
            return int(leaf.shape[0])
    return 0


def _carried(tensor: Tensor) -> Tensor:
    """A kept state's tensor: detached, and copied when on a GPU."""
    return tensor.detach().clone() if tensor.is_cuda else tensor.detach()

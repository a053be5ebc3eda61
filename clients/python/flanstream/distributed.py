"""torch.distributed / DataLoader integration (all optional: everything works without torch)."""
from __future__ import annotations

from typing import Any, Optional, Tuple

__all__ = ["dist_initialized", "resolve_rank_world", "broadcast_object", "check_worker"]

try:
    import torch.distributed as _dist
except Exception:  # pragma: no cover - torch missing or built without distributed
    _dist = None  # type: ignore[assignment]

try:
    from torch.utils.data import get_worker_info as _get_worker_info
except Exception:  # pragma: no cover
    _get_worker_info = None  # type: ignore[assignment]


def dist_initialized() -> bool:
    """``True`` when ``torch.distributed`` is available and a process group is initialized."""
    return _dist is not None and _dist.is_available() and _dist.is_initialized()


def resolve_rank_world(rank: Optional[int], world_size: Optional[int]) -> Tuple[int, int]:
    """Fill in ``rank``/``world_size`` from ``torch.distributed`` (when initialized, else 0/1)
    and validate them (``ValueError``)."""
    for name, value in (("rank", rank), ("world_size", world_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if dist_initialized():
        if world_size is None:
            world_size = _dist.get_world_size()
        if rank is None:
            rank = _dist.get_rank()
    world_size = 1 if world_size is None else world_size
    rank = 0 if rank is None else rank
    if world_size < 1 or world_size > 2**32 - 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must satisfy 0 <= rank < world_size ({world_size}), got {rank}")
    return rank, world_size


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (``broadcast_object_list``) when ``torch.distributed`` is
    initialized with more than one process; ``obj`` itself otherwise. A collective: every rank
    must call it at the same point."""
    if not dist_initialized() or _dist.get_world_size() < 2:
        return obj
    box = [obj]
    _dist.broadcast_object_list(box, src=0)
    return box[0]


def check_worker() -> None:
    """Refuse to run inside a DataLoader worker of a multi-worker loader.

    The dataset already prefetches on a background thread; several worker processes would each
    open the same stream (duplicating batches), and ``state_dict``/``update_mixture`` on the
    main-process object could not reach them. Use ``DataLoader(ds, batch_size=None)`` with
    ``num_workers=0`` (the default).
    """
    if _get_worker_info is None:
        return
    info = _get_worker_info()
    if info is not None and info.num_workers > 1:
        raise RuntimeError(
            f"FlanStreamDataset cannot be split across DataLoader workers (num_workers={info.num_workers}): "
            "every worker would receive the same stream. Use num_workers=0 — the dataset prefetches in a "
            "background thread already — and give each training process its own rank/world_size."
        )

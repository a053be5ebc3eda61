"""torch.distributed / DataLoader integration (all optional: everything works without torch)."""
from __future__ import annotations

import hashlib
import os
import sys
from collections import deque
from datetime import timedelta
from typing import Any, Deque, Dict, Mapping, Optional, Tuple

__all__ = ["dist_initialized", "resolve_rank_world", "broadcast_object", "check_worker", "check_loader_batching",
           "Collectives"]

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


def _launcher_env(env: Mapping[str, str]) -> Tuple[Optional[int], Optional[int]]:
    """``RANK``/``WORLD_SIZE`` as set by torchrun (and torch.distributed.launch), if present."""
    out = []
    for name in ("RANK", "WORLD_SIZE"):
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            out.append(None)
            continue
        try:
            out.append(int(raw))
        except ValueError:
            raise ValueError(f"environment variable {name}={raw!r} is not an integer (set by torchrun; "
                             "pass rank=/world_size= explicitly to override)") from None
    if (out[0] is None) != (out[1] is None):
        missing = "WORLD_SIZE" if out[1] is None else "RANK"
        raise ValueError(f"environment variable {missing} is missing while "
                         f"{'RANK' if missing == 'WORLD_SIZE' else 'WORLD_SIZE'} is set; torchrun sets both. "
                         "Pass rank=/world_size= explicitly.")
    return out[0], out[1]


def resolve_rank_world(rank: Optional[int], world_size: Optional[int],
                       env: Optional[Mapping[str, str]] = None) -> Tuple[int, int]:
    """Fill in ``rank``/``world_size`` and validate them (``ValueError``).

    Missing values come from ``torch.distributed`` when a process group is initialized, else from
    the ``RANK``/``WORLD_SIZE`` environment variables that torchrun sets in every process (a
    dataset built before ``init_process_group`` must not read as rank 0 of 1 on every rank and
    duplicate the data), else 0 and 1. An initialized group that disagrees with the environment
    wins; explicit arguments win over both.
    """
    for name, value in (("rank", rank), ("world_size", world_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if dist_initialized():
        if world_size is None:
            world_size = _dist.get_world_size()
        if rank is None:
            rank = _dist.get_rank()
    elif rank is None or world_size is None:
        env_rank, env_world = _launcher_env(os.environ if env is None else env)
        if world_size is None and env_world is not None:
            world_size = env_world
        if rank is None and env_rank is not None:
            rank = env_rank
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
    """Refuse to run inside any DataLoader worker process (``num_workers >= 1``).

    A worker iterates its own copy of the dataset: ``state_dict()``, ``load_state_dict()`` and
    ``update_mixture()`` on the training process's object never reach it (a checkpoint would
    resume from step 0, an update would be ignored, a second pass would repeat steps), and several
    workers would each open the same stream. The dataset already decodes and prefetches on a
    background thread, so workers buy nothing: use ``DataLoader(ds, batch_size=None)`` with
    ``num_workers=0`` (the default).
    """
    if _get_worker_info is None:
        return
    info = _get_worker_info()
    if info is not None:
        raise RuntimeError(
            f"FlanStreamDataset cannot run in DataLoader worker processes (num_workers={info.num_workers}): "
            "state_dict(), load_state_dict() and update_mixture() on the training process would not reach "
            "the worker's copy (checkpoints would resume from the start, updates would be ignored), and "
            "several workers would each receive the same stream. Use num_workers=0 — the dataset decodes "
            "and prefetches in a background thread already — and give each training process its own "
            "rank/world_size."
        )


def check_loader_batching(depth: int = 12) -> None:
    """Refuse a ``DataLoader`` that batches the stream's batches (``batch_size`` not ``None``).

    Each item of the dataset is already a whole batch; ``DataLoader(ds, batch_size=4)`` would
    stack four of them into ``[4, B, L]`` tensors (or fail deep inside ``torch.stack`` on the
    ragged ``cu_seqlens``). The loader is found on the call stack: its iterable-dataset fetcher
    calls ``iter(dataset)`` with ``auto_collation`` set exactly when it batches.
    """
    frame = sys._getframe(1)
    for _ in range(depth):
        if frame is None:
            return
        owner = frame.f_locals.get("self")
        if type(owner).__name__ == "_IterableDatasetFetcher" and getattr(owner, "auto_collation", False):
            raise ValueError(
                "FlanStreamDataset yields whole batches already: pass batch_size=None to the DataLoader "
                "(DataLoader(ds, batch_size=None)); with a batch_size it would stack several stream "
                "batches into one. Set batch_size and seq_len on FlanStreamDataset instead."
            )
        frame = frame.f_back



class Collectives:
    """Arrival checks before this dataset's collectives (``report_losses``, ``update_mixture``).

    A collective that one rank skips (``if rank == 0: ds.report_losses(...)``) would block the
    others inside gloo/NCCL until the process group's own timeout (30 min by default), with an
    error that never names the call. So each rank first checks in on the process group's store
    under ``(dataset, n-th collective, call)``; the last to arrive opens the gate, and a rank that
    waits ``timeout`` seconds raises ``RuntimeError`` naming the call and how many ranks came.
    Ranks that make different calls as their n-th collective wait on different keys, so both
    time out naming their own. Two store operations per rank and call; rank 0 deletes the keys
    of the collective before the previous one (every rank has passed it by then).

    Args:
        tag: the same on every rank, distinct per dataset in a process (see :meth:`tag_of`).
        timeout: seconds a rank waits for the others.
    """

    _seen: Dict[str, int] = {}

    def __init__(self, tag: str, timeout: float) -> None:
        self.tag, self.timeout, self.seq = tag, timeout, 0
        self._done: Deque[str] = deque()

    @classmethod
    def tag_of(cls, spec_bytes: bytes) -> str:
        """A tag from the rank-independent stream spec, plus how many such datasets this
        process built before (ranks build their datasets in the same order)."""
        digest = hashlib.sha1(spec_bytes).hexdigest()[:16]
        n = cls._seen.get(digest, 0)
        cls._seen[digest] = n + 1
        return f"{digest}.{n}"

    def arrive(self, call: str) -> None:
        """Return once every rank made this call as this dataset's next collective."""
        if not dist_initialized() or _dist.get_world_size() < 2:
            return
        from torch.distributed import distributed_c10d

        store, world = distributed_c10d._get_default_store(), _dist.get_world_size()
        self.seq += 1
        key = f"flanstream/{self.tag}/{self.seq}/{call}"
        if store.add(key, 1) == world:
            store.set(key + "/all", "1")
        try:
            store.wait([key + "/all"], timedelta(seconds=self.timeout))
        except RuntimeError:
            came = store.add(key, 0)
            raise RuntimeError(
                f"flanstream: {call}() on rank {_dist.get_rank()} waited {self.timeout:g} s for the other ranks, "
                f"and {came} of {world} made this call. {call}() is a collective: every rank must call it at the "
                f"same point of the loop (not under 'if rank == 0'), in the same order as the dataset's other "
                f"collectives. A rank that is only slow needs a larger collective_timeout") from None
        if _dist.get_rank() == 0:
            self._done.append(key)
            if len(self._done) > 2:
                old = self._done.popleft()
                for k in (old, old + "/all"):
                    try:
                        store.delete_key(k)
                    except Exception:  # a store without delete_key (FileStore on old torch): keys stay
                        pass

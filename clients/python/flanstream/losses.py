"""Per-task losses for closed-loop reweighting (README, "Closed-loop reweighting").

A trainer computes a per-token loss anyway (``F.cross_entropy(..., reduction="none")``);
:func:`task_losses` sums it per task over the batch's supervised positions, crediting every turn
of a multi-turn conversation to its own task, and :func:`reduce_losses` all-reduces such sums over
the ``torch.distributed`` ranks so every rank reports the same numbers for the global step.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from .distributed import dist_initialized

try:  # torch is optional
    import torch
    import torch.distributed as _dist
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None  # type: ignore[assignment]
    _dist = None  # type: ignore[assignment]

__all__ = ["task_losses", "reduce_losses", "check_losses", "TaskLosses"]

#: task index → (summed token loss, tokens)
TaskLosses = Dict[int, Tuple[float, int]]


def _turn_spans(batch: Mapping[str, Any]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per turn: row, first and end column of its supervised answer, and its task index."""
    spans = batch.get("turn_spans")
    if spans is None:  # a batch dict rebuilt without it (e.g. pickled by hand): from the segments
        rows: List[int] = []
        cols: List[Tuple[int, int]] = []
        tasks: List[int] = []
        for seg in batch["segments"]:
            got = seg.get("loss_spans")
            if got is None or len(got) != len(seg["turn_task_indices"]):
                raise ValueError("batch['segments'] lacks per-turn loss_spans; decode batches with this client version")
            rows.extend([seg["row"]] * len(got))
            cols.extend(got)
            tasks.extend(seg["turn_task_indices"])
        spans = np.column_stack([np.asarray(rows, dtype=np.int64).reshape(-1, 1),
                                 np.asarray(cols, dtype=np.int64).reshape(-1, 2),
                                 np.asarray(tasks, dtype=np.int64).reshape(-1, 1)])
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 4)
    return spans[:, 0], spans[:, 1], spans[:, 2], spans[:, 3]


def task_losses(token_loss: Any, batch: Mapping[str, Any]) -> TaskLosses:
    """Per-task ``(loss_sum, tokens)`` of one batch from a per-token loss.

    Args:
        token_loss: ``[B, L]`` (torch tensor or numpy array): ``token_loss[b, j]`` is the loss of
            the label at ``(b, j)``. A ``[B, L-1]`` loss from shifted logits
            (``cross_entropy(logits[:, :-1], labels[:, 1:])``) is read as aligned with
            ``labels[:, 1:]``. Values outside supervised positions are ignored.
        batch: a batch dict of :class:`~flanstream.FlanStreamDataset` (its ``turn_spans``, or
            its ``segments``' ``loss_spans``).

    Returns:
        ``{task_index: (loss_sum, tokens)}`` for the tasks with supervised tokens in the batch;
        each turn of a conversation counts toward its own task. One gather and one scatter-add over
        the supervised tokens (on the loss's device); the loss is detached.
    """
    shape = tuple(token_loss.shape)
    B, L = (int(x) for x in batch["labels"].shape)
    if len(shape) != 2 or shape[0] != B or shape[1] not in (L, L - 1):
        raise ValueError(f"token_loss must be [B, L] = [{B}, {L}] (or [{B}, {L - 1}] for shifted logits), got {list(shape)}")
    shift = L - shape[1]
    rows, starts, ends, tasks = _turn_spans(batch)
    starts = np.maximum(starts - shift, 0)
    ends = ends - shift
    lens = np.maximum(ends - starts, 0)
    total = int(lens.sum())
    if total == 0:
        return {}
    # Flattened index of every supervised token, and its task: one np.repeat each.
    first = np.cumsum(lens) - lens
    idx = np.arange(total, dtype=np.int64) - np.repeat(first, lens) + np.repeat(rows * shape[1] + starts, lens)
    tok_task = np.repeat(tasks, lens)
    n_tasks = int(tasks.max()) + 1
    counts = np.bincount(tok_task, minlength=n_tasks)
    if torch is not None and isinstance(token_loss, torch.Tensor):
        flat = token_loss.detach().reshape(-1)
        picked = flat.index_select(0, torch.from_numpy(idx).to(flat.device)).to(torch.float64)
        sums = torch.zeros(n_tasks, dtype=torch.float64, device=flat.device)
        sums.index_add_(0, torch.from_numpy(tok_task).to(flat.device), picked)
        sum_list = sums.cpu().tolist()
    else:
        arr = np.asarray(token_loss, dtype=np.float64).reshape(-1)
        sum_list = np.bincount(tok_task, weights=arr[idx], minlength=n_tasks).tolist()
    return {t: (float(sum_list[t]), int(counts[t])) for t in np.flatnonzero(counts).tolist()}


def check_losses(losses: Mapping[Any, Any], task_index: Mapping[str, int], n_tasks: int) -> TaskLosses:
    """``{task: (loss_sum, tokens)}`` with tasks as indices or paths → checked ``TaskLosses``."""
    if not isinstance(losses, Mapping):
        raise ValueError(f"losses must be a dict {{task: (loss_sum, tokens)}}, got {type(losses).__name__}")
    out: TaskLosses = {}
    for key, value in losses.items():
        t = task_index.get(key) if isinstance(key, str) else key
        if t is None or isinstance(t, bool) or not isinstance(t, numbers.Integral) or not 0 <= int(t) < n_tasks:
            raise ValueError(f"losses: unknown task {key!r} (a task index 0..{n_tasks - 1} or a task path)")
        try:
            loss_sum, tokens = value
        except (TypeError, ValueError):
            raise ValueError(f"losses[{key!r}] must be a (loss_sum, tokens) pair, got {value!r}") from None
        loss_sum = float(loss_sum)
        if not math.isfinite(loss_sum) or loss_sum < 0:
            raise ValueError(f"losses[{key!r}]: loss_sum must be a finite non-negative number, got {loss_sum!r}")
        if isinstance(tokens, bool) or not isinstance(tokens, numbers.Integral) or int(tokens) < 0:
            raise ValueError(f"losses[{key!r}]: tokens must be a non-negative integer, got {tokens!r}")
        if int(t) in out:
            raise ValueError(f"losses: task {key!r} given twice")
        out[int(t)] = (loss_sum, int(tokens))
    return out


def reduce_losses(losses: TaskLosses, n_tasks: int) -> TaskLosses:
    """Sum ``losses`` over the ``torch.distributed`` ranks (a collective when a process group with
    more than one rank is initialized; ``losses`` itself otherwise)."""
    if not dist_initialized() or _dist.get_world_size() < 2:
        return losses
    device = torch.device("cuda", torch.cuda.current_device()) if _dist.get_backend() == "nccl" else torch.device("cpu")
    dense = torch.zeros((n_tasks, 2), dtype=torch.float64, device=device)
    for t, (loss_sum, tokens) in losses.items():
        dense[t, 0] = loss_sum
        dense[t, 1] = tokens
    _dist.all_reduce(dense)
    rows = dense.cpu().tolist()
    return {t: (float(r[0]), int(round(r[1]))) for t, r in enumerate(rows) if r[1] > 0 or r[0] > 0}



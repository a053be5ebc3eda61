"""Zero-shot evaluation over a finite flanstream stream (split ``heldout``, ``test`` or ``dev``).

:func:`evaluate` scores a stream and combines the ranks with ``torch.distributed`` when it is
initialized. Reader processes that share no process group (separate jobs, a CPU fleet) use
:func:`evaluate_part` instead, save the returned plain dict (JSON- and pickle-able), and combine
them with :func:`merge_evaluations` — the same per-task means and completeness check.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Sequence, Union

from .distributed import dist_initialized

__all__ = ["evaluate", "evaluate_part", "merge_evaluations", "EvalResult", "EvalPart"]

Score = Union[float, int, bool, Mapping[str, float]]
EvalResult = Dict[str, Dict[str, float]]
#: ``{"sums": {task: {metric: sum}}, "counts": {task: n}, "uuids": [...], "expected": n | None,
#: "dropped": {task: n}}``
EvalPart = Dict[str, Any]


def _gather(obj: Any) -> List[Any]:
    """Every rank's ``obj`` (``all_gather_object``) when torch.distributed is initialized."""
    if not dist_initialized():
        return [obj]
    import torch.distributed as dist
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def evaluate_part(dataset: Any, fn: Callable[[Dict[str, Any]], Score]) -> EvalPart:
    """Scores this process's share of a finite stream (no communication): per-task metric sums
    and counts, the uuids scored, and the evaluation set's size from ``dataset.summary``.

    Raises ``ValueError`` when the dataset is a train stream (which never ends).
    """
    if getattr(dataset, "split", "train") == "train":
        raise ValueError("evaluate() needs a finite stream: split 'heldout', 'test' or 'dev'")
    sums: Dict[str, Dict[str, float]] = {}
    counts: Dict[str, int] = {}
    seen: List[str] = []
    for batch in dataset:
        items = batch.get("examples") or [dict(seg, batch=batch) for seg in batch["segments"]]
        for item in items:
            task = item["task"]
            score = fn(item)
            metrics = dict(score) if isinstance(score, Mapping) else {"score": float(score)}
            acc = sums.setdefault(task, {})
            for k, v in metrics.items():
                acc[k] = acc.get(k, 0.0) + float(v)
            counts[task] = counts.get(task, 0) + 1
            seen.extend(item["uuids"] if "uuids" in item else [item["uuid"]])
    summary = getattr(dataset, "summary", None) or {}
    expected = summary.get("total_examples")
    dropped = {str(t): int(n) for t, n in (summary.get("dropped") or {}).items()}
    return {"sums": sums, "counts": counts, "uuids": seen, "expected": None if expected is None else int(expected),
            "dropped": dropped}


def merge_evaluations(parts: Sequence[EvalPart]) -> EvalResult:
    """Per-task means over the parts of one evaluation (e.g. one :func:`evaluate_part` per rank).

    Each task gets ``count`` and the mean of every metric (and ``dropped``: its items that fit no
    row and were never served); ``"__total__"`` adds ``count``, ``expected`` (the evaluation set's
    size, as the server reported it, dropped items included), ``complete`` (1.0 when every item
    served was scored exactly once across the parts) and ``dropped`` (items that fit no row, never
    served: the stream is incomplete by that many, and the client logs a warning). Raises ``ValueError`` for parts of
    different evaluation sets (different ``expected``) or malformed parts.
    """
    if not parts:
        raise ValueError("merge_evaluations needs at least one part")
    total_sums: Dict[str, Dict[str, float]] = {}
    total_counts: Dict[str, int] = {}
    uuids: List[str] = []
    expected = {p.get("expected") for p in parts if isinstance(p, Mapping)} - {None}
    for part in parts:
        if not isinstance(part, Mapping) or not {"sums", "counts", "uuids"} <= set(part):
            raise ValueError("each part must be a dict from evaluate_part() with 'sums', 'counts' and 'uuids'")
        uuids.extend(part["uuids"])
        for task, n in part["counts"].items():
            total_counts[task] = total_counts.get(task, 0) + int(n)
            acc = total_sums.setdefault(task, {})
            for k, v in part["sums"][task].items():
                acc[k] = acc.get(k, 0.0) + float(v)
    if len(expected) > 1:
        raise ValueError(f"parts come from different evaluation sets (expected sizes {sorted(expected)})")
    result: EvalResult = {
        task: {"count": float(n), **{k: v / n for k, v in total_sums[task].items()}}
        for task, n in sorted(total_counts.items())
    }
    # The set's items that fit no row are the same on every part (the server counts the whole set).
    dropped: Dict[str, int] = {}
    for part in parts:
        for task, n in (part.get("dropped") or {}).items():
            dropped[task] = max(dropped.get(task, 0), int(n))
    for task, n in dropped.items():
        result.setdefault(task, {"count": 0.0})["dropped"] = float(n)
    size = float(expected.pop()) if expected else float(len(uuids))
    result["__total__"] = {
        "count": float(len(uuids)),
        "expected": size,
        "complete": float(len(uuids) == len(set(uuids)) == size - sum(dropped.values())),
        "dropped": float(sum(dropped.values())),
    }
    return result


def evaluate(dataset: Any, fn: Callable[[Dict[str, Any]], Score]) -> EvalResult:
    """Runs ``fn`` over every item of a finite stream and returns per-task means.

    With ``packing="examples"`` each item is one example (``prompt_tokens``, ``answer_tokens``,
    ``answer_text``, ``uuid``, ``task``, …): generate from the prompt and score against the
    reference. With packed batches each item is a segment dict plus ``batch`` (the batch it came
    from), for loss-based evaluation. ``fn`` returns a number or a dict of named numbers.

    Results are gathered across ranks with ``torch.distributed`` when it is initialized (a
    collective: call it on every rank); see :func:`merge_evaluations` for the result's keys and
    for combining processes without torch.distributed.

    Raises ``ValueError`` when the dataset is a train stream (which never ends).
    """
    return merge_evaluations(_gather(evaluate_part(dataset, fn)))

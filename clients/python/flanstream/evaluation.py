"""Zero-shot evaluation over a finite flanstream stream (split ``heldout``, ``test`` or ``dev``)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Union

from .distributed import dist_initialized

__all__ = ["evaluate", "EvalResult"]

Score = Union[float, int, bool, Mapping[str, float]]
EvalResult = Dict[str, Dict[str, float]]


def _gather(obj: Any) -> List[Any]:
    """Every rank's ``obj`` (``all_gather_object``) when torch.distributed is initialized."""
    if not dist_initialized():
        return [obj]
    import torch.distributed as dist
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def evaluate(dataset: Any, fn: Callable[[Dict[str, Any]], Score]) -> EvalResult:
    """Runs ``fn`` over every item of a finite stream and returns per-task means.

    With ``packing="examples"`` each item is one example (``prompt_tokens``, ``answer_tokens``,
    ``answer_text``, ``uuid``, ``task``, …): generate from the prompt and score against the
    reference. With packed batches each item is a segment dict plus ``batch`` (the batch it came
    from), for loss-based evaluation. ``fn`` returns a number or a dict of named numbers.

    Results are gathered across ranks with ``torch.distributed`` when it is initialized (a
    collective: call it on every rank). Each task gets ``count`` and the mean of every metric;
    ``"__total__"`` adds ``count``, ``expected`` (the server's total for the evaluation set, from
    ``dataset.summary``) and ``complete`` (1.0 when every example was scored exactly once).

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
    gathered = _gather({"sums": sums, "counts": counts, "uuids": seen})
    total_sums: Dict[str, Dict[str, float]] = {}
    total_counts: Dict[str, int] = {}
    uuids: List[str] = []
    for part in gathered:
        uuids.extend(part["uuids"])
        for task, n in part["counts"].items():
            total_counts[task] = total_counts.get(task, 0) + n
            acc = total_sums.setdefault(task, {})
            for k, v in part["sums"][task].items():
                acc[k] = acc.get(k, 0.0) + v
    result: EvalResult = {
        task: {"count": float(n), **{k: v / n for k, v in total_sums[task].items()}}
        for task, n in sorted(total_counts.items())
    }
    expected = float(summary.get("total_examples", len(uuids)))
    result["__total__"] = {
        "count": float(len(uuids)),
        "expected": expected,
        "complete": float(len(uuids) == len(set(uuids)) == expected),
    }
    return result

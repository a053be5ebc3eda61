"""Partial mixture updates: refuse the ones that would silently zero selectors, or merge them.

A ``MixtureUpdate`` replaces the whole mixture: every task its weights do not name gets weight 0.
``update_mixture({"speech": 0.8}, at_step)`` on a speech/music/audio mixture therefore makes the
stream 100 % speech, which is rarely what was meant. Before sending, the dataset compares the
update with the mixture in effect just before ``at_step`` (see :func:`current_weights`):

* ``merge=None`` (default): an update that leaves out a selector (or task) of positive weight is
  refused with ``ValueError`` listing them; name them (with ``0`` to drop one deliberately).
* ``merge=True``: the update's selectors replace the overlapping entries of the current weights
  and every other entry keeps its weight. Weights are relative: ``{"speech": 0.8}`` merged into
  ``{"speech": 0.5, "music": 0.25, "audio": 0.25}`` gives ``{0.8, 0.25, 0.25}``, i.e. speech at
  0.8 / 1.3 ≈ 62 % of examples — name every selector to set exact shares.
* ``merge=False``: the update replaces the mixture as given (unnamed tasks get 0).

Selectors follow the server's rule: a selector names a task when it equals the task's domain,
its ``domain/major``, or its full path; an axis selector ``ug:<value>``, ``unseen:true|false``,
``dataset:NN_Name`` or ``source:<value>`` names the tasks whose train records all carry that value
(for ``source``, a list: every train record lists it; ``TaskInfo.sources``).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ._proto.flanstream.v1 import data_service_pb2 as pb
from .info import DatasetInfo, TaskInfo

__all__ = ["selector_matches", "selector_tasks", "resolve_update_weights", "weights_before"]

_LISTED = 12  # entries named in an error message before "…"


def selector_matches(selector: str, task: TaskInfo) -> bool:
    """``True`` when ``selector`` is the task's domain, ``domain/major`` or full path."""
    return selector in (task.domain, f"{task.domain}/{task.major}", task.path)


def selector_tasks(selector: str, tasks: Sequence[TaskInfo], datasets: Sequence[DatasetInfo] = ()) -> List[str]:
    """Task paths a mixture selector takes: by path prefix, or by an axis value (``ug:``,
    ``unseen:``, ``dataset:``, ``source:``; a task matches when all its train records carry the value)."""
    axis, _, value = selector.partition(":")
    if axis == "ug":
        return [t.path for t in tasks if t.ug == value]
    if axis == "unseen":
        return [t.path for t in tasks if ("true" if t.unseen else "false") == value]
    if axis == "source":
        return [t.path for t in tasks if value in t.sources]
    if axis == "dataset":
        homes: Dict[str, List[str]] = {}
        for d in datasets:
            for path, counts in d.tasks.items():
                if counts.get("train", 0) > 0:
                    homes.setdefault(path, []).append(d.name)
        return [t.path for t in tasks if homes.get(t.path) == [value]]
    return [t.path for t in tasks if selector_matches(selector, t)]


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:_LISTED])
    return shown + (f", … ({len(names)} in all)" if len(names) > _LISTED else "")


def _compact(left_out: Mapping[str, List[str]], current: Mapping[str, float], tasks: Sequence[TaskInfo]) -> List[str]:
    """Left-out entries for a message. After a batch the reference is per task, so a domain whose
    every weighted task is left out is named once instead of task by task."""
    domain = {t.path: t.domain for t in tasks}
    names = [sel for sel in left_out if sel not in domain]
    by_domain: Dict[str, List[str]] = {}
    for sel in left_out:
        if sel in domain:
            by_domain.setdefault(domain[sel], []).append(sel)
    for d, paths in by_domain.items():
        weighted = [p for p, w in current.items() if w > 0 and domain.get(p) == d]
        names.extend([d] if len(weighted) == len(paths) else paths)
    return names


def resolve_update_weights(update: Mapping[str, float], current: Optional[Mapping[str, float]],
                           tasks: Sequence[TaskInfo], merge: Optional[bool],
                           datasets: Sequence[DatasetInfo] = ()) -> Dict[str, float]:
    """The weights to send for ``update`` given the ``current`` mixture (selector or task path →
    weight; ``None`` when the client cannot know it). Raises ``ValueError`` as described above."""
    if merge is not None and not isinstance(merge, bool):
        raise ValueError(f"merge must be None, True or False, got {merge!r}")
    if merge is False:
        return dict(update)
    covered = {p for sel in update for p in selector_tasks(sel, tasks, datasets)}
    if merge is None and tasks and len(covered) == len(tasks):
        return dict(update)  # names every task: nothing can be zeroed by omission
    if current is None:
        raise ValueError(
            "cannot tell which selectors this update would leave out: the current weights are not known to the "
            "client (a named or natural mixture, or a restored checkpoint, before the first batch; each batch's "
            "stats carry the targets). Iterate at least one batch first, or pass merge=False to replace the "
            "whole mixture (unnamed tasks get weight 0)")
    left_out: Dict[str, List[str]] = {}   # current entry → its positive tasks the update does not name
    partial: List[str] = []
    for sel, w in current.items():
        if not w > 0:
            continue
        mine = selector_tasks(sel, tasks, datasets)
        missing = [p for p in mine if p not in covered]
        if missing:
            left_out[sel] = missing
            if len(missing) < len(mine):
                partial.append(sel)
    if merge is None:
        if left_out:
            raise ValueError(
                f"update_mixture({dict(update)}) would give weight 0 to {_listing(_compact(left_out, current, tasks))} "
                "(currently positive, "
                "not named by the update: an update replaces the whole mixture). Name them — with 0 to drop one "
                "deliberately — or pass merge=True to keep their current weights, or merge=False to zero them")
        return dict(update)
    if partial:
        raise ValueError(
            f"cannot merge: the update names part of {_listing(partial)} (e.g. "
            f"{_listing(left_out[partial[0]][:3])} would be left without a weight); name each of them whole or not at all")
    merged = {sel: float(w) for sel, w in current.items() if sel in left_out}
    merged.update(update)
    return merged


def weights_before(at_step: int, updates: Sequence[Mapping[str, Any]], spec: "pb.StreamSpec",
                   last_stats: Optional[Mapping[str, Any]], restored: bool) -> Optional[Dict[str, float]]:
    """The mixture in effect just before ``at_step``, as selector (or task path) → weight: the
    latest of ``updates`` before it (pending, or applied since the start or the last checkpoint
    load; the last one queued for a step wins, as on the server), else the spec's weights (unless
    ``restored`` from a token, whose earlier updates only the token knows), else the last batch's
    per-task targets; ``None`` when unknown (a named or natural mixture, or a restored checkpoint,
    before the first batch)."""
    earlier = [u for u in updates if u["at_step"] < at_step]
    if earlier:
        latest = max(u["at_step"] for u in earlier)
        return dict([u for u in earlier if u["at_step"] == latest][-1]["weights"])
    mix = spec.mixture if spec.HasField("mixture") else None
    if not restored and mix is not None and not mix.name and len(mix.weights):
        return dict(mix.weights)
    if last_stats is not None:  # per task: a named or natural mixture, or updates applied before a checkpoint
        return {path: t["target"] for path, t in last_stats["tasks"].items() if t["target"] > 0}
    return None

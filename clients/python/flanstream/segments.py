"""A batch's per-segment metadata (``batch["segments"]``), built only when it is read.

Why lazy: a packed 8 × 4096 batch holds 50–60 segments, and with one codebook per clip 300+;
building a dict per segment (and a list per field per segment) cost more than rebuilding every
dense tensor of the batch, while most training steps never look at them. :class:`Segments` is a
read-only sequence that behaves like the list it replaces (``len``, indexing, slicing, iteration,
``==`` with a list, ``repr``, pickling) and builds the dicts on first access to an item.

Until then it keeps a reference to the received ``Batch`` message (about the size of one int32
``[B, L]`` array: tokens without padding plus metadata) and drops it once built, so memory stays
bounded by the batches the caller holds. ``list(batch["segments"])`` gives a plain list (e.g.
for ``json.dumps``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union, overload

import numpy as np

from ._proto.flanstream.v1 import data_service_pb2 as pb

__all__ = ["Segments", "segment_dicts", "name_table"]

Segment = Dict[str, Any]


def name_table(names: Sequence[str]) -> List[str]:
    """``names`` with each missing name replaced by ``#<index>`` (how unknown tasks are shown)."""
    return [n if n else f"#{i}" for i, n in enumerate(names)]


def _namer(table: List[str]) -> Callable[[int], str]:
    n = len(table)
    return lambda i: table[i] if 0 <= i < n else f"#{i}"


def segment_dicts(batch: "pb.Batch", turns: List[int], turn_spans: np.ndarray, task_names: List[str],
                  domain_names: List[str], task_domain: np.ndarray) -> List[Segment]:
    """One dict per segment of ``batch`` (``row``, ``offset``, ``length``, ``task``,
    ``task_index``, ``domain``, ``uuids``, ``turn_tasks``, ``turn_task_indices``, ``loss_spans``,
    ``text_tokens``, ``audio_tokens``); ``loss_spans`` are the turn's ``(start, end)`` columns
    from ``turn_spans`` ([T, 4], as :meth:`BatchDecoder.turn_spans`). The names come from
    :func:`name_table` lists. ``turns`` are the segments' turn counts as
    :meth:`BatchDecoder.check_turns` returned them, after checking the field counts."""
    S = len(batch.seg_length)
    uuids = list(batch.uuids)
    tasks = list(batch.seg_task)
    turn_task = list(batch.turn_task) or [t for t, n in zip(tasks, turns) for _ in range(n)]
    nd = task_domain.shape[0]
    domains = list(batch.seg_domain) or [int(task_domain[t]) if t < nd else -1 for t in tasks]
    text = list(batch.seg_text_tokens) or [0] * S
    audio = list(batch.seg_audio_tokens) or [0] * S
    cols = [tuple(c) for c in turn_spans[:, 1:3].tolist()]
    task, domain = _namer(task_names), _namer(domain_names)
    out: List[Segment] = []
    j = 0
    for i, (row, off, length) in enumerate(zip(batch.seg_row, batch.seg_offset, batch.seg_length)):
        n = turns[i]
        tt = turn_task[j:j + n]
        out.append({
            "row": row, "offset": off, "length": length,
            "task": task(tasks[i]), "task_index": tasks[i], "domain": domain(domains[i]),
            "uuids": uuids[j:j + n], "turn_tasks": [task(t) for t in tt],
            "turn_task_indices": tt, "loss_spans": cols[j:j + n],
            "text_tokens": text[i], "audio_tokens": audio[i],
        })
        j += n
    return out


class Segments(Sequence[Segment]):
    """The segments of one batch: a read-only sequence of dicts, equal to the list of them.

    Args:
        source: the dicts themselves (copies, pickling and torch's ``default_convert`` rebuild a
            ``Segments`` from a list), or ``(count, build)``: the number of segments and a
            function returning the list, called once on first access to an item.
    """

    __slots__ = ("_n", "_build", "_items")

    def __init__(self, source: Union[Iterable[Mapping[str, Any]], "tuple[int, Callable[[], List[Segment]]]"] = ()) -> None:
        self._build: Optional[Callable[[], List[Segment]]] = None
        self._items: Optional[List[Segment]] = None
        if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], int) and callable(source[1]):
            self._n, self._build = source
        elif isinstance(source, (str, bytes, Mapping)) or not isinstance(source, Iterable):
            raise ValueError(f"Segments needs an iterable of segment dicts or (count, build), got {type(source).__name__}")
        else:
            self._items = [s if isinstance(s, dict) else dict(s) for s in source]
            self._n = len(self._items)

    def _list(self) -> List[Segment]:
        items = self._items
        if items is None:
            build = self._build
            if build is None:  # another thread built them meanwhile (it sets _items first)
                return self._items  # type: ignore[return-value]
            items = build()
            if len(items) != self._n:
                raise ValueError(f"built {len(items)} segments, expected {self._n}")
            self._items = items
            self._build = None  # drop the batch message it read
        return items

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Segment: ...

    @overload
    def __getitem__(self, i: slice) -> List[Segment]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[Segment, List[Segment]]:
        return self._list()[i]  # a slice is a plain list, as slicing the list was

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Segments):
            return self._n == other._n and self._list() == other._list()
        if isinstance(other, list):
            return self._n == len(other) and self._list() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # unhashable, like a list

    def __add__(self, other: object) -> List[Segment]:
        if isinstance(other, (list, Segments)):
            return self._list() + list(other)
        return NotImplemented

    def __radd__(self, other: object) -> List[Segment]:
        if isinstance(other, list):
            return other + self._list()
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._list())

    def __reduce__(self) -> "tuple[Any, ...]":
        return (Segments, (self._list(),))

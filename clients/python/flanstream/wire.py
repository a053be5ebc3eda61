"""Decoding of wire ``Batch`` messages into dense training tensors (vectorized numpy).

Wire format (``proto/flanstream/v1/data_service.proto``): ``tokens`` holds the int32 LE tokens of
all S segments concatenated in row order without padding. Segment ``i`` occupies the flattened
token range ``[sum(len[:i]), sum(len[:i+1]))`` and sits in row ``seg_row[i]`` at column
``seg_offset[i]``. ``loss_spans`` are ``[start, end)`` pairs in flattened token coordinates.

Decoded arrays (``B`` rows of ``L = seq_len`` columns, ``S`` segments):

============== ======== =============== ===============================================
key            shape    numpy / torch   meaning
============== ======== =============== ===============================================
input_ids      [B, L]   int32 / int64   tokens; ``pad_id`` after/between segments
labels         [B, L]   int32 / int64   the token itself on supervised positions, -100 elsewhere
position_ids   [B, L]   int32 / int64   0, 1, … restarting for every segment; 0 on padding
segment_ids    [B, L]   int32 / int32   1, 2, … per segment within a row; 0 on padding
cu_seqlens     [S+1]    int32 / int32   0 then cumulative segment lengths (segment order)
max_seqlen     int                      longest segment (0 when S == 0)
============== ======== =============== ===============================================

Python loops run per segment (the ``segments`` list) and per run of back-to-back segments (one
slice copy each); every per-token step is one numpy operation over the batch.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
import numpy as np

from ._proto.flanstream.v1 import data_service_pb2 as pb
from .errors import FlanStreamError
from .info import CorpusInfo
from .segments import Segments, name_table, segment_dicts

try:  # torch is optional
    import torch
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None  # type: ignore[assignment]

__all__ = ["IGNORE_INDEX", "DROPPED_AT_OPEN", "dense_arrays", "BatchDecoder", "BatchStats", "summarize_end"]

IGNORE_INDEX = -100
#: Key of a decoded first batch of an evaluation call holding ``BatchDecoder.dropped_at_open``.
DROPPED_AT_OPEN = "_dropped_at_open"
_I4 = np.dtype("<i4")


_TLS = threading.local()


def _scratch(name: str, n: int, dtype: Any) -> np.ndarray:
    """A per-thread scratch buffer of ``n`` items, reused across batches (grown on demand).

    Reusing temporaries matters: fresh multi-100-KB arrays are ``mmap``-ed and page-faulted on
    every batch, which costs more than the arithmetic itself.
    """
    bufs: Dict[str, np.ndarray] = _TLS.__dict__.setdefault("bufs", {})
    buf = bufs.get(name)
    if buf is None or buf.shape[0] < n:
        buf = np.empty(max(n, 2 * buf.shape[0] if buf is not None else n), dtype=dtype)
        bufs[name] = buf
    return buf[:n]


def _bad(msg: str) -> FlanStreamError:
    return FlanStreamError(grpc.StatusCode.DATA_LOSS, f"malformed batch: {msg}")


def _u32(values: Any) -> np.ndarray:
    return np.fromiter(values, dtype=np.int64, count=len(values))


class _Columns:
    """The per-segment wire columns a batch's decode reads, converted to numpy once (each
    conversion walks a protobuf repeated field element by element)."""

    __slots__ = ("rows", "offs", "lens", "spans")

    def __init__(self, batch: "pb.Batch") -> None:
        self.rows, self.offs, self.lens = _u32(batch.seg_row), _u32(batch.seg_offset), _u32(batch.seg_length)
        self.spans = _u32(batch.loss_spans)


def dense_arrays(batch: "pb.Batch", ids_dtype: Any = np.int32) -> Dict[str, Any]:
    """Rebuild ``input_ids``, ``labels``, ``position_ids``, ``segment_ids``, ``cu_seqlens`` and
    ``max_seqlen`` from a wire ``Batch`` (numpy; ``ids_dtype`` for the first three).

    Raises:
        FlanStreamError: ``DATA_LOSS`` if the message is inconsistent (lengths, ranges, overlaps).
    """
    return _dense(batch, _Columns(batch), ids_dtype)


def _dense(batch: "pb.Batch", cols: _Columns, ids_dtype: Any) -> Dict[str, Any]:
    B, L = int(batch.batch_size), int(batch.seq_len)
    if len(batch.tokens) % 4:
        raise _bad(f"tokens has {len(batch.tokens)} bytes, not a multiple of 4")
    tokens = np.frombuffer(batch.tokens, dtype=_I4)
    N = tokens.shape[0]
    rows, offs, lens = cols.rows, cols.offs, cols.lens
    S = lens.shape[0]
    if rows.shape[0] != S or offs.shape[0] != S:
        raise _bad(f"seg_row/seg_offset/seg_length have {rows.shape[0]}/{offs.shape[0]}/{S} entries")
    ends = np.cumsum(lens)
    total = int(ends[-1]) if S else 0
    if total != N:
        raise _bad(f"segment lengths sum to {total} but tokens holds {N}")
    if S and (int(rows.max()) >= B or int((offs + lens).max()) > L):
        raise _bad(f"a segment lies outside the [{B}, {L}] batch")
    key = rows * L + offs                      # flattened start of each segment in [B*L]
    if S > 1 and not bool(np.all(key[1:] >= key[:-1] + lens[:-1])):
        order = np.lexsort((offs, rows))
        k, ln = key[order], lens[order]
        if not bool(np.all(k[1:] >= k[:-1] + ln[:-1])):
            raise _bad("segments overlap")
        srows = rows[order]
        ordinal = np.empty(S, dtype=np.int64)
        ordinal[order] = np.arange(S) - np.searchsorted(srows, srows, side="left") + 1
    else:                                      # row-major order (the normal case)
        ordinal = np.arange(S) - np.searchsorted(rows, rows, side="left") + 1
    spans = cols.spans
    if spans.shape[0] % 2:
        raise _bad("loss_spans has an odd number of entries")
    s0, s1 = spans[0::2], spans[1::2]
    if spans.shape[0] and (bool(np.any(s0 > s1)) or int(s1.max()) > N):
        raise _bad(f"a loss span is reversed or beyond the {N} tokens")
    size = B * L
    input_ids = np.full(size, int(batch.pad_id), dtype=ids_dtype)
    labels = np.full(size, IGNORE_INDEX, dtype=ids_dtype)
    position_ids = np.zeros(size, dtype=ids_dtype)
    segment_ids = np.zeros(size, dtype=np.int32)
    if N:
        k, ln, od = (key, lens, ordinal) if int(lens.min()) > 0 else (key[lens > 0], lens[lens > 0], ordinal[lens > 0])
        st = np.cumsum(ln) - ln                # flattened token start of each (non-empty) segment; st[0] == 0
        # Per-token values by cumulative sums: one value per token, 1 (or 0) except a jump at
        # each segment's first token, so a single in-place cumsum gives them all. One scratch
        # block for the three (few numpy calls per batch: their fixed cost is most of a small batch).
        block = _scratch("block", 3 * N + 1, np.int32)
        pos, seg, depth = block[:N], block[N:2 * N], block[2 * N:]
        pos.fill(1)                            # 0, 1, … within each segment
        pos[st[1:]] = 1 - ln[:-1]
        pos[0] = 0
        np.cumsum(pos, dtype=np.int32, out=pos)
        seg.fill(0)                            # 1, 2, … per segment within its row
        jump = od.copy()
        jump[1:] -= od[:-1]
        seg[st] = jump
        np.cumsum(seg, dtype=np.int32, out=seg)
        sup = None
        if spans.shape[0]:
            depth.fill(0)                      # how many loss spans cover each token
            np.add.at(depth, s0, 1)
            np.add.at(depth, s1, -1)
            np.cumsum(depth, dtype=np.int32, out=depth)
            sup = depth[:N] > 0
        # Segments sit back to back in their rows (the packer's layout), so each run of them is
        # one slice copy: a few per row, where scattering every token by index cost a third more.
        brk = (np.flatnonzero(k[1:] != k[:-1] + ln[:-1]) + 1).tolist()
        kl, stl = k.tolist(), st.tolist()
        for i, j in zip([0] + brk, brk + [len(kl)]):
            d, a, b = kl[i], stl[i], stl[j] if j < len(stl) else N
            e = d + b - a
            input_ids[d:e] = tokens[a:b]
            position_ids[d:e] = pos[a:b]
            segment_ids[d:e] = seg[a:b]
            if sup is not None:
                np.copyto(labels[d:e], tokens[a:b], where=sup[a:b])
    cu = np.zeros(S + 1, dtype=np.int32)
    cu[1:] = ends
    return {
        "input_ids": input_ids.reshape(B, L),
        "labels": labels.reshape(B, L),
        "position_ids": position_ids.reshape(B, L),
        "segment_ids": segment_ids.reshape(B, L),
        "cu_seqlens": cu,
        "max_seqlen": int(lens.max()) if S else 0,
    }


def _turn_counts(batch: "pb.Batch") -> np.ndarray:
    """Turns per segment: ``seg_turns``, or 1 per segment from a server that sends one uuid per segment."""
    if len(batch.seg_turns):
        return _u32(batch.seg_turns)
    S = len(batch.seg_length)
    return np.ones(S, dtype=np.int64) if len(batch.uuids) == S else np.zeros(S, dtype=np.int64)


def _turn_spans(batch: "pb.Batch", cols: _Columns, turns: np.ndarray) -> np.ndarray:
    T = cols.spans.shape[0] // 2
    if cols.spans.shape[0] % 2 or T != int(turns.sum()) or T != len(batch.turn_task):
        return np.zeros((0, 4), dtype=np.int64)  # an older server: no per-turn spans
    lens = cols.lens
    shift = cols.offs - (np.cumsum(lens) - lens)
    out = np.empty((T, 4), dtype=np.int64)
    if T == lens.shape[0] and (T == 0 or int(turns.max()) == 1):  # one turn per segment (none, packed)
        out[:, 0] = cols.rows
        out[:, 1:3] = cols.spans.reshape(T, 2) + shift[:, None]
    else:
        out[:, 0] = np.repeat(cols.rows, turns)
        out[:, 1:3] = cols.spans.reshape(T, 2) + np.repeat(shift, turns)[:, None]
    out[:, 3] = _u32(batch.turn_task)
    return out


def _name(names: Sequence[str], i: int) -> str:
    return names[i] if 0 <= i < len(names) and names[i] else f"#{i}"


def _pad(values: Any, n: int, dtype: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.shape[0] < n:
        arr = np.concatenate([arr, np.zeros(n - arr.shape[0], dtype=dtype)])
    return arr


def _shares(counts: np.ndarray) -> np.ndarray:
    total = int(counts.sum())
    return counts / total if total else np.zeros(counts.shape[0])


def summarize_end(end: "pb.StreamEnd", task_paths: Sequence[str]) -> Dict[str, Any]:
    """A ``StreamEnd`` as ``ds.summary``: per-task counts keyed by task path, and totals."""
    mine, totals, dropped = list(end.task_examples), list(end.total_task_examples), list(end.task_dropped)
    n = max(len(mine), len(totals), len(dropped))
    mine += [0] * (n - len(mine))
    totals += [0] * (n - len(totals))
    dropped += [0] * (n - len(dropped))
    keep = [i for i in range(n) if mine[i] or totals[i]]
    return {
        # Items of the set that fit no row (over seq_len even truncated), never served: whole set.
        "dropped": {_name(task_paths, i): int(dropped[i]) for i in range(n) if dropped[i]},
        "total_dropped": int(sum(dropped)),
        "reason": end.reason,
        "examples": int(end.examples),
        "total_examples": int(end.total_examples),
        "task_examples": {_name(task_paths, i): int(mine[i]) for i in keep},
        "total_task_examples": {_name(task_paths, i): int(totals[i]) for i in keep},
        "resume_token": bytes(end.resume_token),
    }


class BatchStats(Mapping[str, Any]):
    """A batch's running stats (``examples``, ``padding_tokens``, ``dropped``, ``truncated``,
    ``tasks``, ``domains``), read like a dict.

    The per-task and per-domain dicts are built on first access: most training steps never look
    at them, and building them for every batch cost about a sixth of the client's decode time.

    Args:
        source: the function that builds the dict, or the dict itself (copies, pickling and torch's
            ``default_convert`` rebuild a ``BatchStats`` from a mapping).
    """

    __slots__ = ("_build", "_data")

    def __init__(self, source: Union[Mapping[str, Any], Callable[[], Dict[str, Any]]]) -> None:
        self._build: Optional[Callable[[], Dict[str, Any]]] = None
        self._data: Optional[Dict[str, Any]] = None
        if isinstance(source, Mapping):
            self._data = dict(source)
        elif callable(source):
            self._build = source
        else:
            raise ValueError(f"BatchStats needs a mapping or a function building one, got {type(source).__name__}")

    def _dict(self) -> Dict[str, Any]:
        if self._data is None:
            assert self._build is not None
            self._data, self._build = self._build(), None
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return f"BatchStats({self._dict()!r})"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (BatchStats, (self._dict(),))


class BatchDecoder:
    """Turns wire ``Batch`` messages into the batch dicts that :class:`FlanStreamDataset` yields.

    Args:
        info: the server's corpus info (task and domain names); ``None`` names tasks ``#<index>``.
        output: ``"torch"`` (tensors; int64 ids/labels/positions) or ``"numpy"`` (int32 arrays).
        pin_memory: pinned torch tensors when CUDA is available (a no-op otherwise).
    """

    def __init__(self, info: Optional[CorpusInfo] = None, output: str = "numpy", pin_memory: bool = False) -> None:
        if output == "torch" and torch is None:
            raise ValueError("output='torch' needs PyTorch, which is not installed; use output='numpy'")
        self.output = output
        #: Tensors go to page-locked memory (one copy, on the prefetch thread) only when they are
        #: torch tensors and CUDA can use them; without CUDA, pinning is a no-op.
        self.pin_memory = bool(pin_memory and output == "torch" and torch.cuda.is_available())
        self.task_paths: List[str] = info.task_paths if info else []
        self.domains: List[str] = list(info.domains) if info else []
        dom_index = {d: i for i, d in enumerate(self.domains)}
        self.task_domain = np.full(len(self.task_paths), -1, dtype=np.int64)
        for t in info.tasks if info else ():
            self.task_domain[t.index] = dom_index.get(t.domain, -1)
        self._ids_dtype = np.int64 if output == "torch" else np.int32
        self._task_names, self._domain_names = name_table(self.task_paths), name_table(self.domains)

    def _tensor(self, arr: np.ndarray) -> Any:
        if self.output != "torch":
            return arr
        t = torch.from_numpy(arr)
        return t.pin_memory() if self.pin_memory else t

    def __call__(self, batch: "pb.Batch") -> Dict[str, Any]:
        cols = _Columns(batch)
        out: Dict[str, Any] = {}
        for k, v in _dense(batch, cols, self._ids_dtype).items():
            out[k] = v if k == "max_seqlen" else self._tensor(v)
        turns = self.check_turns(batch)
        spans = _turn_spans(batch, cols, turns)
        out["segments"] = Segments((len(batch.seg_length), lambda: self._segment_dicts(batch, spans, turns)))
        out["turn_spans"] = spans
        out["step"] = int(batch.step)
        out["rank"] = int(batch.rank)
        out["world_size"] = int(batch.world_size)
        out["resume_token"] = bytes(batch.resume_token)
        out["heldout_fingerprint"] = batch.heldout_fingerprint
        out["total_steps"] = int(batch.total_steps)
        if len(batch.task_dropped):  # evaluation streams, first batch of a call (the dataset takes it out)
            out[DROPPED_AT_OPEN] = self.dropped_at_open(batch)
        st = pb.Stats()
        st.CopyFrom(batch.stats)  # its own message: a lazy BatchStats must not keep the batch alive
        out["stats"] = BatchStats(lambda: self.stats(st))
        if len(batch.examples):
            out["examples"] = self.examples(batch.examples)
        return out

    def dropped_at_open(self, batch: "pb.Batch") -> Dict[str, Any]:
        """What an evaluation stream's first batch says of the set's items that fit no row:
        ``dropped`` by task path, ``total_dropped`` and ``fit_seq_len`` (the smallest ``seq_len``
        that fits every one of them whole; 0 when none is dropped)."""
        counts = list(batch.task_dropped)
        return {
            "dropped": {_name(self.task_paths, i): int(n) for i, n in enumerate(counts) if n},
            "total_dropped": int(sum(counts)),
            "fit_seq_len": int(batch.dropped_fit_seq_len),
        }

    @staticmethod
    def turn_spans(batch: "pb.Batch") -> np.ndarray:
        """``[T, 4]`` int64, one row per turn (segment order, then turn order): the row, the first
        and end column of the turn's supervised answer, and the turn's task index. The wire
        carries one loss span per turn (proto: ``loss_spans``), in flattened token coordinates;
        each is shifted by its segment's flattened start to the column of its row."""
        return _turn_spans(batch, _Columns(batch), _turn_counts(batch))

    @staticmethod
    def check_turns(batch: "pb.Batch") -> np.ndarray:
        """The number of turns of each segment (``seg_turns``, 1 each when absent), after checking
        that the per-segment and per-turn columns agree.

        Raises:
            FlanStreamError: ``DATA_LOSS`` naming the columns that do not match.
        """
        S, U = len(batch.seg_length), len(batch.uuids)
        turns = _turn_counts(batch)
        total = int(turns.sum())
        if turns.shape[0] != S or total != U:
            raise _bad(f"seg_turns ({turns.shape[0]} entries, sum {total}) does not match {U} uuids")
        if len(batch.seg_task) != S or (len(batch.turn_task) or U) != U:
            raise _bad("seg_task/turn_task lengths do not match the segments/uuids")
        return turns

    def segments(self, batch: "pb.Batch", spans: Optional[np.ndarray] = None) -> List[Dict[str, Any]]:
        """Per-segment metadata dicts (``row``, ``offset``, ``length``, ``task``, ``task_index``,
        ``domain``, ``uuids``, ``turn_tasks``, ``turn_task_indices``, ``loss_spans``,
        ``text_tokens``, ``audio_tokens``), built now (the decoder's ``batch["segments"]`` is the
        same list as a lazy :class:`~flanstream.segments.Segments`). ``loss_spans`` holds one
        ``(start, end)`` column range of the segment's row per turn: the supervised answer of that
        turn (of task ``turn_task_indices[k]``), which is what :func:`flanstream.task_losses` credits."""
        turns = self.check_turns(batch)
        if spans is None:
            spans = _turn_spans(batch, _Columns(batch), turns)
        return self._segment_dicts(batch, spans, turns)

    def _segment_dicts(self, batch: "pb.Batch", spans: np.ndarray, turns: np.ndarray) -> List[Dict[str, Any]]:
        return segment_dicts(batch, turns.tolist(), spans, self._task_names, self._domain_names, self.task_domain)

    def stats(self, st: "pb.Stats") -> Dict[str, Any]:
        """Per-task and per-domain examples/tokens so far with target vs realized proportions."""
        n = max(len(self.task_paths), len(st.task_examples), len(st.task_target), len(st.task_dropped),
                len(st.task_truncated), len(st.task_examples_since_update), len(st.task_epochs))
        ex = _pad(st.task_examples, n, np.int64)
        text = _pad(st.task_text_tokens, n, np.int64)
        audio = _pad(st.task_audio_tokens, n, np.int64)
        target = _pad(st.task_target, n, np.float64)
        tdropped = _pad(st.task_dropped, n, np.int64)
        ttrunc = _pad(st.task_truncated, n, np.int64)
        train = len(st.task_examples_since_update) > 0  # evaluation streams have no mixture to follow
        since = _shares(_pad(st.task_examples_since_update, n, np.int64))
        recent = _shares(_pad(st.task_examples_window, n, np.int64))
        epochs = _pad(st.task_epochs, n, np.int64)
        nd = max(len(self.domains), len(st.domain_examples), len(st.domain_target), len(st.domain_examples_since_update))
        dex = _pad(st.domain_examples, nd, np.int64)
        dtarget = _pad(st.domain_target, nd, np.float64)
        total = int(ex.sum())
        realized = ex / total if total else np.zeros(n)
        tasks = {
            _name(self.task_paths, i): {
                "index": i, "examples": int(ex[i]), "text_tokens": int(text[i]), "audio_tokens": int(audio[i]),
                "target": float(target[i]), "realized": float(realized[i]),
                "dropped": int(tdropped[i]), "truncated": int(ttrunc[i]),
                **({"realized_since_update": float(since[i]), "realized_recent": float(recent[i]),
                    "epoch": int(epochs[i])} if train else {}),
            }
            for i in np.flatnonzero((ex > 0) | (target > 0) | (tdropped > 0) | (ttrunc > 0)).tolist()
        }
        dom = self.task_domain if self.task_domain.shape[0] == n else _pad(self.task_domain, n, np.int64)
        known = dom >= 0
        dtext = np.bincount(dom[known], weights=text[known], minlength=nd)
        daudio = np.bincount(dom[known], weights=audio[known], minlength=nd)
        dtotal = int(dex.sum())
        dsince = _shares(_pad(st.domain_examples_since_update, nd, np.int64))
        drecent = _shares(_pad(st.domain_examples_window, nd, np.int64))
        domains = {
            _name(self.domains, d): {
                "examples": int(dex[d]), "text_tokens": int(dtext[d]), "audio_tokens": int(daudio[d]),
                "target": float(dtarget[d]), "realized": float(dex[d] / dtotal) if dtotal else 0.0,
                **({"realized_since_update": float(dsince[d]), "realized_recent": float(drecent[d])} if train else {}),
                # Seconds of audio served (codec frames / frame rate), when the index knows its frame rate.
                **({"audio_seconds": float(st.domain_audio_seconds[d])} if d < len(st.domain_audio_seconds) else {}),
            }
            for d in range(nd)
        }
        out = {
            "examples": total, "padding_tokens": int(st.padding_tokens),
            "dropped": int(st.dropped), "truncated": int(st.truncated),
            "tasks": tasks, "domains": domains,
        }
        if train:
            out.update(since_update_step=int(st.since_update_step), window_start_step=int(st.window_start_step),
                       examples_since_update=int(sum(st.task_examples_since_update)),
                       examples_recent=int(sum(st.task_examples_window)))
        return out

    def examples(self, examples: Sequence["pb.EvalExample"]) -> List[Dict[str, Any]]:
        """``packing="examples"`` items: uuid, task, prompt/answer token arrays, reference answer."""
        out = []
        for ex in examples:
            if len(ex.prompt_tokens) % 4 or len(ex.answer_tokens) % 4:
                raise _bad(f"example {ex.uuid}: token bytes not a multiple of 4")
            prompt = np.frombuffer(ex.prompt_tokens, dtype=_I4).astype(self._ids_dtype)
            answer = np.frombuffer(ex.answer_tokens, dtype=_I4).astype(self._ids_dtype)
            out.append({
                "uuid": ex.uuid, "task": _name(self.task_paths, ex.task), "task_index": ex.task,
                "prompt_tokens": self._tensor(prompt), "answer_tokens": self._tensor(answer),
                "answer_text": ex.answer_text, "answer_audio_ids": list(ex.answer_audio_ids),
            })
        return out

"""``FlanStreamDataset``: a (torch) iterable over server-built training / evaluation batches."""
from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc

from ._proto.flanstream.v1 import data_service_pb2 as pb
from ._reports import ReportBook
from ._stream import Connection, Interrupted, RetryPolicy, probe_total_steps
from .client import TLS, Client
from .distributed import Collectives, broadcast_object, check_loader_batching, check_worker, dist_initialized, \
    resolve_rank_world
from .errors import FlanStreamError, from_rpc_error
from .info import CorpusInfo
from .mixture_merge import resolve_update_weights, weights_before
from .losses import check_losses, reduce_losses
from .spec import OUTPUTS, AudioArg, HeldoutArg, MixtureArg, build_spec, build_update, check_positive_int, \
    normalize_targets, policy_lag, update_to_dict
from .wire import DROPPED_AT_OPEN, BatchDecoder, summarize_end

try:
    import torch
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None  # type: ignore[assignment]
    _Base = object  # type: ignore[assignment,misc]

__all__ = ["FlanStreamDataset", "STATE_VERSION"]

STATE_VERSION = 1
Batch = Dict[str, Any]
_log = logging.getLogger("flanstream")


class FlanStreamDataset(_Base):  # type: ignore[misc,valid-type]
    """Batches streamed by a flanstream server (docs/service.md).

    A ``torch.utils.data.IterableDataset`` when torch is installed (a plain iterable otherwise);
    use it directly or as ``DataLoader(ds, batch_size=None)`` (``num_workers=0``: batches are
    already built by the server and prefetched on a background thread). Every yielded item is a
    dict: ``input_ids``, ``labels``, ``position_ids`` ([B, L]; int64 tensors, or int32 arrays
    with ``output="numpy"``), ``segment_ids`` ([B, L] int32), ``cu_seqlens`` ([S+1] int32),
    ``max_seqlen``, ``segments``, ``step``, ``resume_token``, ``stats`` (and ``examples`` for
    ``packing="examples"``). See :mod:`flanstream.wire` for the exact layout.

    Args:
        target_or_targets: ``"host:port"`` or a list of replicas (failover order; rank ``r``
            starts at replica ``r % n``).
        split: ``"train"``, ``"heldout"``, ``"dev"`` or ``"test"``.
        batch_size, seq_len: rows per batch and tokens per row (for this rank).
        packing: ``"none"``, ``"packed"``, ``"multiturn"``, or ``"examples"`` (evaluation only).
        mixture: a named mixture, or ``{"weights": {selector: w}, ...}`` (selectors: task paths, or
            ``ug:generation``, ``unseen:false``, ``dataset:NN_Name``, ``source:youtube``),
            ``"within": "proportional" | "uniform" | "temperature", "temperature": T, "cap": N}``;
            ``None`` = natural sizes.
        heldout: a named held-out set, or ``{"tasks": [selectors], "unseen_flag": bool,
            "exclude_shared_audio": bool, "scope": "all" | "test"}``; ``None`` = server default.
        seed: stream seed.
        rank, world_size: default to ``torch.distributed``'s when initialized, else to the
            ``RANK``/``WORLD_SIZE`` environment variables torchrun sets (so a dataset built before
            ``init_process_group`` still reads its own share), else 0 and 1.
        max_batches: stop each iteration after this many batches (``None`` = until the stream
            ends; training streams never end by themselves).
        output: ``"torch"`` or ``"numpy"``; ``None`` = torch when installed.
        token: bearer token. ``targets``: more replicas to fail over between.
        audio: ``{"codebooks": k, "layout": "flat" | "delay"}``: serve the first k codebooks
            (0 = all) in that layout; ``None`` = flat over all codebooks. Lengths, packing and
            stats follow the layout; a resume checks the token was made with the same choice.
        shuffle: train record order within a task: ``"global"`` (a permutation of the whole
            task) or ``"blocks"`` (blocks of consecutive records permuted and drawn
            ``shuffle_window`` blocks at a time: far fewer index pages read per batch);
            ``None`` = the server's ``stream.shuffle`` / ``stream.shuffle_window``. A resume
            checks the token was made with the same order. Train only (``ValueError`` otherwise).
        filter: only records this expression over their metadata keeps are served, e.g.
            ``'ug == "generation" and audio_seconds <= 30'`` (fields ``domain task dataset ug
            unseen source split text_tokens audio_tokens audio_seconds clips``; ``== != < <= > >=
            in and or not ( )``; strings in double quotes); any split; held-out exclusions still
            apply. ``None`` = all. A bad filter, or one keeping nothing, is ``INVALID_ARGUMENT``
            naming it (``Client.corpus_info(filter=...)`` counts what it keeps per task first). The
            resume token carries it; resuming with another filter is ``FAILED_PRECONDITION``.
        prefetch: batches buffered ahead of the training loop.
        window, overlong, max_turns: packing window (examples), ``"drop"``/``"truncate"`` for
            over-long examples, most turns per multiturn segment (``None`` = server default).
        tls: ``False``, ``True`` or a root-certificate path. ``retry``: reconnection policy
            (:class:`~flanstream.RetryPolicy`); the first failure of an outage logs one warning
            on the ``flanstream`` logger naming the target and what is retried.
        collective_timeout: seconds ``report_losses`` and ``update_mixture`` (collectives under
            ``torch.distributed``) wait for every rank to make the same call before raising
            ``RuntimeError`` naming the call, instead of blocking until the process group's own
            timeout when one rank skips it.
        pin_memory: with ``output="torch"``, put the batch tensors in pinned (page-locked) memory
            on the prefetch thread when CUDA is available, for ``.to("cuda", non_blocking=True)``;
            a no-op without CUDA.

    Iterating continues from the last batch handed out (so consecutive ``for`` loops walk one
    stream); after a finite stream completed, a new iteration starts it again. Starting a new
    iteration takes the stream over: the previous iterator raises ``RuntimeError`` when next asked
    for a batch (``close()`` ends it quietly). Raises :class:`~flanstream.errors.FlanStreamError` for
    server errors (e.g. ``INVALID_ARGUMENT`` for a bad spec), ``ValueError`` for bad arguments.
    """

    def __init__(
        self, target_or_targets: Union[str, Sequence[str], None] = None, split: str = "train",
        batch_size: int = 8, seq_len: int = 4096, packing: str = "packed", mixture: MixtureArg = None,
        heldout: HeldoutArg = None, seed: int = 0, rank: Optional[int] = None, world_size: Optional[int] = None,
        max_batches: Optional[int] = None, output: Optional[str] = None, token: Optional[str] = None,
        targets: Optional[Sequence[str]] = None, prefetch: int = 4, window: Optional[int] = None,
        overlong: Optional[str] = None, max_turns: Optional[int] = None, *, audio: AudioArg = None,
        shuffle: Optional[str] = None, shuffle_window: Optional[int] = None, filter: Optional[str] = None,
        tls: TLS = False,
        retry: Optional[RetryPolicy] = None, timeout: float = 30.0,
        channel_options: Optional[Sequence[Tuple[str, Any]]] = None, pin_memory: bool = False,
        collective_timeout: float = 300.0,
    ) -> None:
        super().__init__()
        self.targets: List[str] = normalize_targets(target_or_targets, targets)
        if output is None:
            output = "torch" if torch is not None else "numpy"
        if output not in OUTPUTS:
            raise ValueError(f"output must be 'torch' or 'numpy', got {output!r}")
        if output == "torch" and torch is None:
            raise ValueError("output='torch' needs PyTorch, which is not installed; use output='numpy'")
        self.output = output
        if not isinstance(pin_memory, bool):
            raise ValueError(f"pin_memory must be a bool, got {pin_memory!r}")
        self.pin_memory = pin_memory
        self.prefetch = check_positive_int("prefetch", prefetch, 1 << 16)
        self.rank, self.world_size = resolve_rank_world(rank, world_size)
        self.max_batches = check_positive_int("max_batches", max_batches, 2**64 - 1, optional=True)
        self._spec = build_spec(
            split=split, batch_size=batch_size, seq_len=seq_len, packing=packing, mixture=mixture,
            heldout=heldout, seed=seed, rank=self.rank, world_size=self.world_size, max_batches=max_batches,
            window=window, overlong=overlong, max_turns=max_turns, audio=audio,
            shuffle=shuffle, shuffle_window=shuffle_window, filter=filter,
        )
        if isinstance(collective_timeout, bool) or not isinstance(collective_timeout, (int, float)) \
                or not 0 < collective_timeout < float("inf"):
            raise ValueError(f"collective_timeout must be a positive number of seconds, got {collective_timeout!r}")
        tag_spec = copy.deepcopy(self._spec)
        tag_spec.rank = 0
        self._collectives = Collectives(Collectives.tag_of(tag_spec.SerializeToString(deterministic=True)),
                                        float(collective_timeout))
        self.retry = retry if retry is not None else RetryPolicy()
        self._client_args: Dict[str, Any] = dict(token=token, tls=tls, timeout=timeout, options=channel_options)
        self._clients = [Client(t, **self._client_args) for t in self.targets]
        self._target_index = self.rank % len(self.targets)
        self._lock = threading.RLock()
        self._conn: Optional[Connection] = None
        self._iter_id = 0  # bumped by every new iteration and by close(): older generators stop
        self._newest_iter = 0  # the id of the newest iteration (not bumped by close())
        self._info: Optional[CorpusInfo] = None
        self._decoder: Optional[BatchDecoder] = None
        self._last_token: Optional[bytes] = None
        self._last_step: Optional[int] = None
        self._pending: List[Dict[str, Any]] = []
        self._last_stats: Optional[Mapping[str, Any]] = None  # the last handed-out batch's (lazy) stats
        self._restored = False  # continued from a checkpoint's token: earlier updates are only in the token
        self._reports = ReportBook(policy_lag(self._spec))
        self._total_steps: Optional[int] = None  # evaluation streams: global steps of a whole pass
        self._task_index: Optional[Dict[str, int]] = None  # task path → index, for report_losses
        self._finished = False
        #: After a finite stream ended: the server's final per-task counts (see ``summarize_end``).
        self.summary: Optional[Dict[str, Any]] = None
        #: Evaluation streams, from the first batch on (before any is scored): the set's items that
        #: fit no row of ``seq_len`` even truncated and are never served — ``dropped`` by task
        #: path, ``total_dropped``, ``fit_seq_len`` (the smallest ``seq_len`` fitting them whole).
        self.dropped_at_open: Optional[Dict[str, Any]] = None
        self._warned_dropped = False  # the incomplete-evaluation warning is logged once

    # -- info ---------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        """The replica currently used."""
        return self.targets[self._target_index]

    @property
    def spec(self) -> "pb.StreamSpec":
        """A copy of the stream spec sent on a fresh start."""
        return copy.deepcopy(self._spec)

    split = property(lambda self: self._spec.split, doc="``train``, ``heldout``, ``dev`` or ``test``.")
    packing = property(lambda self: self._spec.packing, doc="``none``, ``packed``, ``multiturn`` or ``examples``.")
    batch_size = property(lambda self: self._spec.batch_size, doc="Rows per batch (this rank).")
    seq_len = property(lambda self: self._spec.seq_len, doc="Tokens per row.")

    @property
    def last_step(self) -> Optional[int]:
        """Global step of the last batch handed out (``None`` before the first)."""
        return self._last_step

    @property
    def corpus_info(self) -> CorpusInfo:
        """The server's :class:`~flanstream.info.CorpusInfo` (fetched once, with failover)."""
        if self._info is None:
            failures = 0
            while True:
                try:
                    self._info = self._clients[self._target_index].corpus_info()
                    break
                except FlanStreamError as e:
                    failures = self._backoff(failures, e, "GetCorpusInfo")
        return self._info

    def _backoff(self, failures: int, error: BaseException, what: str) -> int:
        """Raise ``error`` unless it is retryable and attempts remain; else rotate and sleep.
        The first failure of an outage logs one warning: reconnecting takes up to the policy's
        total backoff (14–28 s by default) and would otherwise look like a hang."""
        failures += 1
        if not self.retry.retryable(error) and not isinstance(error, Interrupted):
            raise from_rpc_error(error, self.target) from None
        if failures == 1 and self.retry.attempts > 0:
            detail = error.details if isinstance(error, (FlanStreamError, Interrupted)) else str(error)
            _log.warning("flanstream: %s on %s failed (%s); retrying up to %d times with backoff %.3g–%.3g s "
                         "over %s (retry=RetryPolicy(...) sets this)", what, self.target, detail,
                         self.retry.attempts, self.retry.initial_backoff, self.retry.max_backoff, self.targets)
        if failures > self.retry.attempts:
            last = error.details if isinstance(error, FlanStreamError) else str(error)
            raise FlanStreamError(grpc.StatusCode.UNAVAILABLE,
                                  f"gave up after {failures} attempts on {self.targets}: {last}", self.target)
        # A fresh channel dials at once on the next attempt; the failed one would first sit out
        # gRPC's own reconnect backoff, failing every call meanwhile.
        self._clients[self._target_index].close()
        self._target_index = (self._target_index + 1) % len(self.targets)
        time.sleep(self.retry.delay(failures, rotate=len(self.targets) > 1))
        return failures

    # -- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        check_worker()
        check_loader_batching()
        with self._lock:
            self._iter_id += 1
            self._newest_iter = self._iter_id
            self._drop_connection()
            if self._finished:
                self._last_token, self._last_step, self._finished = None, None, False
            self.summary = None
            return self._generate(self._iter_id)

    def _first_request(self, remaining: int) -> "pb.StreamRequest":
        last = self._last_step
        updates = [build_update(u) for u in self._pending if last is None or u["at_step"] > last]
        if self._last_token is None:
            spec = copy.deepcopy(self._spec)
            spec.max_batches = remaining
            return pb.StreamRequest(spec=spec, updates=updates)
        resume = pb.Resume(token=self._last_token, rank=self.rank, world_size=self.world_size, max_batches=remaining)
        if self._spec.HasField("heldout"):  # the server refuses a token made under another held-out set
            resume.heldout.CopyFrom(self._spec.heldout)
        # Always sent (empty = flat, all codebooks): the server refuses a token made with another layout.
        resume.audio.CopyFrom(self._spec.audio)
        # The order asked for ("" and 0 = none): the server refuses a token made with another.
        resume.shuffle, resume.shuffle_window = self._spec.shuffle, self._spec.shuffle_window
        # The filter asked for (an empty text = none), always: the server refuses a token made with another.
        resume.filter.SetInParent()
        resume.filter.text = self._spec.filter
        return pb.StreamRequest(resume=resume, updates=updates)

    def _retry_what(self) -> str:
        last = self._last_step
        return "StreamBatches " + ("(fresh start)" if last is None else f"(resuming after step {last})")

    def _connect(self, remaining: int) -> Connection:
        info = self.corpus_info
        info.choices.check(self._spec)
        if self._reports.lag is not None and not self._spec.mixture.lag_steps and info.choices.default_lag_steps:
            self._reports.lag = info.choices.default_lag_steps  # the server's default decides the replay window
        if self._decoder is None:
            self._decoder = BatchDecoder(info, self.output, pin_memory=self.pin_memory)
        with self._lock:
            self._conn = Connection(self._clients[self._target_index], self._first_request(remaining),
                                    self._decoder, self.prefetch)
            for msg in self._reports.due(self._last_step):  # before the steps they feed are planned
                self._conn.send(msg)
            return self._conn

    def _drop_connection(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _generate(self, iter_id: int) -> Iterator[Batch]:
        handed, failures, mine = 0, 0, None  # mine: the last step this iteration handed out
        try:
            while iter_id == self._iter_id:
                conn = self._conn or self._connect(self.max_batches - handed if self.max_batches else 0)
                with self._lock:
                    settle = self._reports.settle(self._last_step) if handed else None
                if settle is not None:
                    conn.send(settle)
                kind, payload = conn.get()
                if conn is not self._conn or iter_id != self._iter_id:
                    continue  # restarted meanwhile (update_mixture / load_state_dict)
                if kind == "batch":
                    if self.max_batches and handed >= self.max_batches:
                        return
                    with self._lock:
                        self._last_token, self._last_step = payload["resume_token"], payload["step"]
                        self._last_stats = payload["stats"]
                        if payload["total_steps"]:
                            self._total_steps = payload["total_steps"]
                    opened = payload.pop(DROPPED_AT_OPEN, None)
                    if opened is not None:
                        self.dropped_at_open = opened
                        self._warn_dropped_at_open(opened)
                    handed, failures, mine = handed + 1, 0, payload["step"]
                    yield payload
                elif kind == "end" and payload.reason != "shutdown":
                    self.summary = summarize_end(payload, self._decoder.task_paths if self._decoder else [])
                    self._warn_dropped(self.summary)
                    self._finished = payload.reason == "complete"
                    return
                else:  # transport error, server shutdown or stream closed without an end
                    self._drop_connection()
                    error = payload if kind == "error" else Interrupted(kind, payload)
                    failures = self._backoff(failures, error, self._retry_what())
            if self._newest_iter > iter_id:
                raise RuntimeError(
                    f"this iteration over FlanStreamDataset was ended by a newer one (after step {mine}): the "
                    "dataset streams one iteration at a time, and iter(ds) (e.g. next(iter(ds)) or a second "
                    "for-loop over the same dataset) took the stream over from there. Keep one iterator, or build "
                    "a separate FlanStreamDataset for a second stream")
        finally:
            if iter_id == self._iter_id:
                self._drop_connection()

    def _warn_dropped_at_open(self, dropped: Mapping[str, Any]) -> None:
        """Once per dataset, at the first batch: the evaluation will be incomplete, before any compute is spent."""
        if not dropped["total_dropped"] or self._warned_dropped:
            return
        self._warned_dropped = True
        tasks = sorted(dropped["dropped"].items(), key=lambda kv: (-kv[1], kv[0]))
        named = ", ".join(f"{t}: {n}" for t, n in tasks[:10])
        if len(tasks) > 10:
            named += f" and {len(tasks) - 10} more tasks"
        _log.warning("flanstream: %d items of this %s stream fit no row of seq_len %d%s and will never be served "
                     "(%s); seq_len %d fits them all; ds.dropped_at_open (and ds.summary['dropped'] at the end) has "
                     "them per task", dropped["total_dropped"], self._spec.split, self._spec.seq_len,
                     " even truncated" if self._spec.overlong == "truncate" else "", named, dropped["fit_seq_len"])

    def _warn_dropped(self, summary: Mapping[str, Any]) -> None:
        """Once per dataset: an evaluation set with items that fit no row was served incomplete."""
        if not summary.get("total_dropped") or self._warned_dropped:
            return
        self._warned_dropped = True
        worst = sorted(summary["dropped"].items(), key=lambda kv: -kv[1])[:5]
        _log.warning("flanstream: %d of %d items of this %s stream fit no row of seq_len %d and were never served "
                     "(most in %s); ds.summary['dropped'] has them per task: raise seq_len or use overlong='truncate'",
                     summary["total_dropped"], summary["total_dropped"] + summary.get("total_examples", 0),
                     self._spec.split, self._spec.seq_len, ", ".join(f"{t}: {n}" for t, n in worst))

    # -- length of evaluation streams ----------------------------------------------------------
    def __len__(self) -> int:
        """Batches a whole pass of an evaluation stream yields on this rank (every rank gets one
        batch per global step, the last ones possibly short or empty), capped by ``max_batches``.
        Counted from the stream's start, not from a restored position. The server reports it with
        every batch; before the first one, one short stream is opened to ask.

        Raises:
            TypeError: for a train stream, which never ends.
        """
        if self._spec.split == "train":
            raise TypeError("len() is defined for evaluation streams (split 'heldout', 'dev' or 'test'); "
                            "a train stream never ends")
        if self._total_steps is None:
            self._total_steps = self._probe_total_steps()
        return min(self._total_steps, self.max_batches) if self.max_batches else self._total_steps

    def __bool__(self) -> bool:  # truthiness must not call __len__ (a TypeError, or a round trip)
        return True

    def _probe_total_steps(self) -> int:
        spec = copy.deepcopy(self._spec)
        spec.max_batches = 1
        failures = 0
        while True:
            try:
                return probe_total_steps(self._clients[self._target_index], spec)
            except (grpc.RpcError, Interrupted) as e:
                failures = self._backoff(failures, e, "StreamBatches (asking an evaluation stream's length)")

    # -- live re-weighting --------------------------------------------------------------------
    def update_mixture(self, weights: Mapping[str, float], at_step: int, within: Optional[str] = None,
                       temperature: Optional[float] = None, cap: Optional[int] = None,
                       merge: Optional[bool] = None) -> None:
        """Switch to new mixture ``weights`` from global step ``at_step`` on, exactly.

        An update replaces the whole mixture. ``merge=None`` (default) refuses one that leaves out
        a selector of positive weight (a partial ``{"speech": 0.8}`` would make the stream 100 %
        speech); ``merge=True`` merges ``weights`` into the mixture in effect before ``at_step``
        (the others keep their relative weights); ``merge=False`` replaces it as given. See
        :mod:`flanstream.mixture_merge`.

        With ``torch.distributed`` initialized this is a collective: rank 0's arguments are
        broadcast so every rank applies the same update. Batches already prefetched are dropped
        and the stream restarts from the last batch handed out, carrying every pending update.

        Raises:
            ValueError: bad weights/options, ``at_step`` not after the last step handed out, or a
            partial update (see ``merge``).
        """
        self._collectives.arrive("update_mixture")
        raw = broadcast_object({"weights": dict(weights) if isinstance(weights, Mapping) else weights,
                                "at_step": at_step, "within": within, "temperature": temperature, "cap": cap,
                                "merge": merge})
        merge = raw.pop("merge")
        update = update_to_dict(**raw)
        if self._spec.split != "train":
            raise ValueError(f"mixture updates apply to split 'train' only, not {self._spec.split!r}")
        with self._lock:
            if self._last_step is not None and update["at_step"] <= self._last_step:
                raise ValueError(f"at_step ({update['at_step']}) must be after the last step handed out "
                                 f"({self._last_step})")
        if merge is not False:
            current = self._weights_before(update["at_step"])
            update["weights"] = resolve_update_weights(update["weights"], current, self.corpus_info.tasks, merge,
                                                       self.corpus_info.datasets)
        with self._lock:
            self._pending.append(update)
            self._drop_connection()

    def _weights_before(self, at_step: int) -> Optional[Dict[str, float]]:
        with self._lock:
            pending, stats, restored = list(self._pending), self._last_stats, self._restored
        return weights_before(at_step, pending, self._spec, stats, restored)

    @property
    def pending_updates(self) -> List[Dict[str, Any]]:
        """Mixture updates that have not taken effect in a handed-out batch yet."""
        last = self._last_step
        return [dict(u) for u in self._pending if last is None or u["at_step"] > last]

    # -- closed-loop reweighting --------------------------------------------------------------
    def report_losses(self, step: int, losses: Mapping[Any, Any], reduced: bool = False) -> None:
        """Report the per-task losses of global step ``step``, after training on it.

        ``losses`` is ``{task: (loss_sum, tokens)}``, tasks as indices or paths, e.g. from
        :func:`flanstream.task_losses`. With ``torch.distributed`` initialized this is a collective:
        the sums are all-reduced over the ranks, so every rank sends the same report. Report steps
        in increasing order; a step never reported is missing (no error). A mixture ``policy``
        plans step ``step + lag_steps`` only once ``step`` or a later step was reported; a loop
        that reported none of the last ``lag_steps`` steps when it asks for the next batch has
        them marked missing. Report before saving a checkpoint: ``state_dict`` keeps the reports
        the resumed stream still needs.

        ``reduced=True`` says the numbers are already summed over every rank (the caller
        all-reduced them): they are sent as given, with no collective. Every rank of a job must
        send the same report, or the ranks plan different steps and receive overlapping records;
        so with ``world_size > 1`` and no initialized process group (nothing to all-reduce with)
        ``reduced=True`` is required.

        Raises:
            ValueError: a bad entry, a step not handed out yet, a step not after the last report,
            or ``world_size > 1`` without a process group and without ``reduced=True``.
        """
        if self._spec.split != "train":
            raise ValueError(f"loss reports apply to split 'train' only, not {self._spec.split!r}")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        if not isinstance(reduced, bool):
            raise ValueError(f"reduced must be a bool, got {reduced!r}")
        if not reduced and self.world_size > 1 and not dist_initialized():
            raise ValueError(
                f"report_losses on rank {self.rank} of {self.world_size} with no torch.distributed process group: "
                "the losses cannot be all-reduced here, and ranks that report different numbers receive "
                "overlapping records. Sum them over every rank yourself and pass reduced=True, or call "
                "torch.distributed.init_process_group first")
        if self._task_index is None:
            self._task_index = {p: i for i, p in enumerate(self.corpus_info.task_paths)}
        checked = check_losses(losses, self._task_index, len(self._task_index))
        if not reduced:
            self._collectives.arrive("report_losses")
        summed = checked if reduced else reduce_losses(checked, len(self._task_index))
        with self._lock:
            msg = self._reports.add(step, [(t, v, n) for t, (v, n) in sorted(summed.items())], self._last_step)
            if self._conn is not None:
                self._conn.send(msg)

    # -- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Resume state of the last batch handed out (not of prefetched ones).

        ``resume_token`` is ``None`` before the first batch; ``spec`` then reproduces a fresh start.
        """
        with self._lock:
            return {
                "version": STATE_VERSION, "resume_token": self._last_token, "step": self._last_step,
                "pending_updates": self.pending_updates, "finished": self._finished,
                "spec": self._spec.SerializeToString(), "rank": self.rank, "world_size": self.world_size,
                **self._reports.state(self._last_step),
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (a :meth:`state_dict`) on the next iteration, possibly at a
        different rank/world size (elastic). Any running iteration restarts from it.

        With a resume token the stream's content comes from the token (this dataset's spec only
        contributes its held-out set, which the server checks); without one (saved before the
        first batch) the saved spec is adopted so the fresh start is reproduced."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            raise ValueError(f"not a FlanStreamDataset state (version {STATE_VERSION})")
        token, step = state.get("resume_token"), state.get("step")
        if token is not None and not isinstance(token, (bytes, bytearray)):
            raise ValueError("state['resume_token'] must be bytes or None")
        pending = [update_to_dict(**u) for u in state.get("pending_updates", [])]
        with self._lock:
            self._drop_connection()
            if token is None and state.get("spec"):  # fresh start: reproduce the saved spec
                spec = pb.StreamSpec.FromString(state["spec"])
                spec.rank, spec.world_size = self.rank, self.world_size
                self._spec = spec
            self._last_token = bytes(token) if token is not None else None
            self._last_step = int(step) if step is not None else None
            self._pending = pending
            self._last_stats, self._restored = None, token is not None
            self._reports = ReportBook(policy_lag(self._spec))
            self._reports.load(state)
            self._finished = bool(state.get("finished", False))
            self.summary = None

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop any running stream and close the channels."""
        with self._lock:
            self._iter_id += 1
        self._drop_connection()
        for c in self._clients:
            c.close()

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_conn", "_clients", "_decoder", "_last_stats"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock, self._conn, self._decoder, self._last_stats = threading.RLock(), None, None, None
        self._clients = [Client(t, **self._client_args) for t in self.targets]

    def __repr__(self) -> str:
        s = self._spec
        return (f"FlanStreamDataset({self.targets}, split={s.split!r}, batch_size={s.batch_size}, "
                f"seq_len={s.seq_len}, packing={s.packing!r}, rank={self.rank}/{self.world_size})")


"""Typed view of ``GetCorpusInfo``: tasks, vocabulary layout, held-out sets, mixtures."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ._proto.flanstream.v1 import data_service_pb2 as pb

__all__ = [
    "TaskInfo", "VocabLayout", "GuardRemoval", "HeldoutSetInfo", "DatasetInfo", "SpecChoices", "FilterCounts", "CorpusInfo",
]


@dataclass(frozen=True)
class TaskInfo:
    """One task (``domain/major/minor``) of the corpus."""

    index: int                 #: task id used in batches (segment ``task_index``)
    path: str                  #: selector path ``domain/major/minor``
    domain: str
    major: str
    minor: str
    ug: str                    #: ``"understanding"`` or ``"generation"``
    train_records: int
    dev_records: int
    test_records: int
    text_tokens: int
    audio_tokens: int
    unseen: bool               #: some record of the task says ``unseen: true``
    sources: Tuple[str, ...] = ()          #: ``source`` values every train record lists (``source:<value>`` takes the task)
    partial_sources: Tuple[str, ...] = ()  #: ``source`` values only some train records list

    @property
    def records(self) -> Dict[str, int]:
        """Records per split: ``{"train": …, "dev": …, "test": …}``."""
        return {"train": self.train_records, "dev": self.dev_records, "test": self.test_records}

    @property
    def total_records(self) -> int:
        return self.train_records + self.dev_records + self.test_records


@dataclass(frozen=True)
class VocabLayout:
    """Model vocabulary: text tokens, special ids and the audio-codec token range."""

    tokenizer: str
    tokenizer_fingerprint: str
    text_vocab_size: int
    pad_id: int
    soa_id: int
    eoa_id: int
    im_start_id: int
    im_end_id: int
    eos_id: int
    audio_offset: int          #: audio token = audio_offset + q * codebook_size + code
    codebooks: int
    codebook_size: int
    total_size: int
    audio_pad_id: int = 0      #: fills the holes of the delay layout (audio_offset + codebooks * codebook_size)
    frame_rate: float = 0.0    #: codec frames per second; 0 = unknown
    codec: str = ""            #: codec name; "" = unknown


@dataclass(frozen=True)
class GuardRemoval:
    """Train records one guard removes because they collide with one held-out task."""

    guard: str                 #: ``"dataset"``, ``"audio"`` or ``"text"`` (the first guard that applies)
    heldout: str               #: held-out task path; ``"dataset NN_Name"`` for the dataset guard
    removed: int
    examples: Tuple[Tuple[str, str], ...]  #: a few ``(train uuid, held-out uuid)`` pairs


@dataclass(frozen=True)
class DatasetInfo:
    """A source dataset (``NN_Dataset`` folder) and its records per task and split."""

    name: str
    tasks: Dict[str, Dict[str, int]]  #: task path → ``{"train": …, "dev": …, "test": …}``


@dataclass(frozen=True)
class HeldoutSetInfo:
    """A named held-out set and the task paths it resolves to.

    ``available`` is False when the set names tasks the served index lacks (a corpus of one
    domain); ``missing`` lists them, and a stream naming the set fails with FAILED_PRECONDITION.
    """

    name: str
    fingerprint: str
    selectors: Tuple[str, ...]
    unseen_flag: bool
    exclude_shared_audio: bool
    tasks: Tuple[str, ...]
    available: bool = True
    missing: Tuple[str, ...] = ()
    datasets: Tuple[str, ...] = ()       #: held-out source datasets
    exclude_overlapping_text: int = 0    #: N of the text guard (0 = off)
    #: what each guard removes (only from ``corpus_info(contamination=True)``)
    contamination: Tuple[GuardRemoval, ...] = ()


@dataclass(frozen=True)
class SpecChoices:
    """What the server accepts in a stream spec's enumerated fields, read from its own tables.

    The client's argument checks know the values this client version can handle; this says what
    the server it talks to offers, and :meth:`check` refuses a spec using anything else before
    the stream opens. Empty (a server that publishes nothing) checks nothing.
    """

    splits: Tuple[str, ...] = ()
    packings: Tuple[str, ...] = ()
    eval_only_packings: Tuple[str, ...] = ()   #: packings a train stream refuses
    policies: Tuple[str, ...] = ()
    within: Tuple[str, ...] = ()
    audio_layouts: Tuple[str, ...] = ()
    shuffles: Tuple[str, ...] = ()
    overlong: Tuple[str, ...] = ()
    heldout_scopes: Tuple[str, ...] = ()
    default_lag_steps: int = 0                 #: a policy's ``lag_steps`` when the spec leaves it 0

    def check(self, spec: "pb.StreamSpec") -> None:
        """Raise ``ValueError`` naming the field when ``spec`` uses a value this server does not offer."""
        fields = (
            ("split", spec.split, self.splits),
            ("packing", spec.packing, self.packings),
            ("mixture['policy']", spec.mixture.policy, self.policies),
            ("mixture['within']", spec.mixture.within, self.within),
            ("audio['layout']", spec.audio.layout, self.audio_layouts),
            ("shuffle", spec.shuffle, self.shuffles),
            ("overlong", spec.overlong, self.overlong),
            ("heldout['scope']", spec.heldout.scope, self.heldout_scopes),
        )
        for name, value, offered in fields:
            if value and offered and value not in offered:
                raise ValueError(f"{name}={value!r} is not offered by this server; it offers: {', '.join(offered)}")
        if spec.split in ("", "train") and spec.packing in self.eval_only_packings:
            raise ValueError(f"packing={spec.packing!r} serves evaluation splits only on this server "
                             f"(heldout, dev, test); train packings: "
                             f"{', '.join(p for p in self.packings if p not in self.eval_only_packings)}")

    @classmethod
    def from_proto(cls, msg: "pb.SpecChoices") -> "SpecChoices":
        return cls(
            splits=tuple(msg.splits), packings=tuple(msg.packings), eval_only_packings=tuple(msg.eval_only_packings),
            policies=tuple(msg.policies), within=tuple(msg.within), audio_layouts=tuple(msg.audio_layouts),
            shuffles=tuple(msg.shuffles), overlong=tuple(msg.overlong), heldout_scopes=tuple(msg.heldout_scopes),
            default_lag_steps=msg.default_lag_steps,
        )


@dataclass(frozen=True)
class FilterCounts:
    """What a stream filter keeps (``Client.corpus_info(filter=...)``): the index's records per task
    and split, before any held-out set removes some."""

    filter: str                              #: the server's canonical text of the filter
    tasks: Dict[str, Dict[str, int]]         #: task path → ``{"train": n, "dev": n, "test": n}`` kept
    records: Dict[str, int]                  #: kept records per split, over all tasks

    @classmethod
    def from_proto(cls, msg: "pb.FilterCounts") -> "FilterCounts":
        return cls(
            filter=msg.filter,
            tasks={t.path: {"train": t.train_records, "dev": t.dev_records, "test": t.test_records} for t in msg.tasks},
            records={"train": msg.train_records, "dev": msg.dev_records, "test": msg.test_records},
        )


@dataclass(frozen=True)
class CorpusInfo:
    """Everything ``GetCorpusInfo`` reports about the served index."""

    index_fingerprint: str
    records: int
    tasks: Tuple[TaskInfo, ...]
    vocab: VocabLayout
    heldout_sets: Tuple[HeldoutSetInfo, ...]
    default_heldout: str
    mixtures: Tuple[str, ...]                #: names usable as ``mixture="<name>"``
    domains: Tuple[str, ...]                 #: domain index → name
    quarantined: int
    #: named mixtures the index cannot serve → their selectors that match no task
    unavailable_mixtures: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    #: source datasets, usable in ``heldout={"datasets": [...]}``
    datasets: Tuple[DatasetInfo, ...] = ()
    #: what the server accepts in a spec's enumerated fields
    choices: SpecChoices = field(default_factory=SpecChoices)
    #: what the filter asked with ``corpus_info(filter=...)`` keeps (``None`` without one)
    filter: Optional[FilterCounts] = None
    _by_path: Dict[str, TaskInfo] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_path.update({t.path: t for t in self.tasks})

    @property
    def task_paths(self) -> List[str]:
        """Task index → path (``""`` for an index no task uses)."""
        size = max((t.index for t in self.tasks), default=-1) + 1
        paths = [""] * size
        for t in self.tasks:
            paths[t.index] = t.path
        return paths

    def task(self, path: str) -> TaskInfo:
        """The task with selector path ``path`` (``KeyError`` if there is none)."""
        return self._by_path[path]

    def heldout_set(self, name: str) -> HeldoutSetInfo:
        """The named held-out set ``name`` (``KeyError`` if there is none)."""
        for h in self.heldout_sets:
            if h.name == name:
                return h
        raise KeyError(name)

    def select(self, selector: str) -> List[TaskInfo]:
        """Tasks matched by a selector (a prefix of ``domain/major/minor`` at ``/`` boundaries)."""
        return [t for t in self.tasks if t.path == selector or t.path.startswith(selector + "/")]

    @classmethod
    def from_proto(cls, msg: "pb.CorpusInfo") -> "CorpusInfo":
        v = msg.vocab
        vocab = VocabLayout(
            tokenizer=v.tokenizer, tokenizer_fingerprint=v.tokenizer_fingerprint,
            text_vocab_size=v.text_vocab_size, pad_id=v.pad_id, soa_id=v.soa_id, eoa_id=v.eoa_id,
            im_start_id=v.im_start_id, im_end_id=v.im_end_id, eos_id=v.eos_id,
            audio_offset=v.audio_offset, codebooks=v.codebooks, codebook_size=v.codebook_size,
            total_size=v.total_size, audio_pad_id=v.audio_pad_id, frame_rate=v.frame_rate, codec=v.codec,
        )
        tasks = tuple(
            TaskInfo(
                index=t.index, path=t.path, domain=t.domain, major=t.major, minor=t.minor, ug=t.ug,
                train_records=t.train_records, dev_records=t.dev_records, test_records=t.test_records,
                text_tokens=t.text_tokens, audio_tokens=t.audio_tokens, unseen=t.unseen,
                sources=tuple(t.sources), partial_sources=tuple(t.partial_sources),
            )
            for t in msg.tasks
        )
        heldout = tuple(
            HeldoutSetInfo(
                name=h.name, fingerprint=h.fingerprint, selectors=tuple(h.selectors),
                unseen_flag=h.unseen_flag, exclude_shared_audio=h.exclude_shared_audio,
                tasks=tuple(h.tasks), available=h.available, missing=tuple(h.missing),
                datasets=tuple(h.datasets), exclude_overlapping_text=h.exclude_overlapping_text,
                contamination=tuple(
                    GuardRemoval(
                        guard=g.guard, heldout=g.heldout, removed=g.removed,
                        examples=tuple((e.train, e.heldout) for e in g.examples),
                    )
                    for g in h.contamination
                ),
            )
            for h in msg.heldout_sets
        )
        return cls(
            index_fingerprint=msg.index_fingerprint, records=msg.records, tasks=tasks, vocab=vocab,
            heldout_sets=heldout, default_heldout=msg.default_heldout, mixtures=tuple(msg.mixtures),
            domains=tuple(msg.domains), quarantined=msg.quarantined,
            unavailable_mixtures={m.name: tuple(m.missing) for m in msg.unavailable_mixtures},
            datasets=tuple(
                DatasetInfo(
                    name=d.name,
                    tasks={
                        t.task: {"train": t.train_records, "dev": t.dev_records, "test": t.test_records}
                        for t in d.tasks
                    },
                )
                for d in msg.datasets
            ),
            choices=SpecChoices.from_proto(msg.choices),
            filter=FilterCounts.from_proto(msg.filter) if msg.HasField("filter") else None,
        )


def empty_corpus_info(domains: Optional[List[str]] = None) -> CorpusInfo:
    """A placeholder with no tasks (used when decoding batches without a server)."""
    return CorpusInfo.from_proto(pb.CorpusInfo(domains=domains or []))

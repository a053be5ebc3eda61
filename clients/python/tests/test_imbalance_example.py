"""The imbalance example (examples/imbalance.py) end to end against the real server, under PyTorch.

Every figure it prints or returns is checked against a count made here from the corpus files
themselves (the JSONL records, the .scp maps and the codec-token .npy files), never from the
server's task table or the batch metadata the example read: the task, understanding/generation
kind, domain and audio length of every served uuid, the held-out set's records, the natural
mixture's shares, and what a clip-length filter keeps (its dry run and its stream).
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest

from conftest import CLIENT_ROOT, SAMPLE_AUDIO_ROOT

CLIP = re.compile(r"<\|SOA\|>(.*?)<\|EOA\|>")
STEPS = 400  # 8 × 2048 packed rows a step: over 10,000 examples per run on the sample corpus
SHORT = 2.0  # the filter keeps examples with at most this many seconds of audio (most of the sample's)


@dataclass(frozen=True)
class Record:
    task: str
    ug: str
    domain: str
    splits: Tuple[str, ...]
    unseen: bool
    seconds: float


def _one(v: object) -> str:
    return str(v[0]) if isinstance(v, list) else str(v)


def _read_corpus(corpus: Path) -> Dict[str, Record]:
    """uuid → what the corpus files say about the record, audio length included."""
    codec = json.loads((corpus / "audio_tokens" / "codec.json").read_text())
    rate = float(codec["frame_rate"])
    scp: Dict[str, Dict[str, str]] = {}
    for f in (corpus / "scp_files").glob("*/*.scp"):
        for line in f.read_text().splitlines():
            if line.strip():
                clip, path = line.split(maxsplit=1)
                scp.setdefault(f.parent.name, {})[clip] = path.strip()

    def frames(domain: str, clip: str) -> int:
        path = scp[domain][clip]
        path = path[len(SAMPLE_AUDIO_ROOT) + 1:] if path.startswith(SAMPLE_AUDIO_ROOT + "/") else path
        path = path[len("audio_files/"):] if path.startswith("audio_files/") else path
        return int(np.load(corpus / "audio_tokens" / Path(path).with_suffix(".npy"), mmap_mode="r").shape[-1])

    out: Dict[str, Record] = {}
    shards = sorted(f for f in (corpus / "metadata").rglob("*") if f.name.endswith((".jsonl", ".jsonl.gz")))
    for f in shards:
        raw = f.read_bytes()
        for line in (gzip.decompress(raw) if f.name.endswith(".gz") else raw).decode("utf-8").splitlines():
            r = json.loads(line)
            tt, domain = r["task_type"], r["domain"]
            clips = CLIP.findall(r["input"]) + CLIP.findall(r["output"])
            total = 0
            for clip in clips:
                n = frames(domain, clip)
                if r.get("audio_start") is not None or r.get("audio_end") is not None:  # the record's window
                    lo = math.floor(float(r.get("audio_start") or 0) * rate + 1e-6)
                    hi = min(n, math.ceil(float(r["audio_end"]) * rate - 1e-6)) if r.get("audio_end") is not None else n
                    n = hi - lo
                total += n
            splits = tuple(r["split"]) if isinstance(r["split"], list) else (r["split"],)
            out[r["uuid"]] = Record(task=f"{domain}/{_one(tt['major'])}/{_one(tt['minor'])}", ug=_one(tt["U/G"]),
                                    domain=domain, splits=splits, unseen=bool(tt.get("unseen", False)),
                                    seconds=total / rate)
    return out


def _load_example():
    spec = importlib.util.spec_from_file_location("imbalance", CLIENT_ROOT / "examples" / "imbalance.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(index_dir: Path) -> Dict[str, Record]:
    return _read_corpus(index_dir.parent / "corpus")


def test_imbalance_example_figures_match_an_independent_count(server, corpus, tmp_path, capsys) -> None:
    example = _load_example()
    out_json = tmp_path / "figures.json"
    result = example.main(["--target", server.target, "--steps", str(STEPS), "--json", str(out_json),
                           "--filter", f"audio_seconds <= {SHORT:g}"])
    printed = capsys.readouterr().out
    assert json.loads(out_json.read_text()) == json.loads(json.dumps(result))

    heldout_tasks = {r.task for r in corpus.values() if r.unseen}       # the default set: unseen-flag
    assert result["heldout"] == "unseen-flag" and heldout_tasks

    # The corpus profile: trainable tasks and their train records per axis value.
    trainable = [r for r in corpus.values() if "train" in r.splits and r.task not in heldout_tasks]
    for axis in ("ug", "domain"):
        expected: Dict[str, Dict[str, int]] = {}
        for value in {getattr(r, axis) for r in trainable}:
            of_value = [r for r in trainable if getattr(r, axis) == value]
            expected[value] = {"tasks": len({r.task for r in of_value}), "records": len(of_value)}
        assert result["profile"][axis] == expected, axis

    for name, run in result["runs"].items():
        served = [corpus[u] for u in run["uuids"]]                    # KeyError: a uuid the corpus lacks
        assert len(served) == run["examples"] >= 10_000, name
        assert not [r.task for r in served if r.task in heldout_tasks], f"{name}: held-out records served"
        assert all("train" in r.splits for r in served), name
        assert run["tasks"] == dict(Counter(r.task for r in served)), name
        for axis in ("ug", "domain"):
            counts = Counter(getattr(r, axis) for r in served)
            for value, cell in run["axes"][axis].items():
                assert cell["examples"] == counts[value], (name, axis, value)
                assert math.isclose(cell["realized"], counts[value] / len(served), rel_tol=1e-12), (name, axis, value)
        buckets: Dict[str, Counter] = {}
        for r in served:
            buckets.setdefault(r.ug, Counter())[example.bucket_of(r.seconds)] += 1
        assert run["seconds"] == {k: dict(v) for k, v in buckets.items()}, name
        seconds = Counter()
        for r in served:
            seconds[r.domain] += r.seconds
        for domain, s in seconds.items():
            assert math.isclose(run["audio_seconds"][domain], s, rel_tol=1e-9), (name, domain)
            assert math.isclose(run["server_audio_seconds"][domain], s, rel_tol=1e-9), (name, domain)
        assert f"run {name}: {len(served)} examples; largest |realized - target| along ug: " in printed

    # The natural mixture's target along ug is the trainable records' share; the weighted one is
    # 50/50, and the stream realizes it within 0.2 percentage points.
    natural, weighted = result["runs"]["natural"], result["runs"]["weighted"]
    share = Counter(r.ug for r in trainable)
    for value in ("understanding", "generation"):
        assert math.isclose(natural["axes"]["ug"][value]["target"], share[value] / len(trainable), rel_tol=1e-9)
        assert math.isclose(weighted["axes"]["ug"][value]["target"], 0.5, rel_tol=1e-9)
        ug = Counter(corpus[u].ug for u in weighted["uuids"])
        assert abs(ug[value] / len(weighted["uuids"]) - 0.5) <= 0.002, (value, ug)
    # Within each half, proportional to the trainable records of its tasks.
    records = Counter(r.task for r in trainable)
    kind = {r.task: r.ug for r in trainable}
    for task, target in weighted["task_targets"].items():
        of_kind = sum(n for t, n in records.items() if kind[t] == kind[task])
        assert math.isclose(target, 0.5 * records[task] / of_kind, rel_tol=1e-9), task
    for task, n in weighted["tasks"].items():
        assert f"  {n:6d}  {kind[task][:1].upper()}  {task}\n" in printed, task

    # The filter's dry run counts what it keeps per task and split, before any held-out set.
    short = {u: r for u, r in corpus.items() if r.seconds <= SHORT}
    assert 0 < len(short) < len(corpus)
    kept: Dict[str, Dict[str, int]] = {}
    for r in short.values():
        for split in r.splits:
            kept.setdefault(r.task, {"train": 0, "dev": 0, "test": 0})[split] += 1
    dry = result["filter"]
    assert {t: c for t, c in dry["tasks"].items() if any(c.values())} == kept
    for axis in ("ug", "domain"):
        for value, cell in dry["axes"][axis].items():
            of_value = [r for r in trainable if getattr(r, axis) == value]
            assert cell == {"kept": sum(1 for r in of_value if r.seconds <= SHORT), "of": len(of_value)}, (axis, value)
    assert f"filter 'audio_seconds <= {SHORT:g}' keeps (dry run, train records of those tasks):" in printed
    # The filtered run serves only short examples, still 50/50 along ug, each half split over its
    # tasks in proportion to the records the filter keeps.
    filtered = result["runs"]["filtered"]
    assert set(filtered["seconds"]["generation"]) <= {"<=1s", "<=2s"}
    assert all(corpus[u].seconds <= SHORT for u in filtered["uuids"])
    kept_train = Counter(r.task for r in trainable if r.seconds <= SHORT)
    for task, target in filtered["task_targets"].items():
        of_kind = sum(n for t, n in kept_train.items() if kind[t] == kind[task])
        assert math.isclose(target, 0.5 * kept_train[task] / of_kind, rel_tol=1e-9), task
    ug = Counter(corpus[u].ug for u in filtered["uuids"])
    assert abs(ug["generation"] / len(filtered["uuids"]) - 0.5) <= 0.005, ug

    # The held-out evaluation serves every record of the held-out tasks once, whatever its split.
    held = Counter(r.task for r in corpus.values() if r.task in heldout_tasks)
    assert result["evaluation"]["tasks"] == dict(held)
    assert result["evaluation"]["axes"]["ug"] == {
        v: sum(n for t, n in held.items() if corpus_kind(corpus, t) == v) for v in ("generation", "understanding")}
    assert f"held-out evaluation (unseen-flag): {sum(held.values())} examples in {len(held)} tasks;" in printed


def corpus_kind(corpus: Dict[str, Record], task: str) -> str:
    return next(r.ug for r in corpus.values() if r.task == task)

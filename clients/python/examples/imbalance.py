"""Audio-FLAN's imbalance, measured through a live flanstream server: what the corpus holds along
each axis (understanding vs generation, domain), what a mixture asks for along it, what the stream
serves, and how long the audio of the served examples is. Nothing is trained.

Two runs of the same stream spec are compared: the natural mixture (every train task in proportion
to its records) and one weighted along the ``ug`` axis (``ug:understanding`` and ``ug:generation``
at 0.5 each by default; ``within`` spreads each half over its tasks). For each run the script
counts the examples of every batch's segments itself and prints, per axis value, the target share
(from the server's stats) beside the realized share, the per-task counts, and the audio seconds per
example in length buckets. Then it streams the held-out (unseen) evaluation split once and prints
what it covers along the same axes. ``--filter EXPR`` (a stream filter, e.g.
``'audio_seconds <= 2'``) first asks the server what the filter keeps per axis (a dry run), then
adds a third run: the weighted mixture over only the records the filter keeps.

    npm start                                                         # the sample corpus on :50051
    python3 clients/python/examples/imbalance.py --target localhost:50051 --steps 400
    python3 clients/python/examples/imbalance.py --filter 'audio_seconds <= 2'    # and short clips only
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from flanstream import Client, CorpusInfo, FlanStreamDataset  # noqa: E402

__all__ = ["AXES", "SECONDS_BUCKETS", "axis_values", "bucket_of", "profile", "filter_profile", "measure", "evaluate",
           "main"]

AXES = ("ug", "domain")
#: upper bounds (seconds, inclusive) of the audio-length buckets; the last bucket is open
SECONDS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0)


def axis_values(info: CorpusInfo) -> Dict[str, Dict[str, str]]:
    """Task path → its value on each axis: ``{"ug": {path: "generation"}, "domain": {...}}``."""
    return {"ug": {t.path: t.ug for t in info.tasks}, "domain": {t.path: t.domain for t in info.tasks}}


def bucket_of(seconds: float) -> str:
    """The label of the audio-length bucket ``seconds`` falls in (``"<=2s"``, …, ``">30s"``)."""
    for bound in SECONDS_BUCKETS:
        if seconds <= bound:
            return f"<={bound:g}s"
    return f">{SECONDS_BUCKETS[-1]:g}s"


def bucket_labels() -> List[str]:
    return [f"<={b:g}s" for b in SECONDS_BUCKETS] + [f">{SECONDS_BUCKETS[-1]:g}s"]


def profile(info: CorpusInfo, heldout: str) -> Dict[str, Dict[str, Dict[str, int]]]:
    """The corpus along each axis, over the tasks a train stream can draw under the held-out set
    ``heldout``: ``{axis: {value: {"tasks": n, "records": train records}}}``."""
    excluded = set(info.heldout_set(heldout).tasks)
    out: Dict[str, Dict[str, Dict[str, int]]] = {axis: {} for axis in AXES}
    for axis, of in axis_values(info).items():
        for t in info.tasks:
            if t.path in excluded or t.train_records == 0:
                continue
            cell = out[axis].setdefault(of[t.path], {"tasks": 0, "records": 0})
            cell["tasks"] += 1
            cell["records"] += t.train_records
    return out


def filter_profile(target: str, filter: str, heldout: str) -> Dict[str, Any]:
    """What ``filter`` keeps, asked of the server before any stream opens (a dry run): ``tasks``
    (path → kept records per split, the whole index) and ``axes`` (axis → value → ``kept`` and
    ``of`` train records, over the tasks a train stream can draw under ``heldout``)."""
    info = Client(target).corpus_info(filter=filter)
    assert info.filter is not None
    excluded = set(info.heldout_set(heldout).tasks)
    of = axis_values(info)
    axes: Dict[str, Dict[str, Dict[str, int]]] = {axis: {} for axis in AXES}
    for t in info.tasks:
        if t.path in excluded or t.train_records == 0:
            continue
        kept = info.filter.tasks.get(t.path, {}).get("train", 0)
        for axis in AXES:
            cell = axes[axis].setdefault(of[axis][t.path], {"kept": 0, "of": 0})
            cell["kept"] += kept
            cell["of"] += t.train_records
    return {"filter": info.filter.filter, "tasks": info.filter.tasks, "axes": axes}


def _shares(counts: Dict[str, float]) -> Dict[str, float]:
    total = sum(counts.values())
    return {k: v / total if total else 0.0 for k, v in counts.items()}


def measure(target: str, mixture: Optional[Dict[str, Any]], steps: int, batch_size: int = 8, seq_len: int = 2048,
            seed: int = 0, filter: Optional[str] = None) -> Dict[str, Any]:
    """Streams ``steps`` train batches (packing ``packed``: one example per segment) and counts
    what they hold. Returns ``examples``, ``uuids`` (served, in order), ``tasks`` (path →
    examples), ``axes`` (axis → value → ``examples``, ``realized``, ``target``), ``seconds``
    (axis ``ug`` value → bucket → examples), ``audio_seconds`` (domain → seconds counted here) and
    ``server_audio_seconds`` (domain → seconds by the server's own stats)."""
    extra: Dict[str, Any] = {"filter": filter} if filter else {}
    ds = FlanStreamDataset(target, split="train", batch_size=batch_size, seq_len=seq_len, packing="packed",
                           mixture=mixture, seed=seed, max_batches=steps, output="torch", **extra)
    info = ds.corpus_info
    of = axis_values(info)
    per_frame = info.vocab.codebooks  # the default audio layout: every codebook, flat
    rate = info.vocab.frame_rate
    tasks: Counter = Counter()
    uuids: List[str] = []
    seconds: Dict[str, Counter] = {}
    audio_seconds: Counter = Counter()
    stats: Dict[str, Any] = {}
    for batch in ds:
        ids = batch["input_ids"].numpy()
        for seg in batch["segments"]:
            tasks[seg["task"]] += 1
            uuids.extend(seg["uuids"])
            r, o, n = seg["row"], seg["offset"], seg["length"]
            # Audio token counts include each clip's <|SOA|>/<|EOA|>: what remains is frames × codebooks.
            clips = int((ids[r, o:o + n] == info.vocab.soa_id).sum())
            secs = (seg["audio_tokens"] - 2 * clips) / per_frame / rate if rate else 0.0
            seconds.setdefault(of["ug"][seg["task"]], Counter())[bucket_of(secs)] += 1
            audio_seconds[seg["domain"]] += secs
        stats = batch["stats"]
    ds.close()
    axes: Dict[str, Dict[str, Dict[str, float]]] = {}
    for axis in AXES:
        served: Counter = Counter()
        wanted: Counter = Counter()
        for path, n in tasks.items():
            served[of[axis][path]] += n
        for path, s in stats.get("tasks", {}).items():
            wanted[of[axis][path]] += s["target"]
        realized = _shares(dict(served))
        axes[axis] = {v: {"examples": served[v], "realized": realized.get(v, 0.0), "target": wanted[v]}
                      for v in sorted(set(served) | set(wanted))}
    return {
        "examples": sum(tasks.values()), "uuids": uuids, "tasks": dict(tasks), "axes": axes,
        "seconds": {k: dict(v) for k, v in seconds.items()}, "audio_seconds": dict(audio_seconds),
        "server_audio_seconds": {d: s.get("audio_seconds", 0.0) for d, s in stats.get("domains", {}).items()
                                 if s.get("examples")},
        "task_targets": {p: s["target"] for p, s in stats.get("tasks", {}).items()},
    }


def evaluate(target: str, heldout: Optional[str] = None, batch_size: int = 8, seq_len: int = 2048) -> Dict[str, Any]:
    """Streams the finite held-out evaluation split once. Returns ``tasks`` (path → examples
    served) and ``axes`` (axis → value → examples): which kinds of task the unseen evaluation
    measures."""
    ds = FlanStreamDataset(target, split="heldout", heldout=heldout, batch_size=batch_size, seq_len=seq_len,
                           packing="packed", output="torch")
    of = axis_values(ds.corpus_info)
    tasks: Counter = Counter()
    for batch in ds:
        for seg in batch["segments"]:
            tasks[seg["task"]] += 1
    ds.close()
    axes: Dict[str, Dict[str, int]] = {axis: {v: 0 for v in set(of[axis].values())} for axis in AXES}
    for axis in AXES:
        for path, n in tasks.items():
            axes[axis][of[axis][path]] += n
    return {"tasks": dict(tasks), "axes": axes}


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


def _print_report(info: CorpusInfo, heldout: str, runs: Dict[str, Dict[str, Any]], ev: Dict[str, Any],
                  kept: Optional[Dict[str, Any]]) -> None:
    prof = profile(info, heldout)
    print(f"corpus: {info.records} records in {len(info.tasks)} tasks; a train stream draws the tasks "
          f"outside the held-out set {heldout!r}")
    print(f"{'axis':8} {'value':14} {'tasks':>6} {'train records':>14} {'share':>8}")
    for axis in AXES:
        total = sum(c["records"] for c in prof[axis].values())
        for value, c in sorted(prof[axis].items()):
            print(f"{axis:8} {value:14} {c['tasks']:6d} {c['records']:14d} {_pct(c['records'] / total)}")
    print()
    if kept is not None:
        print(f"filter {kept['filter']!r} keeps (dry run, train records of those tasks):")
        for axis in AXES:
            print(f"  {axis:8} " + ", ".join(f"{v} {c['kept']} of {c['of']}" for v, c in sorted(kept["axes"][axis].items())))
        print()
    names = list(runs)
    print(f"{'axis':8} {'value':14} " + " ".join(f"{n + ' target':>22} {'realized':>9}" for n in names))
    for axis in AXES:
        values = sorted({v for r in runs.values() for v in r["axes"][axis]})
        for value in values:
            cells = []
            for name in names:
                cell = runs[name]["axes"][axis].get(value, {"target": 0.0, "realized": 0.0})
                cells.append(f"{_pct(cell['target']):>22} {_pct(cell['realized']):>9}")
            print(f"{axis:8} {value:14} " + " ".join(cells))
    for name in names:
        ug = runs[name]["axes"]["ug"]
        worst = max(abs(c["realized"] - c["target"]) for c in ug.values())
        print(f"run {name}: {runs[name]['examples']} examples; largest |realized - target| along ug: "
              f"{100 * worst:.3f} pp")
    print()
    for name in names:
        print(f"audio seconds per example, run {name} (examples per bucket)")
        print(f"{'ug':14} " + " ".join(f"{b:>7}" for b in bucket_labels()))
        for value, buckets in sorted(runs[name]["seconds"].items()):
            print(f"{value:14} " + " ".join(f"{buckets.get(b, 0):7d}" for b in bucket_labels()))
    print()
    last = "weighted"
    ug_of = axis_values(info)["ug"]
    print(f"examples per task, run {last}")
    for path, n in sorted(runs[last]["tasks"].items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:6d}  {ug_of[path][:1].upper()}  {path}")
    print()
    print(f"held-out evaluation ({heldout}): {sum(ev['tasks'].values())} examples in {len(ev['tasks'])} tasks; "
          + "; ".join(f"{axis} " + ", ".join(f"{v} {n}" for v, n in sorted(ev["axes"][axis].items())) for axis in AXES))


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="localhost:50051")
    p.add_argument("--steps", type=int, default=400, help="batches per run (8 × 2048 packed: ~29 examples each)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--weights", default='{"ug:understanding": 0.5, "ug:generation": 0.5}',
                   help="the weighted run's mixture weights (JSON: selector → weight)")
    p.add_argument("--within", default="proportional", choices=["proportional", "uniform", "temperature"])
    p.add_argument("--filter", default=None, help="a third run: the weighted mixture under this stream filter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write every figure to this file")
    a = p.parse_args(argv)
    info = Client(a.target).corpus_info()
    weighted = {"weights": json.loads(a.weights), "within": a.within}
    runs = {
        "natural": measure(a.target, None, a.steps, a.batch_size, a.seq_len, a.seed),
        "weighted": measure(a.target, weighted, a.steps, a.batch_size, a.seq_len, a.seed),
    }
    kept = filter_profile(a.target, a.filter, info.default_heldout) if a.filter else None
    if a.filter:
        runs["filtered"] = measure(a.target, weighted, a.steps, a.batch_size, a.seq_len, a.seed, filter=a.filter)
    ev = evaluate(a.target, None, a.batch_size, a.seq_len)
    _print_report(info, info.default_heldout, runs, ev, kept)
    out = {"heldout": info.default_heldout, "profile": profile(info, info.default_heldout), "runs": runs,
           "evaluation": ev, "filter": kept}
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, sort_keys=True, allow_nan=False)
    return out


if __name__ == "__main__":
    main()

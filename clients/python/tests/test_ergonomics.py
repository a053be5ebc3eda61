"""Trainer ergonomics against a real server: no silent misuse (DataLoader workers, torchrun order,
partial mixture updates, silent retries) and the numbers researchers read (per-task drops,
pinned memory, evaluation merged across reader processes)."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
import torch

from flanstream import FlanStreamDataset, FlanStreamError, RetryPolicy, evaluate, evaluate_part, merge_evaluations
from flanstream.distributed import resolve_rank_world
from live_streams import MIX, make, take

CLIENT_ROOT = Path(__file__).resolve().parents[1]


def uuids(batch: Dict[str, Any]) -> List[str]:
    return [u for s in batch["segments"] for u in s["uuids"]]


# -- 1. DataLoader worker processes ------------------------------------------------------------

@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_worker_processes_are_refused(server, context: str) -> None:
    ds = make(server.target, output="numpy")
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1, multiprocessing_context=context)
    with pytest.raises(RuntimeError, match=r"num_workers=1.*state_dict\(\)"):
        next(iter(loader))
    # Nothing was handed out: the training process's dataset is untouched and still works.
    assert ds.state_dict()["step"] is None
    assert [b["step"] for b in take(ds, 2)] == [0, 1]
    assert ds.state_dict()["step"] == 1


@pytest.mark.parametrize("batch_size", [1, 4])
def test_dataloader_that_batches_stream_batches_is_refused(server, batch_size: int) -> None:
    ds = make(server.target)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size)
    with pytest.raises(ValueError, match=r"batch_size=None"):
        next(iter(loader))
    assert ds.state_dict()["step"] is None
    # The right form still works on the same dataset, whole batches as the server built them.
    first = next(iter(torch.utils.data.DataLoader(ds, batch_size=None)))
    assert first["step"] == 0 and first["input_ids"].dim() == 2


# -- 2. torchrun order -------------------------------------------------------------------------

TORCHRUN_WORKER = r"""
import json, sys
import torch.distributed as dist
from flanstream import FlanStreamDataset
ds = FlanStreamDataset(sys.argv[1], batch_size=2, seq_len=512, seed=3, output="numpy")  # before init_process_group
dist.init_process_group("gloo")                                   # env:// from torchrun's variables
out = [[u for s in b["segments"] for u in s["uuids"]] for b in (lambda it: [next(it) for _ in range(3)])(iter(ds))]
gathered = [None, None]
dist.all_gather_object(gathered, out)
print(json.dumps({"rank": ds.rank, "world": ds.world_size, "spec_rank": ds.spec.rank, "mine": out, "all": gathered}))
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dataset_built_before_init_process_group_uses_torchrun_env(server) -> None:
    """Two real processes with the variables torchrun sets; each builds its dataset before
    ``init_process_group`` and must still read its own rank's share (disjoint, as with explicit ranks)."""
    port = str(_free_port())
    procs = []
    for r in (0, 1):
        env = {"PYTHONPATH": str(CLIENT_ROOT), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
               "RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        procs.append(subprocess.Popen([sys.executable, "-c", TORCHRUN_WORKER, server.target], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert [(o["rank"], o["world"], o["spec_rank"]) for o in outs] == [(0, 2, 0), (1, 2, 1)]
    r0, r1 = outs[0]["mine"], outs[1]["mine"]
    assert not {u for b in r0 for u in b} & {u for b in r1 for u in b}
    for r, mine in enumerate((r0, r1)):  # exactly the explicit rank's stream
        ref = make(server.target, batch_size=2, seq_len=512, seed=3, mixture=None, rank=r, world_size=2, output="numpy")
        assert [uuids(b) for b in take(ref, 3)] == mine


def test_torchrun_env_rules(monkeypatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_rank_world(None, None) == (3, 4)
    assert resolve_rank_world(0, 2) == (0, 2)                      # explicit arguments win
    assert FlanStreamDataset("127.0.0.1:9").spec.rank == 3
    monkeypatch.setenv("RANK", "three")
    with pytest.raises(ValueError, match="RANK='three'"):
        resolve_rank_world(None, None)
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ValueError, match="WORLD_SIZE is missing"):
        resolve_rank_world(None, None)
    monkeypatch.delenv("RANK")
    assert resolve_rank_world(None, None) == (0, 1)


# -- 3. partial mixture updates ----------------------------------------------------------------

def _targets(batch: Dict[str, Any]) -> Dict[str, float]:
    return {d: v["target"] for d, v in batch["stats"]["domains"].items() if d in MIX["weights"]}


def test_partial_update_is_refused_listing_what_it_would_zero(server) -> None:
    ds = make(server.target)
    take(ds, 2)
    with pytest.raises(ValueError, match=r"weight 0 to 'audio', 'music'.*merge=True"):
        ds.update_mixture({"speech": 0.8}, at_step=5)
    assert ds.pending_updates == []
    # before the first batch the spec's weights are the reference
    fresh = make(server.target)
    with pytest.raises(ValueError, match=r"'audio', 'music'"):
        fresh.update_mixture({"speech": 0.8}, at_step=5)
    # a natural mixture after one batch: the batch's per-task targets are the reference
    natural = make(server.target, mixture=None)
    take(natural, 1)
    with pytest.raises(ValueError, match=r"weight 0 to 'audio' "):
        natural.update_mixture({"speech": 1.0, "music": 1.0}, at_step=3)
    natural.update_mixture({"speech": 1.0, "music": 1.0, "audio": 0.0}, at_step=3)  # explicit 0 is fine


def test_partial_update_merge_and_replace(server) -> None:
    merged = make(server.target)
    take(merged, 2)
    merged.update_mixture({"speech": 0.8}, at_step=4, merge=True)
    assert merged.pending_updates[0]["weights"] == {"speech": 0.8, "music": 0.25, "audio": 0.25}
    got = take(merged, 4)
    assert [b["step"] for b in got] == [2, 3, 4, 5]
    assert _targets(got[2]) == pytest.approx({"speech": 0.8 / 1.3, "music": 0.25 / 1.3, "audio": 0.25 / 1.3})
    assert _targets(got[1]) == pytest.approx(MIX["weights"])
    # merging into a merged update that is still pending
    merged.update_mixture({"music": 0.5}, at_step=8, merge=True)
    merged.update_mixture({"audio": 0.0}, at_step=9, merge=True)
    assert merged.pending_updates[-1]["weights"] == {"speech": 0.8, "music": 0.5, "audio": 0.0}
    replaced = make(server.target)
    take(replaced, 2)
    replaced.update_mixture({"speech": 0.8}, at_step=4, merge=False)
    assert _targets(take(replaced, 3)[2]) == pytest.approx({"speech": 1.0, "music": 0.0, "audio": 0.0})


def test_merge_refuses_an_update_naming_part_of_a_selector(server) -> None:
    ds = make(server.target)
    take(ds, 1)
    sub = next(t for t in ds.corpus_info.tasks if t.domain == "speech")
    with pytest.raises(ValueError, match="cannot merge"):
        ds.update_mixture({f"speech/{sub.major}": 1.0}, at_step=3, merge=True)


def test_axis_selectors_pass_through_specs_updates_and_checkpoints(server) -> None:
    ug = {"ug:generation": 0.3, "ug:understanding": 0.7}
    ds = make(server.target, mixture={"weights": ug})
    paths_of = {u: {t.path for t in ds.corpus_info.tasks if t.ug == u} for u in ("generation", "understanding")}

    def share(batch: Dict[str, Any], u: str) -> float:
        return sum(v["target"] for p, v in batch["stats"]["tasks"].items() if p in paths_of[u])

    first = take(ds, 2)
    assert share(first[1], "generation") == pytest.approx(0.3)
    # an update along the axis names every task: not a partial update, nothing to merge
    ds.update_mixture({"ug:generation": 0.6, "ug:understanding": 0.4}, at_step=4)
    with pytest.raises(ValueError, match=r"weight 0 to 'ug:understanding'"):
        ds.update_mixture({"ug:generation": 1.0}, at_step=5)
    it = iter(ds)
    got = [next(it) for _ in range(4)]
    assert share(got[1], "generation") == pytest.approx(0.3)
    assert share(got[2], "generation") == pytest.approx(0.6)
    # the resume token carries the axis weights: a restored dataset continues exactly
    state = ds.state_dict()
    again = make(server.target, mixture={"weights": ug})
    again.load_state_dict(state)
    nxt = next(it)
    restored = next(iter(again))
    assert restored["step"] == nxt["step"]
    assert np.array_equal(np.asarray(restored["input_ids"]), np.asarray(nxt["input_ids"]))
    assert share(restored, "generation") == pytest.approx(0.6)


# -- 5. stats, pinned memory, evaluation parts -------------------------------------------------

@pytest.mark.parametrize("overlong", ["drop", "truncate"])
def test_per_task_dropped_and_truncated(server, overlong: str) -> None:
    st = take(make(server.target, seq_len=512, batch_size=8, overlong=overlong, mixture=None), 6)[-1]["stats"]
    for key in ("dropped", "truncated"):  # under "truncate", items too long even truncated are still dropped
        assert sum(t[key] for t in st["tasks"].values()) == st[key], key
    assert st["dropped"] > 0
    assert (st["truncated"] > 0) == (overlong == "truncate")
    assert any(t["dropped"] > 0 for t in st["tasks"].values())


def test_evaluation_items_that_fit_no_row_are_counted_and_warned(server, caplog: pytest.LogCaptureFixture) -> None:
    ds = make(server.target, split="heldout", heldout="unseen-flag", packing="none", seq_len=1024, batch_size=16,
              mixture=None)
    at_first_score: List[Any] = []

    def score(seg: Dict[str, Any]) -> float:
        if not at_first_score:  # said when the stream opened: before the first item is scored
            assert isinstance(seg["batch"]["input_ids"], torch.Tensor)
            assert not any(k.startswith("_") for k in seg["batch"])  # the batch itself is as documented
            at_first_score.append(([r.getMessage() for r in caplog.records if "fit no row" in r.getMessage()],
                                   ds.dropped_at_open))
        return 1.0

    with caplog.at_level(logging.WARNING, logger="flanstream"):
        result = evaluate(ds, score)
        list(ds)  # a second pass: the warning is not repeated
    warned, opened = at_first_score[0]
    assert opened is not None and opened["total_dropped"] == sum(opened["dropped"].values()) > 0
    assert opened["fit_seq_len"] > 1024
    assert len(warned) == 1, warned
    assert f"{opened['total_dropped']} items of this heldout stream fit no row of seq_len 1024" in warned[0]
    assert f"seq_len {opened['fit_seq_len']} fits them all" in warned[0]
    assert all(f"{t}: {n}" in warned[0] for t, n in opened["dropped"].items()), warned[0]
    summary, total = ds.summary, result["__total__"]
    # The same figures at open, at the end and in evaluate()'s result.
    assert summary["dropped"] == opened["dropped"] and summary["total_dropped"] == opened["total_dropped"]
    assert total["dropped"] == summary["total_dropped"] and total["complete"] == 1.0
    assert total["count"] + total["dropped"] == total["expected"] == summary["total_examples"]
    assert {t: int(r["dropped"]) for t, r in result.items() if "dropped" in r and t != "__total__"} == summary["dropped"]
    assert len([r for r in caplog.records if "fit no row" in r.getMessage()]) == 1


def test_evaluation_that_fits_whole_says_nothing(server, caplog: pytest.LogCaptureFixture) -> None:
    probe = make(server.target, split="heldout", heldout="unseen-flag", packing="none", seq_len=1024, batch_size=16,
                 mixture=None, output="numpy", max_batches=1)
    list(probe)
    fit = probe.dropped_at_open["fit_seq_len"]
    caplog.clear()
    ds = make(server.target, split="heldout", heldout="unseen-flag", packing="none", seq_len=fit, batch_size=16,
              mixture=None, output="numpy")
    with caplog.at_level(logging.WARNING, logger="flanstream"):
        result = evaluate(ds, lambda seg: 1.0)
    assert ds.dropped_at_open == {"dropped": {}, "total_dropped": 0, "fit_seq_len": 0}
    assert result["__total__"]["dropped"] == 0 and result["__total__"]["count"] == result["__total__"]["expected"]
    assert not [r for r in caplog.records if "fit no row" in r.getMessage()]


def test_pin_memory(server) -> None:
    b = take(make(server.target, pin_memory=True), 1)[0]
    # Pinned exactly when CUDA can use it; without CUDA the flag is a documented no-op.
    assert all(b[k].is_pinned() == torch.cuda.is_available() for k in ("input_ids", "labels", "position_ids"))
    assert b["input_ids"].dtype == torch.int64
    with pytest.raises(ValueError, match="pin_memory"):
        make(server.target, pin_memory="yes")


def test_evaluation_parts_of_separate_readers_merge(server) -> None:
    kw = dict(split="heldout", packing="examples", mixture=None, batch_size=16, output="numpy")

    def score(ex: Dict[str, Any]) -> Dict[str, float]:
        return {"prompt_len": float(len(ex["prompt_tokens"])), "answer_len": float(len(ex["answer_tokens"]))}

    # two readers without a process group: each saves its part as JSON, a third merges them
    parts = [json.loads(json.dumps(evaluate_part(make(server.target, rank=r, world_size=2, **kw), score)))
             for r in (0, 1)]
    merged = merge_evaluations(parts)
    whole = evaluate(make(server.target, **kw), score)
    assert merged["__total__"]["complete"] == 1.0
    assert merged.keys() == whole.keys()
    for task in whole:
        assert merged[task] == pytest.approx(whole[task]), task
    # one reader's part alone is incomplete, and parts of different sets are refused
    assert merge_evaluations(parts[:1])["__total__"]["complete"] == 0.0
    with pytest.raises(ValueError, match="different evaluation sets"):
        merge_evaluations([parts[0], dict(parts[1], expected=parts[1]["expected"] + 1)])


# -- 6. connection failures are not silent -----------------------------------------------------

def test_unreachable_server_warns_once_naming_the_target(caplog) -> None:
    port = _free_port()  # nothing listens there
    ds = FlanStreamDataset(f"127.0.0.1:{port}", retry=RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.02))
    with caplog.at_level(logging.WARNING, logger="flanstream"), pytest.raises(FlanStreamError, match="gave up after 4"):
        take(ds, 1)
    warnings = [r for r in caplog.records if r.name == "flanstream"]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert f"127.0.0.1:{port}" in msg and "GetCorpusInfo" in msg and "retrying up to 3 times" in msg


def test_lost_stream_warns_once_naming_what_it_resumes(server, start_server, caplog) -> None:
    a = start_server()
    ds = make([a.target, server.target], prefetch=2)
    it = iter(ds)
    got = [next(it) for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="flanstream"):
        a.kill()
        while ds.target != server.target or len(got) < 8:
            got.append(next(it))
            assert len(got) < 200
    assert [b["step"] for b in got] == list(range(len(got)))
    warnings = [r.getMessage() for r in caplog.records if r.name == "flanstream"]
    assert len(warnings) == 1, warnings
    assert a.target in warnings[0] and "StreamBatches (resuming after step" in warnings[0]


# -- 7. a second iterator does not end the first silently ------------------------------------------

def test_a_second_iterator_makes_the_first_raise(server) -> None:
    ds = make(server.target)
    steps = []
    with pytest.raises(RuntimeError, match=r"ended by a newer one \(after step 2\).*separate FlanStreamDataset"):
        for batch in ds:  # a training loop that peeks with next(iter(ds)) inside
            steps.append(batch["step"])
            if batch["step"] == 2:
                assert next(iter(ds))["step"] == 3  # the new iterator continues the one stream
    assert steps == [0, 1, 2]
    # close() ends an iterator quietly: it was asked for.
    it = iter(ds)
    next(it)
    ds.close()
    assert list(it) == []


# -- 4. realized shares since the last update and over the recent window -----------------------

def _domain_counts(batches: List[Dict[str, Any]], domain_of: Dict[str, str]) -> Dict[str, int]:
    """Examples per domain in these batches (world size 1: each batch is its whole global step)."""
    out = {"speech": 0, "music": 0, "audio": 0}
    for b in batches:
        for s in b["segments"]:
            for t in s["turn_tasks"]:
                out[domain_of[t]] += 1
    return out


def test_realized_shares_since_update_and_recent_window(start_server) -> None:
    srv = start_server("--set", "stream.share_window_steps=10")
    new = {"speech": 0.8, "music": 0.1, "audio": 0.1}
    ds = make(srv.target, packing="none", batch_size=8, output="numpy")
    ds.update_mixture(new, at_step=20)
    got = take(ds, 60)
    domain_of = {t.path: t.domain for t in ds.corpus_info.tasks}
    for b in got:
        s, st = b["step"], b["stats"]
        since = 20 if s >= 20 else 0
        start = max(0, (s // 10 - 1) * 10)
        assert (st["since_update_step"], st["window_start_step"]) == (since, start), s
        want_since, want_recent = _domain_counts(got[since:s + 1], domain_of), _domain_counts(got[start:s + 1], domain_of)
        assert st["examples_since_update"] == sum(want_since.values()) and st["examples_recent"] == sum(want_recent.values())
        for d in want_since:
            assert st["domains"][d]["realized_since_update"] == pytest.approx(want_since[d] / sum(want_since.values()))
            assert st["domains"][d]["realized_recent"] == pytest.approx(want_recent[d] / sum(want_recent.values()))
        assert sum(t["realized_since_update"] for t in st["tasks"].values()) == pytest.approx(1.0)
    # The update shows at its step: since step 20 the shares follow the new target, while the
    # shares counted from step 0 still mix in the old one.
    last = got[-1]["stats"]["domains"]["speech"]
    assert last["target"] == pytest.approx(0.8)
    assert abs(last["realized_since_update"] - 0.8) < 0.03 < abs(last["realized"] - 0.8)
    # A resumed stream continues the figures exactly (the baselines ride in the resume token).
    resumed = make(srv.target, packing="none", batch_size=8, output="numpy")
    resumed.load_state_dict(_state_at(srv.target, new, 33))
    for a, b in zip(got[34:50], take(resumed, 16)):
        assert a["step"] == b["step"] and dict(a["stats"]) == dict(b["stats"])


def _state_at(target: str, new: Dict[str, float], step: int) -> Dict[str, Any]:
    ds = make(target, packing="none", batch_size=8, output="numpy")
    ds.update_mixture(new, at_step=20)
    take(ds, step + 1)
    return ds.state_dict()


def test_task_epochs_in_stats(server) -> None:
    """packing="none" serves every draw (no packing window): a task's epoch is its draws (served
    plus dropped) divided by its train records."""
    ds = make(server.target, packing="none", batch_size=8, seq_len=4096, mixture={"weights": {"music": 1.0}},
              output="numpy")
    st = take(ds, 30)[-1]["stats"]
    info = ds.corpus_info
    music = {p: t for p, t in st["tasks"].items() if p.startswith("music/")}
    assert music and any(t["epoch"] >= 1 for t in music.values())
    for p, t in music.items():
        assert t["epoch"] == (t["examples"] + t["dropped"]) // info.task(p).train_records, p


def test_len_of_evaluation_streams(server) -> None:
    kw = dict(split="heldout", mixture=None, batch_size=8, seq_len=2048, output="numpy")
    ds = make(server.target, **kw)
    n = len(ds)                                   # asked before the first batch
    assert n > 1 and n == sum(1 for _ in ds) == len(ds)
    parts = [make(server.target, rank=r, world_size=2, **kw) for r in (0, 1)]
    lens = [len(p) for p in parts]
    assert lens[0] == lens[1] < n                 # every rank: one batch per global step (maybe empty)
    assert [sum(1 for _ in p) for p in parts] == lens
    assert len(make(server.target, max_batches=2, **kw)) == 2
    train = make(server.target)
    with pytest.raises(TypeError, match="never ends"):
        len(train)
    assert train  # truthiness does not ask for a length

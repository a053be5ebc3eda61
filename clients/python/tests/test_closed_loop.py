"""Closed-loop reweighting from Python, against the real server: per-task losses from a token
loss, reports (all-reduced over torch.distributed ranks), exact resume, and the example."""
from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import CLIENT_ROOT
from flanstream import FlanStreamDataset, task_losses

MIX = {"weights": {"speech": 1.0, "music": 1.0, "audio": 1.0}, "policy": "excess-loss", "lag_steps": 2, "lr": 0.5,
       "reference": {"speech": 1.0, "music": 1.0, "audio": 1.0}}


def _reference(token_loss: np.ndarray, batch) -> dict:
    """Per turn, a slow walk over its answer's columns (shift: token_loss column j is label j + shift)."""
    shift = batch["labels"].shape[1] - token_loss.shape[1]
    out: dict = {}
    for seg in batch["segments"]:
        for task, (a, b) in zip(seg["turn_task_indices"], seg["loss_spans"]):
            s, n = out.get(task, (0.0, 0))
            for col in range(a, b):
                s += float(token_loss[seg["row"], col - shift])
                n += 1
            out[task] = (s, n)
    return out


def test_task_losses_credit_every_turn_to_its_own_task(server) -> None:
    ds = FlanStreamDataset(server.target, split="train", batch_size=4, seq_len=2048, packing="multiturn",
                           seed=3, output="torch", max_batches=6)
    multi = 0
    for batch in ds:
        labels = batch["labels"]
        B, L = labels.shape
        supervised = labels != -100
        # The spans are exactly the supervised positions, one per turn, inside their segment.
        covered = torch.zeros_like(supervised)
        for seg in batch["segments"]:
            assert len(seg["loss_spans"]) == len(seg["uuids"]) == len(seg["turn_task_indices"])
            for a, b in seg["loss_spans"]:
                assert seg["offset"] <= a < b <= seg["offset"] + seg["length"]
                covered[seg["row"], a:b] = True
            multi += len(set(seg["turn_task_indices"])) > 1
        assert torch.equal(covered, supervised)
        loss = torch.rand(B, L, dtype=torch.float64)
        got = task_losses(loss, batch)
        want = _reference(loss.numpy(), batch)
        assert set(got) == set(want)
        for t in want:
            assert got[t][1] == want[t][1] and got[t][0] == pytest.approx(want[t][0], rel=1e-12)
        assert sum(n for _, n in got.values()) == int(supervised.sum())
        # numpy in, and a shifted [B, L-1] loss (cross_entropy(logits[:, :-1], labels[:, 1:])).
        assert task_losses(loss.numpy(), batch) == pytest.approx(got)
        # The segments' loss_spans alone give the same (a batch dict rebuilt without turn_spans).
        assert task_losses(loss, {k: v for k, v in batch.items() if k != "turn_spans"}) == pytest.approx(got)
        shifted = torch.rand(B, L - 1, dtype=torch.float32)
        got_s, want_s = task_losses(shifted, batch), _reference(shifted.numpy(), batch)
        assert {t: n for t, (_, n) in got_s.items()} == {t: n for t, (_, n) in want_s.items()}
        for t in want_s:
            assert got_s[t][0] == pytest.approx(want_s[t][0], rel=1e-5)
    assert multi > 0, "no conversation mixed tasks; the test proves nothing about per-turn credit"
    with pytest.raises(ValueError, match=r"token_loss must be \[B, L\]"):
        task_losses(torch.zeros(3, 7), batch)


def test_reports_move_the_mixture_and_resume_replays_exactly(server) -> None:
    def dataset() -> FlanStreamDataset:
        return FlanStreamDataset(server.target, split="train", batch_size=2, seq_len=1024, packing="packed",
                                 mixture=MIX, seed=1, output="numpy")

    def loop(ds, steps, checkpoint_at=-1):
        log, saved = [], None
        music = {i for i, p in enumerate(ds.corpus_info.task_paths) if p.startswith("music/")}
        for batch in ds:
            per = task_losses(np.ones(batch["labels"].shape), batch)
            ds.report_losses(batch["step"], {t: (s * (4.0 if t in music else 1.0), n) for t, (s, n) in per.items()})
            log.append((batch["step"], batch["input_ids"].tobytes(), batch["resume_token"],
                        batch["stats"]["domains"]["music"]["target"]))
            if batch["step"] == checkpoint_at:
                saved = ds.state_dict()
            if batch["step"] + 1 >= steps:
                return log, saved
        raise AssertionError("stream ended early")

    full, saved = loop(dataset(), 16, checkpoint_at=7)
    assert full[0][3] == pytest.approx(1 / 3) and full[-1][3] > 0.6   # weight moved toward music
    assert saved is not None and sorted(saved["reports"]) == [6, 7]   # the reports the token lacks
    ds = dataset()
    ds.load_state_dict(saved)
    rest, _ = loop(ds, 16)
    assert rest == full[8:]
    # Bad reports are refused before anything is sent.
    with pytest.raises(ValueError, match="not after the last reported step"):
        ds.report_losses(3, {})
    with pytest.raises(ValueError, match="loss_sum must be a finite non-negative"):
        ds.report_losses(16, {0: (float("nan"), 3)})
    with pytest.raises(ValueError, match="unknown task"):
        ds.report_losses(16, {"no/such/task": (1.0, 3)})
    evaluation = FlanStreamDataset(server.target, split="test", batch_size=2, seq_len=1024, packing="none")
    with pytest.raises(ValueError, match="split 'train' only"):
        evaluation.report_losses(0, {})


def test_a_loop_that_never_reports_keeps_streaming(server) -> None:
    ds = FlanStreamDataset(server.target, split="train", batch_size=2, seq_len=1024, mixture=MIX, output="numpy",
                           max_batches=10)
    steps = [b["step"] for b in ds]
    assert steps == list(range(10))


WORKER = r"""
import json, sys
import numpy as np
import torch.distributed as dist
from flanstream import FlanStreamDataset, task_losses
rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{sys.argv[2]}", rank=rank, world_size=2)
ds = FlanStreamDataset(sys.argv[3], batch_size=2, seq_len=1024, mixture=json.loads(sys.argv[4]), seed=2, output="numpy")
music = {i for i, p in enumerate(ds.corpus_info.task_paths) if p.startswith("music/")}
out = []
for batch in ds:
    per = task_losses(np.ones(batch["labels"].shape), batch)
    ds.report_losses(batch["step"], {t: (s * (4.0 if t in music else 1.0), n) for t, (s, n) in per.items()})
    out.append([batch["step"], batch["input_ids"].tolist(), batch["stats"]["domains"]["music"]["target"]])
    if batch["step"] == 11:
        break
print(json.dumps(out))
dist.destroy_process_group()
"""


def test_ranks_reporting_all_reduced_losses_equal_one_rank(server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {"PYTHONPATH": str(CLIENT_ROOT), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(r), port, server.target, json.dumps(MIX)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    ranks = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        ranks.append(json.loads(out.strip().splitlines()[-1]))
    ds = FlanStreamDataset(server.target, batch_size=4, seq_len=1024, mixture=MIX, seed=2, output="numpy")
    music = {i for i, p in enumerate(ds.corpus_info.task_paths) if p.startswith("music/")}
    for batch, r0, r1 in zip(ds, *ranks):
        per = task_losses(np.ones(batch["labels"].shape), batch)
        ds.report_losses(batch["step"], {t: (s * (4.0 if t in music else 1.0), n) for t, (s, n) in per.items()})
        assert r0[0] == r1[0] == batch["step"]
        assert r0[1] + r1[1] == batch["input_ids"].tolist()
        assert r0[2] == r1[2] == batch["stats"]["domains"]["music"]["target"]
        if batch["step"] == 11:
            break
    assert ranks[0][-1][2] > 1 / 3


def test_closed_loop_example_shifts_weight_and_resumes_exactly(server) -> None:
    spec = importlib.util.spec_from_file_location("closed_loop", CLIENT_ROOT / "examples" / "closed_loop.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.run(server.target, steps=14, checkpoint_at=6, lag=2, batch_size=2, seq_len=512)
    full, resumed = out["full"], out["resumed"]
    assert [e["step"] for e in full] == list(range(14))
    assert [e["digest"] for e in resumed] == [e["digest"] for e in full[7:]]
    first, last = full[0]["target"], full[-1]["target"]
    assert last["music"] > first["music"] + 0.2
    assert last["music"] > max(last["speech"], last["audio"])


def test_reports_of_ranks_without_a_process_group_must_say_reduced(server) -> None:
    """Ranks with explicit rank/world_size and no process group cannot all-reduce: a report that
    is not marked reduced is refused before anything is sent (ranks reporting different numbers
    would plan different steps and receive the same records)."""
    ds = FlanStreamDataset(server.target, split="train", batch_size=2, seq_len=1024, packing="packed", seed=4,
                           rank=1, world_size=2, output="numpy", mixture=MIX)
    batch = next(iter(ds))
    with pytest.raises(ValueError, match=r"rank 1 of 2 with no torch.distributed process group.*reduced=True"):
        ds.report_losses(batch["step"], {0: (1.0, 3)})
    with pytest.raises(ValueError, match="reduced must be a bool"):
        ds.report_losses(batch["step"], {0: (1.0, 3)}, reduced=1)  # type: ignore[arg-type]
    ds.report_losses(batch["step"], {0: (1.0, 3)}, reduced=True)  # the caller summed over the ranks
    assert ds.state_dict()["last_reported"] == batch["step"]
    ds.close()


DISAGREEING_WORKER = r"""
import json, os, sys, time
from flanstream import FlanStreamDataset, FlanStreamError
rank, target, mix, meet = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
ds = FlanStreamDataset(target, split="train", batch_size=2, seq_len=1024, packing="packed", seed=8, rank=rank,
                       world_size=2, output="numpy", mixture=mix)
paths = ds.corpus_info.task_paths
music = next(i for i, p in enumerate(paths) if p.startswith("music/") and not ds.corpus_info.task(p).unseen)
steps = []
try:
    for batch in ds:
        steps.append(batch["step"])
        # The same numbers on both ranks up to step 2; from step 3 on each rank sends its own
        # (what a trainer that forgot the all-reduce but said reduced=True would send).
        loss = 2.0 if batch["step"] < 3 else 2.0 + rank
        if batch["step"] == 3:  # both streams open when the reports of step 3 arrive (a file barrier)
            open(os.path.join(meet, str(rank)), "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(meet, str(1 - rank))) and time.monotonic() < deadline:
                time.sleep(0.05)
        ds.report_losses(batch["step"], {music: (loss * 100, 100)}, reduced=True)
        if batch["step"] == 9:
            # A closed stream's reports are forgotten: stay open until the other rank is done
            # (refused or at its last step), so its report of step 3 meets this one's.
            open(os.path.join(meet, f"done{rank}"), "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(meet, f"done{1 - rank}")) and time.monotonic() < deadline:
                time.sleep(0.05)
            break
    print(json.dumps({"steps": steps}))
except FlanStreamError as e:
    open(os.path.join(meet, f"done{rank}"), "w").close()
    print(json.dumps({"steps": steps, "code": e.code.name, "details": e.details}))
"""


def test_ranks_whose_reports_differ_get_a_clear_error(server, tmp_path) -> None:
    """Two processes with explicit rank/world_size that say reduced=True but send different
    numbers from step 3 on: the server takes the first report of step 3 and refuses the other
    rank's with FAILED_PRECONDITION naming the step, both ranks and what differed; that rank's
    stream ends, the other goes on."""
    env = {"PYTHONPATH": str(CLIENT_ROOT), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", DISAGREEING_WORKER, str(r), server.target, json.dumps(MIX),
                               str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    refused = [r for r in results if "code" in r]
    assert len(refused) == 1, results
    ok, bad = [r for r in results if "code" not in r][0], refused[0]
    me = results.index(bad)
    assert bad["code"] == "FAILED_PRECONDITION"
    assert f"rank {me}'s loss report for step 3 differs from rank {1 - me}'s" in bad["details"], bad["details"]
    assert "loss_sum" in bad["details"] and "all-reduce" in bad["details"]
    assert bad["steps"][-1] >= 3
    assert ok["steps"] == list(range(10))

"""The runnable examples, shortened, against the real server. Their models are as small as the
examples allow: what is under test is the data path (batches, segment masks, loss reports, mixture
updates, checkpoint and resume), not training."""
from __future__ import annotations

import importlib.util
import math

from conftest import CLIENT_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, CLIENT_ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_online_reweighting_moves_the_weights_and_the_server_follows(server) -> None:
    example = _load("online_reweighting")
    trajectory = example.run(server.target, steps=24, every=8, batch_size=2, seq_len=1024, eta=2.0)
    assert sorted(trajectory) == [0, 8, 16]          # the start and the updates at steps 8 and 16
    for step, entry in trajectory.items():
        sent, served = entry["sent"], entry["served"]
        assert math.isclose(sum(sent.values()), 1.0, rel_tol=1e-9)
        assert min(sent.values()) >= 0.1 / 3 - 1e-12  # the uniform floor holds
        for d in sent:                                # the server switched at exactly that step
            assert math.isclose(served[d], sent[d], rel_tol=1e-9, abs_tol=1e-12), (step, d)
    assert trajectory[8]["sent"] != trajectory[0]["sent"] and trajectory[16]["sent"] != trajectory[8]["sent"]


def test_train_tiny_checkpoints_is_killed_and_resumes_on_the_same_batches(server, tmp_path) -> None:
    import subprocess
    import sys

    script = CLIENT_ROOT / "examples" / "train_tiny.py"
    files = ["--checkpoint", str(tmp_path / "ckpt.pt"), "--digests", str(tmp_path / "digests.jsonl")]
    short = ["--target", server.target, "--steps", "7", "--checkpoint-at", "2", "--check", "3", "--batch-size", "2",
             "--seq-len", "256", "--buckets", "64", "--dim", "8", "--heads", "1", "--layers", "1", "--log-every", "1",
             *files]
    proc = subprocess.run([sys.executable, str(script), *short], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "checkpoint at step 2" in proc.stdout and "killed the first run (SIGKILL)" in proc.stdout
    assert "resumed after step 2: " in proc.stdout and "match the killed run's (checked 3)" in proc.stdout
    # The check is real: a resumed run that saw other batches than the killed one fails.
    example = _load("train_tiny")
    args = example.parse(short)
    seen = example.read_digests(args.digests)
    assert len(seen) >= 3 and min(seen) == 3
    seen[min(seen)] = "0" * 64
    assert example.resume(args, seen) is False


def test_train_tiny_attention_stays_inside_segments() -> None:
    import torch

    mask = _load("train_tiny").segment_mask(torch.tensor([[1, 1, 2, 2, 0]]))[0]
    assert mask.tolist() == [
        [True, False, False, False, False],
        [True, True, False, False, False],     # causal within segment 1
        [False, False, True, False, False],    # segment 2 never sees segment 1
        [False, False, True, True, False],
        [False, False, False, False, True],    # padding: itself only (no empty softmax row)
    ]


def test_train_tiny_masks_and_task_losses_follow_a_real_batch(server) -> None:
    """On batches from the server: the mask lets a token see exactly the earlier tokens of its own
    segment (as the segments' metadata places them, positions restarting at 0), and the per-task
    losses the example logs account for every supervised label once."""
    import torch

    example = _load("train_tiny")
    args = example.parse(["--target", server.target, "--batch-size", "2", "--seq-len", "256", "--buckets", "64",
                          "--dim", "8", "--heads", "1"])
    ds = example.make_dataset(args)
    model = example.make_model(args)
    for batch, _ in zip(ds, range(3)):
        seg_ids, pos = batch["segment_ids"], batch["position_ids"]
        mask = example.segment_mask(seg_ids)
        for seg in batch["segments"]:
            r, o, n = seg["row"], seg["offset"], seg["length"]
            assert len(set(seg_ids[r, o:o + n].tolist())) == 1 and int(seg_ids[r, o]) != 0
            assert pos[r, o:o + n].tolist() == list(range(n))
            assert bool(mask[r, o:o + n, o:o + n].equal(torch.ones(n, n, dtype=torch.bool).tril()))
            assert int(mask[r, o:o + n].sum()) == n * (n + 1) // 2     # nothing outside the segment
        per_token = example.token_loss(model, batch)
        per_task = example.task_losses(per_token.detach(), batch)
        assert sum(int(t) for _, t in per_task.values()) == int((batch["labels"][:, 1:] >= 0).sum())
        assert math.isclose(sum(float(s) for s, _ in per_task.values()),
                            float(per_token[batch["labels"][:, 1:] >= 0].sum()), rel_tol=1e-6)
    ds.close()

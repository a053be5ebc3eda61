"""Closed-loop reweighting against a live flanstream server, on CPU: the trainer only reports its
per-task losses; a server-side policy moves the mixture, and the run replays exactly.

A tiny model trains on packed batches. After every step the per-token loss becomes per-task sums
(``flanstream.task_losses``: one scatter-add, each turn of a conversation credited to its own
task) and goes to the server (``ds.report_losses``). One domain is made artificially hard by
adding ``--offset`` nats per token to what is reported for it, so the policy visibly shifts weight
toward it. Midway the run checkpoints (model, optimizer and ``ds.state_dict()``); a second
dataset resumes from that checkpoint and must reproduce the rest of the run byte for byte.

    python3 clients/python/examples/closed_loop.py --target localhost:50051 --steps 200 --policy odm
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os
import sys
from typing import Any, Dict, List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from flanstream import FlanStreamDataset, task_losses  # noqa: E402

DOMAINS = ("speech", "music", "audio")
HASH_VOCAB = 512  # the toy model sees token ids modulo this; the real vocabulary is ~160k


class TinyLM(torch.nn.Module):
    """A bigram model (embedding → vocabulary head): trains in milliseconds per step on a CPU,
    which is all a demonstration of the data loop needs."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(HASH_VOCAB, dim)
        self.head = torch.nn.Linear(dim, HASH_VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids % HASH_VOCAB))


def mixture(policy: str, lag: int) -> Dict[str, Any]:
    m: Dict[str, Any] = {"weights": {d: 1.0 for d in DOMAINS}, "policy": policy, "lag_steps": lag, "min_weight": 0.05}
    if policy == "excess-loss":  # DoReMi-style: a reference loss per domain (here: a flat guess)
        m.update(lr=0.5, reference={d: 6.0 for d in DOMAINS}, smoothing=0.01)
    return m


def train(ds: FlanStreamDataset, model: TinyLM, opt: torch.optim.Optimizer, steps: int, hard: str, offset: float,
          checkpoint_at: int = -1) -> Tuple[List[Dict[str, Any]], Any]:
    """Trains until global step ``steps``; returns per step the batch digest and domain targets,
    and the checkpoint taken after step ``checkpoint_at`` (if reached)."""
    paths = ds.corpus_info.task_paths
    hard_tasks = {i for i, p in enumerate(paths) if p.split("/")[0] == hard}
    log: List[Dict[str, Any]] = []
    checkpoint = None
    for batch in ds:
        step = int(batch["step"])
        ids, labels = batch["input_ids"], batch["labels"]
        logits = model(ids)[:, :-1]
        target = torch.where(labels[:, 1:] >= 0, labels[:, 1:] % HASH_VOCAB, labels[:, 1:])
        # [B, L-1]: the loss of the label at (b, j + 1), as task_losses reads a shifted loss.
        token_loss = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
        loss = token_loss.sum() / (target >= 0).sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        per_task = task_losses(token_loss, batch)
        reported = {t: (s + offset * n if t in hard_tasks else s, n) for t, (s, n) in per_task.items()}
        ds.report_losses(step, reported)
        digest = hashlib.sha256(ids.numpy().tobytes() + bytes(batch["resume_token"])).hexdigest()
        log.append({"step": step, "digest": digest, "target": {d: batch["stats"]["domains"][d]["target"] for d in DOMAINS}})
        if step == checkpoint_at:  # after reporting: the checkpoint keeps the reports still due
            checkpoint = copy.deepcopy({"data": ds.state_dict(), "model": model.state_dict(), "opt": opt.state_dict()})
        if step + 1 >= steps:
            break
    return log, checkpoint


def run(target: str, steps: int, checkpoint_at: int, policy: str = "excess-loss", lag: int = 4, hard: str = "music",
        offset: float = 2.0, batch_size: int = 2, seq_len: int = 1024, seed: int = 0) -> Dict[str, Any]:
    """The full run, then the resumed second half. Returns both logs."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # bit-identical float sums run to run, so the same losses are reported

    def dataset() -> FlanStreamDataset:
        return FlanStreamDataset(target, split="train", batch_size=batch_size, seq_len=seq_len, packing="multiturn",
                                 mixture=mixture(policy, lag), seed=seed, output="torch")

    model = TinyLM()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ds = dataset()
    full, checkpoint = train(ds, model, opt, steps, hard, offset, checkpoint_at)
    ds.close()
    assert checkpoint is not None, f"the run ended before step {checkpoint_at}"
    model2 = TinyLM()
    model2.load_state_dict(checkpoint["model"])
    opt2 = torch.optim.Adam(model2.parameters(), lr=3e-3)
    opt2.load_state_dict(checkpoint["opt"])
    ds2 = dataset()
    ds2.load_state_dict(checkpoint["data"])
    resumed, _ = train(ds2, model2, opt2, steps, hard, offset)
    ds2.close()
    return {"full": full, "resumed": resumed, "hard": hard}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="localhost:50051")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--policy", default="excess-loss", choices=["odm", "excess-loss", "ado"])
    p.add_argument("--lag", type=int, default=4)
    p.add_argument("--hard", default="music", choices=DOMAINS)
    p.add_argument("--offset", type=float, default=2.0)
    a = p.parse_args()
    out = run(a.target, a.steps, a.steps // 2, a.policy, a.lag, a.hard, a.offset)
    for entry in out["full"][:: max(1, a.steps // 10)]:
        print(f"step {entry['step']:5d}  " + "  ".join(f"{d} {entry['target'][d]:.3f}" for d in DOMAINS))
    same = [e["digest"] for e in out["resumed"]] == [e["digest"] for e in out["full"][a.steps // 2 + 1:]]
    print(f"resumed from step {a.steps // 2}: {'identical' if same else 'DIFFERENT'} to the uninterrupted run")


if __name__ == "__main__":
    main()

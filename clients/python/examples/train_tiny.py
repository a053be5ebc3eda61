"""A quick start that proves itself: train a tiny model on a live flanstream server, checkpoint,
get killed, resume, and check that the resumed run sees exactly the batches the killed one saw.

    python3 clients/python/examples/train_tiny.py --target localhost:50051 --steps 20 --checkpoint-at 10

What it shows (CPU only, under a minute on two cores; the defaults keep the model small because the
attention over ``--seq-len`` positions is what costs, not the data):
- a transformer (``--layers``, ``--dim``, ``--heads``) over the corpus vocabulary, with attention masked by ``segment_ids``
  (a token attends only to earlier tokens of its own segment: packed examples never see each
  other) and positions from ``position_ids`` (restarting in every segment);
- the loss on ``labels`` (unshifted, -100 outside the answers: logits at j predict labels at j+1);
- per-task losses with ``flanstream.task_losses`` (each turn credited to its own task);
- a checkpoint holding the model, the optimizer and ``ds.state_dict()``.

The run happens twice: a child process trains to ``--checkpoint-at``, saves the checkpoint, keeps
training and records a digest of every later batch until the parent kills it (SIGKILL, as a
crashed or preempted job); then the parent resumes from the checkpoint and checks that the next
``--check`` batches are byte-identical to those the killed run had received. Exit status 1 if not.

Honest limits: the vocabulary (text + audio codes, ~170k ids) is folded into ``--buckets``
embedding rows by ``id % buckets`` so the model stays tiny; distinct tokens then share rows, and
the loss is over the folded ids. A real model uses ``corpus_info.vocab.total_size`` rows.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from flanstream import FlanStreamDataset, task_losses  # noqa: E402


class Block(torch.nn.Module):
    """Pre-norm attention + MLP; ``mask`` [B, L, L] is True where attention is allowed."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv, self.out = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D // self.heads)
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
        x = x + self.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, D))
        return x + self.mlp(self.norm2(x))


class TinyLM(torch.nn.Module):
    def __init__(self, buckets: int, max_len: int, dim: int = 32, heads: int = 2, layers: int = 1) -> None:
        super().__init__()
        self.buckets = buckets
        self.embed = torch.nn.Embedding(buckets, dim)
        self.pos = torch.nn.Embedding(max_len, dim)
        self.blocks = torch.nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, buckets)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids % self.buckets) + self.pos(position_ids)
        mask = segment_mask(segment_ids)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x))


def segment_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """[B, L, L]: causal within a segment. Padding (segment 0) attends only to itself, so no row
    of the softmax is empty (its outputs are never in the loss: labels there are -100)."""
    L = segment_ids.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=segment_ids.device).tril()
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    real = (segment_ids != 0)[:, :, None]
    eye = torch.eye(L, dtype=torch.bool, device=segment_ids.device)[None]
    return (same & real & causal[None]) | eye


def token_loss(model: TinyLM, batch: Dict[str, Any]) -> torch.Tensor:
    """[B, L-1] per-token loss: logits at j predict the label at j+1 (0 where unsupervised)."""
    logits = model(batch["input_ids"], batch["position_ids"], batch["segment_ids"])
    labels = batch["labels"][:, 1:]
    target = torch.where(labels >= 0, labels % model.buckets, labels)  # keep -100 (ignored)
    return F.cross_entropy(logits[:, :-1].reshape(-1, model.buckets), target.reshape(-1),
                           ignore_index=-100, reduction="none").view(labels.shape)


def digest(batch: Dict[str, Any]) -> str:
    h = hashlib.sha256(str(batch["step"]).encode())
    for k in ("input_ids", "labels", "position_ids", "segment_ids"):
        h.update(batch[k].numpy().tobytes())
    return h.hexdigest()


def make_dataset(args: argparse.Namespace) -> FlanStreamDataset:
    return FlanStreamDataset(args.target, split="train", batch_size=args.batch_size, seq_len=args.seq_len,
                             packing="packed", seed=args.seed,
                             mixture={"weights": {"speech": 0.5, "music": 0.25, "audio": 0.25}})


def make_model(args: argparse.Namespace) -> TinyLM:
    return TinyLM(args.buckets, args.seq_len, dim=args.dim, heads=args.heads, layers=args.layers)


def train_step(model: TinyLM, opt: torch.optim.Optimizer, batch: Dict[str, Any]) -> Dict[int, Any]:
    loss_per_token = token_loss(model, batch)
    supervised = (batch["labels"][:, 1:] >= 0).sum().clamp(min=1)
    loss = loss_per_token.sum() / supervised
    opt.zero_grad()
    loss.backward()
    opt.step()
    return task_losses(loss_per_token.detach(), batch)


def report(step: int, per_task: Dict[int, Any], names: List[str]) -> None:
    by_domain: Dict[str, List[float]] = {}
    for t, (loss_sum, tokens) in per_task.items():
        acc = by_domain.setdefault(names[t].split("/")[0], [0.0, 0.0])
        acc[0] += float(loss_sum)
        acc[1] += float(tokens)
    print(f"step {step:4d}  " + "  ".join(f"{d} {s / n:.3f}" for d, (s, n) in sorted(by_domain.items()) if n),
          flush=True)


def first_run(args: argparse.Namespace) -> None:
    """Train, checkpoint at --checkpoint-at, keep training and record digests until killed."""
    torch.manual_seed(args.seed)
    ds = make_dataset(args)
    model = make_model(args)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    names = ds.corpus_info.task_paths
    with open(args.digests, "w") as log:
        for batch in ds:
            per_task = train_step(model, opt, batch)
            step = batch["step"]
            if step % args.log_every == 0:
                report(step, per_task, names)
            if step == args.checkpoint_at:
                tmp = args.checkpoint + ".tmp"
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "data": ds.state_dict()}, tmp)
                os.replace(tmp, args.checkpoint)  # never a half-written checkpoint
                print(f"checkpoint at step {step}", flush=True)
            elif step > args.checkpoint_at:
                log.write(json.dumps({"step": step, "digest": digest(batch)}) + "\n")
                log.flush()
            if step >= args.steps:  # the parent normally kills us well before
                break


def resume(args: argparse.Namespace, seen: Dict[int, str]) -> bool:
    """Resume from the checkpoint; the next --check batches must be those the killed run saw."""
    ckpt = torch.load(args.checkpoint)
    ds = make_dataset(args)
    ds.load_state_dict(ckpt["data"])
    model = make_model(args)
    model.load_state_dict(ckpt["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    opt.load_state_dict(ckpt["opt"])
    names = ds.corpus_info.task_paths
    matched = 0
    for batch in ds:
        step = batch["step"]
        if matched == 0 and step != ckpt["data"]["step"] + 1:
            print(f"MISMATCH: the resumed stream starts at step {step}, not right after the checkpoint", flush=True)
            return False
        if step in seen and digest(batch) != seen[step]:
            print(f"MISMATCH at step {step}: the resumed stream differs from the killed run's", flush=True)
            return False
        matched += step in seen
        per_task = train_step(model, opt, batch)
        if step % args.log_every == 0:
            report(step, per_task, names)
        if step >= args.steps:
            break
    want = min(args.check, args.steps - args.checkpoint_at)
    print(f"resumed after step {ckpt['data']['step']}: {matched} batches match the killed run's "
          f"(checked {want})", flush=True)
    return matched >= want


def run(args: argparse.Namespace) -> bool:
    """The whole demonstration: child run, kill, resume, check."""
    for path in (args.checkpoint, args.digests):
        if os.path.exists(path):
            os.remove(path)
    child = subprocess.Popen([sys.executable, __file__, "--phase", "first", *sys_args(args)])
    want = min(args.check, args.steps - args.checkpoint_at)
    deadline = time.monotonic() + args.timeout
    try:
        while len(read_digests(args.digests)) < want:
            if child.poll() is not None and len(read_digests(args.digests)) < want:
                raise RuntimeError(f"the first run exited ({child.returncode}) before recording {want} batches")
            if time.monotonic() > deadline:
                raise RuntimeError("the first run is too slow")
            time.sleep(0.05)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)   # a crash: no cleanup, no goodbye to the server
        child.wait()
    print(f"killed the first run (SIGKILL) after it recorded {len(read_digests(args.digests))} batches", flush=True)
    return resume(args, read_digests(args.digests))


def read_digests(path: str) -> Dict[int, str]:
    if not os.path.exists(path):
        return {}
    out = {}
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):  # the last line may be half written when the kill lands
                rec = json.loads(line)
                out[rec["step"]] = rec["digest"]
    return out


def sys_args(args: argparse.Namespace) -> List[str]:
    return ["--target", args.target, "--steps", str(args.steps), "--checkpoint-at", str(args.checkpoint_at),
            "--check", str(args.check), "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
            "--buckets", str(args.buckets), "--dim", str(args.dim), "--heads", str(args.heads),
            "--layers", str(args.layers), "--seed", str(args.seed), "--log-every", str(args.log_every),
            "--checkpoint", args.checkpoint, "--digests", args.digests]


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="localhost:50051")
    p.add_argument("--steps", type=int, default=20, help="last global step to train")
    p.add_argument("--checkpoint-at", type=int, default=10, help="step whose checkpoint the resume starts from")
    p.add_argument("--check", type=int, default=5, help="batches after the checkpoint that must match")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--buckets", type=int, default=512, help="embedding rows (token ids are folded modulo this)")
    p.add_argument("--dim", type=int, default=32, help="model width")
    p.add_argument("--heads", type=int, default=2, help="attention heads (must divide --dim)")
    p.add_argument("--layers", type=int, default=1, help="transformer blocks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=5)
    p.add_argument("--checkpoint", default="/tmp/flanstream-train-tiny.pt")
    p.add_argument("--digests", default="/tmp/flanstream-train-tiny.digests")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--phase", choices=["all", "first"], default="all", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 0 <= args.checkpoint_at < args.steps:
        p.error("--checkpoint-at must be in [0, --steps)")
    if min(args.dim, args.heads, args.layers, args.buckets) < 1 or args.dim % args.heads:
        p.error("--dim, --heads, --layers and --buckets must be positive, and --heads must divide --dim")
    return args


def main() -> None:
    args = parse()
    if args.phase == "first":
        first_run(args)
        return
    sys.exit(0 if run(args) else 1)


if __name__ == "__main__":
    main()

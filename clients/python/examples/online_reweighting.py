"""Online domain reweighting (DoReMi / ODM style) against a live flanstream server, on CPU.

A tiny causal model (each position sees its token and the one before: cheap, so the run is about
the data loop, and 200 steps take well under a minute on two CPU cores) trains on packed batches;
every ``--every`` steps the per-domain loss (from the batch's segment metadata) drives an
exponentiated-gradient update of the domain weights, sent to the server with
``update_mixture(..., at_step=next step)``. Prints the weight trajectory.

    python3 clients/python/examples/online_reweighting.py --target localhost:50051 --steps 200
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from flanstream import FlanStreamDataset  # noqa: E402

DOMAINS = ("speech", "music", "audio")
HASH_VOCAB = 256  # the toy model sees token ids modulo this; the real vocabulary is ~160k


class TinyLM(torch.nn.Module):
    """Embeddings of a token and the one before it → a hidden layer → vocabulary head. It looks
    across segment boundaries of a packed row, which a real model must not (see train_tiny.py's
    mask); for driving the mixture the per-domain loss trend is all that matters."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(HASH_VOCAB, dim)
        self.mix = torch.nn.Linear(2 * dim, dim)
        self.head = torch.nn.Linear(dim, HASH_VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids % HASH_VOCAB)                                   # [B, L, dim]
        before = F.pad(x, (0, 0, 1, 0))[:, :-1]                            # position t-1 (zeros at 0)
        return self.head(F.gelu(self.mix(torch.cat([x, before], dim=-1))))


def next_token_targets(labels: torch.Tensor) -> torch.Tensor:
    """Labels are unshifted (Hugging Face convention): position t predicts labels[t + 1]."""
    shifted = torch.full_like(labels.long(), -100)
    shifted[:, :-1] = labels[:, 1:]
    return torch.where(shifted >= 0, shifted % HASH_VOCAB, shifted)


def token_losses(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, HASH_VOCAB), target.reshape(-1), ignore_index=-100, reduction="none").reshape(target.shape)


def domain_losses(per_token: torch.Tensor, target: torch.Tensor, batch: Dict) -> Dict[str, float]:
    """Mean next-token loss on supervised positions, per domain, from the segment metadata."""
    sums: Dict[str, float] = {d: 0.0 for d in DOMAINS}
    counts: Dict[str, int] = {d: 0 for d in DOMAINS}
    for seg in batch["segments"]:
        r, o, n = seg["row"], seg["offset"], seg["length"]
        mask = target[r, o:o + n] >= 0
        sums[seg["domain"]] += float(per_token[r, o:o + n][mask].sum())
        counts[seg["domain"]] += int(mask.sum())
    return {d: sums[d] / counts[d] for d in DOMAINS if counts[d] > 0}


def reweight(weights: Dict[str, float], losses: Dict[str, float], eta: float, floor: float) -> Dict[str, float]:
    """Exponentiated gradient: domains with higher loss gain weight; smoothed toward uniform."""
    raw = {d: weights[d] * math.exp(eta * losses.get(d, 0.0)) for d in DOMAINS}
    total = sum(raw.values())
    return {d: (1 - floor) * raw[d] / total + floor / len(DOMAINS) for d in DOMAINS}


def run(target: str, steps: int, every: int, batch_size: int, seq_len: int, eta: float, seed: int = 0) -> Dict[int, Dict[str, Dict[str, float]]]:
    """Trains for ``steps`` steps. Returns, per step where weights changed (0 and each update),
    the weights sent and the domain targets the server reported in that step's batch."""
    torch.manual_seed(seed)
    weights = {d: 1 / len(DOMAINS) for d in DOMAINS}
    ds = FlanStreamDataset(target, split="train", batch_size=batch_size, seq_len=seq_len, packing="packed",
                           mixture={"weights": weights}, seed=seed, output="torch", max_batches=steps)
    model = TinyLM()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    window: Dict[str, List[float]] = {d: [] for d in DOMAINS}
    sent = {0: dict(weights)}
    trajectory: Dict[int, Dict[str, Dict[str, float]]] = {}
    for batch in ds:
        step = int(batch["step"])
        if step in sent:
            served = {d: batch["stats"]["domains"][d]["target"] for d in DOMAINS}
            trajectory[step] = {"sent": sent[step], "served": served}
        target = next_token_targets(batch["labels"])
        per_token = token_losses(model(batch["input_ids"]), target)
        loss = per_token.sum() / (target >= 0).sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        for d, v in domain_losses(per_token.detach(), target, batch).items():
            window[d].append(v)
        if (step + 1) % every == 0 and step + 1 < steps:
            means = {d: sum(v) / len(v) for d, v in window.items() if v}
            weights = reweight(weights, means, eta, floor=0.1)
            ds.update_mixture(weights, at_step=step + 1)
            sent[step + 1] = dict(weights)
            print(f"step {step + 1:5d}  loss " + "  ".join(f"{d} {means.get(d, float('nan')):.3f}" for d in DOMAINS)
                  + "  →  weights " + "  ".join(f"{d} {weights[d]:.3f}" for d in DOMAINS), flush=True)
            window = {d: [] for d in DOMAINS}
    return trajectory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="localhost:50051")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--eta", type=float, default=0.5)
    a = p.parse_args()
    trajectory = run(a.target, a.steps, a.every, a.batch_size, a.seq_len, a.eta)
    last = trajectory[max(trajectory)]
    print(f"{len(trajectory) - 1} updates; final weights sent", {d: round(w, 3) for d, w in last["sent"].items()},
          "served", {d: round(w, 3) for d, w in last["served"].items()})


if __name__ == "__main__":
    main()

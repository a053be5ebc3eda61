"""Helpers shared by the tests that stream from a real server: one dataset recipe, one reader.

Why: the real-server test files each wrote the same ``make``/``take`` pair; the defaults (train
split, 4 x 1024 packed rows, a three-domain mixture, a fast retry policy so failure tests finish
quickly) belong in one place.
"""
from __future__ import annotations

from typing import Any, Dict, List

from flanstream import FlanStreamDataset, RetryPolicy

__all__ = ["B", "L", "MIX", "make", "take"]

B, L = 4, 1024
MIX = {"weights": {"speech": 0.5, "music": 0.25, "audio": 0.25}}


def make(target: Any, **kw: Any) -> FlanStreamDataset:
    """A train dataset with the tests' defaults; keyword arguments override any of them."""
    args: Dict[str, Any] = dict(split="train", batch_size=B, seq_len=L, packing="packed", mixture=MIX, seed=0,
                                retry=RetryPolicy(attempts=6, initial_backoff=0.05, max_backoff=0.5))
    args.update(kw)
    return FlanStreamDataset(target, **args)


def take(ds: FlanStreamDataset, n: int) -> List[Dict[str, Any]]:
    """The first ``n`` batches of a fresh iteration."""
    it = iter(ds)
    return [next(it) for _ in range(n)]

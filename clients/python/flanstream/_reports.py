"""The loss reports a :class:`~flanstream.FlanStreamDataset` sent and may have to send again.

A policy stream's resume token holds the policy after the report of step ``p - 1 - lag_steps``
when its next step is ``p``; the reports of the last ``lag_steps`` steps are not in it (the
server keeps them in memory until the steps they feed are planned). So the client keeps them too:
it sends them again after the first message of every new connection, and checkpoints them in
``state_dict``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from ._proto.flanstream.v1 import data_service_pb2 as pb

__all__ = ["ReportBook"]

Entries = List[Tuple[int, float, int]]


class ReportBook:
    """Reports by step, pruned to those a resumed stream still needs.

    Args:
        lag: the policy's ``lag_steps``, or ``None`` for a static mixture (nothing is kept: the
            server never waits for, or replays, a static stream's reports).
    """

    def __init__(self, lag: Optional[int]) -> None:
        self.lag = lag
        self.last: Optional[int] = None
        self._kept: Dict[int, Entries] = {}

    @staticmethod
    def message(step: int, entries: Entries) -> "pb.StreamRequest":
        return pb.StreamRequest(losses=pb.LossReport(
            step=step, losses=[pb.TaskLoss(task=t, loss_sum=v, tokens=n) for t, v, n in entries]))

    def add(self, step: int, entries: Entries, last_step: Optional[int]) -> "pb.StreamRequest":
        """Record the report of ``step`` (checked by the caller) and return its message."""
        if last_step is None or step > last_step:
            raise ValueError(f"step {step} was not handed out yet (last step: {last_step})")
        if self.last is not None and step <= self.last:
            raise ValueError(f"step {step} is not after the last reported step ({self.last})")
        self.last = step
        if self.lag is not None:
            self._kept[step] = entries
            self._prune(last_step)
        return self.message(step, entries)

    def _prune(self, last_step: Optional[int]) -> None:
        """Forget reports the token of ``last_step`` holds already (steps before last_step + 1 − lag)."""
        if self.lag is None or last_step is None:
            return
        for s in [s for s in self._kept if s < last_step + 1 - self.lag]:
            del self._kept[s]

    def due(self, last_step: Optional[int]) -> List["pb.StreamRequest"]:
        """Messages to send after the first one of a connection resuming after ``last_step``."""
        if self.lag is None or last_step is None:
            return []
        self._prune(last_step)
        return [self.message(s, self._kept[s]) for s in sorted(self._kept)]

    def settle(self, last_step: Optional[int]) -> Optional["pb.StreamRequest"]:
        """The trainer wants the batch after ``last_step`` but reported none of the last
        ``lag_steps`` steps: an empty report of ``last_step`` marks them missing, or the policy
        stream would wait for reports that never come. ``None`` when nothing is needed."""
        if self.lag is None or last_step is None or (self.last is not None and self.last > last_step - self.lag):
            return None
        return self.add(last_step, [], last_step)

    def state(self, last_step: Optional[int]) -> Dict[str, Any]:
        self._prune(last_step)
        return {"reports": {s: list(e) for s, e in self._kept.items()}, "last_reported": self.last}

    def load(self, state: Mapping[str, Any]) -> None:
        self._kept = {int(s): [(int(t), float(v), int(n)) for t, v, n in e] for s, e in dict(state.get("reports") or {}).items()}
        last = state.get("last_reported")
        self.last = int(last) if last is not None else None

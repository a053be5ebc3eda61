"""flanstream — Python client for the flanstream training-batch server.

>>> from flanstream import Client, FlanStreamDataset
>>> info = Client("localhost:50051").corpus_info()                      # doctest: +SKIP
>>> ds = FlanStreamDataset("localhost:50051", split="train", batch_size=8, seq_len=4096,
...                        mixture={"weights": {"speech": 0.5, "music": 0.25, "audio": 0.25}})  # doctest: +SKIP
>>> for batch in ds: ...                                                 # doctest: +SKIP
"""
from __future__ import annotations

from ._stream import RetryPolicy
from .client import Client
from .dataset import FlanStreamDataset
from .errors import FlanStreamError
from .evaluation import EvalPart, EvalResult, evaluate, evaluate_part, merge_evaluations
from .info import CorpusInfo, DatasetInfo, FilterCounts, GuardRemoval, HeldoutSetInfo, SpecChoices, TaskInfo, VocabLayout
from .losses import task_losses
from .segments import Segments
from .wire import IGNORE_INDEX, BatchDecoder, BatchStats, dense_arrays

__version__ = "0.1.0"

__all__ = [
    "Client",
    "FlanStreamDataset",
    "FlanStreamError",
    "evaluate",
    "evaluate_part",
    "merge_evaluations",
    "task_losses",
    "EvalResult",
    "EvalPart",
    "CorpusInfo",
    "TaskInfo",
    "VocabLayout",
    "HeldoutSetInfo",
    "DatasetInfo",
    "GuardRemoval",
    "SpecChoices",
    "FilterCounts",
    "RetryPolicy",
    "BatchDecoder",
    "BatchStats",
    "Segments",
    "dense_arrays",
    "IGNORE_INDEX",
    "__version__",
]

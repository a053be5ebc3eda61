"""The sample corpus's records read straight from its JSONL files: the tests' independent reading.

Why: tests that check what the server serves against the corpus each parsed the metadata files the
same way; bad lines (the sample plants some, the index quarantines them) are skipped here once.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Callable, Dict, List

__all__ = ["as_list", "corpus_records", "first", "task_path"]


def first(v: Any) -> str:
    return str(v[0] if isinstance(v, list) else v)


def as_list(v: Any) -> List[str]:
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def task_path(r: Dict[str, Any]) -> str:
    t = r["task_type"]
    return f'{r["domain"]}/{first(t["major"])}/{first(t["minor"])}'


def corpus_records(index_dir: Path, pick: Callable[[Dict[str, Any]], Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """uuid → `pick(record)` for each record of the corpus beside `index_dir` that parses and has
    what `pick` reads; the others are the bad lines the sample plants (the index quarantines them)."""
    out: Dict[str, Dict[str, Any]] = {}
    for f in sorted((index_dir.parent / "corpus" / "metadata").rglob("*.jsonl*")):
        raw = f.read_bytes()
        for line in (gzip.decompress(raw) if f.name.endswith(".gz") else raw).decode("utf-8").splitlines():
            try:
                r = json.loads(line)
                out[str(r["uuid"])] = pick(r)
            except (ValueError, KeyError, TypeError, IndexError):
                continue
    return out

"""``FlanStreamDataset(filter=...)`` and ``Client.corpus_info(filter=...)`` against a real server.

What is served is checked against the test's own reading of the corpus's JSONL files (never
through the index): every record a filtered stream serves is one the filter keeps, a resume
continues exactly and refuses another filter (or none), evaluation splits serve only kept
records, and bad filters are ``INVALID_ARGUMENT`` with the position of the error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import grpc
import pytest

from flanstream import Client, FlanStreamDataset, FlanStreamError
from corpus_records import corpus_records, first, task_path
from live_streams import make, take

FILTER = 'ug == "generation" and not domain in ["music"]'


def keeps(r: Dict[str, Any]) -> bool:
    return r["ug"] == "generation" and r["domain"] != "music"


@pytest.fixture(scope="module")
def records(index_dir: Path) -> Dict[str, Dict[str, Any]]:
    """uuid → the fields this test filters on, read from the corpus's JSONL files."""
    out = corpus_records(index_dir, lambda r: {
        "domain": r["domain"], "ug": first(r["task_type"]["U/G"]), "task": task_path(r),
        "split": r["split"] if isinstance(r["split"], list) else [r["split"]],
    })
    assert len(out) > 2000
    return out


def served(batches: List[Dict[str, Any]]) -> List[str]:
    return [u for b in batches for s in b["segments"] for u in s["uuids"]]


def test_filtered_stream_serves_only_kept_records_and_resumes_only_with_its_filter(server, records) -> None:
    ds = make(server.target, mixture=None, filter=FILTER)
    head = take(ds, 3)
    state = ds.state_dict()
    rest = take(ds, 4)
    uuids = served(head + rest)
    assert len(uuids) > 20
    assert all(keeps(records[u]) for u in uuids), [records[u] for u in uuids if not keeps(records[u])][:3]
    # The same spec without the filter serves records the filter leaves out (this test can fail).
    assert not all(keeps(records[u]) for u in served(take(make(server.target, mixture=None), 7)))
    # The token carries the filter: the same filter (respelled) resumes exactly ...
    again = make(server.target, mixture=None, filter=FILTER.replace(" == ", "=="))
    again.load_state_dict(state)
    assert served(take(again, 4)) == served(rest)
    # ... another filter, or none, is refused.
    for other in ('ug == "generation"', None):
        ds2 = make(server.target, mixture=None, filter=other)
        ds2.load_state_dict(state)
        with pytest.raises(FlanStreamError) as info:
            take(ds2, 1)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and "filter" in info.value.details, other


def test_dry_run_counts_what_the_filter_keeps_per_task(server, records) -> None:
    client = Client(server.target)
    info = client.corpus_info(filter='ug == "generation"')
    assert info.filter is not None and info.filter.filter == 'ug == "generation"'
    # Kept records per task: every record of a generation task, none of the others (the catalog's
    # own counts, which come from the index build, not from the filter's columns).
    for t in info.tasks:
        want = t.records if t.ug == "generation" else {"train": 0, "dev": 0, "test": 0}
        assert info.filter.tasks[t.path] == want, t.path
    assert info.filter.records["train"] == sum(t.train_records for t in info.tasks if t.ug == "generation")
    # A filter on a field of the records: the counts match the JSONL's, for kept tasks' records.
    task = next(r["task"] for r in records.values() if "dev" in r["split"])
    counts = client.corpus_info(filter=f'task == "{task}" and split == "dev"').filter
    assert counts is not None
    indexed = info.task(task).dev_records
    assert counts.tasks[task]["dev"] == indexed > 0
    assert sum(n for c in counts.tasks.values() for n in c.values()) == indexed
    assert client.corpus_info().filter is None


def test_evaluation_split_serves_only_kept_records(server, records) -> None:
    ds = FlanStreamDataset(server.target, split="dev", batch_size=4, seq_len=4096, packing="packed",
                           output="numpy", filter=FILTER)
    uuids = served(list(ds))
    assert uuids and all(keeps(records[u]) and "dev" in records[u]["split"] for u in uuids)
    assert len(set(uuids)) == len(uuids)  # every kept record once


@pytest.mark.parametrize("text, at, what", [
    ("durationn < 3", 1, "unknown field"),
    ('ug == "generation" and audio_seconds == "x"', 41, "number field"),
    ('ug == "generation', 7, "unterminated string"),
    ("clips == 1 or " + "x" * 100 * 1024, 4097, "at most 4096"),
])
def test_bad_filters_are_invalid_argument_at_their_position(server, text: str, at: int, what: str) -> None:
    with pytest.raises(FlanStreamError) as info:
        take(make(server.target, filter=text), 1)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"at character {at}:" in info.value.details and what in info.value.details, info.value.details
    with pytest.raises(FlanStreamError) as info:
        Client(server.target).corpus_info(filter=text)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and f"at character {at}:" in info.value.details


def test_a_filter_keeping_nothing_is_invalid_argument_naming_it(server) -> None:
    for call in (lambda: take(make(server.target, filter='domain == "space"'), 1),
                 lambda: Client(server.target).corpus_info(filter='domain == "space"')):
        with pytest.raises(FlanStreamError) as info:
            call()
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert 'domain == "space"' in info.value.details and "keeps no" in info.value.details


def test_filter_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="filter must be a str"):
        FlanStreamDataset("127.0.0.1:9", filter=3)  # type: ignore[arg-type]
    assert FlanStreamDataset("127.0.0.1:9", filter="clips >= 1").spec.filter == "clips >= 1"
    assert FlanStreamDataset("127.0.0.1:9").spec.filter == ""

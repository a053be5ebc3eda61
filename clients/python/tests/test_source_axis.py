"""``source:<value>`` mixture selectors through the Python client, against a real server.

The expected groups come from the test's own reading of the corpus's JSONL files (never through
the index): a selector takes the tasks whose every train record lists the value. ``corpus_info``
publishes each task's values, the client's ``selector_tasks`` resolves them alike, a stream
weighted along ``source`` serves only records listing their group's value, and an unknown value is
``INVALID_ARGUMENT`` naming it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Set, Tuple

import grpc
import pytest

from flanstream import Client, FlanStreamError
from flanstream.mixture_merge import selector_tasks
from corpus_records import as_list, corpus_records, task_path
from live_streams import make, take


@pytest.fixture(scope="module")
def corpus(index_dir: Path) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, Tuple[Set[str], Set[str]]]]:
    """uuid → (task, sources), and task path → (values every train record lists, values some list)."""
    records = corpus_records(index_dir, lambda r: {
        "task": task_path(r), "source": as_list(r["source"]), "split": as_list(r["split"]),
    })
    tasks: Dict[str, Tuple[Set[str], Set[str]]] = {}
    for r in records.values():
        if "train" not in r["split"]:
            continue
        every, some = tasks.get(r["task"], (set(r["source"]), set()))
        tasks[r["task"]] = (every & set(r["source"]), some | set(r["source"]))
    assert len(records) > 2000
    return records, tasks


def test_corpus_info_lists_each_tasks_sources_and_the_client_resolves_them(server, corpus) -> None:
    _, tasks = corpus
    info = Client(server.target).corpus_info()
    for t in info.tasks:
        every, some = tasks.get(t.path, (set(), set()))
        assert set(t.sources) == every, t.path
        assert set(t.partial_sources) == some - every, t.path
    assert any(t.partial_sources for t in info.tasks)
    for value in ("studio", "youtube", "vinyl"):
        want = sorted(p for p, (every, _) in tasks.items() if value in every)
        assert sorted(selector_tasks(f"source:{value}", info.tasks)) == want, value


def test_a_stream_weighted_along_source_serves_only_its_groups_records(server, corpus) -> None:
    records, tasks = corpus
    groups = {p: v for v in ("studio", "youtube") for p, (every, _) in tasks.items() if v in every}
    ds = make(server.target, mixture={"weights": {"source:studio": 1, "source:youtube": 3}})
    uuids = [u for b in take(ds, 6) for s in b["segments"] for u in s["uuids"]]
    assert len(uuids) > 20
    for u in uuids:
        r = records[u]
        assert r["task"] in groups and groups[r["task"]] in r["source"], r


def test_an_unknown_source_is_invalid_argument_naming_it(server) -> None:
    with pytest.raises(FlanStreamError) as info:
        take(make(server.target, mixture={"weights": {"source:vinyl": 1}}), 1)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert '"source:vinyl"' in info.value.details and 'no task has source "vinyl"' in info.value.details

"""End-to-end tests against a real ``node dist/cli.js serve`` on a 3000-record sample corpus.

These are never skipped: without a working server (``dist/cli.js``) they fail.
"""
from __future__ import annotations

import signal
import time
from typing import Any, Dict, List

import grpc
import numpy as np
import pytest

from flanstream import Client, FlanStreamDataset, FlanStreamError
from live_streams import B, L, MIX, make, take

ARRAYS = ("input_ids", "labels", "position_ids", "segment_ids", "cu_seqlens")


def as_np(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def assert_same(a: Dict[str, Any], b: Dict[str, Any], token: bool = True) -> None:
    """Byte-equal tensors and equal metadata (and resume tokens, unless ``token=False``)."""
    for k in ARRAYS:
        x, y = as_np(a[k]), as_np(b[k])
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), k
    assert a["step"] == b["step"] and a["segments"] == b["segments"] and a["max_seqlen"] == b["max_seqlen"]
    if token:
        assert a["resume_token"] == b["resume_token"], a["step"]


def uuids(batch: Dict[str, Any]) -> List[str]:
    return [u for s in batch["segments"] for u in s["uuids"]]


def test_corpus_info(server) -> None:
    info = Client(server.target).corpus_info()
    assert len(info.tasks) == 80
    assert len({t.index for t in info.tasks}) == 80 and len({t.path for t in info.tasks}) == 80
    assert set(info.domains) == {"speech", "music", "audio"}
    for t in info.tasks:
        assert t.path == f"{t.domain}/{t.major}/{t.minor}" and t.ug in ("understanding", "generation")
        assert set(t.records) == {"train", "dev", "test"}
    assert sum(t.total_records for t in info.tasks) == info.records
    assert info.index_fingerprint
    v = info.vocab
    assert v.audio_pad_id == v.audio_offset + v.codebooks * v.codebook_size and v.total_size == v.audio_pad_id + 1
    assert v.pad_id < v.total_size
    # The sample corpus's audio_tokens/codec.json.
    assert (v.codec, v.frame_rate, v.codebooks, v.codebook_size) == ("xcodec", 50.0, 8, 1024)
    assert info.default_heldout in [h.name for h in info.heldout_sets]
    assert all(h.fingerprint for h in info.heldout_sets)
    # Every domain is present: every named set and mixture is available.
    assert all(h.available and h.missing == () for h in info.heldout_sets)
    assert info.unavailable_mixtures == {} and "balanced-domains" in info.mixtures


def check_batch(batch: Dict[str, Any], paths: set, pad: int) -> None:
    ids, lab, pos, seg = (as_np(batch[k]) for k in ("input_ids", "labels", "position_ids", "segment_ids"))
    assert ids.shape == lab.shape == pos.shape == seg.shape == (B, L)
    cu = as_np(batch["cu_seqlens"])
    assert cu[0] == 0 and cu[-1] == (seg > 0).sum() and len(cu) == len(batch["segments"]) + 1
    assert ((lab == -100) | (lab == ids)).all() and (lab[seg == 0] == -100).all() and (ids[seg == 0] == pad).all()
    assert (lab != -100).any()
    for s in batch["segments"]:
        assert s["task"] in paths and s["length"] > 0
        np.testing.assert_array_equal(pos[s["row"], s["offset"]:s["offset"] + s["length"]], np.arange(s["length"]))
    assert batch["max_seqlen"] == max(s["length"] for s in batch["segments"])


def test_train_batches_torch_and_numpy(server) -> None:
    import torch

    info = Client(server.target).corpus_info()
    paths = {t.path for t in info.tasks}
    for output, ids_dtype in (("torch", torch.int64), ("numpy", np.int32)):
        batches = take(make(server.target, output=output), 3)
        assert [b["step"] for b in batches] == [0, 1, 2]
        for b in batches:
            assert b["input_ids"].dtype == ids_dtype and b["labels"].dtype == ids_dtype
            check_batch(b, paths, info.vocab.pad_id)
        assert batches[-1]["stats"]["examples"] >= sum(len(uuids(b)) for b in batches)


def test_identical_datasets_give_identical_batches(server) -> None:
    for a, b in zip(take(make(server.target), 4), take(make(server.target), 4)):
        assert_same(a, b)


def test_state_dict_resumes_exactly(server) -> None:
    ds = make(server.target, prefetch=4)
    it = iter(ds)
    first = [next(it), next(it)]
    deadline = time.monotonic() + 30
    while ds._conn.buffered() < 2 and time.monotonic() < deadline:  # the prefetcher runs ahead
        time.sleep(0.01)
    assert ds._conn.buffered() >= 2
    state = ds.state_dict()
    assert state["resume_token"] == first[1]["resume_token"] and state["step"] == 1
    rest = [next(it) for _ in range(3)]
    resumed = make(server.target)
    resumed.load_state_dict(state)
    for a, b in zip(rest, take(resumed, 3)):
        assert_same(a, b)


def test_ranks_partition_the_global_stream(server) -> None:
    steps = 3
    whole = take(make(server.target, batch_size=2 * B, rank=0, world_size=1), steps)
    parts = [take(make(server.target, rank=r, world_size=2), steps) for r in (0, 1)]
    for s in range(steps):
        u0, u1 = uuids(parts[0][s]), uuids(parts[1][s])
        assert parts[0][s]["step"] == parts[1][s]["step"] == whole[s]["step"] == s
        assert not set(u0) & set(u1)
        assert sorted(u0 + u1) == sorted(uuids(whole[s]))


def test_dataloader(server) -> None:
    import torch

    ds = make(server.target, max_batches=3)
    batches = list(torch.utils.data.DataLoader(ds, batch_size=None))
    assert len(batches) == 3 and tuple(batches[0]["input_ids"].shape) == (B, L)
    assert ds.state_dict()["step"] == 2


@pytest.mark.parametrize("kwargs, field", [
    ({"mixture": {"weights": {"nosuchdomain": 1.0}}}, "mixture"),
    ({"heldout": "no-such-heldout-set"}, "heldout"),
])
def test_bad_spec_is_invalid_argument(server, kwargs, field) -> None:
    with pytest.raises(FlanStreamError) as info:
        take(make(server.target, **kwargs), 1)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and field in info.value.details


def test_garbage_token_is_refused(server) -> None:
    ds = make(server.target)
    ds.load_state_dict(dict(ds.state_dict(), resume_token=b"garbage", step=3))
    with pytest.raises(FlanStreamError) as info:
        take(ds, 1)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_token_from_another_heldout_set_is_refused(server) -> None:
    ds = make(server.target)
    take(ds, 1)
    other = make(server.target, heldout={"tasks": []})  # explicitly no held-out tasks
    other.load_state_dict(ds.state_dict())
    with pytest.raises(FlanStreamError) as info:
        take(other, 1)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION



def test_heldout_datasets_and_guard_report(server) -> None:
    client = Client(server.target)
    info = client.corpus_info(contamination=True)
    caps = next(d for d in info.datasets if d.name == "43_AudioCaps")
    assert len(caps.tasks) == 2 and all(sum(c.values()) > 0 for c in caps.tasks.values())
    loco = info.heldout_set("loco-speech-caption")
    assert loco.exclude_shared_audio and loco.exclude_overlapping_text == 0 and loco.datasets == ()
    assert loco.contamination and all(g.guard == "audio" and g.removed > 0 for g in loco.contamination)
    assert all(len(g.examples) == min(3, g.removed) for g in loco.contamination)
    assert client.corpus_info().heldout_set("loco-speech-caption").contamination == ()
    # Every record of the dataset is held out, whatever its task: the held-out stream serves
    # exactly the dataset's records (in both of its tasks), and no train batch carries one.
    held = {"tasks": [], "datasets": ["43_AudioCaps"], "exclude_overlapping_text": 13}
    ev = FlanStreamDataset(server.target, split="heldout", batch_size=8, seq_len=8192, packing="none", heldout=held)
    segs = [s for b in ev for s in b["segments"]]
    assert len(segs) == sum(sum(c.values()) for c in caps.tasks.values())
    assert {s["task"] for s in segs} == set(caps.tasks)
    held_uuids = {u for s in segs for u in s["uuids"]}
    for batch in take(make(server.target, heldout=held), 8):
        assert not held_uuids & {u for s in batch["segments"] for u in s["uuids"]}

def test_update_mixture(server) -> None:
    new = {"speech": 0.2, "music": 0.4, "audio": 0.4}
    ds = make(server.target, prefetch=4)
    it = iter(ds)
    got = [next(it) for _ in range(3)]
    time.sleep(0.5)
    ds.update_mixture(new, at_step=5)
    got += [next(it) for _ in range(5)]
    assert [b["step"] for b in got] == list(range(8))
    for b in got:
        want = new if b["step"] >= 5 else MIX["weights"]
        for d, w in want.items():
            assert b["stats"]["domains"][d]["target"] == pytest.approx(w, abs=1e-6), (b["step"], d)
    # Same stream as a dataset that knew the update from the start; before step 5 only the
    # tokens differ (one of them already carries the pending update).
    upfront = make(server.target)
    upfront.update_mixture(new, at_step=5)
    for a, b in zip(got, take(upfront, 8)):
        assert_same(a, b, token=a["step"] >= 5)


def test_no_heldout_task_in_train(server) -> None:
    info = Client(server.target).corpus_info()
    held = set(info.heldout_set(info.default_heldout).tasks)
    assert held
    for b in take(make(server.target, mixture=None), 5):
        assert not {t for s in b["segments"] for t in s["turn_tasks"]} & held


def test_heldout_stream_is_finite_with_summary(server) -> None:
    ds = make(server.target, split="heldout", mixture=None, batch_size=8, seq_len=2048, output="numpy")
    counts: Dict[str, int] = {}
    seen: List[str] = []
    for b in ds:
        for s in b["segments"]:
            seen += s["uuids"]
            for t in s["turn_tasks"]:
                counts[t] = counts.get(t, 0) + 1
    assert ds.summary is not None and ds.summary["reason"] == "complete"
    assert len(seen) == len(set(seen)) == ds.summary["examples"] == ds.summary["total_examples"]
    assert {k: v for k, v in ds.summary["task_examples"].items() if v} == counts


def test_examples_packing(server) -> None:
    info = Client(server.target).corpus_info()
    ds = make(server.target, split="test", packing="examples", mixture=None, max_batches=2)
    batches = list(ds)
    assert len(batches) == 2
    for b in batches:
        assert b["examples"]
        for ex in b["examples"]:
            assert ex["task"] in {t.path for t in info.tasks} and ex["uuid"]
            assert as_np(ex["prompt_tokens"]).ndim == 1 and len(ex["prompt_tokens"]) > 0
            assert len(ex["answer_tokens"]) > 0


@pytest.mark.parametrize("how", ["kill", "sigterm"])
def test_failover_to_another_replica(server, start_server, how: str) -> None:
    a, b = start_server(), start_server()
    ds = make([a.target, b.target], prefetch=2)
    it = iter(ds)
    got = [next(it) for _ in range(3)]
    if how == "kill":
        a.kill()
    else:
        a.proc.send_signal(signal.SIGTERM)  # drains: StreamEnd(reason="shutdown")
    # Batches A had already sent (prefetched or in gRPC buffers, or built before it saw the
    # signal) come first; then the dataset must move to B and carry on without a gap.
    after = 0
    while after < 4:
        got.append(next(it))
        after += ds.target == b.target
        assert len(got) < 200, "never failed over to the second replica"
    for x, y in zip(got, take(make(server.target), len(got))):
        assert_same(x, y)
    if how == "sigterm":
        a.proc.wait(30)  # the drained server exits by itself


def test_evaluate_over_a_heldout_stream(server) -> None:
    from flanstream.evaluation import evaluate

    ds = make(server.target, split="heldout", packing="examples", mixture=None, batch_size=16, output="numpy")
    result = evaluate(ds, lambda ex: {"prompt_len": len(ex["prompt_tokens"]), "one": 1.0})
    total = result.pop("__total__")
    assert total["complete"] == 1.0 and total["count"] == total["expected"] == ds.summary["total_examples"]
    assert all(r["one"] == 1.0 and r["prompt_len"] > 0 for r in result.values())
    assert sum(r["count"] for r in result.values()) == total["count"]


def test_bearer_token(start_server) -> None:
    srv = start_server("--set", "server.auth_tokens=sekrit-token-1")
    with pytest.raises(FlanStreamError) as info:
        Client(srv.target).corpus_info()
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert len(Client(srv.target, token="sekrit-token-1").corpus_info().tasks) == 80
    with pytest.raises(FlanStreamError) as info:
        take(make(srv.target, token="wrong-token-2"), 1)
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert take(make(srv.target, token="sekrit-token-1", max_batches=1), 1)[0]["step"] == 0


def _audio_spans(batch: Dict[str, Any], soa: int, eoa: int) -> List[np.ndarray]:
    ids = as_np(batch["input_ids"])
    spans = []
    for row in ids:
        opens = np.flatnonzero(row == soa)
        for o in opens:
            e = o + int(np.argmax(row[o:] == eoa))
            spans.append(row[o + 1:e])
    return spans


@pytest.mark.parametrize("k", [1, 3])
def test_audio_delay_layout(server, k: int) -> None:
    v = Client(server.target).corpus_info().vocab
    ds = make(server.target, audio={"codebooks": k, "layout": "delay"})
    batches = take(ds, 3)
    spans = [s for b in batches for s in _audio_spans(b, v.soa_id, v.eoa_id)]
    assert len(spans) > 10
    for s in spans:
        steps = s.reshape(-1, k)  # step-major: step t holds codebook c of frame t - c
        frames = len(steps) - k + 1
        assert frames >= 1
        for c in range(k):
            col = steps[:, c]
            # c leading and k - 1 - c trailing holes are the audio pad; the rest codebook c's codes
            assert (col[:c] == v.audio_pad_id).all() and (col[len(col) - (k - 1 - c):] == v.audio_pad_id).all()
            codes = col[c:c + frames] - v.audio_offset - c * v.codebook_size
            assert ((codes >= 0) & (codes < v.codebook_size)).all()
    # The resume token carries the layout: a dataset resumed from it continues exactly ...
    state = ds.state_dict()
    resumed = make(server.target, audio={"codebooks": k, "layout": "delay"})
    resumed.load_state_dict(state)
    rest = take(ds, 2)
    for a, b in zip(rest, take(resumed, 2)):
        assert_same(a, b)
    # ... and one asking for another layout is refused.
    flat = make(server.target)
    flat.load_state_dict(state)
    with pytest.raises(FlanStreamError) as info:
        take(flat, 1)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and "audio" in info.value.details


def test_blocks_shuffle_resumes_exactly_and_only_in_its_order(server) -> None:
    ds = make(server.target, shuffle="blocks", shuffle_window=4)
    head = take(ds, 2)
    state = ds.state_dict()
    rest = take(ds, 3)
    resumed = make(server.target, shuffle="blocks", shuffle_window=4)
    resumed.load_state_dict(state)
    for a, b in zip(rest, take(resumed, 3)):
        assert_same(a, b)
    # Another order than the global one: the same spec otherwise serves other records.
    assert [uuids(b) for b in head] != [uuids(b) for b in take(make(server.target, shuffle="global"), 2)]
    for other in ({"shuffle": "global"}, {"shuffle": "blocks", "shuffle_window": 8}):
        ds2 = make(server.target, **other)
        ds2.load_state_dict(state)
        with pytest.raises(FlanStreamError) as info:
            take(ds2, 1)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and "shuffle" in info.value.details, other


def test_audio_arguments_are_checked(server) -> None:
    with pytest.raises(ValueError, match="audio\\['layout'\\]"):
        make(server.target, audio={"codebooks": 1, "layout": "interleaved"})
    with pytest.raises(ValueError, match="unknown key"):
        make(server.target, audio={"k": 1})
    with pytest.raises(FlanStreamError) as info:
        take(make(server.target, audio={"codebooks": 99}), 1)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "audio.codebooks" in info.value.details

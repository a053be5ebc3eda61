"""``batch["segments"]``: built lazily, equal to the eager list, and behaving like that list."""
from __future__ import annotations

import copy
import json
import pickle
from typing import Any, Dict, List

import grpc
import numpy as np
import pytest

from flanstream import BatchDecoder, FlanStreamDataset, FlanStreamError
from flanstream._proto.flanstream.v1 import data_service_pb2 as pb
from flanstream.info import CorpusInfo
from flanstream import Segments

PATHS = ["speech/SR/ASR", "music/G/Genre", "", "audio/C/Caption"]  # task 2 has no name: shown as "#2"
INFO = CorpusInfo.from_proto(pb.CorpusInfo(
    tasks=[pb.TaskInfo(index=i, path=p, domain=p.split("/")[0] if p else "") for i, p in enumerate(PATHS)],
    domains=["speech", "music", "audio"],
))


def random_batch(seed: int, multiturn: bool, with_domains: bool) -> "pb.Batch":
    """Segments back to back in rows, 1–3 turns each (one answer span per turn inside the
    segment), task indices including one beyond the names (5)."""
    rng = np.random.default_rng(seed)
    B, L = int(rng.integers(1, 5)), int(rng.integers(16, 64))
    b = pb.Batch(batch_size=B, seq_len=L, pad_id=0, step=seed)
    flat = 0
    for r in range(B):
        col = 0
        while col < L - 4 and rng.random() < 0.85:
            n = int(rng.integers(4, L - col + 1))
            turns = int(rng.integers(1, 4)) if multiturn else 1
            b.seg_row.append(r); b.seg_offset.append(col); b.seg_length.append(n); b.seg_turns.append(turns)
            tasks = rng.choice([0, 1, 2, 3, 5], size=turns).tolist()
            b.seg_task.append(tasks[0]); b.turn_task.extend(tasks)
            if with_domains:
                b.seg_domain.append(int(rng.integers(0, 4)))  # 3: beyond the domain names
            b.seg_text_tokens.append(int(rng.integers(0, n))); b.seg_audio_tokens.append(int(rng.integers(0, n)))
            cuts = np.sort(rng.integers(0, n + 1, size=2 * turns)) + flat
            b.loss_spans.extend(cuts.tolist())
            b.uuids.extend(f"u{seed}-{len(b.uuids) + k}" for k in range(turns))
            col += n
            flat += n
    b.tokens = np.arange(flat, dtype="<i4").tobytes()
    return b


def reference(b: "pb.Batch") -> List[Dict[str, Any]]:
    """The segments the obvious way, field by field (what the eager list always held)."""
    def name(names: List[str], i: int) -> str:
        return names[i] if 0 <= i < len(names) and names[i] else f"#{i}"
    task_domain = {t.index: INFO.domains.index(t.domain) if t.domain in INFO.domains else -1 for t in INFO.tasks}
    out, j, start = [], 0, 0
    for i in range(len(b.seg_length)):
        n = b.seg_turns[i]
        dom = b.seg_domain[i] if len(b.seg_domain) else task_domain.get(b.seg_task[i], -1)
        spans = [(b.loss_spans[2 * k] - start + b.seg_offset[i], b.loss_spans[2 * k + 1] - start + b.seg_offset[i])
                 for k in range(j, j + n)]
        out.append({
            "row": b.seg_row[i], "offset": b.seg_offset[i], "length": b.seg_length[i],
            "task": name(INFO.task_paths, b.seg_task[i]), "task_index": b.seg_task[i], "domain": name(INFO.domains, dom),
            "uuids": list(b.uuids[j:j + n]), "turn_tasks": [name(INFO.task_paths, t) for t in b.turn_task[j:j + n]],
            "turn_task_indices": list(b.turn_task[j:j + n]), "loss_spans": spans,
            "text_tokens": b.seg_text_tokens[i], "audio_tokens": b.seg_audio_tokens[i],
        })
        j += n
        start += b.seg_length[i]
    return out


@pytest.mark.parametrize("seed", range(12))
def test_lazy_segments_equal_the_eager_list(seed: int) -> None:
    b = random_batch(seed, multiturn=seed % 2 == 1, with_domains=seed % 3 != 0)
    dec = BatchDecoder(INFO, "numpy")
    out = dec(b)
    want = reference(b)
    assert isinstance(out["segments"], Segments) and len(out["segments"]) == len(want)
    assert out["segments"] == want and list(out["segments"]) == want
    assert dec.segments(b) == want  # the eager method: the same list
    assert [tuple(x) for x in out["turn_spans"][:, 1:3].tolist()] == [s for seg in want for s in seg["loss_spans"]]


def test_segments_behave_like_a_list() -> None:
    b = random_batch(3, multiturn=True, with_domains=True)
    want = reference(b)
    assert len(want) >= 3
    segs = BatchDecoder(INFO, "numpy")(b)["segments"]
    assert segs[0] == want[0] and segs[-1] == want[-1] and segs[1:3] == want[1:3] and isinstance(segs[1:3], list)
    assert [s["uuids"] for s in segs] == [s["uuids"] for s in want]
    assert segs == want and want == segs and not (segs != want) and segs != want[:-1] and segs != "segments"
    assert repr(segs) == repr(want) and segs + [] == want and [] + segs == want
    assert want[0] in segs and segs.index(want[1]) == 1 and segs.count(want[0]) == 1
    with pytest.raises(IndexError):
        segs[len(want)]
    with pytest.raises(TypeError):
        hash(segs)
    again = pickle.loads(pickle.dumps(segs))
    assert isinstance(again, Segments) and again == segs and copy.deepcopy(segs) == want
    assert json.loads(json.dumps(list(segs))) == json.loads(json.dumps(want))
    from torch.utils.data._utils.collate import default_convert  # what DataLoader(ds, batch_size=None) applies
    assert default_convert(segs) == default_convert(want)  # (tuples become lists, as they did)
    assert Segments() == [] and len(Segments()) == 0
    with pytest.raises(ValueError, match="iterable of segment dicts"):
        Segments(3)  # type: ignore[arg-type]


def test_segments_are_built_on_first_read_only_once() -> None:
    calls: List[int] = []
    items = [{"row": 0}, {"row": 1}]
    segs = Segments((2, lambda: calls.append(1) or items))
    assert len(segs) == 2 and bool(segs) and calls == []
    assert segs[1] == {"row": 1} and calls == [1]
    assert list(segs) == items and segs == items and calls == [1]
    broken = Segments((3, lambda: items))
    with pytest.raises(ValueError, match="built 2 segments, expected 3"):
        broken[0]


def test_decoding_does_not_build_the_dicts() -> None:
    dec = BatchDecoder(INFO, "numpy")
    built: List[int] = []
    real = dec._segment_dicts
    dec._segment_dicts = lambda batch, spans, turns: built.append(1) or real(batch, spans, turns)  # type: ignore[method-assign]
    b = random_batch(1, multiturn=True, with_domains=True)
    out = dec(b)
    assert built == [] and len(out["segments"]) > 0
    assert out["segments"][0] == reference(b)[0] and built == [1]


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b.seg_turns.__setitem__(0, b.seg_turns[0] + 1), "seg_turns"),
    (lambda b: b.uuids.append("extra"), "seg_turns"),
    (lambda b: b.turn_task.append(0), "turn_task"),
    (lambda b: b.seg_task.append(0), "seg_task"),
])
def test_inconsistent_turn_columns_fail_at_decode_not_at_read(mutate, match) -> None:
    b = random_batch(5, multiturn=True, with_domains=True)
    mutate(b)
    with pytest.raises(FlanStreamError, match=match) as info:
        BatchDecoder(INFO, "numpy")(b)
    assert info.value.code == grpc.StatusCode.DATA_LOSS


@pytest.mark.parametrize("packing", ["packed", "multiturn", "none"])
def test_segments_from_a_real_server_match_the_wire(server, packing: str) -> None:
    """Every batch of a real stream: the lazy segments hold exactly what the wire columns say,
    and the per-turn spans of task_losses are the segments' loss_spans."""
    ds = FlanStreamDataset(server.target, split="train", batch_size=4, seq_len=1024, packing=packing, seed=3,
                           output="numpy", max_batches=4)
    n = 0
    for batch in ds:
        segs = batch["segments"]
        assert len(segs) == len(batch["cu_seqlens"]) - 1 > 0
        assert [s["length"] for s in segs] == np.diff(batch["cu_seqlens"]).tolist()
        for s in segs:
            assert 1 <= len(s["uuids"]) == len(s["turn_tasks"]) == len(s["loss_spans"])
            seg_ids = batch["segment_ids"][s["row"], s["offset"]:s["offset"] + s["length"]]
            assert (seg_ids == seg_ids[0]).all() and seg_ids[0] > 0
        assert [tuple(x) for x in batch["turn_spans"][:, 1:3].tolist()] == [c for s in segs for c in s["loss_spans"]]
        n += 1
    assert n == 4


def test_concurrent_first_reads_all_see_the_segments() -> None:
    """Threads reading a batch's segments at once (a logger and the loop) all get them, never an error."""
    import threading
    import time
    items = [{"row": i} for i in range(5)]

    def slow() -> List[Dict[str, Any]]:
        time.sleep(0.01)
        return [dict(s) for s in items]
    for _ in range(20):
        segs = Segments((5, slow))
        got: List[Any] = []
        threads = [threading.Thread(target=lambda: got.append(list(segs))) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == [items] * 6 and segs == items

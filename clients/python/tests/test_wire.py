"""Batch decoding against hand-built ``Batch`` messages and a naive reference decoder."""
from __future__ import annotations

import pickle

import grpc
import numpy as np
import pytest

from flanstream import IGNORE_INDEX, BatchDecoder, FlanStreamError, dense_arrays
from flanstream._proto.flanstream.v1 import data_service_pb2 as pb
from flanstream.info import CorpusInfo
from flanstream.wire import BatchStats, summarize_end

INFO = CorpusInfo.from_proto(pb.CorpusInfo(
    tasks=[pb.TaskInfo(index=i, path=p, domain=p.split("/")[0]) for i, p in
           enumerate(["speech/SR/ASR", "music/G/Genre", "audio/C/Caption"])],
    domains=["speech", "music", "audio"],
))


def simple_batch() -> "pb.Batch":
    # row 0: A = 10 11 12 (offset 0), B = 20 21 22 23 (offset 3), pad; row 1: C = 30..34, pad
    toks = np.array([10, 11, 12, 20, 21, 22, 23, 30, 31, 32, 33, 34], dtype="<i4")
    return pb.Batch(
        step=5, batch_size=2, seq_len=8, pad_id=7, tokens=toks.tobytes(), seg_row=[0, 0, 1], seg_offset=[0, 3, 0],
        seg_length=[3, 4, 5], seg_task=[0, 1, 2], seg_domain=[0, 1, 2], seg_turns=[1, 2, 1],
        uuids=["a", "b1", "b2", "c"], turn_task=[0, 1, 0, 2], seg_text_tokens=[3, 2, 5], seg_audio_tokens=[0, 2, 0],
        loss_spans=[1, 3, 5, 7, 10, 12], resume_token=b"tok",
    )


def test_simple_batch_exact() -> None:
    d = dense_arrays(simple_batch())
    np.testing.assert_array_equal(d["input_ids"], [[10, 11, 12, 20, 21, 22, 23, 7], [30, 31, 32, 33, 34, 7, 7, 7]])
    np.testing.assert_array_equal(d["labels"], [[-100, 11, 12, -100, -100, 22, 23, -100],
                                                [-100, -100, -100, 33, 34, -100, -100, -100]])
    np.testing.assert_array_equal(d["position_ids"], [[0, 1, 2, 0, 1, 2, 3, 0], [0, 1, 2, 3, 4, 0, 0, 0]])
    np.testing.assert_array_equal(d["segment_ids"], [[1, 1, 1, 2, 2, 2, 2, 0], [1, 1, 1, 1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(d["cu_seqlens"], [0, 3, 7, 12])
    assert d["cu_seqlens"].dtype == np.int32 and d["input_ids"].dtype == np.int32
    assert d["max_seqlen"] == 5


def test_segments_and_metadata() -> None:
    out = BatchDecoder(INFO, "numpy")(simple_batch())
    segs = out["segments"]
    assert [s["task"] for s in segs] == ["speech/SR/ASR", "music/G/Genre", "audio/C/Caption"]
    assert [s["domain"] for s in segs] == ["speech", "music", "audio"]
    assert segs[1]["uuids"] == ["b1", "b2"] and segs[1]["turn_tasks"] == ["music/G/Genre", "speech/SR/ASR"]
    assert (segs[1]["row"], segs[1]["offset"], segs[1]["length"]) == (0, 3, 4)
    assert segs[1]["text_tokens"] == 2 and segs[1]["audio_tokens"] == 2 and segs[1]["task_index"] == 1
    assert out["step"] == 5 and out["resume_token"] == b"tok" and "examples" not in out


def test_gaps_offsets_and_empty_rows() -> None:
    toks = np.arange(1, 10, dtype="<i4")  # seg0 row1 @2 len4, seg1 row1 @7 len2, seg2 row2 @0 len3
    b = pb.Batch(batch_size=3, seq_len=10, pad_id=0, tokens=toks.tobytes(), seg_row=[1, 1, 2], seg_offset=[2, 7, 0],
                 seg_length=[4, 2, 3], seg_task=[0, 0, 0], seg_turns=[1, 1, 1], uuids=["x", "y", "z"], loss_spans=[0, 9])
    d = dense_arrays(b)
    np.testing.assert_array_equal(d["input_ids"][0], np.zeros(10))
    np.testing.assert_array_equal(d["input_ids"][1], [0, 0, 1, 2, 3, 4, 0, 5, 6, 0])
    np.testing.assert_array_equal(d["position_ids"][1], [0, 0, 0, 1, 2, 3, 0, 0, 1, 0])
    np.testing.assert_array_equal(d["segment_ids"][1], [0, 0, 1, 1, 1, 1, 0, 2, 2, 0])
    np.testing.assert_array_equal(d["labels"][1], [-100, -100, 1, 2, 3, 4, -100, 5, 6, -100])
    np.testing.assert_array_equal(d["segment_ids"][2], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])


def test_empty_batch() -> None:
    d = dense_arrays(pb.Batch(batch_size=2, seq_len=4, pad_id=3))
    assert (d["input_ids"] == 3).all() and (d["labels"] == IGNORE_INDEX).all() and (d["segment_ids"] == 0).all()
    np.testing.assert_array_equal(d["cu_seqlens"], [0])
    assert d["max_seqlen"] == 0


def reference(b: "pb.Batch"):
    """Per-token loops, the obviously-correct way."""
    B, L = b.batch_size, b.seq_len
    toks = np.frombuffer(b.tokens, dtype="<i4")
    sup = np.zeros(len(toks), bool)
    for s, e in zip(b.loss_spans[0::2], b.loss_spans[1::2]):
        sup[s:e] = True
    ids = np.full((B, L), b.pad_id); lab = np.full((B, L), -100); pos = np.zeros((B, L)); seg = np.zeros((B, L))
    k, count = 0, {}
    for row, off, n in zip(b.seg_row, b.seg_offset, b.seg_length):
        count[row] = count.get(row, 0) + 1
        for j in range(n):
            ids[row, off + j] = toks[k]
            lab[row, off + j] = toks[k] if sup[k] else -100
            pos[row, off + j] = j
            seg[row, off + j] = count[row]
            k += 1
    return ids, lab, pos, seg


@pytest.mark.parametrize("seed", range(20))
def test_random_batches_match_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    B, L = int(rng.integers(1, 6)), int(rng.integers(4, 64))
    rows, offs, lens = [], [], []
    for r in range(B):
        col = int(rng.integers(0, 3))
        while col < L and rng.random() < 0.8:
            n = int(rng.integers(1, L - col + 1))
            rows.append(r); offs.append(col); lens.append(n)
            col += n + int(rng.integers(0, 2))
    N = sum(lens)
    toks = rng.integers(0, 10**6, N).astype("<i4")
    cuts = np.sort(rng.integers(0, N + 1, size=2 * int(rng.integers(0, 5)))).tolist()
    b = pb.Batch(batch_size=B, seq_len=L, pad_id=99, tokens=toks.tobytes(), seg_row=rows, seg_offset=offs,
                 seg_length=lens, seg_task=[0] * len(lens), loss_spans=cuts)
    d = dense_arrays(b, np.int64)
    for got, want in zip((d["input_ids"], d["labels"], d["position_ids"], d["segment_ids"]), reference(b)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(d["cu_seqlens"], np.concatenate([[0], np.cumsum(lens)]))
    assert d["input_ids"].dtype == np.int64


def test_torch_output_dtypes() -> None:
    torch = pytest.importorskip("torch")
    out = BatchDecoder(INFO, "torch")(simple_batch())
    for k in ("input_ids", "labels", "position_ids"):
        assert isinstance(out[k], torch.Tensor) and out[k].dtype == torch.int64 and tuple(out[k].shape) == (2, 8)
    assert out["segment_ids"].dtype == torch.int32 and out["cu_seqlens"].dtype == torch.int32
    assert out["labels"][0, 1].item() == 11


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b.seg_length.__setitem__(0, 4), "sum to"),
    (lambda b: b.seg_offset.__setitem__(1, 2), "overlap"),
    (lambda b: b.seg_row.__setitem__(2, 5), "outside"),
    (lambda b: b.seg_offset.__setitem__(2, 4), "outside"),
    (lambda b: b.loss_spans.append(3), "odd"),
    (lambda b: b.loss_spans.extend([3, 13]), "span"),
    (lambda b: setattr(b, "tokens", b.tokens + b"\x00"), "multiple of 4"),
])
def test_malformed_batches_raise_data_loss(mutate, match) -> None:
    b = simple_batch()
    mutate(b)
    with pytest.raises(FlanStreamError, match=match) as info:
        BatchDecoder(INFO, "numpy")(b)
    assert info.value.code == grpc.StatusCode.DATA_LOSS


def test_stats_target_vs_realized() -> None:
    b = simple_batch()
    b.stats.CopyFrom(pb.Stats(task_examples=[30, 10, 0], task_text_tokens=[300, 100, 0], task_audio_tokens=[5, 6, 0],
                              task_target=[0.5, 0.25, 0.25], domain_examples=[30, 10, 0],
                              domain_target=[0.5, 0.25, 0.25], padding_tokens=7, dropped=2, task_dropped=[0, 2, 0],
                              truncated=1, task_truncated=[1]))
    st = BatchDecoder(INFO, "numpy")(b)["stats"]
    assert st["examples"] == 40 and st["padding_tokens"] == 7 and st["dropped"] == 2
    assert st["tasks"]["speech/SR/ASR"]["realized"] == pytest.approx(0.75)
    assert st["tasks"]["audio/C/Caption"] == {"index": 2, "examples": 0, "text_tokens": 0, "audio_tokens": 0,
                                              "target": 0.25, "realized": 0.0, "dropped": 0, "truncated": 0}
    assert [(t["dropped"], t["truncated"]) for t in st["tasks"].values()] == [(0, 1), (2, 0), (0, 0)]
    assert st["domains"]["music"]["target"] == 0.25 and st["domains"]["music"]["realized"] == pytest.approx(0.25)
    assert st["domains"]["speech"]["text_tokens"] == 300 and st["domains"]["music"]["audio_tokens"] == 6


def test_stats_are_built_lazily_and_survive_copies() -> None:
    """The stats dict is built on first read only, once, and stays equal through pickling and torch's
    default_convert (what DataLoader(ds, batch_size=None) applies to every batch)."""
    b = simple_batch()
    b.stats.CopyFrom(pb.Stats(task_examples=[3, 1, 0], task_target=[0.5, 0.25, 0.25], domain_examples=[3, 1, 0],
                              domain_target=[0.5, 0.25, 0.25]))
    dec = BatchDecoder(INFO, "numpy")
    built = []
    real = dec.stats
    dec.stats = lambda st: built.append(1) or real(st)  # type: ignore[method-assign]
    st = dec(b)["stats"]
    assert isinstance(st, BatchStats) and built == []
    b.stats.Clear()  # the stats do not depend on the message after decoding
    assert st["examples"] == 4 and built == [1]
    assert dict(st) == dec.stats(pb.Stats(task_examples=[3, 1, 0], task_target=[0.5, 0.25, 0.25],
                                          domain_examples=[3, 1, 0], domain_target=[0.5, 0.25, 0.25]))
    assert built == [1, 1]  # the direct call above, not a second build of st
    again = pickle.loads(pickle.dumps(st))
    assert isinstance(again, BatchStats) and again == st
    from torch.utils.data._utils.collate import default_convert
    assert default_convert(st) == st
    with pytest.raises(ValueError, match="mapping or a function"):
        BatchStats(3)  # type: ignore[arg-type]


def test_examples_and_summary() -> None:
    b = pb.Batch(batch_size=1, seq_len=4, examples=[pb.EvalExample(
        uuid="u", task=1, prompt_tokens=np.array([1, 2, 3], "<i4").tobytes(), answer_tokens=np.array([9], "<i4").tobytes(),
        answer_text="rock", answer_audio_ids=["a1"])])
    ex = BatchDecoder(INFO, "numpy")(b)["examples"][0]
    assert ex["uuid"] == "u" and ex["task"] == "music/G/Genre" and ex["answer_text"] == "rock"
    np.testing.assert_array_equal(ex["prompt_tokens"], [1, 2, 3])
    assert ex["answer_audio_ids"] == ["a1"]
    s = summarize_end(pb.StreamEnd(task_examples=[1, 0, 2], total_task_examples=[2, 0, 4], examples=3,
                                   total_examples=6, reason="complete"), INFO.task_paths)
    assert s["task_examples"] == {"speech/SR/ASR": 1, "audio/C/Caption": 2}
    assert s["total_task_examples"]["audio/C/Caption"] == 4 and s["total_examples"] == 6 and s["reason"] == "complete"


def test_corpus_info_reports_unavailable_sets_and_mixtures() -> None:
    msg = pb.CorpusInfo(
        heldout_sets=[
            pb.HeldoutSetInfo(name="loco-audio-caption", available=False, missing=["audio/Audio Caption"]),
            pb.HeldoutSetInfo(name="unseen-flag", fingerprint="ab", available=True),
        ],
        mixtures=["natural"],
        unavailable_mixtures=[pb.UnavailableMixture(name="balanced-domains", missing=["audio", "music"])],
    )
    info = CorpusInfo.from_proto(msg)
    assert info.heldout_set("loco-audio-caption").available is False
    assert info.heldout_set("loco-audio-caption").missing == ("audio/Audio Caption",)
    assert info.heldout_set("unseen-flag").available and info.heldout_set("unseen-flag").missing == ()
    assert info.unavailable_mixtures == {"balanced-domains": ("audio", "music")}
    assert info.mixtures == ("natural",)

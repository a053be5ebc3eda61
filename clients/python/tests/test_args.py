"""Argument validation: every bad argument is a ValueError before anything is sent."""
from __future__ import annotations

import math

import pytest

from flanstream import Client, FlanStreamDataset
from flanstream._proto.flanstream.v1 import data_service_pb2 as pb

T = "127.0.0.1:9"  # never contacted: construction is lazy


@pytest.mark.parametrize("kwargs", [
    {"split": "validation"}, {"packing": "pack"}, {"output": "jax"}, {"packing": "examples", "split": "train"},
    {"batch_size": 0}, {"batch_size": -1}, {"batch_size": 2.5}, {"batch_size": True}, {"seq_len": 0},
    {"seq_len": "4096"}, {"seed": -1}, {"seed": 1.0}, {"prefetch": 0}, {"max_batches": 0}, {"window": 0},
    {"max_turns": -2}, {"overlong": "clip"},
    {"rank": 2, "world_size": 2}, {"rank": -1, "world_size": 2}, {"rank": 0, "world_size": 0}, {"rank": 1},
    {"rank": 1.0, "world_size": 2},
    {"mixture": {"speech": 0.5, "music": 0.5}},                       # weights not under "weights"
    {"mixture": {"weights": {"speech": -1.0}}}, {"mixture": {"weights": {"speech": math.nan}}},
    {"mixture": {"weights": {"speech": math.inf}}}, {"mixture": {"weights": {"speech": "1"}}},
    {"mixture": {"weights": {"": 1.0}}}, {"mixture": {"weights": {"speech/": 1.0}}}, {"mixture": {"weights": [1.0]}},
    {"mixture": {"weights": {"speech": 1.0}, "within": "flat"}}, {"mixture": {"temperature": 0}},
    {"mixture": {"cap": -5}}, {"mixture": {"cap": 1.5}}, {"mixture": 3}, {"mixture": ""},
    {"heldout": {"tasks": "speech"}}, {"heldout": {"selectors": ["speech"]}}, {"heldout": {"tasks": [""]}},
    {"heldout": {"tasks": [], "unseen_flag": "yes"}}, {"heldout": {"exclude_shared_audio": 1}},
    {"heldout": {"scope": "dev"}}, {"heldout": 7}, {"heldout": ""},
    {"heldout": {"datasets": "43_AudioCaps"}}, {"heldout": {"datasets": [""]}},
    {"heldout": {"exclude_overlapping_text": -1}}, {"heldout": {"exclude_overlapping_text": 65}},
    {"heldout": {"exclude_overlapping_text": True}}, {"heldout": {"exclude_overlapping_text": 13.0}},
    {"targets": [""]}, {"split": "test", "mixture": "uniform"},
    {"shuffle": "random"}, {"shuffle": ""}, {"shuffle_window": 0}, {"shuffle_window": 1 << 17},
    {"shuffle": "blocks", "shuffle_window": 2.0}, {"shuffle": "global", "shuffle_window": 8},
    {"split": "test", "shuffle": "blocks"}, {"split": "heldout", "shuffle_window": 4},
])
def test_bad_arguments_raise_value_error(kwargs) -> None:
    with pytest.raises(ValueError):
        FlanStreamDataset(T, **kwargs)


def test_oversized_bearer_token_is_refused_before_sending() -> None:
    # A 100 KB authorization header once left grpcio retrying a refused stream until its deadline.
    from flanstream.client import Client
    with pytest.raises(ValueError, match="authorization header"):
        Client(T, token="x" * 100_000)
    Client(T, token="x" * 16384).close()


def test_no_target() -> None:
    with pytest.raises(ValueError):
        FlanStreamDataset(None)
    with pytest.raises(ValueError):
        FlanStreamDataset([])


def test_good_arguments_build_the_spec() -> None:
    ds = FlanStreamDataset(
        T, split="heldout", batch_size=4, seq_len=128, packing="examples", seed=7, rank=1, world_size=3,
        max_batches=5,
        heldout={"tasks": ["audio/Captioning"], "unseen_flag": True, "exclude_shared_audio": True, "scope": "test"},
        targets=["127.0.0.1:10", T], window=64, overlong="truncate", max_turns=3, output="numpy",
    )
    s = ds.spec
    assert (s.split, s.batch_size, s.seq_len, s.packing, s.seed, s.rank, s.world_size, s.max_batches) == \
        ("heldout", 4, 128, "examples", 7, 1, 3, 5)
    m = FlanStreamDataset(T, mixture={"weights": {"speech": 2, "music/Genre": 1.0}, "within": "temperature",
                                      "temperature": 2.0, "cap": 1000}).spec.mixture
    assert dict(m.weights) == {"speech": 2.0, "music/Genre": 1.0}
    assert (m.within, m.temperature, m.cap) == ("temperature", 2.0, 1000)
    assert list(s.heldout.selectors) == ["audio/Captioning"] and s.heldout.inline and s.heldout.unseen_flag
    assert s.heldout.exclude_shared_audio and s.heldout.scope == "test"
    assert list(s.heldout.datasets) == [] and s.heldout.exclude_overlapping_text == 0
    d = FlanStreamDataset(T, heldout={"tasks": ["speech"], "datasets": ["43_AudioCaps"], "exclude_overlapping_text": 13}).spec
    assert list(d.heldout.datasets) == ["43_AudioCaps"] and d.heldout.exclude_overlapping_text == 13
    assert (s.window, s.overlong, s.max_turns) == (64, "truncate", 3)
    assert ds.targets == [T, "127.0.0.1:10"] and ds.target == "127.0.0.1:10"  # rank 1 starts at replica 1


def test_shuffle_arguments_build_the_spec() -> None:
    s = FlanStreamDataset(T, shuffle="blocks", shuffle_window=64).spec
    assert (s.shuffle, s.shuffle_window) == ("blocks", 64)
    s = FlanStreamDataset(T, shuffle_window=32).spec  # the server's default order (it must be blocks)
    assert (s.shuffle, s.shuffle_window) == ("", 32)
    s = FlanStreamDataset(T).spec  # "" and 0: the server's stream.shuffle and stream.shuffle_window
    assert (s.shuffle, s.shuffle_window) == ("", 0)


def test_named_mixture_and_heldout() -> None:
    s = FlanStreamDataset(T, mixture="balanced", heldout="default").spec
    assert s.mixture.name == "balanced" and s.heldout.name == "default" and not s.heldout.inline
    assert not FlanStreamDataset(T).spec.HasField("mixture")
    assert FlanStreamDataset(T, heldout={"tasks": []}).spec.heldout.inline  # explicitly: no held-out tasks


def test_defaults_without_distributed() -> None:
    ds = FlanStreamDataset(T)
    assert (ds.rank, ds.world_size) == (0, 1)
    s = ds.spec
    assert (s.split, s.batch_size, s.seq_len, s.packing, s.seed, s.max_batches) == ("train", 8, 4096, "packed", 0, 0)


def test_update_mixture_validation() -> None:
    ds = FlanStreamDataset(T)
    with pytest.raises(ValueError):
        ds.update_mixture({"speech": -1}, at_step=3)
    with pytest.raises(ValueError):
        ds.update_mixture({"speech": 1}, at_step=-3)
    with pytest.raises(ValueError):
        ds.update_mixture({"speech": 1}, at_step=3, within="nope")
    ds.update_mixture({"speech": 1}, at_step=0, merge=False)  # nothing handed out yet: any step is in the future
    state = ds.state_dict()
    state.update(resume_token=b"t", step=10)
    ds.load_state_dict(state)
    with pytest.raises(ValueError, match="after the last step"):
        ds.update_mixture({"speech": 1}, at_step=10)
    ds.update_mixture({"speech": 1, "music": 2}, at_step=11, within="uniform", merge=False)
    assert ds.pending_updates == [{"weights": {"speech": 1.0, "music": 2.0}, "at_step": 11, "within": "uniform"}]
    with pytest.raises(ValueError, match="train"):
        FlanStreamDataset(T, split="test").update_mixture({"speech": 1}, at_step=1)


def test_state_dict_before_first_batch_holds_the_spec() -> None:
    ds = FlanStreamDataset(T, batch_size=3, seq_len=64, seed=9)
    st = ds.state_dict()
    assert st["resume_token"] is None and st["step"] is None
    assert pb.StreamSpec.FromString(st["spec"]).seed == 9
    other = FlanStreamDataset(T, rank=0, world_size=1)
    other.load_state_dict(st)
    assert other.spec.seed == 9 and other.spec.batch_size == 3
    with pytest.raises(ValueError):
        other.load_state_dict({"resume_token": b"x"})
    with pytest.raises(ValueError):
        other.load_state_dict(dict(st, resume_token="not-bytes"))


def test_client_arguments() -> None:
    with pytest.raises(ValueError):
        Client("")
    with pytest.raises(ValueError):
        Client(T, token="")
    with pytest.raises(ValueError):
        Client(T, tls=3)  # type: ignore[arg-type]
    assert Client(T, token="s3cret").metadata == (("authorization", "Bearer s3cret"),)


@pytest.mark.parametrize("target, says", [
    ("http://localhost:50051", "is a URL"), ("https://10.0.0.1:443", "is a URL"), ("grpc://host:1", "is a URL"),
    ("localhost", "has no port"), ("10.0.0.1", "has no port"), ("localhost:", "not a server address"),
    ("localhost:port", "not a server address"), ("localhost:50051/", "not a server address"),
    ("::1:50051", "not a server address"), ("localhost:0", "outside 1..65535"), ("localhost:70000", "outside"),
])
def test_malformed_targets_are_refused_at_once_showing_the_form(target: str, says: str) -> None:
    # gRPC reads these as other names (port 443, a DNS name "//host") and retried them for 12 s.
    for make in (lambda: FlanStreamDataset(target), lambda: FlanStreamDataset(T, targets=[target]),
                 lambda: Client(target)):
        with pytest.raises(ValueError, match=says) as e:
            make()
        assert "'host:port'" in str(e.value) and "localhost:50051" in str(e.value)


@pytest.mark.parametrize("target", ["localhost:50051", "127.0.0.1:1", "[::1]:50051", "my-host.example:65535",
                                    "dns:///localhost:50051", "unix:/tmp/flanstream.sock", "ipv4:127.0.0.1:50051"])
def test_well_formed_targets_are_accepted(target: str) -> None:
    FlanStreamDataset(target).close()

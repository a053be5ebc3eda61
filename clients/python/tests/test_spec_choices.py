"""The server publishes what its spec fields accept (``CorpusInfo.choices``): this client agrees
with it, and a spec using a value the server does not offer is refused before the stream opens."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from flanstream import Client, SpecChoices
from flanstream import spec as client_spec
from live_streams import make, take

_DEFAULTS = dict(split="train", batch_size=2, seq_len=64, packing="packed", mixture=None, heldout=None, seed=0,
                 rank=0, world_size=1, max_batches=None, window=None, overlong=None, max_turns=None)


def spec(**kw: Any) -> Any:
    return client_spec.build_spec(**{**_DEFAULTS, **kw})


def test_the_client_agrees_with_the_server(server) -> None:
    c = Client(server.target)
    try:
        choices = c.corpus_info().choices
    finally:
        c.close()
    assert choices.splits == client_spec.SPLITS
    assert choices.packings == client_spec.PACKINGS
    assert choices.policies == client_spec.POLICIES
    assert choices.within == client_spec.WITHIN
    assert choices.audio_layouts == client_spec.AUDIO_LAYOUTS
    assert choices.shuffles == client_spec.SHUFFLES
    assert choices.overlong == client_spec.OVERLONG
    assert choices.heldout_scopes == client_spec.SCOPES
    assert choices.default_lag_steps == client_spec.DEFAULT_LAG_STEPS
    # The examples-only-on-evaluation rule: the client refuses exactly what the server does.
    assert choices.eval_only_packings == ("examples",)
    with pytest.raises(ValueError, match="evaluation"):
        spec(packing="examples")


def test_check_refuses_values_the_server_does_not_offer() -> None:
    older = SpecChoices(splits=("train",), packings=("none", "packed", "examples"), eval_only_packings=("examples",),
                        policies=("static", "odm"), shuffles=("global",))
    ok = spec()
    older.check(ok)
    for args, field in (
        ({"packing": "multiturn"}, "packing"),
        ({"mixture": {"weights": {"speech": 1.0}, "policy": "excess-loss"}}, "mixture\\['policy'\\]"),
        ({"shuffle": "blocks"}, "shuffle"),
    ):
        with pytest.raises(ValueError, match=f"^{field}=.* not offered by this server; it offers: "):
            older.check(spec(**args))
    # An evaluation-only packing on a train stream, as this server defines it.
    stricter = dataclasses.replace(older, eval_only_packings=("examples", "none"))
    with pytest.raises(ValueError, match="packing='none' serves evaluation splits only"):
        stricter.check(spec(packing="none"))
    # A server that publishes nothing checks nothing.
    SpecChoices().check(spec(packing="multiturn"))


def test_a_dataset_checks_its_spec_against_the_server_before_streaming(server) -> None:
    ds = make(server.target, shuffle="blocks")
    info = ds.corpus_info
    assert "blocks" in info.choices.shuffles
    # What a server without the blocks order would publish: the stream is refused before it opens.
    ds._info = dataclasses.replace(info, choices=dataclasses.replace(info.choices, shuffles=("global",)))
    with pytest.raises(ValueError, match="shuffle='blocks' is not offered by this server"):
        take(ds, 1)

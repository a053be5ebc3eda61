"""Validation of user arguments and conversion into ``StreamSpec`` / ``MixtureUpdate`` messages.

Every problem is reported as a ``ValueError`` naming the argument, before anything is sent.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from ._proto.flanstream.v1 import data_service_pb2 as pb
from .client import check_filter, check_target

__all__ = [
    "SPLITS", "PACKINGS", "OUTPUTS", "WITHIN", "OVERLONG", "SCOPES",
    "POLICIES", "DEFAULT_LAG_STEPS", "policy_lag", "MixtureArg", "HeldoutArg", "build_spec", "build_mixture", "build_heldout",
    "AUDIO_LAYOUTS", "AudioArg", "build_audio", "SHUFFLES",
    "build_update", "update_to_dict", "normalize_targets", "check_positive_int",
]

SPLITS = ("train", "heldout", "dev", "test")
PACKINGS = ("none", "packed", "multiturn", "examples")
OUTPUTS = ("torch", "numpy")
WITHIN = ("proportional", "uniform", "temperature")
OVERLONG = ("drop", "truncate")
SCOPES = ("all", "test")
#: Audio-token layouts (docs/real-data.md): ``flat`` frame-major, ``delay`` the MusicGen/Moshi delay pattern.
AUDIO_LAYOUTS = ("flat", "delay")
#: Train record orders: ``global`` (a permutation of each whole task) or ``blocks`` (blocks of
#: consecutive records permuted, drawn ``shuffle_window`` blocks at a time: fewer index pages read).
SHUFFLES = ("global", "blocks")
_UINT32 = 2**32 - 1
_UINT64 = 2**64 - 1

#: ``"name"`` of a named mixture, or ``{"weights": {...}, "within": ..., "temperature": ..., "cap": ...}``
MixtureArg = Union[None, str, Mapping[str, Any]]
#: ``"name"`` of a named held-out set, or ``{"tasks": [...], "datasets": [...], "unseen_flag": ...,
#: "exclude_shared_audio": ..., "exclude_overlapping_text": N, "scope": ...}``
HeldoutArg = Union[None, str, Mapping[str, Any]]

_MIXTURE_KEYS = ("name", "weights", "within", "temperature", "cap", "policy", "every_steps", "lag_steps", "lr",
                 "smoothing", "min_weight", "reference")
#: Closed-loop policies (``Mixture.policy``); see the repository README, "Closed-loop reweighting".
POLICIES = ("static", "odm", "excess-loss", "ado")
#: The server's ``lag_steps`` when a policy leaves it 0.
DEFAULT_LAG_STEPS = 8
#: ``{"codebooks": k, "layout": "flat" | "delay"}``: the first k codebooks (0 = all) in that layout
AudioArg = Optional[Mapping[str, Any]]
_AUDIO_KEYS = ("codebooks", "layout")
_HELDOUT_KEYS = ("tasks", "datasets", "unseen_flag", "exclude_shared_audio", "exclude_overlapping_text", "scope")


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check_positive_int(name: str, value: Any, maximum: int = _UINT32, optional: bool = False) -> Optional[int]:
    """``value`` as an ``int`` in ``[1, maximum]`` (or ``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if not _is_int(value) or not 1 <= int(value) <= maximum:
        raise ValueError(f"{name} must be a positive integer (at most {maximum}), got {value!r}")
    return int(value)


def _check_nonneg_int(name: str, value: Any, maximum: int = _UINT64) -> int:
    if not _is_int(value) or not 0 <= int(value) <= maximum:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _check_weights(name: str, weights: Any) -> Dict[str, float]:
    if not isinstance(weights, Mapping):
        raise ValueError(f"{name} must be a dict mapping selectors to non-negative weights, got {type(weights).__name__}")
    out: Dict[str, float] = {}
    for key, w in weights.items():
        if not isinstance(key, str) or not key or key != key.strip("/"):
            raise ValueError(f"{name}: selector {key!r} must be a non-empty 'domain[/major[/minor]]' string")
        if isinstance(w, bool) or not isinstance(w, numbers.Real):
            raise ValueError(f"{name}[{key!r}] must be a number, got {w!r}")
        wf = float(w)
        if not math.isfinite(wf) or wf < 0:
            raise ValueError(f"{name}[{key!r}] must be a finite non-negative weight, got {w!r}")
        out[key] = wf
    return out


def _mixture_options(prefix: str, within: Any, temperature: Any, cap: Any) -> Dict[str, Any]:
    opts: Dict[str, Any] = {}
    if within is not None:
        opts["within"] = _check_choice(f"{prefix}within", within, WITHIN)
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
                or not math.isfinite(float(temperature)) or float(temperature) <= 0:
            raise ValueError(f"{prefix}temperature must be a positive number, got {temperature!r}")
        opts["temperature"] = float(temperature)
    if cap is not None:
        opts["cap"] = _check_nonneg_int(f"{prefix}cap", cap)
    return opts


def build_mixture(mixture: MixtureArg) -> Optional["pb.Mixture"]:
    """``mixture`` argument → ``Mixture`` message (``None`` = natural proportions)."""
    if mixture is None:
        return None
    if isinstance(mixture, str):
        if not mixture:
            raise ValueError("mixture name must be non-empty")
        return pb.Mixture(name=mixture)
    if not isinstance(mixture, Mapping):
        raise ValueError(f"mixture must be None, a named mixture (str) or a dict, got {type(mixture).__name__}")
    unknown = [k for k in mixture if k not in _MIXTURE_KEYS]
    if unknown:
        hint = " (selector weights go under 'weights': mixture={'weights': {...}})" if all(
            isinstance(k, str) for k in unknown) else ""
        raise ValueError(f"mixture: unknown key(s) {unknown}; expected some of {list(_MIXTURE_KEYS)}{hint}")
    msg = pb.Mixture()
    name = mixture.get("name")
    if name is not None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"mixture['name'] must be a non-empty string, got {name!r}")
        msg.name = name
    if mixture.get("weights") is not None:
        msg.weights.update(_check_weights("mixture['weights']", mixture["weights"]))
    opts = _mixture_options("mixture['", mixture.get("within"), mixture.get("temperature"), mixture.get("cap"))
    for k, v in opts.items():
        setattr(msg, k, v)
    _policy_options(msg, mixture)
    return msg


def _policy_options(msg: "pb.Mixture", mixture: Mapping[str, Any]) -> None:
    """The closed-loop fields of a mixture dict (the server checks the combination)."""
    if mixture.get("policy") is not None:
        msg.policy = _check_choice("mixture['policy']", mixture["policy"], POLICIES)
    for key in ("every_steps", "lag_steps"):
        if mixture.get(key) is not None:
            setattr(msg, key, check_positive_int(f"mixture[{key!r}]", mixture[key]))
    for key in ("lr", "smoothing", "min_weight"):
        v = mixture.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) or float(v) < 0:
            raise ValueError(f"mixture[{key!r}] must be a finite non-negative number, got {v!r}")
        setattr(msg, key, float(v))
    if mixture.get("reference") is not None:
        msg.reference.update(_check_weights("mixture['reference']", mixture["reference"]))


def policy_lag(spec: "pb.StreamSpec") -> Optional[int]:
    """``lag_steps`` of the spec's policy, or ``None`` for a static mixture (reports never feed it)."""
    if spec.mixture.policy in ("", "static"):
        return None
    return int(spec.mixture.lag_steps) or DEFAULT_LAG_STEPS


def build_heldout(heldout: HeldoutArg) -> Optional["pb.Heldout"]:
    """``heldout`` argument → ``Heldout`` message (``None`` = the server's default set)."""
    if heldout is None:
        return None
    if isinstance(heldout, str):
        if not heldout:
            raise ValueError("heldout name must be non-empty")
        return pb.Heldout(name=heldout)
    if not isinstance(heldout, Mapping):
        raise ValueError(f"heldout must be None, a set name (str) or a dict, got {type(heldout).__name__}")
    unknown = [k for k in heldout if k not in _HELDOUT_KEYS]
    if unknown:
        raise ValueError(f"heldout: unknown key(s) {unknown}; expected some of {list(_HELDOUT_KEYS)}")
    lists = {}
    for key, what in (("tasks", "selectors"), ("datasets", "dataset folder names (NN_Dataset)")):
        items = heldout.get(key, [])
        if isinstance(items, str) or not isinstance(items, Iterable):
            raise ValueError(f"heldout[{key!r}] must be a list of {what}, got {items!r}")
        lists[key] = list(items)
        for t in lists[key]:
            if not isinstance(t, str) or not t:
                raise ValueError(f"heldout[{key!r}] entries must be non-empty strings ({what}), got {t!r}")
    msg = pb.Heldout(selectors=lists["tasks"], datasets=lists["datasets"], inline=True)
    n = heldout.get("exclude_overlapping_text", 0)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 64:
        raise ValueError(f"heldout['exclude_overlapping_text'] must be an int N in [0, 64] (0 = off, 13 is usual), got {n!r}")
    msg.exclude_overlapping_text = n
    for key in ("unseen_flag", "exclude_shared_audio"):
        value = heldout.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f"heldout[{key!r}] must be a bool, got {value!r}")
        setattr(msg, key, value)
    if heldout.get("scope") is not None:
        msg.scope = _check_choice("heldout['scope']", heldout["scope"], SCOPES)
    return msg


def build_audio(audio: AudioArg) -> "pb.AudioSpec":
    """``audio`` argument → ``AudioSpec`` message (``None`` = flat over all codebooks).

    The server checks ``codebooks`` against the corpus (``INVALID_ARGUMENT`` beyond its count).
    """
    if audio is None:
        return pb.AudioSpec()
    if not isinstance(audio, Mapping):
        raise ValueError(f"audio must be None or a dict like {{'codebooks': 1, 'layout': 'delay'}}, got {type(audio).__name__}")
    unknown = [k for k in audio if k not in _AUDIO_KEYS]
    if unknown:
        raise ValueError(f"audio: unknown key(s) {unknown}; expected some of {list(_AUDIO_KEYS)}")
    msg = pb.AudioSpec(codebooks=_check_nonneg_int("audio['codebooks']", audio.get("codebooks", 0), _UINT32))
    msg.layout = _check_choice("audio['layout']", audio.get("layout", "flat"), AUDIO_LAYOUTS)
    return msg


def build_spec(
    *, split: str, batch_size: Any, seq_len: Any, packing: str, mixture: MixtureArg, heldout: HeldoutArg,
    seed: Any, rank: int, world_size: int, max_batches: Any, window: Any, overlong: Any, max_turns: Any,
    audio: AudioArg = None, shuffle: Optional[str] = None, shuffle_window: Any = None, filter: Optional[str] = None,
) -> "pb.StreamSpec":
    """Validate the dataset arguments and build the ``StreamSpec`` (``ValueError`` on a bad one)."""
    _check_choice("split", split, SPLITS)
    _check_choice("packing", packing, PACKINGS)
    if packing == "examples" and split == "train":
        raise ValueError("packing='examples' is for evaluation splits ('heldout', 'dev', 'test'), not 'train'")
    spec = pb.StreamSpec(
        split=split,
        batch_size=check_positive_int("batch_size", batch_size),
        seq_len=check_positive_int("seq_len", seq_len),
        packing=packing,
        seed=_check_nonneg_int("seed", seed),
        rank=rank,
        world_size=world_size,
        max_batches=check_positive_int("max_batches", max_batches, _UINT64, optional=True) or 0,
        window=check_positive_int("window", window, optional=True) or 0,
        max_turns=check_positive_int("max_turns", max_turns, optional=True) or 0,
    )
    if overlong is not None:
        spec.overlong = _check_choice("overlong", overlong, OVERLONG)
    spec.filter = check_filter(filter)
    if shuffle is not None or shuffle_window is not None:
        if split != "train":
            raise ValueError(f"shuffle applies to split 'train' only; evaluation split {split!r} is served whole and in order")
        if shuffle is not None:
            spec.shuffle = _check_choice("shuffle", shuffle, SHUFFLES)
        if shuffle_window is not None:
            if shuffle == "global":
                raise ValueError("shuffle_window applies to shuffle='blocks' only")
            spec.shuffle_window = check_positive_int("shuffle_window", shuffle_window, 1 << 16)
    mix = build_mixture(mixture)
    if mix is not None and split != "train":
        raise ValueError(f"mixture applies to split 'train' only; evaluation split {split!r} is served whole")
    if mix is not None:
        spec.mixture.CopyFrom(mix)
    held = build_heldout(heldout)
    if held is not None:
        spec.heldout.CopyFrom(held)
    if audio is not None:
        spec.audio.CopyFrom(build_audio(audio))
    return spec


def build_update(update: Mapping[str, Any]) -> "pb.MixtureUpdate":
    """A pending-update dict (see :func:`update_to_dict`) → ``MixtureUpdate`` message."""
    msg = pb.MixtureUpdate(weights=update["weights"], apply_at_step=update["at_step"])
    for key in ("within", "temperature", "cap"):
        if update.get(key) is not None:
            setattr(msg, key, update[key])
    return msg


def update_to_dict(weights: Any, at_step: Any, within: Any = None, temperature: Any = None, cap: Any = None) -> Dict[str, Any]:
    """Validate ``update_mixture`` arguments into a plain (picklable, state_dict-able) dict."""
    out: Dict[str, Any] = {
        "weights": _check_weights("weights", weights),
        "at_step": _check_nonneg_int("at_step", at_step),
    }
    out.update(_mixture_options("", within, temperature, cap))
    return out


def normalize_targets(target_or_targets: Union[str, Sequence[str], None], targets: Optional[Sequence[str]]) -> List[str]:
    """Merge the positional target(s) and ``targets=`` into one de-duplicated, ordered list."""
    out: List[str] = []
    for group in (target_or_targets, targets):
        if group is None:
            continue
        items = [group] if isinstance(group, str) else list(group)
        for t in items:
            check_target(t)
            if t not in out:
                out.append(t)
    if not out:
        raise ValueError("at least one target ('host:port') is required")
    return out

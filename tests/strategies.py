"""Hypothesis strategies for frames: built from the channel shapes, plus mutations that break them.

Conforming frames exercise the typed columns; mutated ones (unknown fields, changed types, unknown
channels, huge integers) exercise the exact-text fallback. Both must round-trip.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from schemas.channels import CHANNELS
from schemas.shapes import Bool, Float, Int, Json, List, Map, Shape, Str, Struct

ODD_COINS = ["BTC", "ETH", "kPEPE", "@107", "@1", "PURR/USDC", "xyz:HOOD", "..", "%41", "a=b", "HYPE/USDC"]

price_like = st.one_of(
    st.from_regex(r"-?[0-9]{1,7}\.[0-9]{1,6}", fullmatch=True),
    st.sampled_from(["1.20000", "98450.50", "0.0", "106217.0"]),
)
odd_text = st.one_of(price_like, st.sampled_from(ODD_COINS), st.text(max_size=12))
int64 = st.integers(-(2**63), 2**63 - 1)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False), odd_text)
json_values = st.recursive(
    json_leaf,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)


def from_shape(shape: Shape) -> st.SearchStrategy[Any]:
    """Values that fit ``shape`` exactly, optional fields sometimes left out."""
    if isinstance(shape, Str):
        return odd_text
    if isinstance(shape, Int):
        return st.one_of(int64, st.integers(0, 2**41))
    if isinstance(shape, Float):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(shape, Bool):
        return st.booleans()
    if isinstance(shape, Json):
        return json_values
    if isinstance(shape, Map):
        return st.dictionaries(st.sampled_from(ODD_COINS), from_shape(shape.value), max_size=6)
    if isinstance(shape, List):
        item = from_shape(shape.item)
        if shape.nullable_items:
            item = st.one_of(st.none(), item)
        return st.lists(item, max_size=4)
    if isinstance(shape, Struct):
        parts = []
        for f in shape.fields:
            value = from_shape(f.shape)
            if f.nullable:
                value = st.one_of(st.none(), value)
            if f.optional:
                if isinstance(f.shape, Json):
                    value = value.filter(lambda v: v is not None)  # present-but-null is not "optional"
                parts.append(st.one_of(st.just(_ABSENT), value))
            else:
                parts.append(value)

        def build(values: list[Any]) -> dict[str, Any]:
            return {f.name: v for f, v in zip(shape.fields, values) if v is not _ABSENT}

        return st.tuples(*parts).map(lambda values: build(list(values)))
    raise TypeError(shape)


_ABSENT = object()


def frames_of(channel: str) -> st.SearchStrategy[dict[str, Any]]:
    return from_shape(CHANNELS[channel].shape).map(lambda data: {"channel": channel, "data": data})


def _add_unknown_field(frame: dict[str, Any], value: Any) -> dict[str, Any]:
    data = frame["data"]
    if isinstance(data, dict):
        return {"channel": frame["channel"], "data": {**data, "brandNewField": value}}
    return {**frame, "extra": value}


def _retype_first_field(frame: dict[str, Any]) -> dict[str, Any]:
    data = frame["data"]
    if isinstance(data, dict) and data:
        key = next(iter(data))
        return {"channel": frame["channel"], "data": {**data, key: [data[key]]}}
    return {"channel": frame["channel"], "data": {"was": data}}


def mutated_frames_of(channel: str) -> st.SearchStrategy[dict[str, Any]]:
    """Frames of a known channel that drifted from its shape."""
    base = frames_of(channel)
    return st.one_of(
        st.tuples(base, json_values).map(lambda t: _add_unknown_field(*t)),
        base.map(_retype_first_field),
        base.map(lambda f: {"data": f["data"], "channel": f["channel"]}),  # keys in another order
    )


unknown_frames = st.builds(
    lambda channel, data: {"channel": channel, "data": data},
    st.sampled_from(["spotState", "webData3", "allDexsClearinghouseState", "twapStates", "brandNewChannel"]),
    json_values,
)

any_frames = st.one_of(
    *(frames_of(c) for c in sorted(CHANNELS)),
    *(mutated_frames_of(c) for c in sorted(CHANNELS)),
    unknown_frames,
)

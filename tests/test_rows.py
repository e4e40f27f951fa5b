from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import FrameError, from_row, parse_subscription, rows_to_batch, to_row
from schemas.channels import CHANNELS
from schemas.jsontext import NotVectorisable, batch_frame_bytes, render
from schemas.rows import batch_messages
from schemas.shapes import Int, List, Str, Struct, column_values, field

from .conftest import load_real_frames, same
from .strategies import any_frames, frames_of, mutated_frames_of, unknown_frames


def _row(msg, **kw):
    return to_row(msg, recv_ns=1_751_427_259_657_000_000, session="s1", seq=1, **kw)


@pytest.mark.parametrize("entry", load_real_frames(), ids=lambda e: e["channel"])
def test_real_frames_round_trip_through_typed_columns(entry):
    msg = entry["message"]
    row = _row(msg)
    if msg["channel"] != "subscriptionResponse":
        assert row.typed, f"{entry['source']} should fit the {msg['channel']} shape"
    assert same(from_row(row), msg)
    assert same(next(batch_messages(rows_to_batch([row]))), msg)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@given(data=st.data())
@settings(max_examples=40)
def test_frames_of_every_channel_round_trip_through_arrow(channel, data):
    frames = data.draw(st.lists(frames_of(channel), min_size=1, max_size=5))
    rows = [_row(f) for f in frames]
    assert all(r.typed for r in rows)  # a conforming frame uses the typed columns
    for frame, back in zip(frames, batch_messages(rows_to_batch(rows))):
        assert same(back, frame)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@given(data=st.data())
@settings(max_examples=30)
def test_drifted_frames_keep_their_exact_text(channel, data):
    frame = data.draw(mutated_frames_of(channel))
    row = _row(frame)
    assert same(from_row(row), frame)
    assert same(next(batch_messages(rows_to_batch([row]))), frame)


@given(unknown_frames)
def test_unknown_channels_are_kept_losslessly(frame):
    row = _row(frame)
    assert row.raw is not None and row.channel == frame["channel"]
    assert same(from_row(row), frame)


@given(any_frames)
def test_any_frame_round_trips(frame):
    assert same(from_row(_row(frame)), frame)


def test_integers_past_64_bits_survive():
    frame = {"channel": "trades", "data": [{"coin": "BTC", "tid": 2**70}]}
    assert same(from_row(_row(frame)), frame)


def test_user_frames_get_the_subscriptions_user():
    user = "0xcc0a3b6e3267c84361e91d8230868eea53431e4b"
    msg = {"channel": "user", "data": {"nonUserCancel": [{"coin": "BTC", "oid": 1}]}}
    row = _row(msg, subscription=parse_subscription({"type": "userEvents", "user": user}))
    assert (row.channel, row.coin, row.user) == ("userEvents", "_all", user)


def test_partition_keys():
    spot = _row({"channel": "activeSpotAssetCtx", "data": {"coin": "PURR/USDC", "ctx": {}}})
    assert (spot.channel, spot.coin, spot.date) == ("activeAssetCtx", "PURR/USDC", "2025-07-02")
    empty = _row({"channel": "trades", "data": []}, subscription=parse_subscription({"type": "trades", "coin": "ETH"}))
    assert empty.coin == "ETH"
    aggregated = _row(
        {"channel": "l2Book", "data": {"coin": "BTC", "time": 1, "levels": [[], []]}},
        subscription=parse_subscription({"type": "l2Book", "coin": "BTC", "nSigFigs": 5}),
    )
    assert aggregated.stream == "l2Book:btc,nSigFigs=5,mantissa=None"


def test_exchange_time_of_each_channel():
    real = {e["channel"]: e["message"] for e in load_real_frames()}
    assert _row(real["l2Book"]).exch_ms == 1751427259657
    assert _row(real["trades"]).exch_ms == 1751430933565
    assert _row(real["user"]).exch_ms == 1781528065899
    assert _row(real["allMids"]).exch_ms is None
    candle = {"channel": "candle", "data": {"t": 60000, "T": 119999, "s": "BTC", "i": "1m", "o": "1", "c": "1", "h": "1", "l": "1", "v": "0", "n": 0}}
    assert _row(candle).exch_ms == 60000


@pytest.mark.parametrize("bad", [None, [], "text", {"data": 1}, {"channel": 3}])
def test_things_that_are_not_frames_are_refused(bad):
    with pytest.raises(FrameError):
        _row(bad)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@given(data=st.data())
@settings(max_examples=60)
def test_compiled_checks_agree_with_the_shapes(channel, data):
    from schemas.shapes import Mismatch

    spec = CHANNELS[channel]
    value = data.draw(st.one_of(frames_of(channel), mutated_frames_of(channel)))["data"]
    results = []
    for prepare in (spec.shape.prepare, spec.prepare):
        try:
            results.append(("ok", prepare(value)))
        except Mismatch:
            results.append(("mismatch", None))
    assert results[0] == results[1]


def test_rows_from_a_given_subscription_match_rows_inferred_from_the_frame(real_frames):
    for msg in real_frames:
        inferred = _row(msg)
        if msg["channel"] == "subscriptionResponse":
            continue
        sub = parse_subscription({"l2Book": {"type": "l2Book", "coin": "BTC"}, "trades": {"type": "trades", "coin": "BTC"},
                                  "allMids": {"type": "allMids"}}.get(msg["channel"], {"type": "userTwapHistory", "user": "0xe746435d136c4714383a64ee28e35c8bdb8d5cb1"}), allow_unknown=True)
        given_row = _row(msg, subscription=sub)
        if given_row.channel == inferred.channel:
            assert (given_row.coin, given_row.data, given_row.raw) == (inferred.coin, inferred.data, inferred.raw)


# --- frames rebuilt as JSON text (schemas.jsontext): equal to the dicts, byte for byte after dumps ---


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@given(data=st.data())
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)  # CI machines are slow
def test_frames_rebuilt_as_text_equal_what_was_received(channel, data):
    # a typed row first: a batch's schema (with its data column) is the first row's, as the writer's partitions are
    frames = [data.draw(frames_of(channel))] + data.draw(st.lists(st.one_of(frames_of(channel), mutated_frames_of(channel)), max_size=3))
    batch = rows_to_batch([_row(f) for f in frames])
    for frame, back in zip(frames, batch_messages(batch), strict=True):
        assert same(back, frame)
    assert batch_frame_bytes(batch) == [orjson.dumps(f) for f in frames]


def test_real_frames_rebuild_as_text_exactly():
    for entry in load_real_frames():
        msg = entry["message"]
        batch = rows_to_batch([_row(msg)])
        assert batch_frame_bytes(batch) == [orjson.dumps(msg)], entry["source"]
        assert same(next(batch_messages(batch)), msg)


def test_strings_that_need_escaping_are_escaped_or_left_to_the_slow_path():
    frames = [{"channel": "trades", "data": [{"coin": c, "side": "B", "px": "1", "sz": "1", "time": 1, "hash": "0x", "tid": 1, "users": ["a", "b"]}]} for c in ['a"b', "back\\slash", "tab\there", "ünï"]]
    for frame in frames:
        batch = rows_to_batch([_row(frame)])
        assert batch_frame_bytes(batch) == [orjson.dumps(frame)]


def test_optional_fields_no_row_has_are_dropped_per_batch_and_rows_still_round_trip():
    frames = [
        {"channel": "user", "data": {}},  # every optional field absent: nothing left to keep
        {"channel": "user", "data": {"nonUserCancel": [{"coin": "BTC", "oid": 1}]}},
        {"channel": "user", "data": {"fills": []}},
    ]
    for batch_frames_ in (frames, frames[1:], frames[:1]):
        batch = rows_to_batch([_row(f) for f in batch_frames_])
        assert [orjson.dumps(m) for m in batch_messages(batch)] == [orjson.dumps(f) for f in batch_frames_]


def _dictionary_strings(array: pa.Array) -> pa.Array:
    """``array`` with every string leaf dictionary-encoded, as Replay reads a book's prices."""
    if pa.types.is_string(array.type):
        return pc.dictionary_encode(array)
    if pa.types.is_struct(array.type):
        children = [_dictionary_strings(array.field(i)) for i in range(array.type.num_fields)]
        return pa.StructArray.from_arrays(children, fields=[f.with_type(c.type) for f, c in zip(array.type, children)], mask=array.is_null() if array.null_count else None)
    if pa.types.is_list(array.type):
        offsets = array.offsets
        values = array.values.slice(offsets[0].as_py(), offsets[-1].as_py() - offsets[0].as_py())
        rebased = pc.subtract(offsets, offsets[0]).cast(pa.int32())
        return pa.ListArray.from_arrays(rebased, _dictionary_strings(values), mask=array.is_null() if array.null_count else None)
    return array


def _drawn_column(channel: str, data) -> tuple:
    """A channel's spec, some frames, and their ``data`` as Replay reads it: a slice after a null row."""
    spec = CHANNELS[channel]
    frames = data.draw(st.lists(frames_of(channel), min_size=1, max_size=6))
    start = data.draw(st.integers(0, len(frames) - 1))
    array = pa.array([None] + [spec.prepare(f["data"]) for f in frames], spec.shape.arrow_type).slice(1 + start)
    return spec, frames[start:], array


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@given(data=st.data())
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_values_built_column_by_column_equal_the_frames(channel, data):
    spec, frames, array = _drawn_column(channel, data)
    expected = [f["data"] for f in frames]
    for variant in (array, _dictionary_strings(array)):
        got = column_values(spec.shape, variant)
        assert len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected))  # values and key order
    with_null = pa.array([spec.prepare(frames[0]["data"]), None], spec.shape.arrow_type)
    assert column_values(spec.shape, with_null)[1] is None


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@given(data=st.data())
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_text_rendered_column_by_column_equals_the_frames_dumped(channel, data):
    # as Replay reads parts: a slice after a null row, strings plain or dictionary-encoded (whose
    # texts come from a table of distinct values, as do small integers)
    spec, frames, array = _drawn_column(channel, data)
    expected = [orjson.dumps(f["data"]).decode() for f in frames]
    for variant in (array, _dictionary_strings(array)):
        try:
            texts = render(spec.shape, variant).to_pylist()
        except NotVectorisable:  # a control character or a float: the caller builds dicts instead
            continue
        assert texts == expected
    assert render(spec.shape, pa.array([None], spec.shape.arrow_type)).to_pylist() == [None]


_ONE_ITEM_SHAPES = {
    "struct": List(Struct(field("px", Str()), field("n", Int()), field("cloid", Str(), optional=True))),
    "nullable": List(Str(), nullable_items=True),
}


@pytest.mark.parametrize("name", sorted(_ONE_ITEM_SHAPES))
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_lists_of_one_item_each_render_as_their_dumps(name, data):
    """A column whose every list holds one item (a live userFills frame's one fill) is rendered by a
    shortcut: the brackets folded into the item's text. Sliced as Replay reads parts, with affixes."""
    shape = _ONE_ITEM_SHAPES[name]
    if name == "struct":
        cloid = st.one_of(st.just({}), st.builds(lambda c: {"cloid": c}, st.text(max_size=3)))  # keys in the shape's order
        item = st.builds(lambda px, n, rest: {"px": px, "n": n, **rest}, st.text(max_size=4), st.integers(-(2**63), 2**63 - 1), cloid)
    else:
        item = st.one_of(st.none(), st.text(max_size=4))
    values = data.draw(st.lists(st.lists(item, min_size=1, max_size=1), min_size=1, max_size=6))
    head = data.draw(st.lists(st.lists(item, min_size=0, max_size=2), max_size=2))  # sliced off: offsets no longer start at 0
    array = pa.array([shape.prepare(v) for v in head + values], shape.arrow_type).slice(len(head))
    try:
        texts = render(shape, array, "<", ">").to_pylist()
    except NotVectorisable:  # a control character: the caller builds dicts instead
        return
    assert texts == ["<" + orjson.dumps(v).decode() + ">" for v in values]

"""The archiver's bulk path: hot-channel frames a block at a time through Arrow, proven exact or refused.

Whatever ``typed_block`` takes must restore to the received frames (values and key order); whatever it
refuses goes frame by frame. Either way, journal records -> archive -> replay gives the frames back.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.blocks import FrameBlocks
from recorder.journal import DATA, Record
from recorder.writer import ArchiveWriter
from replay import Replay
from schemas import parse_subscription
from schemas.channels import channel_spec
from schemas.framebulk import BULK_CHANNELS, typed_block
from schemas.shapes import column_values

from .benchmarks.common import synthetic_frames
from .conftest import same
from .strategies import frames_of, mutated_frames_of, price_like

COIN = "BTC"


def _own_coin(frame: dict[str, Any]) -> dict[str, Any]:
    """The frame as the subscription's coin would send it (frames of other coins go frame by frame)."""
    data = frame.get("data")
    if isinstance(data, dict) and "coin" in data:
        return {**frame, "data": {**data, "coin": COIN}}
    if isinstance(data, list):
        return {**frame, "data": [{**t, "coin": COIN} if isinstance(t, dict) and "coin" in t else t for t in data]}
    return frame


def _reversed_keys(value: Any, depth: int) -> Any:
    """The value with the keys of its objects at ``depth`` (0: the frame) in reverse order."""
    if isinstance(value, dict):
        items = [(k, _reversed_keys(v, depth - 1)) for k, v in value.items()]
        return dict(items[::-1] if depth == 0 else items)
    if isinstance(value, list):
        return [_reversed_keys(v, depth) for v in value]  # a list's items sit at the same depth
    return value


def _text(frame: dict[str, Any], form: str) -> bytes:
    """The wire text: compact as the exchange sends it; spaced; or with one level's keys reversed
    (forms the bulk path must refuse, or prove)."""
    if form.startswith("reversed"):
        frame = _reversed_keys(frame, int(form[-1]))
    try:
        compact = orjson.dumps(frame)
    except TypeError:  # an integer past 64 bits
        compact = json.dumps(frame, separators=(",", ":")).encode()
    return json.dumps(json.loads(compact), separators=(", ", ": ")).encode() if form == "spaced" else compact


FORMS = ["compact"] * 6 + ["spaced", "reversed0", "reversed1", "reversed2", "reversed3"]


def blocks_of(channel: str) -> st.SearchStrategy[list[bytes]]:
    frame = st.one_of(frames_of(channel).map(_own_coin), frames_of(channel).map(_own_coin), mutated_frames_of(channel))
    return st.lists(st.tuples(frame, st.sampled_from(FORMS)).map(lambda t: _text(*t)), min_size=1, max_size=24)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), channel=st.sampled_from(BULK_CHANNELS))
def test_what_the_bulk_path_takes_restores_to_the_received_frames(data, channel):
    texts = data.draw(blocks_of(channel))
    columns = typed_block(channel, COIN, texts)
    if columns is None:
        return
    typed, exch_ms = columns
    spec = channel_spec(channel)
    assert spec is not None
    for text, value, ms in zip(texts, column_values(spec.shape, typed), exch_ms.to_pylist()):
        received = json.loads(text)
        assert same({"channel": channel, "data": value}, received)
        assert ms == spec.exch_ms(received["data"])


level = st.builds(lambda px, sz, n: {"px": px, "sz": sz, "n": n}, price_like, price_like, st.integers(0, 2**40))
books = st.builds(
    lambda time, levels: {"channel": "l2Book", "data": {"coin": COIN, "time": time, "levels": levels}},
    st.integers(0, 2**45), st.lists(st.lists(level, max_size=5), min_size=0, max_size=3),
)


def _canonical_book(text: bytes) -> bytes:
    """The book as the exchange writes it: the shape's key order, compact."""
    data = json.loads(text)["data"]
    levels = [[{"px": lv["px"], "sz": lv["sz"], "n": lv["n"]} for lv in side] for side in data["levels"]]
    return orjson.dumps({"channel": "l2Book", "data": {"coin": data["coin"], "time": data["time"], "levels": levels}})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=st.lists(st.tuples(books, st.sampled_from(FORMS)).map(lambda t: _text(*t)), min_size=1, max_size=6))
def test_books_in_another_key_order_or_spacing_are_proven_or_refused(block):
    """Realistic books (no escapes), so only key order and spacing can go wrong: what is taken is exact."""
    columns = typed_block("l2Book", COIN, block)
    if columns is None:
        assert any(_canonical_book(t) != t for t in block)  # books as the exchange sends them are always taken
        return
    for text, value in zip(block, column_values(channel_spec("l2Book").shape, columns[0])):  # type: ignore[union-attr]
        assert same({"channel": "l2Book", "data": value}, json.loads(text))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), channel=st.sampled_from(BULK_CHANNELS), block_frames=st.sampled_from([1, 16, 40]))
def test_journal_records_through_blocks_replay_equal_and_in_order(tmp_path_factory, data, channel, block_frames):
    """message -> journal record -> FrameBlocks -> archive -> Replay gives back an equal message, in order."""
    texts = data.draw(st.lists(blocks_of(channel), min_size=1, max_size=3).map(lambda bs: [t for b in bs for t in b]))
    root = tmp_path_factory.mktemp("bulk")
    sub = parse_subscription({"type": channel if channel != "l2Book" else "l2Book", "coin": COIN})
    t0 = 1_767_225_600_000_000_000
    with ArchiveWriter(root, session="s1") as writer:
        blocks = FrameBlocks(writer, block_frames=block_frames)
        for i, text in enumerate(texts):
            assert blocks.take(Record(DATA, t0 + i, i + 1, 1, text), sub)
        blocks.write_all()
    got = list(Replay(root).messages())
    expected = [json.loads(t) for t in texts]
    malformed = 0  # none: every text here is JSON
    assert len(got) == len(expected) - malformed
    assert all(same(a, b) for a, b in zip(got, expected))


def test_the_exchanges_own_frames_are_taken_in_bulk():
    """Frames as the simulator (and the exchange) send them must take the fast path, or it is never used."""
    for channel, sub in (("l2Book", {"type": "l2Book", "coin": "BTC"}), ("bbo", {"type": "bbo", "coin": "BTC"}), ("trades", {"type": "trades", "coin": "BTC"})):
        frames = synthetic_frames(sub, 300)
        texts = [orjson.dumps(f) for f in frames if f["data"]]
        columns = typed_block(channel, "BTC", texts)
        assert columns is not None, channel
        spec = channel_spec(channel)
        assert spec is not None
        assert [orjson.dumps({"channel": channel, "data": v}) for v in column_values(spec.shape, columns[0])] == texts


BOOK = b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[{"px":"1.5","sz":"2","n":1}],[{"px":"1.6","sz":"3","n":2}]]}}'


def test_blocks_that_would_not_come_back_exactly_are_refused():
    def book(text: bytes) -> Any:
        return typed_block("l2Book", "BTC", [BOOK, text])

    assert book(BOOK) is not None
    for changed in (
        BOOK.replace(b'{"px":"1.6","sz":"3"', b'{"sz":"3","px":"1.6"'),  # a level's keys in another order
        BOOK.replace(b'"sz":"3","n":2', b'"n":2,"sz":"3"'),
        BOOK.replace(b'"coin":"BTC","time":1', b'"time":1,"coin":"BTC"'),  # the book's keys in another order
        BOOK.replace(b'"n":2', b'"n":2.0'),  # a float where the shape has an int
        BOOK.replace(b'"n":2', b'"n":2,"n":3'),  # a repeated key
        BOOK.replace(b'"n":2', b'"n":2,"o":3'),  # an unknown key
        BOOK.replace(b'"time":1', b'"time":null'),
        BOOK.replace(b'"px":"1.6"', b'"px":"1\\u002e6"'),  # an escape: equal value, but not proven here
        BOOK.replace(b'"BTC"', b'"ETH"'),  # another coin than the subscription's
        BOOK.replace(b'"time":1', b'"time":123456789012345678901234567890'),
        BOOK[:-1],
    ):
        assert book(changed) is None, changed
    bbo = b'{"channel":"bbo","data":{"coin":"BTC","time":1,"bbo":[{"px":"1","sz":"2","n":1},null]}}'
    assert typed_block("bbo", "BTC", [bbo]) is not None
    for changed in (bbo.replace(b",null", b", null"), bbo.replace(b'"time":1', b'"time":1,"x":1'), bbo.replace(b'"2"', b'"\\u0032"'), bbo.replace(b'"n":1', b'"n":1.0')):
        assert typed_block("bbo", "BTC", [bbo, changed]) is None, changed
    trade = b'{"channel":"trades","data":[{"coin":"BTC","side":"B","px":"1","sz":"2","time":5,"hash":"0x0","tid":7,"users":["0xa","0xb"]}]}'
    columns = typed_block("trades", "BTC", [trade])
    assert columns is not None and columns[1].to_pylist() == [5]
    for changed in (b'{"channel":"trades","data":[]}', trade.replace(b'"BTC"', b'"ETH"'), trade.replace(b'"tid":7,', b'"tid":7, ')):
        assert typed_block("trades", "BTC", [trade, changed]) is None, changed

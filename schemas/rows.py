"""Message <-> row: the lossless conversion between a websocket frame and an archive row.

A frame whose ``data`` fits its channel's shape is stored in typed columns; any other frame (an
unknown channel, an extra field, a changed type) keeps its whole text in ``raw``. Either way
``from_row(to_row(msg)) == msg`` with the same key order: nothing is ever lost.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .channels import ChannelSpec, channel_spec
from .layout import ALL, EVENTS_CHANNEL, META_CHANNEL, utc_date
from .protocol import FrameError
from .shapes import Mismatch, column_values, plain_type
from .subscriptions import COIN_TYPES, Subscription, frame_subscription, subscription_type_of_channel

COMMON_FIELDS = (
    pa.field("recv_ns", pa.int64(), nullable=False),
    pa.field("session", pa.string(), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("exch_ms", pa.int64()),
    pa.field("coin", pa.string()),
    pa.field("user", pa.string()),
    pa.field("stream", pa.string()),
    pa.field("wire_channel", pa.string()),
)
_COMMON_NAMES = tuple(f.name for f in COMMON_FIELDS)


def data_schema(spec: ChannelSpec | None) -> pa.Schema:
    """The Arrow schema of a part holding frames of one wire channel (``None``: text only)."""
    fields = list(COMMON_FIELDS)
    if spec is not None:
        fields.append(pa.field("data", spec.shape.arrow_type))
    fields.append(pa.field("raw", pa.string()))
    return pa.schema(fields)


@dataclass(slots=True)
class Row:
    """One archived frame: its partition, its order keys and its content."""

    channel: str  # the partition: subscription type (``userEvents`` for wire channel ``user``)
    coin: str  # the partition coin, ``_all`` for streams that are not per coin
    recv_ns: int
    session: str
    seq: int
    exch_ms: int | None
    user: str | None
    stream: str
    wire_channel: str
    data: Any  # in the form pyarrow takes; None when the frame is kept in ``raw``
    raw: str | None
    typed: bool  # whether ``data`` holds the frame (the part has a ``data`` column)

    @property
    def date(self) -> str:
        return utc_date(self.recv_ns)

    @property
    def partition(self) -> tuple[str, str, str, bool]:
        """Rows with the same key go to the same parts (typed and text-only parts are kept apart)."""
        return (self.channel, self.coin, self.wire_channel if self.typed else "", self.typed)


def encode_raw(message: Any) -> str:
    """The frame as JSON text. Integers past 64 bits (which orjson refuses) go through the stdlib,
    marked by a leading space so ``decode_raw`` knows to read them back with the stdlib too."""
    try:
        return orjson.dumps(message).decode()
    except TypeError:
        return " " + json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def decode_raw(text: str) -> Any:
    return json.loads(text) if text.startswith(" ") else orjson.loads(text)


def to_row(
    message: Any,
    *,
    recv_ns: int,
    session: str,
    seq: int,
    subscription: Subscription | None = None,
) -> Row:
    """The archive row of one frame. ``subscription`` (when known) supplies what the frame lacks:
    the user of ``user`` frames, l2Book's aggregation, the coin of an empty trade list."""
    if type(message) is not dict or type(message.get("channel")) is not str:
        raise FrameError(f"not a websocket frame (an object with a 'channel' string): {str(message)[:120]}")
    wire_channel = message["channel"]
    data = message.get("data")
    channel = subscription_type_of_channel(wire_channel)
    if subscription is not None and subscription.type != channel:
        subscription = None  # the frame says what it is; a mismatched subscription must not misfile it
    if subscription is None:
        sub = frame_subscription(message)
        assert sub is not None
        frame_coin, frame_user = sub.coin, sub.user
    else:
        sub = subscription
        frame_coin, frame_user = _frame_coin_user(channel, data)
    coin = ALL
    if channel in COIN_TYPES or not sub.known:
        coin = frame_coin or sub.coin or ALL
    user = sub.user or frame_user

    spec = channel_spec(wire_channel)
    typed_data = None
    typed = False
    if spec is not None and tuple(message) == ("channel", "data"):
        try:
            typed_data = spec.prepare(data)
            typed = True
        except Mismatch:
            pass
    exch_ms = spec.exch_ms(data) if spec is not None else None
    return Row(
        channel=channel,
        coin=coin,
        recv_ns=recv_ns,
        session=session,
        seq=seq,
        exch_ms=exch_ms if type(exch_ms) is int else None,
        user=user,
        stream=sub.stream,
        wire_channel=wire_channel,
        data=typed_data,
        raw=None if typed else encode_raw(message),
        typed=typed,
    )


def _frame_coin_user(channel: str, data: Any) -> tuple[str | None, str | None]:
    """The coin and user a frame's data names (as ``frame_subscription`` reads them), cheaply."""
    if type(data) is dict:
        coin = data.get("s") if channel == "candle" else data.get("coin")
        user = data.get("user")
        return (coin if type(coin) is str else None), (user if type(user) is str and channel not in COIN_ONLY else None)
    if type(data) is list and data and type(data[0]) is dict:
        coin = data[0].get("coin")
        return (coin if type(coin) is str else None), None
    return None, None


COIN_ONLY = frozenset({"l2Book", "trades", "bbo", "candle", "activeAssetCtx"})


def from_row(row: Row | Mapping[str, Any]) -> dict[str, Any]:
    """The frame a row holds, equal (with the same key order) to the one archived."""
    get = row.get if isinstance(row, Mapping) else row.__getattribute__
    raw = get("raw")
    if raw is not None:
        return decode_raw(raw)
    wire_channel = get("wire_channel")
    spec = channel_spec(wire_channel)
    if spec is None:
        raise FrameError(f"row of channel {wire_channel!r} has neither typed data nor raw text")
    data = get("data")
    if spec.shape.restores:
        data = spec.shape.restore(copy.deepcopy(data))  # restore works in place; the row stays as it was
    return {"channel": wire_channel, "data": data}


def rows_to_batch(rows: Sequence[Row]) -> pa.RecordBatch:
    """Rows of one partition key as an Arrow batch with that partition's schema."""
    first = rows[0]
    spec = channel_spec(first.wire_channel) if first.typed else None
    schema = data_schema(spec)
    arrays = [
        pa.array([r.recv_ns for r in rows], pa.int64()),
        pa.array([r.session for r in rows], pa.string()),
        pa.array([r.seq for r in rows], pa.int64()),
        pa.array([r.exch_ms for r in rows], pa.int64()),
        pa.array([r.coin for r in rows], pa.string()),
        pa.array([r.user for r in rows], pa.string()),
        pa.array([r.stream for r in rows], pa.string()),
        pa.array([r.wire_channel for r in rows], pa.string()),
    ]
    if spec is not None:
        arrays.append(pa.array([r.data for r in rows], spec.shape.arrow_type))
    arrays.append(pa.array([r.raw for r in rows], pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def batch_messages(batch: pa.RecordBatch | pa.Table) -> Iterator[dict[str, Any]]:
    """The frames of an archive batch, in the batch's row order."""
    names = batch.schema.names
    if "data" in names and batch.num_rows and batch.column(names.index("raw")).null_count == batch.num_rows:
        wire = batch.column(names.index("wire_channel"))
        spec = channel_spec(wire[0].as_py())
        data = batch.column(names.index("data"))
        if spec is not None and plain_type(data.type) == spec.shape.arrow_type and pc.count_distinct(wire).as_py() == 1:
            # the common batch: one channel, every frame typed; its values built column by column
            channel = spec.channel
            yield from [{"channel": channel, "data": value} for value in column_values(spec.shape, data)]
            return
    channels = batch.column(names.index("wire_channel")).to_pylist()
    raws = batch.column(names.index("raw")).to_pylist()
    restore_by_channel: dict[str, Any] = {}
    if "data" not in names:
        datas: list[Any] = [None] * len(raws)
    else:
        data = batch.column(names.index("data"))
        spec = channel_spec(channels[0]) if channels and channels.count(channels[0]) == len(channels) else None
        if spec is not None and plain_type(data.type) == spec.shape.arrow_type:
            # one channel: the frames' values built column by column, nothing left to restore per row
            datas = column_values(spec.shape, data)
            restore_by_channel[channels[0]] = _identity
        else:
            datas = data.to_pylist()
    for channel, data, raw in zip(channels, datas, raws):
        if raw is not None:
            yield decode_raw(raw)
            continue
        restore = restore_by_channel.get(channel)
        if restore is None:
            spec = channel_spec(channel)
            if spec is None:
                raise FrameError(f"row of channel {channel!r} has neither typed data nor raw text")
            restore = spec.shape.restore if spec.shape.restores else _identity
            restore_by_channel[channel] = restore
        yield {"channel": channel, "data": restore(data)}


def _identity(value: Any) -> Any:
    return value


# --- events and metadata snapshots ---------------------------------------------------------------

EVENT_SCHEMA = pa.schema(
    [
        pa.field("recv_ns", pa.int64(), nullable=False),
        pa.field("session", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("connection", pa.int64()),
        pa.field("detail", pa.string()),  # JSON object: reason, code, subscription, error sentence...
        pa.field("text", pa.string()),  # the exact text of a malformed frame
    ]
)

META_SCHEMA = pa.schema(
    [
        pa.field("recv_ns", pa.int64(), nullable=False),
        pa.field("session", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # the info request type: meta, spotMeta
        pa.field("payload", pa.string()),  # the answer, as JSON text
    ]
)

SPECIAL_SCHEMAS = {EVENTS_CHANNEL: EVENT_SCHEMA, META_CHANNEL: META_SCHEMA}


def records_to_batch(schema: pa.Schema, records: Iterable[Mapping[str, Any]]) -> pa.RecordBatch:
    records = list(records)
    return pa.RecordBatch.from_pylist(records, schema=schema)

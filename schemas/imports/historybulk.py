"""Hyperliquid's history a chunk of lines at a time, sans I/O: Arrow's JSON reader parses l2Book
snapshots straight into the archive's typed columns, and the fields of fills that pairing needs, with
no Python object per record.

Arrow's reader checks types, refuses unknown and repeated keys, and leaves a missing key null; it
forgets key order. A few counts over the chunk's text prove the order is the shape's in every record,
so the columns restore to frames equal (values and key order) to each record's ``raw``. A chunk that
fails any check gives ``None``, and the importer reads it line by line: that path keeps whatever the
record holds, or refuses it with its line number. The bulk path only ever speeds up, never decides.

Why the counts prove the order: with no backslash in the chunk, every ``"`` opens or closes a string,
so a pattern holding quotes can only match the records' structure, never text inside a value.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..channels import channel_spec

L2BOOK_DATA = channel_spec("l2Book").shape.arrow_type  # type: ignore[union-attr]
L2BOOK_RECORD = pa.schema(
    [
        pa.field("time", pa.string()),
        pa.field("ver_num", pa.int64()),
        pa.field("raw", pa.struct([pa.field("channel", pa.string()), pa.field("data", L2BOOK_DATA)])),
    ]
)
_PARSE = pj.ParseOptions(explicit_schema=L2BOOK_RECORD, unexpected_field_behavior="error", newlines_in_values=False)
_BLOCK_BYTES = 256 * 1024  # Arrow parses blocks in parallel: small blocks keep both cores busy

# Each record has exactly one of these, in the shape's order: raw = {channel, data}, data = {coin, time,
# levels}. ``","time":`` can only be data's time after the coin string (the record's own time is first
# or follows a number or an object).
_ONCE_A_RECORD = (b'"raw":{"channel":"l2Book","data":{"coin":"', b'","time":')
# Each level has exactly one of these: px first, and sz right after a string value (px, the only other
# string), so the order is px, sz, n.
_ONCE_A_LEVEL = (b'{"px":"', b'","sz":"')
_RECORD_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}$"


@dataclass(frozen=True)
class L2BookChunk:
    """A chunk's records as the archive's columns, in Arrow's batches (joining them would copy every
    level): each ``data`` restores to its records' ``raw["data"]``."""

    batches: list[tuple[pa.Array, pa.StructArray]]  # (recv_ns: the record's outer time, data)

    @property
    def lines(self) -> int:
        return sum(len(data) for _, data in self.batches)

    @property
    def coins(self) -> pa.ChunkedArray:
        return pa.chunked_array([data.field("coin") for _, data in self.batches], pa.string())


def order_counts(chunk: bytes) -> tuple[int, ...]:
    """How often each key-order pattern (``_ONCE_A_RECORD``, then ``_ONCE_A_LEVEL``) occurs in ``chunk``."""
    return tuple(chunk.count(pattern) for pattern in _ONCE_A_RECORD + _ONCE_A_LEVEL)


def l2book_chunk(chunk: bytes, counts: Callable[[], tuple[int, ...]] | None = None) -> L2BookChunk | None:
    """The records of ``chunk`` (whole lines, each ending in ``\\n``) as columns, or ``None`` when any
    check fails and the chunk must be read line by line. ``counts`` gives ``order_counts(chunk)``
    once the chunk is parsed: a caller can count on another thread meanwhile (Arrow's parsing
    releases the GIL); by default they are counted here, after the parse."""
    if not chunk.endswith(b"\n") or b"\\" in chunk:
        return None
    try:
        table = pj.read_json(io.BytesIO(chunk), read_options=pj.ReadOptions(block_size=_BLOCK_BYTES), parse_options=_PARSE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    records = table.num_rows
    if records == 0 or records != chunk.count(b"\n"):  # blank lines: line numbers would drift
        return None
    batches = []
    levels = 0
    for batch in table.to_batches():
        times, raw = batch.column("time"), batch.column("raw")
        data = raw.field("data")
        sides = data.field("levels")
        flat = sides.flatten().flatten()
        arrays = (times, raw, raw.field("channel"), data, data.field("coin"), data.field("time"), sides, sides.flatten(), flat, *flat.flatten())
        if any(array.null_count for array in arrays):  # a key was missing or null
            return None
        if not pc.all(pc.match_substring_regex(times, _RECORD_TIME)).as_py():
            return None
        levels += len(flat)
        batches.append((pc.cast(times, pa.timestamp("ns")).cast(pa.int64()), data))
    found = counts() if counts is not None else order_counts(chunk)
    if found != (records,) * len(_ONCE_A_RECORD) + (levels,) * len(_ONCE_A_LEVEL):
        return None
    return L2BookChunk(batches)


# --- fills ---------------------------------------------------------------------------------------------
#
# A fill's nodeFills frame keeps the fill's own text, cut from the line, so that Arrow's reader only has
# to read what pairing needs. It still reads every fill whole, and refuses bad JSON, control characters
# in strings and repeated keys among the fields it reads; NaN, Infinity and bad UTF-8 in the fields it
# skips are checked on the chunk. So a chunk taken in bulk is one orjson reads too, and every text kept
# decodes to the fill the line path would keep.

_FILL_FIELDS = (
    pa.field("coin", pa.string()),
    pa.field("px", pa.string()),
    pa.field("sz", pa.string()),
    pa.field("side", pa.string()),
    pa.field("time", pa.int64()),
    pa.field("hash", pa.string()),
    pa.field("tid", pa.int64()),
    pa.field("crossed", pa.bool_()),
)
_FILL_PARSE = pj.ParseOptions(explicit_schema=pa.schema(_FILL_FIELDS), unexpected_field_behavior="ignore", newlines_in_values=False)
_BLOCK_FIELDS = pa.schema([pa.field("local_time", pa.string()), pa.field("block_time", pa.string()), pa.field("block_number", pa.int64())])
_BLOCK_PARSE = pj.ParseOptions(explicit_schema=_BLOCK_FIELDS, unexpected_field_behavior="error", newlines_in_values=False)
_EVENTS = b',"events":[['
PAIRING = ("coin", "tid", "side", "crossed", "px", "sz", "time", "hash", "user", "recv_ns")  # what pairing reads of a fill


@dataclass(frozen=True)
class FillsChunk:
    """A chunk's fills in line order: ``PAIRING`` columns, ``text`` (the nodeFills frame's JSON text)."""

    fills: pa.Table
    lines: int


def fills_chunk(chunk: bytes, dataset: str) -> FillsChunk | None:
    """The fills of ``chunk`` (whole lines of ``node_fills_by_block`` or ``node_fills``), or ``None``
    when the chunk must be read line by line."""
    if not chunk.endswith(b"\n") or b"\\" in chunk or b"NaN" in chunk or b"Infinity" in chunk:
        return None  # Arrow's reader would skip over NaN and Infinity in fields it does not read; orjson refuses them
    try:
        chunk.decode("utf-8")  # the same: Arrow does not check the text of fields it does not read
    except UnicodeDecodeError:
        return None
    lines = pc.split_pattern(pa.array([chunk[:-1]], pa.binary()), b"\n")[0].values
    by_block = dataset == "node_fills_by_block"
    if by_block:  # {"local_time":..,"block_time":..,"block_number":N,"events":[["0x..",{..}],...]}
        halves = pc.split_pattern(lines, _EVENTS, max_splits=1)
        if not _all(pc.equal(pc.list_value_length(halves), 2)):
            return None
        heads = pc.binary_join_element_wise(pc.list_element(halves, 0), b"}", b"")
        events = pc.list_element(halves, 1)
        if not _all(pc.equal(pc.binary_slice(events, -3, _FAR), b"]]}")):
            return None
        pieces = pc.split_pattern(pc.binary_slice(events, 0, -3), b"],[")
        line_of = pc.list_parent_indices(pieces)
        pieces = pc.list_flatten(pieces)
    else:  # ["0x..",{..}]
        if not (_all(pc.equal(pc.binary_slice(lines, 0, 2), b'["')) and _all(pc.equal(pc.binary_slice(lines, -2, _FAR), b"}]"))):
            return None
        pieces = pc.binary_slice(lines, 1, -1)
    halves = pc.split_pattern(pieces, b'",{', max_splits=1)  # "0x..  and  ..}
    first = pc.list_element(halves, 0)
    if not (_all(pc.equal(pc.list_value_length(halves), 2)) and _all(pc.equal(pc.binary_slice(first, 0, 1), b'"'))):
        return None
    user = pc.binary_slice(first, 1, _FAR)
    text = pc.binary_join_element_wise(b"{", pc.list_element(halves, 1), b"")
    count = len(text)
    try:
        parsed = pj.read_json(pa.BufferReader(_joined(text)), read_options=pj.ReadOptions(block_size=_BLOCK_BYTES), parse_options=_FILL_PARSE)
        blocks = pj.read_json(pa.BufferReader(_joined(heads)), parse_options=_BLOCK_PARSE) if by_block else None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if parsed.num_rows != count or (blocks is not None and blocks.num_rows != len(lines)):
        return None
    if any(parsed.column(f.name).null_count for f in _FILL_FIELDS if f.name != "crossed"):
        return None
    if not pc.all(pc.is_in(parsed.column("side"), pa.array(["A", "B"]))).as_py():
        return None
    if blocks is None:
        recv_ns = pc.multiply(parsed.column("time"), 1_000_000).combine_chunks()
        frame = pc.binary_join_element_wise(b'{"channel":"nodeFills","data":{"user":"', user, b'","fill":', text, b"}}", b"")
    else:
        if any(blocks.column(i).null_count for i in range(3)):
            return None
        local_time = blocks.column("local_time").combine_chunks()
        if not pc.all(pc.match_substring_regex(local_time, _RECORD_TIME)).as_py():
            return None
        at = line_of
        block_ns = pc.cast(local_time, pa.timestamp("ns")).cast(pa.int64())
        recv_ns = block_ns.take(at)
        frame = pc.binary_join_element_wise(
            b'{"channel":"nodeFills","data":{"user":"', user, b'","fill":', text,
            b',"block_number":', pc.cast(blocks.column("block_number"), pa.string()).combine_chunks().take(at).cast(pa.binary()),
            b',"block_time":"', blocks.column("block_time").combine_chunks().take(at).cast(pa.binary()),
            b'","local_time":"', local_time.take(at).cast(pa.binary()), b'"}}', b"",
        )
    columns = {name: parsed.column(name).combine_chunks() for name in ("coin", "tid", "side", "crossed", "px", "sz", "time", "hash")}
    columns["crossed"] = columns["crossed"].fill_null(False)
    table = pa.table({**columns, "user": user.cast(pa.string()), "recv_ns": recv_ns, "text": frame.cast(pa.string())})
    return FillsChunk(table, len(lines))


_FAR = 1 << 30  # a slice's "to the end" (binary_slice wants a number)


def _all(mask: pa.Array) -> bool:
    return bool(pc.all(mask).as_py()) if len(mask) else True


def _joined(texts: pa.Array) -> pa.Buffer:
    """The texts as lines of one buffer, for Arrow's JSON reader."""
    lines = pa.ListArray.from_arrays(pa.array([0, len(texts)], pa.int32()), texts)
    return pc.binary_join(lines, b"\n")[0].as_buffer()


TRADES_DATA = channel_spec("trades").shape.arrow_type  # type: ignore[union-attr]
_PAIRING_SCHEMA = pa.schema(
    [pa.field("coin", pa.string()), pa.field("tid", pa.int64()), pa.field("side", pa.string()), pa.field("crossed", pa.bool_()),
     pa.field("px", pa.string()), pa.field("sz", pa.string()), pa.field("time", pa.int64()), pa.field("hash", pa.string()),
     pa.field("user", pa.string()), pa.field("recv_ns", pa.int64())]
)
Pending = dict[tuple[Any, Any], tuple[int, str, dict[str, Any]]]  # FillPairer.pending


@dataclass(frozen=True)
class PairedTrades:
    """The trades a chunk's fills complete, in the order the line path writes them."""

    at: pa.Array  # int64, ascending: the position among the chunk's fills of the fill completing each trade
    recv_ns: pa.Array
    coin: pa.Array
    data: pa.Array  # the trades shape, one trade a frame
    pending: Pending  # fills still waiting for their other side, for the next chunk or file


def pair_fills(fills: pa.Table, pending: Pending) -> PairedTrades | None:
    """``FillPairer.add`` over a whole chunk at once, from the fills ``pending`` before it: the 1st and
    2nd fill of a (coin, tid) make a trade, then the 3rd and 4th... ``None`` when a pair has one side
    twice, or a pending fill is not of the types here: the line path then raises or copes."""
    try:
        waiting = pa.Table.from_pylist(
            [{"coin": f["coin"], "tid": f["tid"], "side": f["side"], "crossed": bool(f.get("crossed")), "px": f["px"], "sz": f["sz"],
              "time": f["time"], "hash": f["hash"], "user": user, "recv_ns": ns} for ns, user, f in pending.values()],
            schema=_PAIRING_SCHEMA,
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
        return None
    count = fills.num_rows
    both = pa.concat_tables([waiting, fills.select(_PAIRING_SCHEMA.names).cast(_PAIRING_SCHEMA)]).combine_chunks()
    both = both.append_column("pos", pa.array(range(-waiting.num_rows, count), pa.int64()))
    rows = both.take(pc.sort_indices(both, sort_keys=[("coin", "ascending"), ("tid", "ascending"), ("pos", "ascending")]))
    total = rows.num_rows
    coin, tid = rows.column("coin").combine_chunks(), rows.column("tid").combine_chunks()
    same = pc.and_(pc.equal(coin.slice(1), coin.slice(0, total - 1)), pc.equal(tid.slice(1), tid.slice(0, total - 1))) if total > 1 else pa.array([], pa.bool_())
    starts = pa.concat_arrays([pa.array([True]), pc.invert(same)]) if total else pa.array([], pa.bool_())
    group = pc.subtract(pc.cumulative_sum(starts.cast(pa.int64())), 1)
    rank = pc.subtract(pa.array(range(total), pa.int64()), pc.take(pc.indices_nonzero(starts), group).cast(pa.int64()))
    second = pc.equal(pc.bit_wise_and(rank, 1), 1)
    later = rows.take(pc.indices_nonzero(second))
    earlier = rows.take(pc.subtract(pc.indices_nonzero(second).cast(pa.int64()), 1))
    if len(later) and pc.any(pc.equal(earlier.column("side"), later.column("side"))).as_py():
        return None
    alone = rows.filter(pc.and_(pc.invert(second), pa.concat_arrays([starts.slice(1), pa.array([True])]) if total else starts))
    order = pc.sort_indices(later.column("pos"))
    earlier, later = earlier.take(order), later.take(order)
    a, b = ({name: t.column(name).combine_chunks() for name in t.column_names} for t in (earlier, later))
    taker_side = pc.if_else(pc.and_(b["crossed"], pc.invert(a["crossed"])), b["side"], pc.if_else(a["crossed"], a["side"], b["side"]))
    a_buys = pc.equal(a["side"], "B")
    buyer, seller = pc.if_else(a_buys, a["user"], b["user"]), pc.if_else(a_buys, b["user"], a["user"])
    trades = len(b["pos"])
    users = pa.ListArray.from_arrays(
        pa.array(range(0, 2 * trades + 1, 2), pa.int32()),
        pa.concat_arrays([buyer, seller]).take(pa.array([i + half for i in range(trades) for half in (0, trades)], pa.int64())),
    )
    struct_type = TRADES_DATA.value_type
    trade = pa.StructArray.from_arrays(
        [b["coin"], taker_side, b["px"], b["sz"], pc.max_element_wise(a["time"], b["time"]), b["hash"], b["tid"], users, pa.nulls(trades, pa.string())],
        fields=list(struct_type),
    )
    data = pa.ListArray.from_arrays(pa.array(range(trades + 1), pa.int32()), trade, type=TRADES_DATA)
    left: Pending = {}
    for row in alone.to_pylist():
        ns, user = row.pop("recv_ns"), row.pop("user")
        del row["pos"]
        left[(row["coin"], row["tid"])] = (ns, user, row)
    return PairedTrades(b["pos"], pc.max_element_wise(a["recv_ns"], b["recv_ns"]), b["coin"], data, left)

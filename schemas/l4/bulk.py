"""A node's block lines as Arrow columns in bulk: many lines parsed by Arrow's JSON reader at once,
each line proven to be exactly the shape the archive's typed columns hold before it is trusted.

Arrow's reader matches fields by name: it cannot tell a field's order, a missing field from a
``null``, or an unknown field it was told to ignore. The row path (``node.block_columns``) keeps an
event typed only when its keys are exactly the shape's, in order, and keeps anything else whole as
text; so every line is first matched whole against a pattern (RE2, in Arrow's C++) that admits only
that: the shape's keys in order, compact, strings without escapes, integers in JSON's own form,
``children`` empty. A line that does not match (or a chunk Arrow refuses) is the caller's to send
down the row path, line by line. Matched lines give the row path's rows exactly: same values, and
``raw_book_diff`` printed back as ``orjson.dumps`` prints it. Pure: bytes in, Arrow arrays out.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..channels import CHANNELS
from .node import DIFFS, INDEX_BITS, L4_DIFFS, L4_STATUSES, MAX_EVENTS, STATUSES, STREAM_BITS, STREAM_NO

BULK_STREAMS = (STATUSES, DIFFS)  # fills are kept as text frames: they take the row path's columns

_S = r'"[^"\\\x00-\x1f]*"'  # a string with nothing to unescape
_N = r"-?(?:0|[1-9][0-9]*)"  # an integer as JSON writes it (never 1.0, never 007)
_B = r"(?:true|false)"
_SN = rf"(?:{_S}|null)"

_STATUS = (
    r'\{"time":' + _S + ',"user":' + _S + ',"status":' + _S + r',"order":\{"coin":' + _S + ',"side":' + _S + ',"limitPx":' + _S
    + ',"sz":' + _S + ',"oid":' + _N + ',"timestamp":' + _N + ',"triggerCondition":' + _S + ',"isTrigger":' + _B + ',"triggerPx":' + _S
    + r',"children":\[\],"isPositionTpsl":' + _B + ',"reduceOnly":' + _B + ',"orderType":' + _S + ',"origSz":' + _S
    + ',"tif":' + _SN + ',"cloid":' + _SN + r'\}\}'
)
_DIFF = (
    r'\{"user":' + _S + ',"oid":' + _N + ',"coin":' + _S + ',"side":' + _S + ',"px":' + _S + r',"raw_book_diff":(?:"remove"'
    + r'|\{"new":\{"sz":' + _S + r'\}\}|\{"update":\{"origSz":' + _S + ',"newSz":' + _S + r'\}\}|\{"modified":\{"sz":' + _S + r'\}\})\}'
)


def _line(event: str) -> str:
    return r'^\{"local_time":' + _S + ',"block_time":' + _S + ',"block_number":' + _N + r',"events":\[(?:' + event + "(?:," + event + r')*)?\]\}\n$'


PATTERNS = {STATUSES: _line(_STATUS), DIFFS: _line(_DIFF)}

_s, _i, _b = pa.string(), pa.int64(), pa.bool_()
_ORDER = pa.struct([("coin", _s), ("side", _s), ("limitPx", _s), ("sz", _s), ("oid", _i), ("timestamp", _i), ("triggerCondition", _s), ("isTrigger", _b),
                    ("triggerPx", _s), ("isPositionTpsl", _b), ("reduceOnly", _b), ("orderType", _s), ("origSz", _s), ("tif", _s), ("cloid", _s)])
_SIZE = pa.struct([("sz", _s)])
_CHANGE = pa.struct([("new", _SIZE), ("update", pa.struct([("origSz", _s), ("newSz", _s)])), ("modified", _SIZE), ("remove", _b)])
_EVENTS = {
    STATUSES: pa.struct([("time", _s), ("user", _s), ("status", _s), ("order", _ORDER)]),
    DIFFS: pa.struct([("user", _s), ("oid", _i), ("coin", _s), ("side", _s), ("px", _s), ("raw_book_diff", _CHANGE)]),
}
# Arrow reads a field as one type: the one string form of raw_book_diff becomes an object first
_REMOVE, _REMOVE_OBJECT = b'"raw_book_diff":"remove"', b'"raw_book_diff":{"remove":true}'


@dataclass(frozen=True)
class BulkLines:
    """Lines of one stream parsed at once: ``lines`` (Arrow's table of them, a row a line), and which
    lines are proven to be the typed shape (``proven``, a Python list of bools)."""

    stream: str
    table: pa.Table
    proven: list[bool]

    @property
    def heights(self) -> list[int]:
        return self.table.column("block_number").to_pylist()


def parse_lines(stream: str, lines: list[bytes], threads: bool = True) -> BulkLines | None:
    """``lines`` (whole, non-blank, without their newlines) of ``stream`` through Arrow's JSON reader;
    None when Arrow refuses any of them (a value of another type, a line that is not JSON): the
    caller takes the row path for all of them."""
    text = b"\n".join(lines) + b"\n"
    ends = np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines)) + 1)
    offsets = pa.py_buffer(np.concatenate([np.zeros(1, np.int64), ends]))
    # each line with its newline, over the text itself: no copy
    matched = pc.match_substring_regex(pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(lines), [None, offsets, pa.py_buffer(text)]), PATTERNS[stream]).to_pylist()
    if stream == DIFFS:
        text = text.replace(_REMOVE, _REMOVE_OBJECT)
    schema = pa.schema([("local_time", _s), ("block_time", _s), ("block_number", _i), ("events", pa.list_(_EVENTS[stream]))])
    try:
        table = pj.read_json(io.BytesIO(text), read_options=pj.ReadOptions(use_threads=threads, block_size=max(1 << 20, min(len(text) + 1, 64 << 20))),
                             parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(lines):
        return None
    counts = pc.list_value_length(table.column("events")).to_pylist()
    proven = [bool(ok) and n is not None and n < MAX_EVENTS for ok, n in zip(matched, counts)]
    return BulkLines(stream, table.combine_chunks(), proven)


@dataclass(frozen=True)
class BulkColumns:
    """One partition's rows of many lines: the archive's columns, each an Arrow array."""

    channel: str
    coin: str
    seq: pa.Array
    user: pa.Array
    data: pa.Array
    line: pa.Array  # the row's line in its ``BulkLines`` (its receive time is the line's)


def bulk_columns(parsed: BulkLines, chosen: list[int], block_ms: list[int], coins: frozenset[str] | None = None) -> list[BulkColumns]:
    """The rows of the lines ``chosen`` (indexes of proven lines, heights ascending), a partition at
    a time; ``block_ms``: each chosen line's block time."""
    if not chosen:
        return []
    table = parsed.table.take(pa.array(chosen, pa.int64()))
    events = table.column("events").chunk(0) if table.column("events").num_chunks == 1 else table.column("events").combine_chunks()
    flat = pc.list_flatten(events)
    if not len(flat):
        return []
    parent = pc.list_parent_indices(events)
    starts = pc.take(events.offsets, parent)
    index = pc.subtract(pa.array(range(len(flat)), pa.int64()), pc.cast(starts, pa.int64()))
    heights = pc.take(table.column("block_number").combine_chunks(), parent)
    stream_bits = STREAM_NO[parsed.stream] << INDEX_BITS
    seq = pc.bit_wise_or(pc.bit_wise_or(pc.shift_left(heights, INDEX_BITS + STREAM_BITS), stream_bits), index)
    times = pc.take(pa.array(block_ms, pa.int64()), parent)
    line = pc.take(pa.array(chosen, pa.int64()), parent)
    if parsed.stream == STATUSES:
        channel, coin = L4_STATUSES, pc.struct_field(flat, ["order", "coin"])
        data = _statuses(flat, heights, times)
    else:
        channel, coin = L4_DIFFS, pc.struct_field(flat, "coin")
        data = _diffs(flat, heights, times)
    user = pc.struct_field(flat, "user")
    # a partition at a time: rows grouped by coin once (stable: each keeps its place), then sliced
    order = pc.array_sort_indices(coin)  # Arrow's sorts are stable
    names = pc.take(coin, order)
    seq, user, data, line = (pc.take(a, order) for a in (seq, user, data, line))
    out = []
    values, counts = pc.value_counts(names).flatten()
    start = 0
    for name, count in zip(values.to_pylist(), counts.to_pylist()):  # in the order sorted
        if coins is None or name in coins:
            out.append(BulkColumns(channel, name, seq.slice(start, count), user.slice(start, count), data.slice(start, count), line.slice(start, count)))
        start += count
    return out


def _typed(channel: str, arrays: list[pa.Array]) -> pa.StructArray:
    return pa.StructArray.from_arrays(arrays, fields=list(CHANNELS[channel].shape.arrow_type))


def _statuses(flat: pa.StructArray, heights: pa.Array, times: pa.Array) -> pa.StructArray:
    order = pc.struct_field(flat, "order")
    fields = list(CHANNELS[L4_STATUSES].shape.arrow_type.field("order").type)
    parts = []
    for f in fields:
        if f.name == "children":  # proven empty: the row path prints it "[]"
            parts.append(pa.repeat(pa.scalar("[]", pa.string()), len(flat)))
        else:
            parts.append(pc.struct_field(order, f.name))
    whole_order = pa.StructArray.from_arrays(parts, fields=fields)
    return _typed(L4_STATUSES, [heights, times, pc.struct_field(flat, "time"), pc.struct_field(flat, "user"), pc.struct_field(flat, "status"), whole_order])


def _diffs(flat: pa.StructArray, heights: pa.Array, times: pa.Array) -> pa.StructArray:
    change = pc.struct_field(flat, "raw_book_diff")

    def text(*pieces: Any) -> pa.Array:
        return pc.binary_join_element_wise(*pieces, "")

    new = text('{"new":{"sz":"', pc.struct_field(change, ["new", "sz"]), '"}}')
    update = text('{"update":{"origSz":"', pc.struct_field(change, ["update", "origSz"]), '","newSz":"', pc.struct_field(change, ["update", "newSz"]), '"}}')
    modified = text('{"modified":{"sz":"', pc.struct_field(change, ["modified", "sz"]), '"}}')
    removed = pc.fill_null(pc.struct_field(change, "remove"), False)
    printed = pc.coalesce(pc.if_else(removed, '"remove"', pa.scalar(None, pa.string())), new, update, modified)
    names = ("user", "oid", "coin", "side", "px")
    return _typed(L4_DIFFS, [heights, times, *(pc.struct_field(flat, n) for n in names), printed])


__all__ = ["BULK_STREAMS", "PATTERNS", "BulkColumns", "BulkLines", "bulk_columns", "parse_lines"]

"""A node's L4 files, line by line: what a block line holds, and the archive frames it becomes.

A node writes one line a block in each of three streams (order statuses, raw book diffs, fills).
Each event becomes one archive row whose ``seq`` is fixed by where it sits in the files: the block
height, the stream and the event's index in that line. Following the files live and importing
them later therefore give the same rows, and a row already in the archive is recognised by its
``seq`` alone: a restart after ``kill -9`` and a second import add nothing. Pure: bytes in, frames out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ..imports.history import HistoryError, iso_ns, node_fill_frame

STATUSES, DIFFS, FILLS = "statuses", "diffs", "fills"
# stream -> the directory a node writes it to, under its data root
NODE_DIRS = {
    STATUSES: "node_order_statuses_by_block",
    DIFFS: "node_raw_book_diffs_by_block",
    FILLS: "node_fills_by_block",
}
STREAM_NO = {STATUSES: 0, DIFFS: 1, FILLS: 2}
L4_STATUSES, L4_DIFFS, L4_SNAPSHOTS, NODE_FILLS = "l4Statuses", "l4Diffs", "l4Snapshots", "nodeFills"
SNAPSHOT_NO, EVENT_NO = 5, 7  # the seq ranges of snapshot rows and of the follower's events

INDEX_BITS, STREAM_BITS = 18, 3
MAX_EVENTS = 1 << INDEX_BITS  # events of one stream in one block


class NodeLineError(ValueError):
    """A line that is not a block: says what is wrong with it (the caller adds file and line)."""


def node_seq(height: int, stream_no: int, index: int) -> int:
    """The archive ``seq`` of event ``index`` of stream ``stream_no`` in block ``height``."""
    return (height << (INDEX_BITS + STREAM_BITS)) | (stream_no << INDEX_BITS) | index


def seq_height(seq: int) -> int:
    return seq >> (INDEX_BITS + STREAM_BITS)


def first_seq(height: int) -> int:
    return height << (INDEX_BITS + STREAM_BITS)


@dataclass(frozen=True)
class Block:
    """One line of one stream: the block's height and times, and its events as the node wrote them."""

    height: int
    block_ms: int
    local_ns: int  # the node's local time: the archive's ``recv_ns``
    events: list[Any]
    head: dict[str, Any]  # the line's other fields (for node fills: block_number, block_time, local_time)


_HEIGHT = re.compile(rb'"block_number"\s*:\s*(\d+)')


def peek_height(line: bytes) -> int | None:
    """The block number of a line without parsing it all (skipping already-recorded lines fast)."""
    found = _HEIGHT.search(line, 0, 4096)
    return int(found.group(1)) if found else None


def parse_block(line: bytes) -> Block:
    """A complete line (its newline stripped or not) as a ``Block``; ``NodeLineError`` otherwise."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise NodeLineError(f"not JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("events"), list) or type(record.get("block_number")) is not int:
        raise NodeLineError("not a block (an object with block_number and events)")
    try:
        block_ns = iso_ns(record.get("block_time") or record.get("local_time"))
        local_ns = iso_ns(record.get("local_time") or record.get("block_time"))
    except HistoryError as exc:
        raise NodeLineError(str(exc)) from None
    head = {k: v for k, v in record.items() if k != "events"}
    return Block(record["block_number"], block_ns // 1_000_000, local_ns, record["events"], head)


@dataclass(frozen=True)
class NodeRow:
    """One archive row from a node event: its channel partition, coin, seq and frame."""

    channel: str
    coin: str
    seq: int
    frame: dict[str, Any]
    exch_ms: int | None


def event_coin(stream: str, event: Any) -> str | None:
    """The coin an event belongs to (None: not an event of the stream's shape)."""
    if stream == STATUSES:
        order = event.get("order") if type(event) is dict else None
        coin = order.get("coin") if type(order) is dict else None
    elif stream == DIFFS:
        coin = event.get("coin") if type(event) is dict else None
    else:
        fill = event[1] if type(event) is list and len(event) == 2 else None
        coin = fill.get("coin") if type(fill) is dict else None
    return coin if isinstance(coin, str) else None


def block_rows(stream: str, block: Block, coins: frozenset[str] | None = None) -> tuple[list[NodeRow], int]:
    """The archive rows of one stream's block line (only ``coins`` when given); with the number of
    events that fit no known shape (archived under coin ``_unknown``, never dropped)."""
    rows: list[NodeRow] = []
    odd = 0
    number = STREAM_NO[stream]
    if len(block.events) >= MAX_EVENTS:
        raise NodeLineError(f"{len(block.events)} events in one block: more than {MAX_EVENTS - 1}")
    for index, event in enumerate(block.events):
        coin = event_coin(stream, event)
        if coin is None:
            odd += 1
        elif coins is not None and coin not in coins:
            continue
        seq = node_seq(block.height, number, index)
        if stream == FILLS and coin is not None:
            frame = node_fill_frame(event[0], event[1], block.head)
            rows.append(NodeRow(NODE_FILLS, coin, seq, frame, event[1].get("time")))
            continue
        channel = L4_STATUSES if stream == STATUSES else L4_DIFFS if stream == DIFFS else NODE_FILLS
        where = {"block": block.height, "block_ms": block.block_ms}
        data = {**where, **event} if type(event) is dict else {**where, "event": event}
        rows.append(NodeRow(channel, coin or "_unknown", seq, {"channel": channel, "data": data}, block.block_ms))
    return rows, odd


def event_of_row(data: dict[str, Any]) -> Any:
    """The node's event back from an ``l4Statuses``/``l4Diffs`` frame's data (its ``block`` taken off)."""
    if set(data) == {"block", "block_ms", "event"}:
        return data["event"]
    return {k: v for k, v in data.items() if k not in ("block", "block_ms")}


# --- the node's own snapshot ----------------------------------------------------------------------


def snapshot_rows(payload: Any, coins: Iterable[str] | None = None, block_ms: int | None = None) -> tuple[int, list[NodeRow]]:
    """``(height, rows)`` of a ``fileSnapshot`` of ``l4Snapshots``: ``[height, [[coin, [bids, asks]], ...]]``
    with each side a list of ``[user, order]`` pairs; one ``l4Snapshots`` row a coin."""
    if not (type(payload) is list and len(payload) == 2 and type(payload[0]) is int and type(payload[1]) is list):
        raise NodeLineError("not an L4 snapshot ([height, [[coin, [bids, asks]], ...]])")
    height, books = payload
    wanted = None if coins is None else frozenset(coins)
    rows = []
    for index, entry in enumerate(books):
        if not (type(entry) is list and len(entry) == 2 and isinstance(entry[0], str) and type(entry[1]) is list and len(entry[1]) == 2):
            raise NodeLineError(f"snapshot entry {index} is not [coin, [bids, asks]]")
        coin, sides = entry
        if wanted is not None and coin not in wanted:
            continue
        levels = [[_with_user(pair) for pair in side] for side in sides]
        data = {"block": height, "block_ms": block_ms, "coin": coin, "height": height, "levels": levels}
        rows.append(NodeRow(L4_SNAPSHOTS, coin, node_seq(height, SNAPSHOT_NO, index), {"channel": L4_SNAPSHOTS, "data": data}, block_ms))
    return height, rows


def _with_user(pair: Any) -> dict[str, Any]:
    if type(pair) is list and len(pair) == 2 and isinstance(pair[0], str) and type(pair[1]) is dict:
        return {"user": pair[0], **pair[1]}
    if type(pair) is dict:  # already an order with its user (the book server's shape)
        return pair
    raise NodeLineError(f"snapshot order {str(pair)[:80]!r} is not [user, order]")


def snapshot_request(out_path: str) -> dict[str, Any]:
    """The node info server's request that writes a full L4 snapshot to ``out_path``."""
    return {
        "type": "fileSnapshot",
        "request": {"type": "l4Snapshots", "includeUsers": True, "includeTriggerOrders": False},
        "outPath": out_path,
        "includeHeightInOutput": True,
    }


# --- the same rows as columns (the follower's and importer's fast path) ------------------------------


@dataclass(frozen=True)
class NodeColumns:
    """One partition's rows of one block, as the archive's columns (``data`` typed, or ``raw`` text)."""

    channel: str
    coin: str
    seqs: list[int]
    users: list[str | None]
    data: Any  # pa.StructArray of the channel's shape, or None
    raw: Any  # pa.StringArray of frame texts, or None
    exch_ms: list[int | None] | None = None  # None: the block's time (fills carry their own)


def block_columns(stream: str, block: Block, coins: frozenset[str] | None = None) -> list[NodeColumns] | None:
    """``block_rows`` as columns, a partition at a time; ``None`` when any event is not exactly the
    shape the columns hold (a field more or less, another order, another type): then the caller
    takes ``block_rows``, which keeps such events whole as text. Both give the same frames back."""
    import pyarrow as pa

    from ..channels import CHANNELS

    events = block.events
    if len(events) >= MAX_EVENTS:
        return None
    base = node_seq(block.height, STREAM_NO[stream], 0)
    groups: dict[str, list[int]] = {}
    try:
        for index, event in enumerate(events):
            coin = event_coin(stream, event)
            if coin is None:
                return None
            if coins is None or coin in coins:
                groups.setdefault(coin, []).append(index)
        out = []
        for coin, at in groups.items():
            chosen = [events[i] for i in at]
            seqs = [base + i for i in at]
            if stream == FILLS:
                texts = [orjson.dumps(node_fill_frame(e[0], e[1], block.head)).decode() for e in chosen]
                times = [e[1].get("time") if type(e[1].get("time")) is int else None for e in chosen]
                out.append(NodeColumns(NODE_FILLS, coin, seqs, [e[0] if isinstance(e[0], str) else None for e in chosen], None, pa.array(texts, pa.string()), times))
                continue
            channel = L4_STATUSES if stream == STATUSES else L4_DIFFS
            struct = CHANNELS[channel].shape
            data = _struct(struct, chosen, {"block": block.height, "block_ms": block.block_ms})
            if data is None:
                return None
            out.append(NodeColumns(channel, coin, seqs, [e.get("user") for e in chosen], data, None))
        return out
    except (TypeError, ValueError, OverflowError, KeyError):  # pyarrow's conversion errors are these
        return None


def _struct(shape: Any, items: list[Any], constants: dict[str, Any] | None = None) -> Any:
    """The struct array of ``items`` (dicts with exactly ``shape``'s keys, in order), or None."""
    import pyarrow as pa

    from ..shapes import Int, Json, Struct

    names = tuple(f.name for f in shape.fields)
    given = names[len(constants):] if constants else names
    for item in items:
        if type(item) is not dict or tuple(item) != given:
            return None
    arrays = []
    for f in shape.fields:
        if constants and f.name in constants:
            arrays.append(pa.array([constants[f.name]] * len(items), f.shape.arrow_type))
            continue
        values = [item[f.name] for item in items]
        if isinstance(f.shape, Struct):
            array = _struct(f.shape, values)
            if array is None:
                return None
        elif isinstance(f.shape, Json):
            array = pa.array(["[]" if v == [] else orjson.dumps(v).decode() for v in values], pa.string())
        else:
            # Arrow refuses a wrong type for strings and booleans, but would take 1.0 as an int: check those
            if isinstance(f.shape, Int) and not set(map(type, values)) <= ({int, type(None)} if f.nullable else {int}):
                return None
            array = pa.array(values, f.shape.arrow_type)
            if array.null_count and not f.nullable:
                return None
        arrays.append(array)
    return pa.StructArray.from_arrays(arrays, fields=list(shape.arrow_type))

"""A coin's order-level book over an archive, a block at a time, and the book at any instant.

An archive recorded from a node (``record --node-data``, ``import`` of a node's files) holds each
block's order statuses and book diffs, and the node's snapshots. A coin's book at an instant is its
last snapshot at or before it, then the blocks after the snapshot's height (``l4_state``). A desync
never stops a replay: it is counted, the book says ``safe: false`` until the next snapshot
rebuilds it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.l4.book import Desync, L4Book
from schemas.l4.node import event_of_row
from schemas.shapes import concat_arrays, one_array
from schemas.subscriptions import Subscription, parse_subscription

from ..archive import any_part, find_parts
from ..storage import Store

STATUSES, DIFFS, SNAPSHOTS, CHECKPOINTS = "l4Statuses", "l4Diffs", "l4Snapshots", "l4Checkpoints"
# a snapshot row has its height's receive time (the follower writes it so), so the rows after it start there
SNAPSHOT_LATE_NS = 0
RECENT_BLOCKS = 600  # blocks kept to re-apply after a late snapshot rebuilds a desynced book


def row_subscriptions(coin: str) -> dict[str, Subscription]:
    """The archive streams a coin's L4 rows are in (as the node follower writes them)."""
    return {ch: parse_subscription({"type": ch, "coin": coin}, allow_unknown=True) for ch in (STATUSES, DIFFS, SNAPSHOTS)}


def has_l4(store: Store, coin: str) -> bool:
    return any_part(store, channels=[DIFFS], coins=[coin])


def derivable(store: Store, sub: Subscription) -> bool:
    """Whether ``sub`` is served from the L4 rows: ``l4Book`` and a deep (``nLevels``) ``l2Book``
    whenever the coin has them; a plain ``l2Book`` and ``bbo`` only where none was recorded."""
    if sub.coin is None or sub.type not in ("l4Book", "l2Book", "bbo"):
        return False
    if sub.type == "l2Book" and sub.n_levels is None and any_part(store, channels=["l2Book"], coins=[sub.coin]):
        return False
    if sub.type == "bbo" and any_part(store, channels=["bbo"], coins=[sub.coin]):
        return False
    if sub.type == "l4Book" and any_part(store, channels=["l4Book"], coins=[sub.coin]):
        return False
    return has_l4(store, sub.coin)


def book_frame(book: L4Book, sub: Subscription, shown: dict[str, Any]) -> dict[str, Any] | None:
    """The ``l2Book`` or ``bbo`` frame of ``sub`` after a block; a ``bbo`` only when its best levels
    changed since the last one sent (``shown``: the stream's last), as the exchange sends it."""
    if sub.type == "l2Book":
        return {"channel": "l2Book", "data": book.l2(sub.n_levels or 20, sub.n_sig_figs, sub.mantissa)}
    best = (book.best("B"), book.best("A"))
    if shown.get(sub.stream) == best:
        return None
    shown[sub.stream] = best
    levels = [None if level is None else {"px": level[0], "sz": level[1], "n": level[2]} for level in best]
    return {"channel": "bbo", "data": {"coin": book.coin, "time": book.time_ms, "bbo": levels}}


@dataclass
class _Block:
    height: int
    block_ms: int
    recv_ns: int
    session: str
    seq: int
    statuses: list[Any] = field(default_factory=list)
    diffs: list[Any] = field(default_factory=list)


class CoinBook:
    """One coin's book moved by the archive's rows, a block at a time."""

    def __init__(self, coin: str, book: L4Book | None = None) -> None:
        self.coin = coin
        self.book = book or L4Book(coin, safe=False)  # no snapshot yet: unsafe until one comes
        self.pending: _Block | None = None
        self.recent: deque[_Block] = deque(maxlen=RECENT_BLOCKS)
        self.desyncs: list[Desync] = []
        self.rows = 0

    def take(self, message: dict[str, Any], recv_ns: int, session: str, seq: int) -> list[_Block]:
        """One row in; the blocks it completed (at most the one pending)."""
        data = message["data"]
        channel = message["channel"]
        event = data if channel == SNAPSHOTS else event_of_row(data)
        return self.take_event(channel, data.get("block"), data.get("block_ms"), event, recv_ns, session, seq)

    def take_event(self, channel: str, height: int, block_ms: int | None, event: Any, recv_ns: int, session: str, seq: int) -> list[_Block]:
        """``take`` of a row already split up (the block path reads columns): ``event`` is the node's
        event, a snapshot row's data, or ``None`` for a row the book does not need (it still ends
        and starts blocks)."""
        self.rows += 1
        done: list[_Block] = []
        if channel == SNAPSHOTS:
            done += self.finish()
            self._snapshot(event)
            return done
        if self.pending is not None and self.pending.height != height:
            done += self.finish()
        if self.pending is None:
            self.pending = _Block(height, block_ms or 0, recv_ns, session, seq)
        if event is not None:
            (self.pending.statuses if channel == STATUSES else self.pending.diffs).append(event)
        return done

    def finish(self) -> list[_Block]:
        block, self.pending = self.pending, None
        if block is None or block.height <= self.book.height:
            return []
        self.desyncs += self.book.apply_block(block.height, block.block_ms, block.statuses, block.diffs)
        self.recent.append(block)
        return [block]

    def checkpoint(self, data: dict[str, Any]) -> None:
        """Start from a checkpoint row (this archive's own, not the node's): its book, as safe as it says."""
        self.book = L4Book.from_checkpoint(self.coin, data["height"], data.get("block_ms") or 0, data["levels"], data.get("short"), bool(data.get("safe")))

    def _snapshot(self, data: dict[str, Any]) -> None:
        snapshot = L4Book.from_snapshot(self.coin, data["height"], data.get("block_ms") or self.book.time_ms, *data["levels"])
        if self.book.safe and snapshot.height == self.book.height and _same(snapshot, self.book):
            return
        if self.book.safe and snapshot.height == self.book.height:
            self.desyncs.append(Desync(self.coin, snapshot.height, None, "the node's snapshot", "a different book"))
        if snapshot.height < self.book.height and self.book.safe:
            return  # an older snapshot of a book that holds: nothing to rebuild
        time_ms, height = self.book.time_ms, self.book.height
        self.book.reset(snapshot, adopt=True)  # the snapshot's book is made here and let go
        for block in self.recent:  # the blocks the snapshot did not see yet
            if block.height > snapshot.height:
                self.desyncs += self.book.apply_block(block.height, block.block_ms, block.statuses, block.diffs)
        if self.book.height < height:
            self.book.height, self.book.time_ms = height, time_ms


def _same(a: L4Book, b: L4Book) -> bool:
    return all([(o["oid"], o["sz"]) for o in a.orders(side)] == [(o["oid"], o["sz"]) for o in b.orders(side)] for side in ("B", "A"))


@dataclass
class Base:
    """A row a seek can start from: a node snapshot or a checkpoint, with its keys; its frame is
    made only when asked for (``message``), and a seek may read its orders as columns (``typed``)."""

    recv_ns: int
    session: str
    seq: int
    channel: str
    row: Any  # the row, as a one-row table
    _message: dict[str, Any] | None = None

    @property
    def message(self) -> dict[str, Any]:
        if self._message is None:
            from schemas.rows import batch_messages

            self._message = next(batch_messages(self.row))
        return self._message

    def typed(self) -> Any:
        """The row's ``data`` as its channel's typed struct (a one-row array), or None where it is
        kept as text or of another type (``message`` then reads it)."""
        from schemas.channels import CHANNELS
        from schemas.shapes import plain_type

        names = self.row.column_names
        if "data" not in names or ("raw" in names and self.row.column("raw").null_count < 1):
            return None
        data = self.row.column("data").chunk(0)
        return data if data.is_valid()[0].as_py() and plain_type(data.type) == CHANNELS[self.channel].shape.arrow_type else None


def latest_base(store: Store, coin: str, at_ns: int | None, channels: tuple[str, ...] = (SNAPSHOTS, CHECKPOINTS)) -> Base | None:
    """The last snapshot or checkpoint of ``coin`` received at or before ``at_ns`` (a snapshot
    before a checkpoint of the same block). Parts are tried latest first, by the catalog's last
    receive times; only their keys are read, then the one row chosen (its row group: a checkpoint is
    a row group of its own), which alone becomes a dict."""
    from ..archive import open_part

    parts = find_parts(store, channels=list(channels), coins=[coin], end_ns=at_ns)
    limit = at_ns if at_ns is not None else 2**63 - 1

    def bound(part: Any) -> int:
        entry = getattr(part, "entry", None)
        return min(entry.last_recv_ns, limit) if entry is not None else limit

    best: tuple[tuple[int, int, int], Any, str] | None = None
    for part in sorted(parts, key=bound, reverse=True):
        if best is not None and bound(part) < best[0][0]:
            break
        parquet = open_part(part)
        keys = parquet.read(columns=["recv_ns", "seq"])  # which row first; then only its row group
        recv, seqs = keys.column("recv_ns").to_pylist(), keys.column("seq").to_pylist()
        rank = 1 if part.channel == SNAPSHOTS else 0
        found = [i for i in range(len(recv)) if recv[i] <= limit]
        if not found:
            continue
        index = max(found, key=lambda i: (recv[i], seqs[i] >> 21, rank))  # seq >> 21: the block height
        key = (recv[index], seqs[index] >> 21, rank)
        if best is None or key > best[0]:
            best = (key, (parquet, index), part.channel)
    if best is None:
        return None
    parquet, index = best[1]
    group, start = 0, 0
    while start + parquet.metadata.row_group(group).num_rows <= index:
        start += parquet.metadata.row_group(group).num_rows
        group += 1
    row = parquet.read_row_group(group).slice(index - start, 1).combine_chunks()
    base = Base(row.column("recv_ns")[0].as_py(), row.column("session")[0].as_py(), row.column("seq")[0].as_py(), best[2], row)
    typed = base.typed()
    found = typed.field("coin")[0].as_py() if typed is not None else base.message["data"].get("coin", coin)
    return base if found == coin else None


def _typed_sides(typed: Any) -> list[Any] | None:
    """A typed snapshot or checkpoint's two sides, each its orders as a struct array; None if it
    holds other than two sides, or a null (``message`` then reads it)."""
    if typed is None:
        return None
    levels = typed.field("levels")[0]
    if not levels.is_valid or len(levels) != 2 or levels.values.null_count:
        return None
    if typed.type.get_field_index("short") >= 0 and not typed.field("short")[0].is_valid:
        return None
    return [side.values for side in levels.values]


def l4_snapshot(store: Store, coin: str, at_ns: int) -> tuple[dict[str, Any], int, list[Desync]]:
    """The book server's ``Snapshot`` (with ``safe``) of the coin as of ``at_ns``, the rows read and
    the desyncs found: shown straight from the base and the window where it can be (``seek``),
    else from the book ``l4_state`` builds of the same rows."""
    from .seek import snapshot_at

    base = latest_base(store, coin, at_ns)
    typed = base.typed() if base is not None else None
    sides = _typed_sides(typed)
    if base is None:  # an empty book, unsafe (as ``CoinBook`` starts one)
        data: dict[str, Any] = {"height": 0, "levels": [[], []], "safe": False}
    elif sides is not None:  # its orders read as columns, made dicts only where they stay
        data = {name: typed.field(name)[0].as_py() for name in ("height", "block_ms", "safe") if typed.type.get_field_index(name) >= 0}
        data["levels"] = sides
        if base.channel == CHECKPOINTS:
            data["short"] = typed.field("short")[0].as_py()
    else:
        data = base.message["data"]
    start_ns, height = (None, -1) if base is None else (base.recv_ns - SNAPSHOT_LATE_NS, data["height"])
    window = _read_window(find_parts(store, channels=[STATUSES, DIFFS], coins=[coin], start_ns=start_ns, end_ns=at_ns), start_ns, at_ns, height)
    if not window.raws[STATUSES] and not window.raws[DIFFS] and window.typed[DIFFS]:
        checkpoint = base is None or base.channel == CHECKPOINTS
        height, time_ms = data["height"], data.get("block_ms") or 0
        top, top_ms = window.last_block()
        if top > height:
            height, time_ms = top, top_ms
        shown = snapshot_at(coin, height, time_ms, bool(data.get("safe")) if checkpoint else True, data["levels"], data.get("short") if checkpoint else None,
                            window.joined(DIFFS), window.joined(STATUSES), window.status_orders, columns=sides is not None)
        if shown is not None:
            return shown, (base is not None) + window.rows, []
    state = l4_state(store, coin, at_ns, read=(base, window))
    return book_snapshot(state), state.rows, state.desyncs


def l4_state(store: Store, coin: str, at_ns: int, *, goes_on: bool = False, known: tuple[CoinBook, int] | None = None, reads: dict[Any, Any] | None = None,
             read: tuple[Base | None, _Window] | None = None) -> CoinBook:
    """The coin's book as of receive time ``at_ns`` (inclusive): the last snapshot or checkpoint at
    or before it, then only the rows after it (``rows`` counts what was read). The window's diffs
    are applied at once where they allow it (``net``), else block by block; ``goes_on``: the caller
    applies more blocks to it (a replay's start), so it keeps the window's last blocks, which a
    snapshot arriving late rebuilds the book from. ``known``: a book the caller holds as of an
    earlier receive time (moved on in place), taken instead of a stored base no later than it;
    ``reads``: row groups read already, kept for the next call (a walk from seek to seek); ``read``:
    the base and window read already (``l4_snapshot``, no ``known``)."""
    from .net import apply_window

    base = latest_base(store, coin, at_ns) if read is None else read[0]
    start_ns = None
    if known is not None and (base is None or base.recv_ns <= known[1]):
        state, start_ns = known
    else:
        state = CoinBook(coin)
        if base is not None:
            if base.channel == CHECKPOINTS:
                state.checkpoint(base.message["data"])
            else:  # a fresh book takes the snapshot's as it is (no copy of each order)
                data = base.message["data"]
                state.book = L4Book.from_snapshot(coin, data["height"], data.get("block_ms") or 0, *data["levels"], settle=goes_on)
            state.rows += 1
            start_ns = base.recv_ns - SNAPSHOT_LATE_NS
    if read is not None:
        window = read[1]
    else:
        parts = find_parts(store, channels=[STATUSES, DIFFS], coins=[coin], start_ns=start_ns, end_ns=at_ns)
        window = _read_window(parts, start_ns, at_ns, state.book.height if start_ns is not None else -1, reads)
    state.rows += window.rows
    if not goes_on and not window.raws[STATUSES] and not window.raws[DIFFS] and window.typed[DIFFS]:
        diffs, statuses = window.joined(DIFFS), window.joined(STATUSES)
        if apply_window(state.book, diffs[1], diffs[0], statuses[1], statuses[0], window.status_orders):
            height, block_ms = window.last_block()
            if height > state.book.height:
                state.book.height, state.book.time_ms = height, block_ms
            return state
    blocks = window.blocks()
    for height in sorted(blocks):
        block = blocks[height]
        state.pending = block
        state.finish()
    return state


@dataclass
class _Window:
    """A seek's rows above the base's height: typed ones as Arrow ``(seqs, data, whole)`` runs a
    part, rows kept as text as ``(seqs, events)``; ``rows``: every row read. A status line is read
    with only the fields a ``new`` looks up; ``whole()`` reads the run's lines whole, for the block
    path and for the orders that stay (``status_orders``)."""

    typed: dict[str, list[tuple[Any, Any, Any]]]
    raws: dict[str, list[tuple[list[int], list[dict[str, Any]]]]]
    rows: int = 0

    def joined(self, channel: str) -> tuple[Any, Any]:
        import pyarrow as pa

        runs = self.typed[channel]
        if not runs:
            from schemas.channels import CHANNELS

            return pa.array([], pa.int64()), pa.array([], CHANNELS[channel].shape.arrow_type)
        return concat_arrays([seqs for seqs, *_ in runs]), concat_arrays([data for _, data, *_ in runs])

    def status_orders(self, rows: list[int], names: tuple[str, ...] | None = None) -> Any:
        """The whole orders of status lines ``rows`` of ``joined(STATUSES)``; with ``names``, only
        those fields of them, a list of values each (only they are read)."""
        import pyarrow.compute as pc

        out: list[Any] = [None] * len(rows)
        columns: list[list[Any]] = [[None] * len(rows) for _ in names or ()]
        start = 0
        for _, data, whole in self.typed[STATUSES]:
            mine = [(i, row - start) for i, row in enumerate(rows) if start <= row < start + len(data)]
            if mine:
                if names is None:
                    for (i, _), order in zip(mine, pc.struct_field(whole([r for _, r in mine]), "order").to_pylist()):
                        out[i] = order
                else:
                    orders = pc.struct_field(whole([r for _, r in mine], [f"data.order.{n}" for n in names]), "order")
                    for column, name in zip(columns, names):
                        for (i, _), value in zip(mine, pc.struct_field(orders, name).to_pylist()):
                            column[i] = value
            start += len(data)
        return out if names is None else columns

    def last_block(self) -> tuple[int, int]:
        """The highest block the window's rows name, and its time (what block-by-block ends at)."""
        import pyarrow.compute as pc

        best = (-1, 0)
        for channel in (STATUSES, DIFFS):  # the first row of a block gives its time, statuses first
            for _, data, _ in self.typed[channel]:
                blocks = pc.struct_field(data, "block")
                top = pc.max(blocks).as_py()
                if top is not None and top > best[0]:
                    at = pc.index(blocks, top).as_py()
                    best = (top, pc.struct_field(data, "block_ms")[at].as_py() or 0)
        return best

    def blocks(self) -> dict[int, _Block]:
        runs: dict[str, list[tuple[list[int], list[dict[str, Any]]]]] = {STATUSES: [], DIFFS: []}
        for channel in (STATUSES, DIFFS):
            for seqs, data, whole in self.typed[channel]:
                runs[channel].append((seqs.to_pylist(), whole().to_pylist() if channel == STATUSES else _diff_events(data)))
            runs[channel] += self.raws[channel]
        blocks: dict[int, _Block] = {}
        for channel, chunks in runs.items():
            if len(chunks) == 1:
                events = chunks[0][1]
            else:  # several parts: a node row's seq is its block, stream and place
                events = [e for _, e in sorted(((s, e) for seqs, evs in chunks for s, e in zip(seqs, evs)), key=lambda pair: pair[0])]
            for event in events:
                height = event["block"]
                block = blocks.get(height)
                if block is None:
                    block = blocks[height] = _Block(height, event.get("block_ms") or 0, 0, "", 0)
                (block.statuses if channel == STATUSES else block.diffs).append(event)
        return blocks


def _read_window(parts: list[Any], start_ns: int | None, end_ns: int, after_height: int, reads: dict[Any, Any] | None = None) -> _Window:
    """The rows above ``after_height`` received in ``[start_ns, end_ns]``, as columns (only the row
    groups that can hold them). A status line only matters for the order a ``new`` diff places: only
    ``open`` and ``triggered`` ones are kept."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..archive import open_part

    window = _Window({STATUSES: [], DIFFS: []}, {STATUSES: [], DIFFS: []})
    used: set[Any] = set()
    for part in parts:
        parquet = open_part(part)
        present = parquet.schema_arrow.names
        names = [n for n in ("recv_ns", "seq", "raw") if n in present]
        if "data" in present:
            names += STATUS_LOOKUP if part.channel == STATUSES else ["data"]
        groups = groups_within(parquet.metadata, start_ns, end_ns)
        table = _read_groups(parquet, part.path, groups, names, reads, used)
        keep = pc.less_equal(table.column("recv_ns"), end_ns)
        if start_ns is not None:
            keep = pc.and_(keep, pc.greater_equal(table.column("recv_ns"), start_ns))
        kept = np.flatnonzero(keep.to_numpy(zero_copy_only=False)) if isinstance(keep, pa.Array) else np.flatnonzero(keep.combine_chunks().to_numpy(zero_copy_only=False))
        contiguous = len(kept) == 0 or kept[-1] - kept[0] + 1 == len(kept)  # a part's rows are in receipt order
        table = (table.slice(int(kept[0]) if len(kept) else 0, len(kept)) if contiguous else table.take(pa.array(kept))).combine_chunks()
        window.rows += table.num_rows
        if not table.num_rows:
            continue
        if "data" in present:
            data = table.column("data").chunk(0)
            wanted = pc.and_(pc.is_valid(data), pc.greater(pc.struct_field(data, "block"), after_height))
            if part.channel == STATUSES:
                wanted = pc.and_(wanted, pc.is_in(pc.struct_field(data, "status"), pa.array(["open", "triggered"])))
            chosen_at = np.flatnonzero(pc.fill_null(wanted, False).to_numpy(zero_copy_only=False))
            if len(chosen_at):
                chosen = table.take(pa.array(chosen_at))
                whole = None
                if part.channel == STATUSES:  # the lines whole, read when asked for (only their row groups)
                    def whole(which: Any = None, names: list[str] | None = None, parquet: Any = parquet, path: str = part.path, groups: list[int] = groups, at: Any = kept[chosen_at]) -> Any:
                        wanted = at if which is None else at[np.asarray(which, np.int64)]
                        sizes = np.array([parquet.metadata.row_group(g).num_rows for g in groups], np.int64)
                        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
                        index = np.searchsorted(starts, wanted, side="right") - 1
                        needed = sorted(set(index.tolist()))
                        local = wanted - starts[index] + np.concatenate([[0], np.cumsum(sizes[needed])[:-1]])[np.searchsorted(needed, index)]
                        table = _read_groups(parquet, path, [groups[i] for i in needed], names or ["data"], reads, None)
                        return one_array(table.column("data")).take(pa.array(local))
                window.typed[part.channel].append((one_array(chosen.column("seq")), one_array(chosen.column("data")), whole))
        raws = table.filter(pc.is_valid(table.column("raw")))
        if raws.num_rows:
            found = [(seq, orjson.loads(text)["data"]) for seq, text in zip(raws.column("seq").to_pylist(), raws.column("raw").to_pylist())]
            found = [(seq, data) for seq, data in found if data["block"] > after_height]
            if found:
                window.raws[part.channel].append(([seq for seq, _ in found], [event_of_row(data) | {"block": data["block"], "block_ms": data.get("block_ms")} for _, data in found]))
    if reads is not None:  # a walk moves forward: what this window did not read, the next will not
        for key in [k for k in reads if k[:2] not in used]:
            del reads[key]
    return window


# what a `new` looks up in its status line (the line whole is read only for the orders that stay)
STATUS_LOOKUP = ["data.block", "data.block_ms", "data.user", "data.status", "data.order.coin", "data.order.oid", "data.order.side", "data.order.limitPx"]


def _read_groups(parquet: Any, path: str, groups: list[int], names: list[str], reads: dict[Any, Any] | None, used: set[Any] | None) -> Any:
    """A part's row groups (kept in ``reads`` for the next window of a walk)."""
    key = (path, tuple(groups), tuple(names))
    if used is not None:
        used.add(key[:2])
    table = None if reads is None else reads.get(key)
    if table is None:
        table = parquet.read_row_groups(groups, columns=names)
        if reads is not None:
            reads[key] = table
    return table


def groups_within(footer: Any, start_ns: int | None, end_ns: int | None) -> list[int]:
    """The row groups whose receive times can fall in ``[start_ns, end_ns]`` (by their statistics)."""
    index = footer.schema.names.index("recv_ns") if "recv_ns" in footer.schema.names else None
    groups = []
    for group in range(footer.num_row_groups):
        stats = footer.row_group(group).column(index).statistics if index is not None else None
        if stats is not None and stats.has_min_max and ((end_ns is not None and stats.min > end_ns) or (start_ns is not None and stats.max < start_ns)):
            continue
        groups.append(group)
    return groups


def _diff_events(data: Any) -> list[dict[str, Any]]:
    """``l4Diffs`` typed rows as the rows' data (block first, then the node's diff), from columns."""
    import pyarrow.compute as pc

    names = ("block", "block_ms", "user", "oid", "coin", "side", "px")
    columns = [pc.struct_field(data, name).to_pylist() for name in names]
    changes = [orjson.loads(text) for text in pc.struct_field(data, "raw_book_diff").to_pylist()]
    out = []
    for block, block_ms, user, oid, coin, side, px, change in zip(*columns, changes):
        diff = {"block": block, "block_ms": block_ms, "user": user, "oid": oid, "coin": coin, "side": side, "px": px, "raw_book_diff": change}
        if side is None:
            del diff["side"]  # older data has none
        out.append(diff)
    return out


def book_snapshot(state: CoinBook) -> dict[str, Any]:
    """The book server's ``Snapshot`` of a state, with whether it can be trusted."""
    return {**state.book.snapshot(), "safe": state.book.safe}


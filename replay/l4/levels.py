"""``l2Book`` and ``bbo`` frames of a day's blocks from level sums kept in numpy: the frames the
block path makes, without a Python object a row.

A day's rows of the coin are read as columns and put in receipt order (as ``columns`` does), cut
into blocks, and taken a window of blocks at a time. Each window's diffs are followed oid by oid
(``net.follow``, with every check the book makes on a diff), which gives what each diff does to
its price level: a size and an order count added or taken away. A level's sums after each block
are then the level's sums at the window's start plus a running sum over the blocks (a matrix of
blocks by prices), and a block's ``l2Book`` is its first levels that hold orders. Sizes are summed
as integers of the window's smallest unit: exact, as the book's decimals are.

Anything this cannot take the way the book takes it goes the block path's way, a block at a time,
through the same ``CoinBook``: a window with a desync (a check that fails, a book crossed after a
block), a price written two ways, a size in exponent form; and a whole day with a row kept as text
or a node snapshot received after later blocks. Node snapshots received in their place are applied
between windows, as the book takes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from schemas.channels import CHANNELS
from schemas.l4.book import _bucket, _text
from schemas.shapes import concat_arrays, one_array
from schemas.subscriptions import Subscription

from ..merge import Item
from .net import Followed, follow
from .state import DIFFS, SNAPSHOTS, STATUSES, CoinBook, _Block, book_frame

Key = tuple[Any, ...]
WINDOW_BLOCKS = 256  # blocks a matrix holds: blocks x prices x 8 bytes, twice
_CODES = {STATUSES: 0, DIFFS: 1, SNAPSHOTS: 2}
_KEPT = pa.array(["open", "triggered"])
_REMOVE = '"remove"'
stats = {"windows": 0, "fallbacks": 0}  # windows taken from level sums, and the block path's (for tests and benchmarks)


@dataclass
class _Sessions:
    """Each row's session, as a code into the day's names (a name is made only where asked for)."""

    names: list[str]
    codes: Any

    def __getitem__(self, at: int) -> str:
        return self.names[self.codes[at]]


@dataclass
class _Day:
    """A day's rows of the coin in receipt order (duplicates left out), with each channel's data."""

    recv: Any
    session: _Sessions
    seq: Any
    channel: Any  # _CODES
    index: Any  # the row in its channel's data
    height: Any
    block_ms: Any
    data: dict[int, pa.StructArray]
    kept: Any  # statuses: a line a `new` may take its order from

    @property
    def rows(self) -> int:
        return len(self.recv)


def day_frames(state: CoinBook, tables: list[tuple[str, pa.Table]], subs: list[Subscription], decode: str, shown: dict[str, Any]) -> Iterator[tuple[Key, Item]] | None:
    """The day's frames from ``tables`` (``(channel, rows)`` of each part, read for the window), or
    None when the day must take the block path (a row kept as text, a late node snapshot)."""
    day = _day(tables)
    if day is None:
        return None
    return _frames(state, day, subs, decode, shown)


def _day(tables: list[tuple[str, pa.Table]]) -> _Day | None:
    keys, data = [], {0: [], 1: [], 2: []}  # type: ignore[var-annotated]
    channels, indexes = [], []  # each row's channel code, and its row in that channel's data
    counts = [0, 0, 0]
    for channel, table in tables:
        if "raw" in table.column_names and table.column("raw").null_count < table.num_rows:
            return None  # a row kept as text: the block path reads it whole
        if "data" not in table.column_names or not table.num_rows:
            continue
        code = _CODES[channel]
        column = one_array(table.column("data"))
        keys.append(table.select(["recv_ns", "session", "seq"]))
        channels.append(np.full(table.num_rows, code, np.int8))
        indexes.append(np.arange(counts[code], counts[code] + table.num_rows))
        data[code].append(column)
        counts[code] += table.num_rows
    if not keys:
        return None
    recv, session_codes, names, seq, order = _receipt_order(pa.concat_tables(keys).combine_chunks())
    codes = session_codes[order]
    recv, seq = recv[order], seq[order]
    same = np.zeros(len(recv), bool)  # the same row twice (a compaction caught between its two steps)
    if len(recv) > 1:
        same[1:] = (recv[1:] == recv[:-1]) & (seq[1:] == seq[:-1]) & (codes[1:] == codes[:-1])
    keep = ~same
    order = order[keep]
    channel, index = np.concatenate(channels)[order], np.concatenate(indexes)[order]
    recv, seq = recv[keep], seq[keep]
    session = _Sessions(names, codes[keep])
    joined = {code: concat_arrays(arrays) for code, arrays in data.items() if arrays}
    height = np.zeros(len(recv), np.int64)
    block_ms = np.zeros(len(recv), np.int64)
    kept = np.zeros(len(recv), bool)
    for code, column in joined.items():
        mine = channel == code
        blocks = pc.fill_null(pc.struct_field(column, "block"), -1).to_numpy(zero_copy_only=False)
        height[mine] = blocks[index[mine]]
        block_ms[mine] = pc.fill_null(pc.struct_field(column, "block_ms"), 0).to_numpy(zero_copy_only=False)[index[mine]]
        if code == 0:
            wanted = pc.fill_null(pc.is_in(pc.struct_field(column, "status"), _KEPT), False).to_numpy(zero_copy_only=False)
            kept[mine] = wanted[index[mine]]
    snapshots = np.flatnonzero(channel == 2)
    if len(snapshots):  # a snapshot received after later blocks rebuilds from blocks kept one by one
        running = np.maximum.accumulate(np.where(channel == 2, -1, height))
        for at in snapshots.tolist():
            if at and running[at - 1] > height[at]:
                return None
    return _Day(recv, session, seq, channel, index, height, block_ms, joined, kept)


def _receipt_order(keys: pa.Table) -> tuple[Any, Any, list[str], Any, Any]:
    """The rows' receive times, session codes (into ``names``) and seqs, and the order that puts
    them by ``(recv_ns, session, seq)``. Each part's rows are in that order already, so a stable
    sort by receive time alone (a merge of sorted runs) gives it wherever rows received at the same
    time are in session and seq order as they stand, which is checked; else the full sort."""
    recv, seq = keys.column("recv_ns").chunk(0).to_numpy(), keys.column("seq").chunk(0).to_numpy()
    encoded = pc.dictionary_encode(keys.column("session").chunk(0))
    names = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    rank = np.empty(len(names), np.int64)
    rank[np.argsort(np.array(names, dtype=object))] = np.arange(len(names))  # a name's place in text order
    ranks = rank[codes]
    order = np.argsort(recv, kind="stable")
    if len(order) > 1:
        r, k, q = recv[order], ranks[order], seq[order]
        tied = r[1:] == r[:-1]
        if not np.all(~tied | (k[1:] > k[:-1]) | ((k[1:] == k[:-1]) & (q[1:] >= q[:-1]))):
            order = np.lexsort((seq, ranks, recv))
    return recv, codes, names, seq, order


def _frames(state: CoinBook, day: _Day, subs: list[Subscription], decode: str, shown: dict[str, Any]) -> Iterator[tuple[Key, Item]]:
    for block in state.finish():  # a block the day before left pending
        yield from _block_frames(state, (block.recv_ns, 1), block, subs, decode, shown)
    state.rows += day.rows
    n = day.rows
    cuts = np.flatnonzero((day.height[1:] != day.height[:-1]) | (day.channel[1:] == 2) | (day.channel[:-1] == 2)) + 1
    starts = np.concatenate([[0], cuts]).astype(np.int64)
    ends = np.concatenate([cuts, [n]]).astype(np.int64)
    window: list[int] = []  # runs (blocks) to apply, in order
    height = state.book.height
    for run, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())):
        if day.channel[a] == 2:  # a node snapshot, in its place
            yield from _window(state, day, window, starts, ends, subs, decode, shown)
            window = []
            snapshot = day.data[2].take(pa.array([int(day.index[a])])).to_pylist()[0]
            state.take_event(SNAPSHOTS, snapshot["block"], snapshot.get("block_ms"), snapshot, int(day.recv[a]), day.session[a], int(day.seq[a]))
            height = state.book.height
            continue
        if day.height[a] <= height:
            continue  # a block the book is past (the node's snapshot was ahead of it)
        window.append(run)
        height = int(day.height[a])
        if len(window) == WINDOW_BLOCKS:
            yield from _window(state, day, window, starts, ends, subs, decode, shown)
            window = []
    yield from _window(state, day, window, starts, ends, subs, decode, shown)


def _key(day: _Day, start: int, end: int) -> Key:
    """The merge key of a block's frames (as ``columns`` gives it): after the row that ended the
    block if it came at the block's receive time, else after every row of that time."""
    if end < day.rows and day.recv[end] <= day.recv[start]:
        return int(day.recv[end]), 0, day.session[end], int(day.seq[end])
    return int(day.recv[start]), 1


def _window(state: CoinBook, day: _Day, runs: list[int], starts: Any, ends: Any, subs: list[Subscription], decode: str, shown: dict[str, Any]) -> Iterator[tuple[Key, Item]]:
    if not runs:
        return
    sums = _sums(state, day, runs, starts, ends, subs)
    if sums is None:
        stats["fallbacks"] += 1
        yield from _one_by_one(state, day, runs, starts, ends, subs, decode, shown)
        return
    stats["windows"] += 1
    followed, levels = sums
    coin = state.coin
    heights = [int(day.height[starts[r]]) for r in runs]
    times = [_block_ms(day, int(starts[r])) for r in runs]
    made = [levels.frames(sub, times, coin, shown) for sub in subs]
    for i, run in enumerate(runs):
        a, b = int(starts[run]), int(ends[run])
        key = _key(day, a, b)
        for sub, frames in zip(subs, made):
            frame = frames[i]
            if frame is not None:
                yield key, Item(int(day.recv[a]), day.session[a], int(day.seq[a]), times[i], sub.stream, frame if decode == "dicts" else orjson.dumps(frame))
    followed.apply()
    levels.carry(state.book)
    state.book.height, state.book.time_ms = heights[-1], times[-1]


_BUCKETS: dict[tuple[Decimal, int, int | None, bool], Decimal] = {}
_SIZE_TEXTS: dict[int, dict[int, str]] = {}  # scale -> units -> text


def _bucketed(price: Decimal, n_sig_figs: int, mantissa: int | None, down: bool) -> Decimal:
    key = (price, n_sig_figs, mantissa, down)
    found = _BUCKETS.get(key)
    if found is None:
        if len(_BUCKETS) > 100_000:
            _BUCKETS.clear()
        found = _BUCKETS[key] = _bucket(price, n_sig_figs, mantissa, down=down)
    return found


def _block_ms(day: _Day, at: int) -> int:
    return int(day.block_ms[at])


def _one_by_one(state: CoinBook, day: _Day, runs: list[int], starts: Any, ends: Any, subs: list[Subscription], decode: str, shown: dict[str, Any]) -> Iterator[tuple[Key, Item]]:
    """The window the block path's way: each block's rows as the book's events, applied in turn."""
    for run in runs:
        a, b = int(starts[run]), int(ends[run])
        block = _Block(int(day.height[a]), _block_ms(day, a), int(day.recv[a]), day.session[a], int(day.seq[a]))
        for at in range(a, b):
            code, index = int(day.channel[at]), int(day.index[at])
            if code == 1:
                block.diffs.append(_diff_event(day.data[1], index))
            elif day.kept[at]:
                line = day.data[0].take(pa.array([index])).to_pylist()[0]
                line.pop("block"), line.pop("block_ms")
                block.statuses.append(line)
        state.pending = block
        for done in state.finish():
            yield from _block_frames(state, _key(day, a, b), done, subs, decode, shown)


def _diff_event(column: pa.StructArray, index: int) -> dict[str, Any]:
    row = column.take(pa.array([index])).to_pylist()[0]
    diff = {"user": row["user"], "oid": row["oid"], "coin": row["coin"], "side": row["side"], "px": row["px"],
            "raw_book_diff": "remove" if row["raw_book_diff"] == _REMOVE else orjson.loads(row["raw_book_diff"])}
    if diff["side"] is None:
        del diff["side"]  # older data has none
    return diff


def _block_frames(state: CoinBook, key: Key, block: _Block, subs: list[Subscription], decode: str, shown: dict[str, Any]) -> Iterator[tuple[Key, Item]]:
    for sub in subs:
        frame = book_frame(state.book, sub, shown)
        if frame is not None:
            yield key, Item(block.recv_ns, block.session, block.seq, block.block_ms, sub.stream, frame if decode == "dicts" else orjson.dumps(frame))


# --- level sums ---------------------------------------------------------------------------------------


def _sums(state: CoinBook, day: _Day, runs: list[int], starts: Any, ends: Any, subs: list[Subscription]) -> tuple[Followed, _Levels] | None:
    """The window's diffs followed, and every level's sums after each of its blocks; None where
    the block path must take the window."""
    positions = np.concatenate([np.arange(starts[r], ends[r]) for r in runs])
    block_of = np.concatenate([np.full(ends[r] - starts[r], i) for i, r in enumerate(runs)])
    is_diff = day.channel[positions] == 1
    diff_at = positions[is_diff]
    if len(diff_at) > 1 and not np.all(day.seq[diff_at][1:] > day.seq[diff_at][:-1]):
        return None  # rows whose order is not their seq's (sessions interleaved)
    lines_at = positions[(day.channel[positions] == 0) & day.kept[positions]]
    diffs = _rows(day.data[1], day.index[diff_at]) if len(diff_at) else pa.array([], CHANNELS[DIFFS].shape.arrow_type)
    lines = _rows(day.data[0], day.index[lines_at]) if len(lines_at) else pa.array([], CHANNELS[STATUSES].shape.arrow_type)
    book = state.book
    if len(diffs) and not pc.all(pc.fill_null(pc.equal(pc.struct_field(diffs, "coin"), book.coin), True)).as_py():
        return None  # another coin's diff in the coin's rows: the book skips it, one by one
    followed = follow(book, diffs, pa.array(day.seq[diff_at]), lines, pa.array(day.seq[lines_at]))
    if followed is None:
        return None
    depths = [None if sub.n_sig_figs else (1 if sub.type == "bbo" else sub.n_levels or 20) for sub in subs]
    levels = _Levels.of(book, followed, block_of[is_diff], len(runs), None if None in depths else max(depths))
    return None if levels is None else (followed, levels)


def _rows(column: pa.StructArray, at: Any) -> pa.StructArray:
    """Rows ``at`` of a day's column: a slice (no copy) where they follow each other, as a window's
    diffs usually do, else a take."""
    if at[-1] - at[0] + 1 == len(at) and np.all(at[1:] > at[:-1]):
        return column.slice(int(at[0]), len(at))
    return column.take(pa.array(at))


@dataclass
class _Levels:
    """Each side's level sums after each block of a window: ``sizes`` (integers of ``10**-scale``)
    and ``counts``, blocks by prices (ascending), with each price's decimal and text."""

    prices: list[list[Decimal]]
    texts: list[list[str]]
    sizes: list[Any]
    counts: list[Any]
    scale: int

    @classmethod
    def of(cls, book: Any, followed: Followed, block_of: Any, blocks: int, depth: int | None) -> _Levels | None:
        """The window's level sums; ``depth``: the most levels a side's frame shows (None: every
        level, for rounded prices), so only the levels the diffs touch and the best ``depth``
        untouched ones are summed: the others cannot be shown."""
        n = followed.n
        if n:
            side, px = followed.placement()
            before, after = followed.size_before(), followed.size_after
            block = block_of[followed.by_oid]  # the diffs in by-oid order: their blocks follow them
        else:
            side = px = before = after = pa.array([], pa.string())
            block = np.empty(0, np.int64)
        px_codes = pc.dictionary_encode(px)
        px_texts = px_codes.dictionary.to_pylist()
        unique = [Decimal(t) for t in px_texts]
        bids = pc.fill_null(pc.equal(side, "B"), False).to_numpy(zero_copy_only=False) if n else np.empty(0, bool)
        price_of = px_codes.indices.to_numpy(zero_copy_only=False) if n else np.empty(0, np.int64)
        texts: dict[Decimal, str] = {}
        for text, price in zip(px_texts, unique):
            if texts.setdefault(price, text) != text:
                return None  # one price written two ways: the book shows the first order's
        columns: list[list[Decimal]] = []
        base: list[dict[Decimal, tuple[Decimal, int]]] = [{}, {}]
        for index in (0, 1):
            mine = np.flatnonzero(bids if index == 0 else ~bids)
            touched = {unique[i] for i in np.unique(price_of[mine]).tolist()}
            levels, prices = book._levels[index], book._prices[index]
            for price in touched:
                level = levels.get(price)
                if level is not None:
                    if book.mixed_texts and any(r.px_text != texts[price] for r in level.queue.values()):
                        return None  # a level whose orders write its price otherwise
                    if next(iter(level.queue.values())).px_text != texts[price]:
                        return None
                    base[index][price] = (level.total(), len(level.queue))
            chosen = set(touched)
            untouched = 0
            for price in reversed(prices) if index == 0 else prices:
                if depth is not None and untouched >= depth:
                    break
                if price in touched:
                    continue
                level = levels[price]
                entry = level.entry()
                texts.setdefault(price, entry["px"])
                base[index][price] = (level.total(), len(level.queue))
                chosen.add(price)
                untouched += 1
            columns.append(sorted(chosen))
        sized = [pc.dictionary_encode(a) for a in (before, after)]
        places: dict[str, int] = {}  # each size text's decimal places
        for codes in sized:
            for t in codes.dictionary.to_pylist():
                if t not in places:
                    if "e" in t or "E" in t:
                        return None  # exponent form: the book's decimals take it, this does not
                    places[t] = len(t) - t.index(".") - 1 if "." in t else 0
        decimals = list(places.values()) + [-s.as_tuple().exponent for side_base in base for s, _ in side_base.values()]
        if any(not isinstance(d, int) for d in decimals):
            return None  # not a finite size
        scale = max([0, *decimals])
        if scale > 18:
            return None
        unit = Decimal(10) ** scale
        try:
            ints = {t: int(t.replace(".", "", 1)) * 10 ** (scale - d) for t, d in places.items()}
        except ValueError:
            return None
        biggest = sum(abs(v) for v in ints.values()) + sum(int(s * unit) for side_base in base for s, _ in side_base.values())
        if biggest >= 2**62:
            return None

        def as_ints(codes: Any) -> Any:
            table = np.array([ints[t] for t in codes.dictionary.to_pylist()] + [0], np.int64)
            return table[pc.fill_null(codes.indices, len(table) - 1).to_numpy(zero_copy_only=False)]

        size_before, size_after = (as_ints(codes) for codes in sized) if n else (np.empty(0, np.int64), np.empty(0, np.int64))
        delta = np.where(followed.alive_after, size_after, 0) - np.where(followed.alive_before, size_before, 0)
        count = followed.alive_after.astype(np.int64) - followed.alive_before.astype(np.int64)
        texts_out, sizes_out, counts_out = [], [], []
        for index in (0, 1):
            mine = np.flatnonzero(bids if index == 0 else ~bids)
            prices = columns[index]
            column = {p: i for i, p in enumerate(prices)}
            start_size = np.array([int(base[index][p][0] * unit) if p in base[index] else 0 for p in prices], np.int64)
            start_count = np.array([base[index][p][1] if p in base[index] else 0 for p in prices], np.int64)
            d_size = np.zeros((blocks, len(prices)), np.int64)
            d_count = np.zeros((blocks, len(prices)), np.int64)
            if len(mine):
                to_column = np.zeros(len(unique), np.int64)
                used = np.unique(price_of[mine]).tolist()
                to_column[used] = [column[unique[i]] for i in used]
                cols = to_column[price_of[mine]]
                np.add.at(d_size, (block[mine], cols), delta[mine])
                np.add.at(d_count, (block[mine], cols), count[mine])
            sizes = start_size + np.cumsum(d_size, axis=0)
            counts = start_count + np.cumsum(d_count, axis=0)
            if np.any(counts < 0):
                return None
            texts_out.append([texts[p] for p in prices])
            sizes_out.append(sizes)
            counts_out.append(counts)
        levels = cls(columns, texts_out, sizes_out, counts_out, scale)
        if levels.crossed():
            return None  # the book records it as a desync: the block path does
        return levels

    def carry(self, book: Any) -> None:
        """Each level the window changed keeps its sums after the last block as its shown entry
        (what ``_Level.entry`` would add up from its orders): the next window starts from them."""
        scale = self.scale
        for index in (0, 1):
            levels = book._levels[index]
            for price, size, count in zip(self.prices[index], self.sizes[index][-1].tolist(), self.counts[index][-1].tolist()):
                level = levels.get(price) if count else None
                if level is None or level.shown is not None or len(level.queue) != count:
                    continue  # untouched (its entry holds), gone, or not what the sums say: added up again when asked
                total = Decimal(size).scaleb(-scale)
                level.sz = total
                level.shown = {"px": next(iter(level.queue.values())).px_text, "sz": _text(total), "n": count}

    def best(self, index: int) -> Any:
        """Each block's best price column of a side (-1: the side is empty)."""
        held = self.counts[index] > 0
        if not held.shape[1]:
            return np.full(held.shape[0], -1)
        if index == 0:
            last = held.shape[1] - 1 - np.argmax(held[:, ::-1], axis=1)
            return np.where(held.any(axis=1), last, -1)
        return np.where(held.any(axis=1), np.argmax(held, axis=1), -1)

    def crossed(self) -> bool:
        bids, asks = self.best(0), self.best(1)
        for b, a in zip(bids.tolist(), asks.tolist()):
            if b >= 0 and a >= 0 and self.prices[0][b] >= self.prices[1][a]:
                return True
        return False

    def frames(self, sub: Subscription, times: list[int], coin: str, shown: dict[str, Any]) -> list[dict[str, Any] | None]:
        """Each block's frame of ``sub`` (a ``bbo`` only when its best levels changed)."""
        scale = self.scale
        step = 10**scale
        known = _SIZE_TEXTS.get(scale)
        if known is None or len(known) > 200_000:
            known = _SIZE_TEXTS[scale] = {}

        def text(value: int) -> str:
            """``_text`` of ``value`` units of ``10**-scale``, in integers: no trailing zeros, ``.0`` on
            whole numbers. Kept: a level's size is shown again in window after window."""
            found = known.get(value)
            if found is not None:
                return found
            if value < 0:
                found = _text(Decimal(value).scaleb(-scale))
            else:
                whole, part = divmod(value, step)
                digits = f"{part:0{scale}d}".rstrip("0") if scale else ""
                found = f"{whole}.{digits}" if digits else f"{whole}.0"
            known[value] = found
            return found

        if sub.type == "bbo":
            return self._bbo(sub, times, coin, shown, text)
        depth = sub.n_levels or 20
        sides = [self._side(index, depth, sub.n_sig_figs, sub.mantissa, text) for index in (0, 1)]
        return [{"channel": "l2Book", "data": {"coin": coin, "time": time_ms, "levels": [bids, asks]}} for time_ms, bids, asks in zip(times, *sides)]

    def _side(self, index: int, depth: int, n_sig_figs: int | None, mantissa: int | None, text: Any) -> list[list[dict[str, Any]]]:
        sizes, counts, texts = self.sizes[index], self.counts[index], self.texts[index]
        if n_sig_figs:  # prices bucketed: bids rounded down, asks up; a bucket's sums are its levels'
            keys = [_bucketed(p, n_sig_figs, mantissa, index == 0) for p in self.prices[index]]
            bounds = [i for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]]
            if keys:
                sizes = np.add.reduceat(np.where(counts > 0, sizes, 0), bounds, axis=1)
                counts = np.add.reduceat(counts, bounds, axis=1)
            texts = [_text(keys[i]) for i in bounds]
        held = counts > 0
        order = held[:, ::-1] if index == 0 else held  # best first
        rank = np.cumsum(order, axis=1)
        chosen = order & (rank <= depth)
        rows, cols = np.nonzero(chosen)
        if index == 0:
            cols = held.shape[1] - 1 - cols
        values, inverse = np.unique(sizes[rows, cols], return_inverse=True)
        known = _SIZE_TEXTS[self.scale]  # what ``text`` keeps: looked up without a call
        sz = [known.get(v) or text(v) for v in values.tolist()]
        entries = [{"px": texts[c], "sz": sz[i], "n": k} for c, i, k in zip(cols.tolist(), inverse.tolist(), counts[rows, cols].tolist())]
        bounds = np.searchsorted(rows, np.arange(held.shape[0] + 1)).tolist()
        return [entries[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def _bbo(self, sub: Subscription, times: list[int], coin: str, shown: dict[str, Any], text: Any) -> list[dict[str, Any] | None]:
        bests = [self.best(0).tolist(), self.best(1).tolist()]
        out: list[dict[str, Any] | None] = []
        for row, time_ms in enumerate(times):
            best = tuple(None if bests[i][row] < 0 else (self.texts[i][bests[i][row]], text(int(self.sizes[i][row, bests[i][row]])), int(self.counts[i][row, bests[i][row]])) for i in (0, 1))
            if shown.get(sub.stream) == best:
                out.append(None)
                continue
            shown[sub.stream] = best
            levels = [None if level is None else {"px": level[0], "sz": level[1], "n": level[2]} for level in best]
            out.append({"channel": "bbo", "data": {"coin": coin, "time": time_ms, "bbo": levels}})
        return out


__all__ = ["day_frames", "stats"]

"""Candles from the archive's columns in one vectorised pass: trades (recorded, or imported from the
exchange's history) into OHLCV, recorded ``candle`` frames (the last update of each open time), and
hourly mark and funding from asset contexts. Arrow and numpy only; no Python object per trade.

Rules, the same everywhere:

- A trade's place in time is ``(time, recv_ns, its index in its frame)``: ``open`` is the first trade
  of the interval, ``close`` the last. A ``tid`` seen twice (a resubscription's snapshot, two
  recorder sessions, recorded and imported history) counts once: its first arrival (copies a chunk
  apart at most, about half a million trades: the copies of one trade arrive close together).
- Volume is the exact decimal sum of the sizes' text (integers scaled by the most decimals seen),
  rounded once to float: the same float as ``float(sum(Decimal(sz)))``.
- Intervals are UTC and epoch-aligned, as ccxt's ``round_timeframe`` counts them (``1w`` opens on
  Thursdays), ``1M`` is the calendar month. Empty intervals are left out.
- Funding dated ``H`` is the rate paid at ``H``: the last ``funding`` an asset context showed in the
  hour before it (the rate the exchange settles at the end of that hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

MS = 1_000_000
HOUR_MS = 3_600_000
TIMEFRAME_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000, "1M": 0,  # 0: the calendar month
}  # fmt: skip


@dataclass
class Trades:
    """One chunk of a coin's trades, sorted by place in time, each ``tid`` once."""

    time: np.ndarray  # ms
    recv: np.ndarray  # ns
    index: np.ndarray  # in its frame
    tid: np.ndarray
    px: np.ndarray  # float64
    units: np.ndarray  # size * 10**scale, int64
    scale: int
    buy: np.ndarray  # the taker bought

    def __len__(self) -> int:
        return len(self.time)

    def split(self, at_ms: int) -> tuple[Trades, Trades]:
        """The trades before ``at_ms`` and the rest."""
        cut = int(np.searchsorted(self.time, at_ms, side="left"))
        head = Trades(*(a[:cut] if isinstance(a, np.ndarray) else a for a in self._fields()))
        tail = Trades(*(a[cut:] if isinstance(a, np.ndarray) else a for a in self._fields()))
        return head, tail

    def _fields(self) -> tuple[Any, ...]:
        return (self.time, self.recv, self.index, self.tid, self.px, self.units, self.scale, self.buy)

    @property
    def size(self) -> np.ndarray:
        return self.units / 10.0**self.scale


def trades_of_batches(batches: list[pa.RecordBatch], carry: Trades | None = None, seen: np.ndarray | None = None) -> tuple[Trades, int]:
    """The trades of ``trades`` batches (columns ``recv_ns``, ``raw``, ``data``); as ``trades_of``."""
    return trades_of([piece for batch in batches for piece in columns_of(batch)], carry, seen)


def trades_of(pieces: list[Piece], carry: Trades | None = None, seen: np.ndarray | None = None) -> tuple[Trades, int]:
    """The trades of ``pieces`` (``columns_of`` of batches) and of ``carry`` (the previous chunk's
    last trades, held back), sorted, with every ``tid`` once and none of ``seen`` (the previous
    chunk's); and how many repeats were dropped."""
    pieces = list(pieces)
    if carry is not None and len(carry):
        pieces.append((carry.time, carry.recv, carry.index, carry.tid, carry.px, carry.units, carry.buy, carry.scale))
    if not pieces:
        return _empty(), 0
    scale = max(p[-1] for p in pieces)
    time = np.concatenate([p[0] for p in pieces])
    recv = np.concatenate([p[1] for p in pieces])
    index = np.concatenate([p[2] for p in pieces])
    tid = np.concatenate([p[3] for p in pieces])
    px = np.concatenate([p[4] for p in pieces])
    units = np.concatenate([p[5] * 10 ** (scale - p[7]) if p[7] != scale else p[5] for p in pieces])
    buy = np.concatenate([p[6] for p in pieces])
    order = None if _in_order(time, recv, index) else np.lexsort((index, recv, time))
    if order is not None:
        time, recv, index, tid, px, units, buy = (a[order] for a in (time, recv, index, tid, px, units, buy))
    keep = _first_of_each(tid)
    if seen is not None and len(seen):
        keep &= ~np.isin(tid, seen)
    dropped = len(time) - int(keep.sum())
    if dropped:
        time, recv, index, tid, px, units, buy = (a[keep] for a in (time, recv, index, tid, px, units, buy))
    return Trades(time, recv, index, tid, px, units, scale, buy), dropped


def _in_order(time: np.ndarray, recv: np.ndarray, index: np.ndarray) -> bool:
    """Whether the rows are already sorted by ``(time, recv, index)`` (one session's trades nearly
    always are: then no sort)."""
    if len(time) < 2:
        return True
    dt = np.diff(time)
    if (dt < 0).any():
        return False
    tie = dt == 0
    if not tie.any():
        return True
    dr = np.diff(recv)[tie]
    return bool(((dr > 0) | ((dr == 0) & (np.diff(index)[tie] > 0))).all())


def _first_of_each(tid: np.ndarray) -> np.ndarray:
    """Which of ``tid`` (in place-in-time order) are their tid's first."""
    keep = np.zeros(len(tid), bool)
    _, first = np.unique(tid, return_index=True)
    keep[first] = True
    return keep


Piece = tuple[Any, ...]  # (time, recv, index, tid, px, units, buy, scale) of some trades, unsorted


def columns_of(batch: pa.RecordBatch) -> list[Piece]:
    """``(time, recv, index, tid, px, units, buy, scale)`` of a batch: its columnar rows, and its rows
    kept as text (parsed one by one: the archive keeps a frame as text only when its shape was new)."""
    out = []
    raw = batch.column("raw") if "raw" in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
    columnar = batch.filter(pc.is_null(raw)) if raw.null_count != batch.num_rows else batch
    if "data" in batch.schema.names and columnar.num_rows and columnar.column("data").null_count != columnar.num_rows:
        columnar = columnar.filter(pc.is_valid(columnar.column("data")))
        data = columnar.column("data")
        trades = data.flatten()
        if len(trades):
            parent = pc.list_parent_indices(data).to_numpy()
            offsets = data.offsets.to_numpy()
            starts = offsets[:-1] - offsets[0]
            index = np.arange(len(trades), dtype=np.int64) - starts[parent]
            recv = columnar.column("recv_ns").to_numpy()[parent]
            units, scale = _scaled(trades.field("sz"))
            out.append((
                trades.field("time").to_numpy(zero_copy_only=False).astype(np.int64),
                recv,
                index,
                trades.field("tid").to_numpy(zero_copy_only=False).astype(np.int64),
                pc.cast(trades.field("px"), pa.float64()).to_numpy(zero_copy_only=False),
                units,
                pc.equal(trades.field("side"), "B").to_numpy(zero_copy_only=False),
                scale,
            ))
    if raw.null_count != batch.num_rows:
        texts = batch.filter(pc.is_valid(raw))
        rows = [(r, i, t) for r, text in zip(texts.column("recv_ns").to_pylist(), texts.column("raw").to_pylist()) for i, t in enumerate(orjson.loads(text).get("data") or [])]
        if rows:
            units, scale = _scaled(pa.array([t["sz"] for _, _, t in rows], pa.string()))
            out.append((
                np.array([int(t["time"]) for _, _, t in rows], np.int64),
                np.array([r for r, _, _ in rows], np.int64),
                np.array([i for _, i, _ in rows], np.int64),
                np.array([int(t["tid"]) for _, _, t in rows], np.int64),
                np.array([float(t["px"]) for _, _, t in rows], np.float64),
                units,
                np.array([t["side"] == "B" for _, _, t in rows], bool),
                scale,
            ))
    return out


def _scaled(sizes: pa.Array) -> tuple[np.ndarray, int]:
    """Sizes' text as integers of ``10**-scale``, ``scale`` the most decimals among them: exact sums."""
    dot = pc.find_substring(sizes, ".").to_numpy(zero_copy_only=False)
    length = pc.utf8_length(sizes).to_numpy(zero_copy_only=False)
    decimals = np.where(dot < 0, 0, length - 1 - dot)
    scale = int(decimals.max()) if len(decimals) else 0
    digits = pc.cast(pc.replace_substring(sizes, ".", ""), pa.int64()).to_numpy(zero_copy_only=False)
    return digits * (10 ** (scale - decimals)), scale


def _empty() -> Trades:
    i = np.zeros(0, np.int64)
    return Trades(i, i, i, i, np.zeros(0), i, 0, np.zeros(0, bool))


# --- candles ----------------------------------------------------------------------------------------


@dataclass
class Candles:
    """Candles (or parts of candles, to be merged) of one timeframe, sorted by open time."""

    t: np.ndarray  # open time, ms
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    units: np.ndarray  # volume * 10**scale
    scale: int
    trades: np.ndarray  # how many
    first: np.ndarray  # the place in time of the first and last trade: (time, recv, index) rows
    last: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    @property
    def volume(self) -> np.ndarray:
        return self.units / 10.0**self.scale


def open_time(time_ms: np.ndarray, timeframe: str) -> np.ndarray:
    """The open time of the interval of ``timeframe`` each time falls in."""
    span = TIMEFRAME_MS[timeframe]
    if span:
        return time_ms - time_ms % span
    months = time_ms.astype("datetime64[ms]").astype("datetime64[M]")
    return months.astype("datetime64[ms]").astype(np.int64)


def candles_of(trades: Trades, timeframe: str) -> Candles:
    """``trades`` (sorted) as the candles of ``timeframe``."""
    t = open_time(trades.time, timeframe)
    if not len(t):
        i = np.zeros(0, np.int64)
        return Candles(i, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), i, trades.scale, i, np.zeros((0, 3), np.int64), np.zeros((0, 3), np.int64))
    starts = np.flatnonzero(np.concatenate([[True], t[1:] != t[:-1]]))
    ends = np.concatenate([starts[1:], [len(t)]]) - 1
    place = np.stack([trades.time, trades.recv, trades.index], axis=1)
    return Candles(
        t[starts],
        trades.px[starts],
        np.maximum.reduceat(trades.px, starts),
        np.minimum.reduceat(trades.px, starts),
        trades.px[ends],
        np.add.reduceat(trades.units, starts),
        trades.scale,
        ends - starts + 1,
        place[starts],
        place[ends],
    )


def merge(parts: list[Candles]) -> Candles:
    """Candles of chunks put together: a candle two chunks both hold (trades near a chunk's edge) is
    one, opened by the earlier first trade and closed by the later last."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return candles_of(_empty(), "1m")
    if len(parts) == 1:
        return parts[0]
    scale = max(p.scale for p in parts)
    t = np.concatenate([p.t for p in parts])
    first = np.concatenate([p.first for p in parts])
    last = np.concatenate([p.last for p in parts])
    o, h, lo, c = (np.concatenate([getattr(p, k) for p in parts]) for k in ("open", "high", "low", "close"))
    units = np.concatenate([p.units * 10 ** (scale - p.scale) for p in parts])
    n = np.concatenate([p.trades for p in parts])
    by_first = np.lexsort((first[:, 2], first[:, 1], first[:, 0], t))
    starts = np.flatnonzero(np.concatenate([[True], t[by_first][1:] != t[by_first][:-1]]))
    by_last = np.lexsort((last[:, 2], last[:, 1], last[:, 0], t))
    ends = np.concatenate([starts[1:], [len(t)]]) - 1
    return Candles(
        t[by_first][starts],
        o[by_first][starts],
        np.maximum.reduceat(h[by_first], starts),
        np.minimum.reduceat(lo[by_first], starts),
        c[by_last][ends],
        np.add.reduceat(units[by_first], starts),
        scale,
        np.add.reduceat(n[by_first], starts),
        first[by_first][starts],
        last[by_last][ends],
    )


# --- recorded candles and asset contexts ---------------------------------------------------------------


@dataclass
class Recorded:
    """The exchange's own candles of one interval, the last update of each open time."""

    t: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


CANDLE_FIELDS = ("t", "o", "h", "l", "c", "v")


def recorded_candles(batches: list[pa.RecordBatch]) -> Recorded:
    """``candle`` batches of one stream (columns ``recv_ns``, ``raw``, ``data``): the last frame
    received for each open time."""
    recv, values = [], {k: [] for k in CANDLE_FIELDS}
    for batch in batches:
        raw = batch.column("raw") if "raw" in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
        columnar = batch.filter(pc.and_(pc.is_null(raw), pc.is_valid(batch.column("data")))) if "data" in batch.schema.names else batch.slice(0, 0)
        if columnar.num_rows:
            data = columnar.column("data")
            recv.append(columnar.column("recv_ns").to_numpy())
            for k in CANDLE_FIELDS:
                column = data.field(k)
                values[k].append(column.to_numpy(zero_copy_only=False).astype(np.int64) if k == "t" else pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False))
        texts = batch.filter(pc.is_valid(raw))
        if texts.num_rows:
            frames = [orjson.loads(text)["data"] for text in texts.column("raw").to_pylist()]
            recv.append(texts.column("recv_ns").to_numpy())
            values["t"].append(np.array([int(f["t"]) for f in frames], np.int64))
            for k in CANDLE_FIELDS[1:]:
                values[k].append(np.array([float(f[k]) for f in frames], np.float64))
    if not recv:
        z = np.zeros(0)
        return Recorded(np.zeros(0, np.int64), z, z, z, z, z)
    r = np.concatenate(recv)
    cols = {k: np.concatenate(v) for k, v in values.items()}
    order = np.lexsort((r, cols["t"]))
    t = cols["t"][order]
    last = np.flatnonzero(np.concatenate([t[1:] != t[:-1], [True]]))
    pick = order[last]
    return Recorded(cols["t"][pick], cols["o"][pick], cols["h"][pick], cols["l"][pick], cols["c"][pick], cols["v"][pick])


def hourly_mark(time_ns: np.ndarray, mark: np.ndarray) -> Recorded:
    """OHLC of mark prices a UTC hour (volume 0): freqtrade's ``-1h-mark`` candles."""
    valid = ~np.isnan(mark)
    time_ns, mark = time_ns[valid], mark[valid]
    order = np.argsort(time_ns, kind="stable")
    time_ns, mark = time_ns[order], mark[order]
    hour = time_ns // MS - (time_ns // MS) % HOUR_MS
    if not len(hour):
        z = np.zeros(0)
        return Recorded(np.zeros(0, np.int64), z, z, z, z, z)
    starts = np.flatnonzero(np.concatenate([[True], hour[1:] != hour[:-1]]))
    ends = np.concatenate([starts[1:], [len(hour)]]) - 1
    return Recorded(hour[starts], mark[starts], np.maximum.reduceat(mark, starts), np.minimum.reduceat(mark, starts), mark[ends], np.zeros(len(starts)))


def hourly_funding(time_ns: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(date ms, rate)``: each hour's last rate shown, dated the hour's end (when it is paid)."""
    valid = ~np.isnan(rate)
    time_ns, rate = time_ns[valid], rate[valid]
    order = np.argsort(time_ns, kind="stable")
    time_ns, rate = time_ns[order], rate[order]
    paid = time_ns // MS - (time_ns // MS) % HOUR_MS + HOUR_MS
    if not len(paid):
        return np.zeros(0, np.int64), np.zeros(0)
    last = np.flatnonzero(np.concatenate([paid[1:] != paid[:-1], [True]]))
    return paid[last], rate[last]


def floats(column: pa.Array) -> np.ndarray:
    """A column of decimal text (or numbers) as float64, NaN where empty or missing."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


__all__ = ["TIMEFRAME_MS", "Candles", "Piece", "Recorded", "Trades", "candles_of", "columns_of", "trades_of", "floats", "hourly_funding", "hourly_mark", "merge", "open_time", "recorded_candles", "trades_of_batches"]

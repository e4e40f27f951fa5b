"""tardis.dev's CSV datasets: gzip CSV, one file a data type, UTC day and symbol, named
``hyperliquid_<data_type>_<yyyy-mm-dd>_<symbol>.csv.gz``; times in µs (``timestamp`` the exchange's,
``local_timestamp`` ours). Prices and amounts keep the exchange's text.

- ``trades`` from ``trades`` (side of the taker);
- ``incremental_book_L2`` from ``l2Book``: a run of ``is_snapshot`` rows at each day's start, each
  session's start and after each gap of the stream (reset the book, then these levels), between
  them the levels that changed, amount 0 for one that left the 20 shown;
- ``quotes`` from ``bbo``;
- ``derivative_ticker`` from ``activeAssetCtx`` (funding, open interest, mark, oracle as index). Its
  frames carry no exchange time: ``timestamp`` is the receive time there too.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .files import Output, safe_name
from .levels import LevelDiff
from .reader import ArchiveSlice, stream_of
from .summary import Summary

EXCHANGE = "hyperliquid"
HEADERS = {
    "trades": ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"],
    "incremental_book_L2": ["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"],
    "quotes": ["exchange", "symbol", "timestamp", "local_timestamp", "ask_amount", "ask_price", "bid_price", "bid_amount"],
    "derivative_ticker": ["exchange", "symbol", "timestamp", "local_timestamp", "funding_timestamp", "funding_rate", "predicted_funding_rate", "open_interest", "last_price", "index_price", "mark_price"],
}
CHANNELS = {"trades": "trades", "l2Book": "incremental_book_L2", "bbo": "quotes", "activeAssetCtx": "derivative_ticker"}
HOUR_US = 3_600_000_000


class _Files:
    """One open gzip CSV per data type of the current day; each committed when its day ends."""

    def __init__(self, output: Output, coin: str, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
        self.output, self.coin, self.summary, self.progress = output, coin, summary, progress
        self.open: dict[str, tuple[str, Any, Any, list[int]]] = {}

    def writer(self, data_type: str, day: int) -> Any:
        name = f"{EXCHANGE}_{data_type}_{_date(day)}_{safe_name(self.coin)}.csv.gz"
        current = self.open.get(data_type)
        if current is not None and current[0] != name:
            self.close(data_type)
            current = None
        if current is None:
            raw = gzip.open(self.output.temporary(name), "wt", newline="", compresslevel=6)
            writer = csv.writer(raw, lineterminator="\n")
            writer.writerow(HEADERS[data_type])
            current = self.open[data_type] = (name, raw, writer, [0])
        current[3][0] += 1
        return current[2]

    def close(self, data_type: str) -> None:
        name, raw, _, count = self.open.pop(data_type)
        raw.close()
        path = self.output.commit(name)
        self.summary.paths.append(path)
        self.summary.events += count[0]
        if self.progress is not None:
            self.progress(count[0], path.stat().st_size)

    def close_all(self) -> None:
        for data_type in list(self.open):
            self.close(data_type)


def write_tardis(source: ArchiveSlice, coin: str, output: Output, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
    items, gaps = source.items(coin, tuple(CHANNELS))
    streams = {stream_of(channel, coin): channel for channel in CHANNELS}
    book_stream = stream_of("l2Book", coin)
    resumes = sorted(g.start_ns for g in gaps if g.stream == book_stream)
    files = _Files(output, coin, summary, progress)
    levels_of = LevelDiff(resumes)
    first_px: float | None = None
    for item in items:
        local = item.recv_ns // 1_000
        levels_of.moved_to(item.recv_ns, item.session)
        day = levels_of.day
        assert day is not None
        channel = streams.get(item.stream or "")
        data = item.message["data"]
        if channel == "trades":
            out = files.writer("trades", day)
            for trade in data:
                out.writerow((EXCHANGE, coin, int(trade["time"]) * 1_000, local, trade["tid"], "buy" if trade["side"] == "B" else "sell", trade["px"], trade["sz"]))
        elif channel == "l2Book":
            exch = int(data["time"]) * 1_000
            levels = data["levels"]
            if first_px is None and levels[0]:
                first_px = float(levels[0][0]["px"])
            snapshot, changes = levels_of.frame(levels)
            out = files.writer("incremental_book_L2", day)
            flag = "true" if snapshot else "false"
            for side, px, sz in changes:
                out.writerow((EXCHANGE, coin, exch, local, flag, "ask" if side else "bid", px, sz))
        elif channel == "bbo":
            bid, ask = data["bbo"]
            files.writer("quotes", day).writerow(
                (EXCHANGE, coin, int(data["time"]) * 1_000, local, ask["sz"] if ask else "", ask["px"] if ask else "", bid["px"] if bid else "", bid["sz"] if bid else "")
            )
        elif channel == "activeAssetCtx":
            ctx = data.get("ctx", {})
            if "funding" not in ctx:
                continue  # a spot pair's context: no funding, no ticker
            files.writer("derivative_ticker", day).writerow(
                (EXCHANGE, coin, local, local, (local // HOUR_US + 1) * HOUR_US, ctx.get("funding", ""), "", ctx.get("openInterest", ""), "", ctx.get("oraclePx", ""), ctx.get("markPx", ""))
            )
    files.close_all()
    if first_px is not None or any(safe_name(coin) in p.name for p in summary.paths):
        summary.specs[coin] = source.spec(coin, first_px)


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, timezone.utc).strftime("%Y-%m-%d")


def read_csv(path: str) -> list[dict[str, str]]:
    """A tardis CSV read back (tests, and users checking a file)."""
    with gzip.open(path, "rt", newline="") as handle:
        return list(csv.DictReader(io.StringIO(handle.read())))


__all__ = ["HEADERS", "read_csv", "write_tardis"]

"""``hlarchive coverage``: can this archive be trusted for a window? Per channel, coin and hour:
frames, gaps, the longest gap and the share of the hour covered, with a one-line verdict.

Frames are counted from the parts' ``recv_ns`` column alone; gaps come from the recorder's events
(``schemas.gaps``): a hole is time a stream was known to be down (disconnected, stalled, recorder
stopped between sessions, a book out of sync), not merely a quiet market.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.gaps import Gap, utc_text
from schemas.layout import ALL, utc_date

from ..archive import check_root, find_parts, open_part
from ..gaps import archive_gaps

HOUR_NS = 3_600_000_000_000


@dataclass
class Cell:
    """One channel and coin in one hour."""

    channel: str
    coin: str
    hour_ns: int  # the hour's start
    frames: int = 0
    gaps: int = 0  # gaps that overlap the hour
    longest_gap_s: float = 0.0  # of those, the longest part inside the hour
    missing_s: float = 0.0  # time inside the hour (and the window) some stream of it was down
    span_s: float = 3600.0  # the hour's time inside the window

    @property
    def covered(self) -> float:
        return 1.0 if self.span_s <= 0 else max(0.0, 1.0 - self.missing_s / self.span_s)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "coin": self.coin, "hour": utc_text(self.hour_ns)[:13] + ":00", "hour_ns": self.hour_ns,
            "frames": self.frames, "gaps": self.gaps, "longest_gap_s": round(self.longest_gap_s, 3),
            "missing_s": round(self.missing_s, 3), "covered": round(self.covered, 6),
        }


@dataclass
class Coverage:
    start_ns: int | None
    end_ns: int | None
    cells: list[Cell] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)  # those overlapping the window, for the channels and coins asked

    @property
    def missing_s(self) -> float:
        return sum(c.missing_s for c in self.cells)

    @property
    def verdict(self) -> str:
        if not self.cells:
            return "empty: no frames in the window"
        if not self.gaps:
            return f"complete: no gap in {len({(c.channel, c.coin) for c in self.cells})} stream(s) over {self.hours} hour(s)"
        longest = max((g.seconds for g in self.gaps if g.seconds is not None), default=0.0)
        unresumed = sum(1 for g in self.gaps if g.end_ns is None)
        return (
            f"{len(self.gaps)} gap(s), {self.missing_s:,.1f} s missing in all (longest {longest:,.1f} s)"
            + (f", {unresumed} not resumed" if unresumed else "")
        )

    @property
    def hours(self) -> int:
        return len({c.hour_ns for c in self.cells})

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "complete": not self.gaps and bool(self.cells),
            "from_ns": self.start_ns,
            "to_ns": self.end_ns,
            "missing_s": round(self.missing_s, 3),
            "gaps": [g.as_dict() for g in self.gaps],
            "cells": [c.as_dict() for c in self.cells],
        }


def coverage(
    root: str | os.PathLike[str],
    *,
    coins: list[str] | None = None,
    channels: list[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> Coverage:
    """The archive's coverage per channel, coin and hour over ``[start_ns, end_ns]`` (default: its
    first to its last frame)."""
    store = check_root(root)
    frames: dict[tuple[str, str, int], int] = defaultdict(int)
    first = last = None
    counted, first, last = _counted_by_catalog(store, frames, channels, coins, start_ns, end_ns)
    for part in find_parts(store, channels=channels, coins=coins, start_ns=start_ns, end_ns=end_ns) if counted is None else counted:
        recv = open_part(part).read(columns=["recv_ns"]).column("recv_ns")
        if start_ns is not None or end_ns is not None:
            mask = pc.and_(pc.greater_equal(recv, start_ns or 0), pc.less_equal(recv, end_ns if end_ns is not None else 2**63 - 1))
            recv = recv.filter(mask)
        if len(recv) == 0:
            continue
        low, high = pc.min_max(recv).values()
        first = low.as_py() if first is None else min(first, low.as_py())
        last = high.as_py() if last is None else max(last, high.as_py())
        hours = pc.multiply(pc.divide(recv, HOUR_NS), HOUR_NS)
        for entry in pc.value_counts(hours).to_pylist():
            frames[(part.channel, part.coin, entry["values"])] += entry["counts"]
    window = (start_ns if start_ns is not None else first, end_ns if end_ns is not None else last)
    report = Coverage(*window)
    if window[0] is None or window[1] is None:
        return report
    wanted = [
        g for g in archive_gaps(store)
        if (channels is None or g.channel in channels) and (coins is None or (g.coin or ALL) in coins) and g.overlaps(*window)
    ]
    report.gaps = wanted
    streams = {(channel, coin) for channel, coin, _ in frames} | {(g.channel, g.coin or ALL) for g in wanted}
    by_stream: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for g in wanted:
        by_stream[(g.channel, g.coin or ALL)].append(g)
    lo, hi = window
    hours = [(hour, max(0.0, (min(hour + HOUR_NS, hi) - max(hour, lo)) / 1e9)) for hour in range(lo - lo % HOUR_NS, hi + 1, HOUR_NS)]
    for channel, coin in sorted(streams):
        mine = by_stream.get((channel, coin), [])
        intervals = _union([(max(g.start_ns, lo), min(g.end_ns if g.end_ns is not None else hi, hi)) for g in mine])
        for hour, span_s in hours:
            cell = Cell(channel, coin, hour, frames.get((channel, coin, hour), 0), span_s=span_s)
            if mine:  # most streams have no gap: their cells are made and nothing else
                span = (max(hour, lo), min(hour + HOUR_NS, hi))
                for g in mine:
                    if g.overlaps(hour, hour + HOUR_NS - 1):
                        cell.gaps += 1
                        inside = min(g.end_ns if g.end_ns is not None else hi, hour + HOUR_NS, hi) - max(g.start_ns, hour, lo)
                        cell.longest_gap_s = max(cell.longest_gap_s, inside / 1e9)
                cell.missing_s = sum(max(0, min(b, span[1]) - max(a, span[0])) for a, b in intervals) / 1e9
            report.cells.append(cell)
    return report


def _counted_by_catalog(
    store: Any, frames: dict[tuple[str, str, int], int], channels: list[str] | None, coins: list[str] | None, start_ns: int | None, end_ns: int | None
) -> tuple[list[Any] | None, int | None, int | None]:
    """Rows an hour from the catalog's entries, in Arrow, into ``frames``; the parts whose rows must
    still be read (no count an hour, or across the window's edge), and the first and last receive
    times counted. ``(None, None, None)``: no catalog."""
    from ..archive import planned
    from ..catalog import catalog_dates, date_table, select

    if planned(store, dates=()) is None:
        return None, None, None
    first_date = utc_date(start_ns) if start_ns is not None else ""
    last_date = utc_date(end_ns) if end_ns is not None else "9999"
    tables = [select(date_table(store, d), channels, coins, start_ns, end_ns, include_special=False) for d in catalog_dates(store) if first_date <= d <= last_date]
    if not tables:
        return [], None, None
    table = pa.concat_tables(tables)
    inside = pc.and_(
        pc.greater(pc.list_value_length(table.column("hours")), 0),
        pc.and_(pc.greater_equal(table.column("first_recv_ns"), start_ns if start_ns is not None else 0), pc.less_equal(table.column("last_recv_ns"), end_ns if end_ns is not None else 2**63 - 1)),
    )
    counted = table.filter(inside)
    first = last = None
    if counted.num_rows:
        first, last = pc.min(counted.column("first_recv_ns")).as_py(), pc.max(counted.column("last_recv_ns")).as_py()
        hours = counted.column("hours").combine_chunks()
        parent = pc.list_parent_indices(hours)
        pairs = hours.flatten()
        exploded = pa.table({
            "channel": counted.column("channel").combine_chunks().take(parent), "coin": counted.column("coin").combine_chunks().take(parent),
            "hour": pc.list_element(pairs, 0), "rows": pc.list_element(pairs, 1),
        })  # fmt: skip
        for row in exploded.group_by(["channel", "coin", "hour"]).aggregate([("rows", "sum")]).to_pylist():
            frames[(row["channel"], row["coin"], row["hour"])] += row["rows_sum"]
    rest = table.filter(pc.invert(inside))
    parts = find_parts(store, channels=channels, coins=coins, start_ns=start_ns, end_ns=end_ns) if rest.num_rows else []
    unread = set(rest.column("path").to_pylist())
    return [p for p in parts if p.entry is not None and p.entry.path in unread], first, last


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged

"""Small archives made from the synthetic market, deterministic, without a network."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from recorder import ArchiveWriter
from replay.simulator.market import SyntheticMarket
from schemas import parse_subscription

T0 = 1_767_225_600_000_000_000


def make_archive(
    root: Path,
    subs: list[dict[str, Any]],
    frames_per_sub: int = 50,
    *,
    session: str = "s1",
    t0: int = T0,
    step_ns: int = 10_000_000,
    flush_rows: int = 100_000,
    seed: int = 1,
) -> list[tuple[int, dict[str, Any]]]:
    """Interleave ``frames_per_sub`` frames of each subscription, ``step_ns`` apart; returns what was written."""
    market = SyntheticMarket(seed=seed)
    streams = [(parse_subscription(s, allow_unknown=True), market.frames(parse_subscription(s))) for s in subs]
    written = []
    with ArchiveWriter(root, session=session, flush_rows=flush_rows) as writer:
        t = t0
        for _ in range(frames_per_sub):
            for sub, frames in streams:
                message = next(frames)
                writer.write(message, t, sub)
                written.append((t, message))
                t += step_ns
    return written


def first(iterable: Any, n: int) -> list[Any]:
    return list(itertools.islice(iterable, n))


def archive_differences(a: Path, b: Path) -> list[str]:
    """Where two archives differ: per channel, the rows one holds and the other does not (duplicates
    count: EXCEPT ALL both ways), and channels only one has. Empty when they hold the same rows."""
    import duckdb

    con = duckdb.connect()
    channels_a = {p.name for p in a.glob("channel=*")}
    channels_b = {p.name for p in b.glob("channel=*")}
    problems = [f"{c} only in {a}" for c in sorted(channels_a - channels_b)] + [f"{c} only in {b}" for c in sorted(channels_b - channels_a)]
    for channel in sorted(channels_a & channels_b):
        left, right = (f"read_parquet('{root}/{channel}/*/*/*.parquet', hive_partitioning = true, union_by_name = true)" for root in (a, b))
        for first, second, name in ((left, right, a), (right, left, b)):
            extra = con.execute(f"select count(*) from (select * from {first} except all select * from {second})").fetchone()[0]
            if extra:
                problems.append(f"{channel}: {extra} row(s) only in {name}")
    return problems

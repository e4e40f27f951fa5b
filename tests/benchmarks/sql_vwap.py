"""One-minute VWAP over a day of one coin's trades: ``hlarchive sql`` views vs pandas over gzip JSON lines.

    python -m tests.benchmarks.sql_vwap [--hours 24] [--runs 3]

Both read the same synthetic trades (tick every 100 ms of market time): ours from the archive through
the ``trades`` view, the baseline from gzip JSON lines (``recv_ns json`` a line) with orjson + pandas.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import orjson

from recorder import ArchiveWriter
from replay.analysis.views import open_archive
from replay.simulator.market import SyntheticMarket
from schemas import parse_subscription

from .common import HEADER, Figure, machine, median_of, table

QUERY = "select bucket(time, '1 minute') as minute, vwap(px, sz) as vwap from trades where coin = 'BTC' group by 1 order by 1"


def build(root: Path, hours: float) -> tuple[Path, int]:
    market = SyntheticMarket(seed=3, tick_ms=100)
    sub = parse_subscription({"type": "trades", "coin": "BTC"})
    end_ms = market.start_ms + int(hours * 3_600_000)
    lines = root / "trades.jsonl.gz"
    n = 0
    with ArchiveWriter(root / "archive", flush_rows=500_000) as writer, gzip.open(lines, "wb", compresslevel=6) as out:
        for frame in market.frames(sub):
            t_ms = frame["data"][0]["time"]
            if t_ms >= end_ms:
                break
            recv_ns = t_ms * 1_000_000 + 3_000_000
            writer.write(frame, recv_ns, sub)
            out.write(b"%d " % recv_ns + orjson.dumps(frame) + b"\n")
            n += 1
    return lines, n


def ours(root: Path) -> float:
    start = time.perf_counter()
    rows = open_archive(root / "archive").sql(QUERY).fetchall()
    assert rows
    return time.perf_counter() - start


def pandas_baseline(lines: Path) -> float:
    import pandas as pd

    start = time.perf_counter()
    records = []
    with gzip.open(lines, "rb") as handle:
        for line in handle:
            for trade in orjson.loads(line.split(b" ", 1)[1])["data"]:
                records.append((trade["time"], float(trade["px"]), float(trade["sz"])))
    frame = pd.DataFrame(records, columns=["time", "px", "sz"])
    frame["minute"] = pd.to_datetime(frame["time"], unit="ms").dt.floor("1min")
    frame["notional"] = frame["px"] * frame["sz"]
    grouped = frame.groupby("minute")[["notional", "sz"]].sum()
    vwap = grouped["notional"] / grouped["sz"]
    assert len(vwap)
    return time.perf_counter() - start


def figures(hours: float = 24.0, runs: int = 3) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        lines, _ = build(Path(tmp), hours)
        ours_s = median_of(runs, lambda: ours(Path(tmp)))
        theirs_s = median_of(runs, lambda: pandas_baseline(lines))
    return [Figure(f"sql 1m VWAP over {hours:g} h of trades, seconds", ours_s, theirs_s, "pandas + gzip JSON lines", ">= 10x faster", theirs_s >= 10 * ours_s)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"1-minute VWAP over {args.hours:g} h of BTC trades, median of {args.runs} ({machine()})")
    print(table([f.row() for f in figures(args.hours, args.runs)], HEADER))


if __name__ == "__main__":
    main()

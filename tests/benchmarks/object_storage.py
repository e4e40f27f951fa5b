"""Reading an archive on object storage vs the same archive on local disk, same run.

    python -m tests.benchmarks.object_storage [--hours 24] [--runs 3]

A day of BTC trades (plus ETH and SOL, to be pruned away) and an hour of BTC l2Book, synced to a
SeaweedFS S3 server on loopback: ``hlarchive sql`` 1-minute VWAP and ``Replay`` of the coin's book,
each from disk and from S3, with the S3 requests the store counted (its Prometheus metrics).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
import urllib.request
from pathlib import Path

from recorder import ArchiveWriter
from replay import Replay
from replay.analysis.sync import sync
from replay.analysis.views import open_archive, partitions_of
from replay.simulator.market import SyntheticMarket
from schemas import parse_subscription

from ..s3server import BUCKET, S3Server
from .common import HEADER, Figure, machine, median_of, table
from .sql_vwap import QUERY


def build(root: Path, hours: float) -> int:
    market = SyntheticMarket(seed=3, tick_ms=100)
    end_ms = market.start_ms + int(hours * 3_600_000)
    parts = 0
    with ArchiveWriter(root, flush_rows=200_000) as writer:
        for coin in ("BTC", "ETH", "SOL"):
            sub = parse_subscription({"type": "trades", "coin": coin})
            for frame in market.frames(sub):
                t_ms = frame["data"][0]["time"]
                if t_ms >= end_ms:
                    break
                writer.write(frame, t_ms * 1_000_000 + 3_000_000, sub)
        book = parse_subscription({"type": "l2Book", "coin": "BTC"})
        for frame in market.frames(book):
            t_ms = frame["data"]["time"]
            if t_ms >= market.start_ms + 3_600_000:
                break
            writer.write(frame, t_ms * 1_000_000 + 2_000_000, book)
        parts = writer.stats.parts
    return parts


def requests(server: S3Server) -> float:
    """The S3 requests the store has answered so far (SeaweedFS's s3 request counter)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.ports['metrics']}/metrics", timeout=10).read().decode()
    return sum(float(m.group(1)) for m in re.finditer(r"^SeaweedFS_s3_request_total\{[^}]*\} (\S+)$", text, re.M))


def vwap(root: str) -> float:
    start = time.perf_counter()
    assert open_archive(root, partitions=partitions_of(QUERY)).execute(QUERY).fetchall()
    return time.perf_counter() - start


def replay_book(root: str) -> float:
    start = time.perf_counter()
    replay = Replay(root)
    replay.subscribe({"type": "l2Book", "coin": "BTC"}, lambda m: None)
    assert replay.run().total
    return time.perf_counter() - start


def figures(hours: float = 24.0, runs: int = 3) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "archive"
        parts = build(local, hours)
        server = S3Server(Path(tmp) / "s3").start()
        try:
            os.environ.update(server.env())
            url = f"s3://{BUCKET}/bench"
            sync(local, url)
            out = []
            for name, fn in (("sql 1m VWAP, BTC of 3 coins", vwap), ("Replay 1 h of BTC l2Book", replay_book)):
                local_s = median_of(runs, lambda: fn(str(local)))
                before = requests(server)
                remote_s = median_of(runs, lambda: fn(url))
                per_run = (requests(server) - before) / runs
                out.append(Figure(f"{name}, seconds from S3 (loopback)", remote_s, local_s, "the same from local disk", "", None))
                out.append(Figure(f"{name}, S3 requests a run ({parts} parts in the archive)", per_run, None, "", "", None))
            return out
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"object storage vs local disk, median of {args.runs} ({machine()})")
    print(table([f.row() for f in figures(args.hours, args.runs)], HEADER))


if __name__ == "__main__":
    main()

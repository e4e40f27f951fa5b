"""The order-level book over an archive: applying diffs, seeking to an instant, deriving l2Book.

    python -m tests.benchmarks.l4_book [--minutes 60] [--tick-ms 1000] [--snapshot-minutes 5] [--seeks 7] [--runs 3]

- Reconstruction: book diffs applied a second by ``L4Book.apply_block``, against applying the same
  diffs to a plain dict (oid -> size) in a Python loop.
- Seek: seconds to ``Replay.l4_book`` at a random instant of an archive of ``--minutes`` of one
  coin's blocks (the simulator's node files, imported), with a node snapshot every
  ``--snapshot-minutes``; median of ``--seeks`` instants.
- l2Book: frames a second derived from the L4 rows (``subscribe l2Book`` on the L4 archive), against
  reading the same number of recorded ``l2Book`` frames from an archive of them.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from recorder.node.follow import import_node_data
from recorder.writer import ArchiveWriter
from replay import Replay
from replay.simulator.l4tape import NODE_LATENCY_NS
from replay.simulator.market import SyntheticMarket
from replay.simulator.node_files import NodeFiles
from schemas.l4.book import L4Book
from schemas.l4.node import snapshot_rows
from schemas.subscriptions import parse_subscription

from .common import HEADER, Figure, interleaved, machine, round_lines, round_ratios, table

COIN = "BTC"


def build(work: Path, minutes: float, tick_ms: int, snapshot_minutes: float) -> tuple[Path, Path, SyntheticMarket, int]:
    """An L4 archive of ``minutes`` (snapshots every ``snapshot_minutes``) and an archive of the same
    blocks' l2Book frames; the market and the last tick."""
    node, l4_root, l2_root = work / "node", work / "l4", work / "l2"
    market = SyntheticMarket(seed=5, coins=[COIN], tick_ms=tick_ms)
    files = NodeFiles(market.tapes, [COIN], node, {COIN: market.coins[COIN].sz_decimals})
    last = int(minutes * 60_000 / tick_ms)
    every = max(1, int(snapshot_minutes * 60_000 / tick_ms))
    files.write_through(0)
    snapshots = []
    for tick in range(every, last + 1, every):
        files.write_through(tick)
        snapshots.append((tick, files.snapshot_payload()))
    files.write_through(last)
    files.close()
    import_node_data(node, l4_root, say=lambda _: None)
    sub = parse_subscription({"type": "l4Snapshots", "coin": COIN}, allow_unknown=True)
    l2_sub = parse_subscription({"type": "l2Book", "coin": COIN})
    with ArchiveWriter(l4_root, session="node_snapshots") as writer:
        for tick, payload in snapshots:
            for row in snapshot_rows(payload, block_ms=market.start_ms + tick * tick_ms)[1]:
                writer.write(row.frame, recv_ns(market, tick), sub, seq=row.seq)
    frames = market.frames(l2_sub)
    with ArchiveWriter(l2_root, session="l2") as writer:
        for tick in range(1, last + 1):
            writer.write(next(frames), recv_ns(market, tick), l2_sub)
    return l4_root, l2_root, market, last


def recv_ns(market: SyntheticMarket, tick: int) -> int:
    return (market.start_ms + tick * market.tick_ms) * 1_000_000 + NODE_LATENCY_NS


def blocks_of(root: Path) -> list[tuple[int, int, list[Any], list[Any]]]:
    from schemas.l4.node import event_of_row

    by_height: dict[int, tuple[int, list[Any], list[Any]]] = {}
    for message in Replay(root).messages():
        if message["channel"] in ("l4Statuses", "l4Diffs"):
            data = message["data"]
            entry = by_height.setdefault(data["block"], (data["block_ms"], [], []))
            entry[1 if message["channel"] == "l4Statuses" else 2].append(event_of_row(data))
    return [(h, *by_height[h]) for h in sorted(by_height)]


def l2book_per_second(root: Path) -> float:
    """``l2Book`` frames a second through ``subscribe``/``run``: derived from L4 rows, or recorded."""
    replay = Replay(root)
    count = [0]
    replay.subscribe({"type": "l2Book", "coin": COIN}, lambda _m: count.__setitem__(0, count[0] + 1))
    began = time.perf_counter()
    replay.run()
    return count[0] / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--tick-ms", type=int, default=1000, help="market time between blocks (1000: an hour is 3,600 blocks)")
    parser.add_argument("--snapshot-minutes", type=float, default=5.0)
    parser.add_argument("--seeks", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hlarchive-l4book-bench-"))
    try:
        print(machine())
        started = time.monotonic()
        l4_root, l2_root, market, last = build(work, args.minutes, args.tick_ms, args.snapshot_minutes)
        blocks = blocks_of(l4_root)
        n_diffs = sum(len(d) for *_, d in blocks)
        print(f"archive: {last + 1:,} blocks of {COIN} ({args.minutes:g} min at {args.tick_ms} ms a block), {n_diffs:,} diffs, snapshots every {args.snapshot_minutes:g} min; built in {time.monotonic() - started:.0f} s")

        def apply_book() -> float:
            book = L4Book(COIN)
            began = time.perf_counter()
            for height, block_ms, statuses, diffs in blocks:
                book.apply_block(height, block_ms, statuses, diffs)
            return n_diffs / (time.perf_counter() - began)

        def apply_dict() -> float:
            sizes: dict[int, str] = {}
            began = time.perf_counter()
            for _, _, _, diffs in blocks:
                for diff in diffs:
                    change = diff["raw_book_diff"]
                    if change == "remove":
                        sizes.pop(diff["oid"], None)
                    elif "new" in change:
                        sizes[diff["oid"]] = change["new"]["sz"]
                    elif "update" in change:
                        sizes[diff["oid"]] = change["update"]["newSz"]
                    else:
                        sizes[diff["oid"]] = change["modified"]["sz"]
            return n_diffs / (time.perf_counter() - began)

        ours, base = interleaved(args.runs, apply_book, apply_dict, warm_up=True)

        rng = random.Random(1)
        seeks = []
        for tick in rng.sample(range(last), args.seeks):
            replay = Replay(l4_root)
            began = time.perf_counter()
            replay.l4_book(COIN, recv_ns(market, tick) // 1_000_000)
            seeks.append(time.perf_counter() - began)

        l2_ours, l2_base = interleaved(args.runs, lambda: l2book_per_second(l4_root), lambda: l2book_per_second(l2_root))
        seek = statistics.median(seeks)
        figures = [
            Figure("reconstruction: diffs applied/s", round(statistics.median(ours)), round(statistics.median(base)), "a plain dict, Python loop", ">= 500,000/s", statistics.median(ours) >= 500_000, round_ratios(ours, base)),
            Figure(f"seek: seconds to the book at an instant ({args.minutes:g} min archive)", round(seek, 3), None, "-", "<= 0.5 s", seek <= 0.5),
            Figure("l2Book derived from L4: frames/s", round(statistics.median(l2_ours)), round(statistics.median(l2_base)), "recorded l2Book frames", ">= 0.5x", statistics.median(round_ratios(l2_ours, l2_base)) >= 0.5, round_ratios(l2_ours, l2_base)),
        ]
        print(table([f.row() for f in figures], HEADER))
        print(round_lines(figures))
        print("seek seconds:", " ".join(f"{s:.3f}" for s in seeks))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

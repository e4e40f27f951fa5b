"""The order-level book over an archive: applying diffs, seeking to an instant, deriving l2Book.

    python -m tests.benchmarks.l4_book [--minutes 60] [--tick-ms 1000] [--snapshot-minutes 60] [--checkpoint-minutes 5] [--seeks 15] [--runs 3] [--coins 100] [--coin-minutes 10]
    python -m tests.benchmarks.l4_book --day-seeks [--day-minutes 1440]   # seeks alone, over a day of the busy coin

Three archives, named in each figure:

- *busy coin*: ``--minutes`` of one coin's blocks from the simulator's node files (a block every
  ``--tick-ms``; hundreds of status lines and diffs a block, thousands of resting orders), imported,
  with a node snapshot every ``--snapshot-minutes`` (a node takes one an hour) and checkpoints every
  ``--checkpoint-minutes`` (what ``import`` writes).
- *many coins*: ``--coins`` coins for ``--coin-minutes`` (the simulator's whole market: most quiet, a
  few busy), the same way.
- *deep book*: the shape the L4 issue measured (``quiet_book``): ``--deep-blocks`` blocks of a book of
  12,000 resting orders, 10-40 events a block, a block every 100 ms, imported from node files, with
  the node's snapshot at the start and checkpoints every ``--checkpoint-minutes``; its recorded
  ``l2Book`` frames are the state machine's own.

Figures:

- Reconstruction: book diffs applied a second, against applying the same diffs to a plain dict (oid
  -> size) in a Python loop. Two ways: block by block from dicts (``L4Book.apply_block``: a live
  ``l4Book`` stream, paper fills, any window the other way declines), and a window at once from the
  archive's columns (``net.apply_window``: how ``l4_state``, seeks and checkpoints move a book).
- Seek: seconds to ``Replay.l4_book`` at random instants (a new ``Replay`` each), from the nearest
  checkpoint, against the same archive without its checkpoints (from the last node snapshot).
- l2Book: frames a second derived from the L4 rows (``subscribe l2Book``), against reading the same
  number of recorded ``l2Book`` frames from an archive of them (the same frames, recorded). Derived
  from level sums (``replay.l4.levels``); the windows it took that way, and the ones it took block
  by block, are printed.
- Seek over a day (``--day-seeks``, alone: building a day takes some 15 minutes): the same seeks at
  random instants of ``--day-minutes`` of the busy coin, the archive the seek target names.
- Memory: peak RSS of the books of ``--coins`` coins of 10,000 resting orders each (from snapshots);
  and traced bytes an order of the deep book built block by block, against its orders never settled.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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


def l2book_frames(root: Path, coins: list[str]) -> tuple[int, float]:
    """``l2Book`` frames of every coin in one replay, and the seconds they took."""
    replay = Replay(root)
    count = [0]
    for coin in coins:
        replay.subscribe({"type": "l2Book", "coin": coin}, lambda _m: count.__setitem__(0, count[0] + 1))
    began = time.perf_counter()
    replay.run()
    return count[0], time.perf_counter() - began


def l2book_all_per_second(root: Path, coins: list[str]) -> float:
    """``l2Book`` frames a second of every coin in one replay."""
    frames, seconds = l2book_frames(root, coins)
    return frames / seconds


# What any derivation of l2Book from L4 rows must read: each diff's block (where a frame is due),
# oid (which order it acts on), side and price (which level) and its change (by how much). Not the
# status lines (a diff carries its side and price), not the user, not the receive keys.
LEAST_READ = ["data.block", "data.oid", "data.side", "data.px", "data.raw_book_diff"]


def reading_ceiling(l4_root: Path, l2_root: Path, coins: list[str], runs: int, case: str) -> list[Figure]:
    """The most ``l2Book`` frames a second a derivation could give: the frames there are, over the
    time it takes only to read the L4 rows, against the same frames recorded, replayed. Three
    times: reading what the derived path reads (``columns``' own reading: its columns, no book, no
    frame); reading the least any derivation must (``LEAST_READ`` of the diffs, nothing else); and
    that reading with the steps no derivation goes without, each done once and cheaper than it can
    be done: each change's size cut out of its text at a fixed place (Arrow's quickest string
    kernel; a real parse is more: a regular expression over them is some 80-250 ns a diff), each
    diff put with its order's others (one numpy sort of the oids), and each frame's dicts built from
    its levels' values made ready beforehand (what handing a frame over costs at the least)."""
    import numpy as np
    import pyarrow.compute as pc

    from replay.archive import check_root, find_parts, open_part
    from replay.l4.columns import CHANNELS, _days
    from schemas.shapes import one_array

    frames = [0]

    def reading() -> float:
        store = check_root(l4_root)
        began = time.perf_counter()
        rows = sum(table.num_rows for coin in coins for tables in _days(store, coin, None, None, CHANNELS) for _, table in tables)  # read whole
        assert rows, "no L4 rows read"
        return frames[0] / (time.perf_counter() - began)

    def least_read() -> Iterator[Any]:
        """Each diffs part's ``LEAST_READ``, as one struct array."""
        for part in find_parts(check_root(l4_root), channels=["l4Diffs"], coins=coins):
            yield one_array(open_part(part).read(columns=LEAST_READ).column("data"))

    def least() -> float:
        began = time.perf_counter()
        assert sum(len(data) for data in least_read()), "no L4 diffs read"
        return frames[0] / (time.perf_counter() - began)

    ready: list[tuple[str, int, list[list[tuple[str, str, int]]]]] = []  # each recorded frame's values

    def keep(message: dict[str, Any]) -> None:
        data = message["data"]
        ready.append((data["coin"], data["time"], [[(level["px"], level["sz"], level["n"]) for level in side] for side in data["levels"]]))

    replay = Replay(l2_root)
    for coin in coins:
        replay.subscribe({"type": "l2Book", "coin": coin}, keep)
    replay.run()

    def least_work() -> float:
        began = time.perf_counter()
        for data in least_read():
            pc.binary_slice(pc.struct_field(data, "raw_book_diff").cast("binary"), 14, -3)  # '{"new":{"sz":"' is 14
            np.argsort(pc.struct_field(data, "oid").to_numpy(zero_copy_only=False), kind="stable")
        made = [{"channel": "l2Book", "data": {"coin": coin, "time": at, "levels": [[{"px": px, "sz": sz, "n": n} for px, sz, n in side] for side in sides]}} for coin, at, sides in ready]
        assert len(made) == frames[0]
        return frames[0] / (time.perf_counter() - began)

    def recorded() -> float:
        frames[0], seconds = l2book_frames(l2_root, coins)
        return frames[0] / seconds

    recorded()
    figures = []
    steps = (("the most its rows' reading allows", reading), ("the most the least reading allows", least), ("the most that reading, sizes cut, oids sorted, frames built allow", least_work))
    for label, read in steps:
        base, ours = interleaved(runs, recorded, read, warm_up=True)
        figures.append(Figure(f"l2Book from L4, {label}: frames/s ({case})", round(statistics.median(ours)), round(statistics.median(base)), "the same frames, recorded", "", None, round_ratios(ours, base)))
    return figures


def seeks_at(checkpointed: Path, plain: Path, market: SyntheticMarket, last: int, count: int) -> tuple[list[float], list[float], list[int], list[int]]:
    """Seconds and rows read of seeks at ``count`` random instants, from checkpoints and without."""
    rng = random.Random(1)
    seeks, plain_seeks, rows_read, plain_rows = [], [], [], []
    for tick in rng.sample(range(last), count):
        at_ms = recv_ns(market, tick) // 1_000_000
        took, rows = seek_seconds(checkpointed, COIN, at_ms)
        without, without_rows = seek_seconds(plain, COIN, at_ms)
        seeks.append(took)
        plain_seeks.append(without)
        rows_read.append(rows)
        plain_rows.append(without_rows)
    return seeks, plain_seeks, rows_read, plain_rows


def day_seeks(work: Path, args: argparse.Namespace) -> list[Figure]:
    """Seeks over ``--day-minutes`` of the busy coin: what the seek target names (a day-long archive
    at the benchmark's rate), without the rest of the benchmark."""
    started = time.monotonic()
    l4_root, _, market, last = build(work, args.day_minutes, args.tick_ms, args.snapshot_minutes)
    checkpointed = with_checkpoints(l4_root, work / "l4-checkpointed", args.checkpoint_minutes)
    parts = sum(1 for _ in checkpointed.rglob("*.parquet"))
    print(f"busy coin over a day: {last + 1:,} blocks ({args.day_minutes:g} min at {args.tick_ms} ms a block), {parts:,} parts with checkpoints; built in {time.monotonic() - started:.0f} s")
    seeks, plain_seeks, rows_read, plain_rows = seeks_at(checkpointed, l4_root, market, last, args.seeks)
    print("seek seconds (busy coin, a day):", " ".join(f"{s:.3f}" for s in seeks))
    case = f"busy coin, {args.day_minutes:g} min"
    return [
        Figure(f"seek: median s to Replay.l4_book at an instant ({case})", round(statistics.median(seeks), 3), round(statistics.median(plain_seeks), 3), f"no checkpoints (snapshots every {args.snapshot_minutes:g} min)", "<= 0.1 s", statistics.median(seeks) <= 0.1),
        Figure(f"seek: worst s ({case})", round(max(seeks), 3), round(max(plain_seeks), 3), "no checkpoints", "<= 0.3 s", max(seeks) <= 0.3),
        Figure(f"seek: median rows read ({case})", statistics.median(rows_read), statistics.median(plain_rows), "no checkpoints", "", None),
    ]


def with_checkpoints(root: Path, copy: Path, every_minutes: float) -> Path:
    from replay.l4.checkpoints import write_checkpoints

    shutil.copytree(root, copy)
    write_checkpoints(copy, every_ms=int(every_minutes * 60_000))
    return copy


def window_applier(root: Path, end_ns: int) -> Callable[[], float]:
    """Diffs a second of the archive's own way to move a book (``l4_state``, seeks, checkpoints): the
    rows up to ``end_ns`` read as columns once, then each run applies them to a new book at once
    (``net.apply_window``: each oid's diffs followed in numpy, every check made, the book changed once)."""
    from replay.archive import check_root, find_parts
    from replay.l4.net import apply_window
    from replay.l4.state import DIFFS, STATUSES, _read_window

    parts = find_parts(check_root(root), channels=[STATUSES, DIFFS], coins=[COIN], end_ns=end_ns)
    window = _read_window(parts, None, end_ns, -1)
    (diff_seqs, diffs), (status_seqs, statuses) = window.joined(DIFFS), window.joined(STATUSES)

    def apply() -> float:
        book = L4Book(COIN)
        began = time.perf_counter()
        assert apply_window(book, diffs, diff_seqs, statuses, status_seqs, window.status_orders), "the window went block by block"
        return len(diffs) / (time.perf_counter() - began)

    return apply


def seek_seconds(root: Path, coin: str, at_ms: int) -> tuple[float, int]:
    replay = Replay(root)
    began = time.perf_counter()
    replay.l4_book(coin, at_ms)
    return time.perf_counter() - began, replay.l4_rows_read


MEMORY = r"""
import sys
from schemas.l4.book import L4Book
from tests.benchmarks.common import vm_hwm_mb
coins, orders = int(sys.argv[1]), int(sys.argv[2])
books = []
for c in range(coins):
    side = [{"user": "0x" + "ab" * 20, "coin": f"C{c}", "side": "B" if i % 2 else "A", "limitPx": f"{(1000 - i // 20) if i % 2 else (1001 + i // 20)}.5", "sz": f"{1 + i % 7}.25", "oid": c * 1_000_000 + i,
             "timestamp": i, "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0", "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "tif": "Alo", "cloid": None} for i in range(orders)]
    books.append(L4Book.from_snapshot(f"C{c}", 1, 0, [o for o in side if o["side"] == "B"], [o for o in side if o["side"] == "A"]))
    books[-1].l2(100)
print(vm_hwm_mb())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--tick-ms", type=int, default=1000, help="market time between blocks (1000: an hour is 3,600 blocks)")
    parser.add_argument("--snapshot-minutes", type=float, default=60.0)
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--seeks", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--coins", type=int, default=100)
    parser.add_argument("--coin-minutes", type=float, default=2.0)
    parser.add_argument("--deep-blocks", type=int, default=6000)
    parser.add_argument("--day-seeks", action="store_true", help="measure only seeks, over --day-minutes of the busy coin")
    parser.add_argument("--day-minutes", type=float, default=1440.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hlarchive-l4book-bench-"))
    if args.day_seeks:
        try:
            print(machine())
            figures = day_seeks(work, args)
            print(table([f.row() for f in figures], HEADER))
            print(round_lines(figures))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        print(machine())
        started = time.monotonic()
        l4_root, l2_root, market, last = build(work, args.minutes, args.tick_ms, args.snapshot_minutes)
        checkpointed = with_checkpoints(l4_root, work / "l4-checkpointed", args.checkpoint_minutes)
        blocks = blocks_of(l4_root)
        n_diffs = sum(len(d) for *_, d in blocks)
        n_rows = sum(len(s) + len(d) for _, _, s, d in blocks)
        print(f"busy coin: {last + 1:,} blocks of {COIN} ({args.minutes:g} min at {args.tick_ms} ms a block), {n_rows:,} rows ({n_rows / (last + 1):.0f} a block), {n_diffs:,} diffs; "
              f"snapshots every {args.snapshot_minutes:g} min, checkpoints every {args.checkpoint_minutes:g} min; built in {time.monotonic() - started:.0f} s")

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
        window_ours, window_base = interleaved(args.runs, window_applier(l4_root, recv_ns(market, last) - 1), apply_dict, warm_up=True)
        resting = L4Book(COIN)
        for height, block_ms, statuses, diffs in blocks:
            resting.apply_block(height, block_ms, statuses, diffs)
        print(f"resting orders at the end: {len(resting):,}")

        seeks, plain_seeks, rows_read, plain_rows = seeks_at(checkpointed, l4_root, market, last, args.seeks)

        l2_ours, l2_base = interleaved(args.runs, lambda: l2book_per_second(checkpointed), lambda: l2book_per_second(l2_root), warm_up=True)
        seek, worst = statistics.median(seeks), max(seeks)
        figures = [
            Figure("reconstruction: diffs applied/s, block by block (busy coin)", round(statistics.median(ours)), round(statistics.median(base)), "a plain dict, Python loop", ">= 1,000,000/s", statistics.median(ours) >= 1_000_000, round_ratios(ours, base)),
            Figure("reconstruction: diffs applied/s, a window at once (busy coin)", round(statistics.median(window_ours)), round(statistics.median(window_base)), "a plain dict, Python loop", ">= 1,000,000/s", statistics.median(window_ours) >= 1_000_000, round_ratios(window_ours, window_base)),
            Figure(f"seek: median s to Replay.l4_book at an instant (busy coin, {args.minutes:g} min)", round(seek, 3), round(statistics.median(plain_seeks), 3), f"no checkpoints (snapshots every {args.snapshot_minutes:g} min)", "<= 0.1 s", seek <= 0.1),
            Figure("seek: worst s (busy coin)", round(worst, 3), round(max(plain_seeks), 3), "no checkpoints", "<= 0.3 s", worst <= 0.3),
            Figure("seek: median rows read (busy coin)", statistics.median(rows_read), statistics.median(plain_rows), "no checkpoints", "", None),
            Figure("l2Book derived from L4: frames/s (busy coin)", round(statistics.median(l2_ours)), round(statistics.median(l2_base)), "the same frames, recorded", ">= 0.5x", statistics.median(round_ratios(l2_ours, l2_base)) >= 0.5, round_ratios(l2_ours, l2_base)),
            *reading_ceiling(checkpointed, l2_root, [COIN], args.runs, "busy coin"),
        ]
        figures += many_coins(work, args)
        figures += deep_book(work, args)
        done = subprocess.run([sys.executable, "-c", MEMORY, str(args.coins), "10000"], capture_output=True, text=True, check=True)
        memory = float(done.stdout.strip().splitlines()[-1])
        figures.append(Figure(f"memory: peak RSS MB, {args.coins} books of 10,000 orders", round(memory), None, "-", "<= 300 MB", memory <= 300))
        print(table([f.row() for f in figures], HEADER))
        print(round_lines(figures))
        print("seek seconds (busy coin):", " ".join(f"{s:.3f}" for s in seeks))
        from replay.l4 import levels

        print(f"derived windows: {levels.stats['windows']:,} from level sums, {levels.stats['fallbacks']:,} block by block")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def many_coins(work: Path, args: argparse.Namespace) -> list[Figure]:
    """``--coins`` coins of the simulator's market for ``--coin-minutes``: derived ``l2Book`` of every
    coin in one replay, against the same frames recorded."""
    coins = [f"C{i:03d}" for i in range(args.coins)]
    node, l4_root, l2_root = work / "many-node", work / "many-l4", work / "many-l2"
    market = SyntheticMarket(seed=9, coins=coins, tick_ms=args.tick_ms)
    files = NodeFiles(market.tapes, coins, node, {c: market.coins[c].sz_decimals for c in coins})
    last = int(args.coin_minutes * 60_000 / args.tick_ms)
    files.write_through(0)
    snapshot = files.snapshot_payload()
    files.write_through(last)
    files.close()
    import_node_data(node, l4_root, say=lambda _: None)
    sub = {c: parse_subscription({"type": "l4Snapshots", "coin": c}, allow_unknown=True) for c in coins}
    with ArchiveWriter(l4_root, session="node_snapshots") as writer:
        for row in snapshot_rows(snapshot, block_ms=market.start_ms)[1]:
            writer.write(row.frame, recv_ns(market, 0), sub[row.coin], seq=row.seq)
    with ArchiveWriter(l2_root, session="l2") as writer:
        for coin in coins:
            l2_sub = parse_subscription({"type": "l2Book", "coin": coin})
            frames = SyntheticMarket(seed=9, coins=coins, tick_ms=args.tick_ms).frames(l2_sub)
            for tick in range(1, last + 1):
                writer.write(next(frames), recv_ns(market, tick), l2_sub)
    ours, base = interleaved(args.runs, lambda: l2book_all_per_second(l4_root, coins), lambda: l2book_all_per_second(l2_root, coins), warm_up=True)
    case = f"many coins: {args.coins} coins x {last + 1} blocks"
    return [Figure(f"l2Book derived from L4: frames/s ({case})", round(statistics.median(ours)), round(statistics.median(base)), "the same frames, recorded", ">= 0.5x", statistics.median(round_ratios(ours, base)) >= 0.5, round_ratios(ours, base)),
            *reading_ceiling(l4_root, l2_root, coins, args.runs, "many coins")]


def book_bytes(root: Path, settle_after: int) -> tuple[int, float]:
    """Resting orders, and traced bytes an order, of the book the archive's blocks build one by one
    (as a replay of ``l4Book`` holds it) when orders settle ``settle_after`` blocks on: the
    memory figure's case, but built as users' replays build it, not from a snapshot."""
    import gc
    import tracemalloc

    from schemas.l4 import book as module

    from .quiet_book import COIN as DEEP

    kept, module.SETTLE_AFTER_BLOCKS = module.SETTLE_AFTER_BLOCKS, settle_after
    try:
        gc.collect()
        tracemalloc.start()  # before the rows are read: an order kept as it came is its row's dict
        blocks = blocks_of(root)
        book = L4Book(DEEP)
        for height, block_ms, statuses, diffs in blocks:
            book.apply_block(height, block_ms, statuses, diffs)
        del blocks  # the rows' own dicts go; what the book keeps of them stays traced
        gc.collect()
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        module.SETTLE_AFTER_BLOCKS = kept
    return len(book), size / max(len(book), 1)


def deep_book(work: Path, args: argparse.Namespace) -> list[Figure]:
    """The issue's shape (``quiet_book``): derived ``l2Book`` against the same frames recorded, and
    seeks from checkpoints."""
    from replay.l4.checkpoints import write_checkpoints

    from .quiet_book import COIN as DEEP
    from .quiet_book import LATENCY_MS, START_MS, write

    node, l4_root, l2_root = work / "deep-node", work / "deep-l4", work / "deep-l2"
    snapshot, frames = write(node, args.deep_blocks)
    import_node_data(node, l4_root, say=lambda _: None)
    with ArchiveWriter(l4_root, session="node_snapshots") as writer:
        for row in snapshot_rows(snapshot, block_ms=START_MS)[1]:
            writer.write(row.frame, (START_MS + LATENCY_MS) * 1_000_000, parse_subscription({"type": "l4Snapshots", "coin": DEEP}, allow_unknown=True), seq=row.seq)
    l2_sub = parse_subscription({"type": "l2Book", "coin": DEEP})
    with ArchiveWriter(l2_root, session="l2") as writer:
        for recv_ms, frame in frames:
            writer.write(frame, recv_ms * 1_000_000, l2_sub)
    write_checkpoints(l4_root, every_ms=int(args.checkpoint_minutes * 60_000))
    ours, base = interleaved(args.runs, lambda: l2book_all_per_second(l4_root, [DEEP]), lambda: l2book_all_per_second(l2_root, [DEEP]), warm_up=True)
    rng = random.Random(2)
    seeks = [seek_seconds(l4_root, DEEP, START_MS + LATENCY_MS + tick * 100)[0] for tick in rng.sample(range(1, args.deep_blocks), args.seeks)]
    name = f"deep book: {args.deep_blocks:,} blocks, 12,000 resting orders, 10-40 events a block"
    print(f"{name}; seek seconds:", " ".join(f"{s:.3f}" for s in seeks))
    settled, kept = book_bytes(l4_root, 4), book_bytes(l4_root, 10**9)
    return [
        Figure("memory: bytes an order of the deep book applied block by block (traced)", round(settled[1]), round(kept[1]), "orders kept as they came (never settled)", "", None),
        Figure(f"l2Book derived from L4: frames/s ({name})", round(statistics.median(ours)), round(statistics.median(base)), "the same frames, recorded", ">= 0.5x", statistics.median(round_ratios(ours, base)) >= 0.5, round_ratios(ours, base)),
        *reading_ceiling(l4_root, l2_root, [DEEP], args.runs, "deep book"),
        Figure("seek: median s to Replay.l4_book at an instant (deep book)", round(statistics.median(seeks), 3), None, "-", "<= 0.1 s", statistics.median(seeks) <= 0.1),
        Figure("seek: worst s (deep book)", round(max(seeks), 3), None, "-", "<= 0.3 s", max(seeks) <= 0.3),
    ]


if __name__ == "__main__":
    main()

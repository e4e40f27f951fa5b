"""``hlarchive export`` against the tool a user would otherwise run, in one run.

    python -m tests.benchmarks.export_throughput [--frames 20000] [--runs 3] [--l4-minutes 3]

- L2: one coin's ``l2Book`` frames (20 levels a side, the simulator's, every level moving) and its
  ``trades`` frames, interleaved by receive time as recorded, exported
  to hftbacktest's arrays, against ``hftbacktest.data.utils.hyperliquid.convert`` of the same frames
  written in its collector's format (gzip lines ``<local ns> <frame>``), warmed (its numba code
  compiled) and in-process, both writing the ``.npz``; frames/s.
- L3: a busy coin's order-level archive (the l4_book benchmark's: every level's orders change every
  block), from its first node snapshot, exported to hftbacktest's L3 rows; events/s.
- Memory: the L2 export's peak RSS for an archive 10x longer, each in a fresh process.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from recorder import ArchiveWriter
from replay.exports import export_with_summary

from .common import (
    HEADER,
    Figure,
    interleaved,
    machine,
    round_lines,
    round_ratios,
    run_measured,
    synthetic_frames,
    table,
)

T0 = 1_767_225_600_000_000_000
COIN = "BTC"
PART_ROWS = 600  # a minute of a 10 Hz book


def write_l2(root: Path, hft_file: Path | None, n: int) -> Path:
    """``n`` l2Book frames and as many trades frames, interleaved as recorded (each received 2 ms after
    its exchange time), into an archive and, if asked, as hftbacktest's collector writes them."""
    books = synthetic_frames({"type": "l2Book", "coin": COIN}, n, seed=4)
    trades = synthetic_frames({"type": "trades", "coin": COIN}, n, seed=4)
    lines = []
    with ArchiveWriter(root, flush_rows=PART_ROWS) as writer:  # a part a minute, as the recorder commits them
        for book, trade in zip(books, trades):
            recv = int(book["data"]["time"]) * 1_000_000 + 2_000_000
            for frame, channel, at in ((trade, "trades", recv - 500_000), (book, "l2Book", recv)):
                writer.write(frame, at, {"type": channel, "coin": COIN})
                if hft_file is not None:
                    lines.append(b"%d %s\n" % (at, orjson.dumps(frame)))
    if hft_file is not None:
        with gzip.open(hft_file, "wb", compresslevel=1) as handle:
            handle.writelines(lines)
    return root


def ours_l2(root: Path, n: int) -> float:
    out = Path(tempfile.mkdtemp())
    try:
        start = time.perf_counter()
        export_with_summary(root, "hftbacktest", coin=COIN, out=out / "x")
        return n / (time.perf_counter() - start)
    finally:
        shutil.rmtree(out)


def theirs_l2(hft_file: Path, n: int, tick: float, lot: float) -> float:
    import contextlib
    import io

    from hftbacktest.data.utils import hyperliquid

    out = Path(tempfile.mkdtemp())
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the same job: the frames in, the day's .npz out
            hyperliquid.convert(str(hft_file), tick_size=tick, lot_size=lot, buffer_size=n * 90, output_filename=str(out / "BTC.npz"))
        return n / (time.perf_counter() - start)
    finally:
        shutil.rmtree(out)


def l3_events_per_second(root: Path, start_ms: int) -> tuple[float, int]:
    out = Path(tempfile.mkdtemp())
    try:
        start = time.perf_counter()
        summary = export_with_summary(root, "hftbacktest", coin=COIN, out=out / "x", start=start_ms)
        return summary.events / (time.perf_counter() - start), summary.events
    finally:
        shutil.rmtree(out)


PEAK_CODE = r"""
import sys, tempfile, resource
from pathlib import Path
from replay.exports import export_with_summary
from tests.benchmarks.common import vm_hwm_mb
export_with_summary(sys.argv[1], "hftbacktest", coin="BTC", out=Path(tempfile.mkdtemp()) / "x")
print(f"PEAK_RSS_MB={vm_hwm_mb():.1f}", file=sys.stderr)
"""


def figures(frames: int = 20_000, runs: int = 3, l4_minutes: float = 5.0) -> list[Figure]:
    import statistics

    from .l4_book import build, recv_ns

    work = Path(tempfile.mkdtemp())
    try:
        n = frames
        root, hft_file = work / "l2", work / "collector.gz"
        write_l2(root, hft_file, n)
        small = work / "small.gz"
        write_l2(work / "small-archive", small, 200)
        theirs_l2(small, 200, 0.1, 0.00001)  # warm: numba compiles once
        ours_l2(work / "small-archive", 200)
        ours, theirs = interleaved(runs, lambda: ours_l2(root, n), lambda: theirs_l2(hft_file, n, 1.0, 0.00001))
        ratios = round_ratios(ours, theirs)
        out = [
            Figure("export L2 to hftbacktest, l2Book frames/s (+ as many trades frames)", round(statistics.median(ours)), round(statistics.median(theirs)), "hftbacktest's hyperliquid.convert, warmed", ">= 3x", statistics.median(ratios) >= 3.0, ratios),
        ]
        l4_root, _, market, _ = build(work / "l4", l4_minutes, 100, 1.0)
        after_snapshot_ms = recv_ns(market, 600) // 1_000_000 + 1  # from the first node snapshot (a minute in): a start it vouches for
        l3 = [l3_events_per_second(l4_root, after_snapshot_ms) for _ in range(runs)]
        l3_rate = statistics.median(rate for rate, _ in l3)
        out.append(Figure(f"export L3 to hftbacktest, events/s ({l3[0][1]:,}, a busy coin)", round(l3_rate), None, "-", ">= 1,000,000/s", l3_rate >= 1_000_000))
        long_root = work / "l2x10"
        write_l2(long_root, None, n * 10)
        _, peak_1 = run_measured("", root.as_posix(), code=PEAK_CODE)
        _, peak_10 = run_measured("", long_root.as_posix(), code=PEAK_CODE)
        out.append(Figure(f"export L2 peak RSS MB, {n * 10:,} frames (10x)", peak_10, peak_1, f"{n:,} frames (1x)", "within 10% of 1x", peak_10 <= peak_1 * 1.10))
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--l4-minutes", type=float, default=5.0)
    args = parser.parse_args()
    results = figures(args.frames, args.runs, args.l4_minutes)
    print(f"export, median of {args.runs} runs ({machine()})")
    print(table([f.row() for f in results], HEADER))
    print(round_lines(results))


if __name__ == "__main__":
    main()

"""Importing Hyperliquid's published history: MB/s of LZ4 input and rows/s, with peak RSS, beside a
baseline of ``lz4.frame`` decompression plus ``orjson.loads`` of the same lines, in the same run.

    python -m tests.benchmarks.history_import [--mb 50] [--runs 3]

Each import runs in a fresh process (its peak RSS is its own); the baseline too, the two taking turns.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
from pathlib import Path

import orjson

from ..history_files import HOUR9_NS, block_line, l2book_lines, trade_pairs
from .common import HEADER, Figure, interleaved, machine, round_lines, round_ratios, run_measured, table

IMPORT = """
import sys, time
from recorder.imports.history import import_history
started = time.perf_counter()
report = import_history([sys.argv[1]], sys.argv[2])
print(report.rows, time.perf_counter() - started)
from tests.benchmarks.common import vm_hwm_mb
print(f"PEAK_RSS_MB={vm_hwm_mb():.1f}", file=sys.stderr)
"""

BASELINE = """
import sys, time, lz4.frame, orjson
started = time.perf_counter()
rows = 0
with lz4.frame.open(sys.argv[1], "rb") as stream:
    for line in stream:
        orjson.loads(line)
        rows += 1
print(rows, time.perf_counter() - started)
"""


def make_files(directory: Path, mb: float) -> dict[str, Path]:
    """An l2Book file of 20 levels a side and a fills-by-block file, each about ``mb`` MB of LZ4,
    written as they are generated: a 1 GB file's text (about 4 GB) is never held in memory."""
    rng = random.Random(7)
    out = {}
    book = directory / "market_data" / "20250311" / "9" / "l2Book" / "BTC.lz4"
    # levels drawn from a pool: drawing each one's three random values was most of the generation time
    pool = [{"px": f"{124 + rng.uniform(-2, 2):.2f}", "sz": f"{rng.uniform(1, 900):.2f}", "n": rng.randint(1, 40)} for _ in range(8192)]
    with _Lz4Lines(book) as writer:
        while writer.compressed < mb * 1e6:
            chunk = l2book_lines("BTC", 200, rng, HOUR9_NS + writer.lines * 500_000_000)
            for line in chunk:  # 20 levels a side, as the real snapshots
                record = orjson.loads(line)
                for side in record["raw"]["data"]["levels"]:
                    start = rng.randrange(len(pool) - 20)
                    side.extend(pool[start : start + 20 - len(side)])
                writer.write(orjson.dumps(record))
    out["l2Book"] = book
    fills = directory / "node_fills_by_block" / "hourly" / "20250311" / "9.lz4"
    number = 0
    with _Lz4Lines(fills) as writer:
        while writer.compressed < mb * 1e6:
            for buy, sell in trade_pairs(500, rng, HOUR9_NS // 1_000_000 + number * 500):
                number += 1
                writer.write(block_line(560_000_000 + number, buy[1]["time"] * 1_000_000, [buy, sell]))
    out["fills"] = fills
    return out


class _Lz4Lines:
    """Lines into an LZ4 frame file, compressed as they come; ``compressed``: bytes written so far."""

    def __init__(self, path: Path) -> None:
        import lz4.frame

        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb")
        self._stream = lz4.frame.LZ4FrameFile(self._file, "wb")
        self._pending: list[bytes] = []
        self.lines = 0

    @property
    def compressed(self) -> int:
        return self._file.tell()

    def write(self, line: bytes) -> None:
        self._pending.append(line)
        self.lines += 1
        if len(self._pending) >= 200:
            self._flush()

    def _flush(self) -> None:
        self._stream.write(b"\n".join(self._pending) + b"\n")
        self._pending = []

    def __enter__(self) -> _Lz4Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pending:
            self._flush()
        self._stream.close()
        self._file.close()


def figures(mb: float = 50.0, runs: int = 3) -> list[Figure]:
    directory = Path(tempfile.mkdtemp(prefix="hl-history-bench-"))
    try:
        files = make_files(directory, mb)
        out = []
        for name, path in files.items():
            size_mb = path.stat().st_size / 1e6
            peaks: list[float] = []

            def ours() -> float:
                root = Path(tempfile.mkdtemp(prefix="hl-history-root-", dir=directory))
                stdout, peak = run_measured("", str(path), str(root), code=IMPORT)
                peaks.append(peak)
                shutil.rmtree(root)
                rows, seconds = stdout.split()
                ours.rows = int(rows)  # type: ignore[attr-defined]
                return float(seconds)

            def baseline() -> float:
                stdout, _ = run_measured("", str(path), code=BASELINE)
                return float(stdout.split()[1])

            ours_s, base_s = interleaved(runs, ours, baseline)
            seconds, base_seconds = statistics.median(ours_s), statistics.median(base_s)
            rows = ours.rows  # type: ignore[attr-defined]
            rounds = round_ratios(base_s, ours_s)  # MB/s ours over MB/s baseline: the times' inverse ratio
            out.append(Figure(f"import {name}, MB/s of LZ4 input ({size_mb:.0f} MB)", size_mb / seconds, size_mb / base_seconds, "lz4.frame + orjson.loads", ">= 0.5x", statistics.median(rounds) >= 0.5, rounds))
            out.append(Figure(f"import {name}, rows/s", rows / seconds, None, "", "", None))
            out.append(Figure(f"import {name}, peak RSS MB", max(peaks), None, "", "<= 400", max(peaks) <= 400))
        return out
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=50.0, help="about this many MB of LZ4 per file")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"history import, median of {args.runs} interleaved runs; a ratio is the median of the rounds' ratios ({machine()})")
    results = figures(args.mb, args.runs)
    print(table([f.row() for f in results], HEADER))
    print(round_lines(results))


if __name__ == "__main__":
    main()

"""Importing Hyperliquid's published history: MB/s of LZ4 input and rows/s, with peak RSS, beside a
baseline of ``lz4.frame`` decompression plus ``orjson.loads`` of the same lines, in the same run.

    python -m tests.benchmarks.history_import [--mb 50] [--runs 3] [--files 4] [--spark]

Each import runs in a fresh process (its peak RSS is its own); the baseline too, the two taking turns.
Then many files at once: ``--files`` hourly files of each dataset (``--mb`` MB of LZ4 in all), imported
with ``--jobs 1`` and ``--jobs 2`` in turns, with the CPU seconds per GB of input (the worker
processes' included: what a cluster's cost rests on); with ``--spark``, Spark ``local[2]`` against
``--jobs 2`` on the same files, its start-up included.
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
report = import_history([sys.argv[1]], sys.argv[2], jobs=int(sys.argv[3]) if len(sys.argv) > 3 else 1)
print(report.rows, time.perf_counter() - started)
from tests.benchmarks.common import vm_hwm_mb
print(f"PEAK_RSS_MB={vm_hwm_mb():.1f}", file=sys.stderr)
"""

# --jobs N (or Spark at a master): seconds and CPU seconds of this process and its children (the workers)
IMPORT_CPU = """
import resource, sys, time
from recorder.imports.history import import_history
started = time.perf_counter()
if sys.argv[3].startswith("local"):
    from recorder.imports.spark import import_with_spark
    report = import_with_spark([sys.argv[1]], sys.argv[2], sys.argv[3])
else:
    report = import_history([sys.argv[1]], sys.argv[2], jobs=int(sys.argv[3]))
seconds = time.perf_counter() - started
cpu = sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))
print(report.rows, seconds, cpu)
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


def parallel_figures(mb: float = 50.0, runs: int = 3, n_files: int = 4, spark: bool = False) -> list[Figure]:
    """``--jobs 2`` against ``--jobs 1`` on ``n_files`` files of each dataset (and Spark local[2] against ``--jobs 2``)."""
    directory = Path(tempfile.mkdtemp(prefix="hl-history-par-"))
    try:
        sets = {}
        for i in range(n_files):  # hourly files: the same generator, each its own hour
            files = make_files(directory / f"h{i}", mb / n_files)
            for name, path in files.items():
                target = directory / name / path.relative_to(directory / f"h{i}").with_name(f"{i}_{path.name}")
                target.parent.mkdir(parents=True, exist_ok=True)
                path.rename(target)
                sets[name] = directory / name
        out = []
        for name, source in sets.items():
            size_mb = sum(p.stat().st_size for p in source.rglob("*.lz4")) / 1e6
            cpu: dict[str, list[float]] = {}
            rows: dict[str, int] = {}

            def run(how: str) -> float:
                root = Path(tempfile.mkdtemp(prefix="hl-history-root-", dir=directory))
                stdout, _ = run_measured("", str(source), str(root), how, code=IMPORT_CPU)
                shutil.rmtree(root)
                n, seconds, cpu_s = stdout.split()
                rows[how] = int(n)
                cpu.setdefault(how, []).append(float(cpu_s))
                return float(seconds)

            ways = ["1", "2"] + (["local[2]"] if spark else [])
            times = interleaved(runs, *[lambda how=how: run(how) for how in ways])
            by_way = dict(zip(ways, times))
            one, two = statistics.median(by_way["1"]), statistics.median(by_way["2"])
            label = f"import {name}, {n_files} files ({size_mb:.0f} MB)"
            rounds = round_ratios(by_way["1"], by_way["2"])  # MB/s with 2 workers over MB/s with 1
            out.append(Figure(f"{label}: MB/s, --jobs 2", size_mb / two, size_mb / one, "--jobs 1", ">= 1.25x", statistics.median(rounds) >= 1.25, rounds))
            out.append(Figure(f"{label}: rows/s, --jobs 2", rows["2"] / two, rows["1"] / one, "--jobs 1", "", None))
            for how in ("1", "2"):
                out.append(Figure(f"{label}: CPU s per GB of LZ4, --jobs {how}", statistics.median(cpu[how]) / (size_mb / 1000), None, "", "", None))
            if spark:
                spark_s = statistics.median(by_way["local[2]"])
                spark_rounds = round_ratios(by_way["2"], by_way["local[2]"])
                out.append(Figure(f"{label}: MB/s, Spark local[2] (start-up included)", size_mb / spark_s, size_mb / two, "--jobs 2", "shown", None, spark_rounds))
        return out
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=50.0, help="about this many MB of LZ4 per file (and in all, for the many-files lines)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=4, help="files of each dataset for --jobs 1 against --jobs 2")
    parser.add_argument("--spark", action="store_true", help="also Spark local[2] against --jobs 2 (needs PySpark and Java)")
    parser.add_argument("--only-parallel", action="store_true", help="only the many-files lines")
    args = parser.parse_args()
    print(f"history import, median of {args.runs} interleaved runs; a ratio is the median of the rounds' ratios ({machine()})")
    results = [] if args.only_parallel else figures(args.mb, args.runs)
    results += parallel_figures(args.mb, args.runs, args.files, args.spark)
    print(table([f.row() for f in results], HEADER))
    print(round_lines(results))


if __name__ == "__main__":
    main()

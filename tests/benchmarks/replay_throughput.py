"""Replay to a no-op callback, Arrow batches, and peak memory, vs gzip JSON lines read with orjson.

    python -m tests.benchmarks.replay_throughput [--frames 100000] [--runs 3]

The same synthetic frames are written to an archive and to gzip JSON lines (``recv_ns json``); the
baseline reads the lines back and calls the same no-op callback. Peak memory: replay of an archive
ten times larger, in a fresh process (peak RSS), next to the 1x archive.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import orjson

from recorder import ArchiveWriter
from replay import Replay

from .common import machine, median_of, run_measured, synthetic_frames, table

T0 = 1_767_225_600_000_000_000


def write_both(root: Path, sub: dict, frames: list[dict], copies: int = 1) -> Path:
    lines = root / "frames.jsonl.gz"
    with ArchiveWriter(root / "archive") as writer, gzip.open(lines, "wb", compresslevel=6) as out:
        t = T0
        for _ in range(copies):
            for frame in frames:
                writer.write(frame, t, sub)
                out.write(b"%d " % t + orjson.dumps(frame) + b"\n")
                t += 1_000_000
    return lines


def replay_fps(root: Path, sub: dict) -> float:
    replay = Replay(root / "archive")
    replay.subscribe(sub, lambda msg: None)
    start = time.perf_counter()
    total = replay.run().total
    return total / (time.perf_counter() - start)


def jsonl_fps(lines: Path) -> float:
    callback = lambda msg: None  # noqa: E731
    start = time.perf_counter()
    n = 0
    with gzip.open(lines, "rb") as handle:
        for line in handle:
            callback(orjson.loads(line.split(b" ", 1)[1]))
            n += 1
    return n / (time.perf_counter() - start)


def batch_rows_per_s(root: Path, channel: str) -> float:
    start = time.perf_counter()
    rows = sum(b.num_rows for b in Replay(root / "archive").batches(channel))
    return rows / (time.perf_counter() - start)


PEAK = r"""
import sys
from replay import Replay
from tests.benchmarks.common import vm_hwm_mb
replay = Replay(sys.argv[1])
replay.subscribe({"type": sys.argv[2], "coin": "BTC"}, lambda m: None)
replay.run()
print(f"PEAK_RSS_MB={vm_hwm_mb():.1f}", file=sys.stderr)
"""


def peak_rss_mb(root: Path, channel: str) -> float:
    return run_measured("", str(root / "archive"), channel, code=PEAK)[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for sub in ({"type": "trades", "coin": "BTC"}, {"type": "bbo", "coin": "BTC"}, {"type": "l2Book", "coin": "BTC"}):
        frames = synthetic_frames(sub, args.frames)
        with tempfile.TemporaryDirectory() as tmp:
            lines = write_both(Path(tmp), sub, frames)
            ours = median_of(args.runs, lambda: replay_fps(Path(tmp), sub))
            theirs = median_of(args.runs, lambda: jsonl_fps(lines))
            target = ">= 50,000/s" if sub["type"] == "l2Book" else ">= 200,000/s"
            rows.append((f"replay {sub['type']} frames/s", ours, theirs, ours / theirs, target))
            if sub["type"] == "trades":
                batches = median_of(args.runs, lambda: batch_rows_per_s(Path(tmp), "trades"))
                rows.append(("batches() trades rows/s", batches, theirs, batches / theirs, ">= 5,000,000/s"))
    sub = {"type": "l2Book", "coin": "BTC"}
    frames = synthetic_frames(sub, args.frames // 5)
    with tempfile.TemporaryDirectory() as small, tempfile.TemporaryDirectory() as large:
        write_both(Path(small), sub, frames, copies=1)
        write_both(Path(large), sub, frames, copies=10)
        one = median_of(args.runs, lambda: peak_rss_mb(Path(small), "l2Book"))
        ten = median_of(args.runs, lambda: peak_rss_mb(Path(large), "l2Book"))
        dicts_mb = sum(sys.getsizeof(json.dumps(f)) for f in frames) * 10 * 4 / 1e6  # rough: as Python dicts
        rows.append(("replay peak RSS MB, 10x archive", ten, one, ten / one, "within 10% of 1x"))
    print(f"replay, median of {args.runs} runs ({machine()}); baseline: gzip JSON lines + orjson (1x archive for RSS)")
    print(table(rows, ("figure", "hlarchive", "baseline", "ratio", "target")))
    print(f"(the 10x l2Book archive as Python dicts would take roughly {dicts_mb:,.0f} MB)")


if __name__ == "__main__":
    main()

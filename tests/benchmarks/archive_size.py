"""Bytes per message: the archive vs gzip JSON lines (tardis.dev / hftbacktest collector format).

    python -m tests.benchmarks.archive_size [--frames 20000]

The same synthetic frames go into both; the JSON lines carry a receive timestamp per line, as those
collectors write them.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
from pathlib import Path

import orjson

from recorder import ArchiveWriter

from .common import HEADER, Figure, machine, synthetic_frames, table

T0 = 1_767_225_600_000_000_000


def archive_bytes(frames: list[dict], sub: dict) -> int:
    with tempfile.TemporaryDirectory() as root:
        with ArchiveWriter(root, flush_rows=10**9, flush_bytes=10**12) as writer:
            for i, frame in enumerate(frames):
                writer.write(frame, recv_ns=T0 + i * 100_000_000, subscription=sub)
        return sum(p.stat().st_size for p in Path(root).rglob("*.parquet"))


def gzip_jsonl_bytes(frames: list[dict]) -> int:
    lines = b"".join(b"%d " % (T0 + i * 100_000_000) + orjson.dumps(f) + b"\n" for i, f in enumerate(frames))
    return len(gzip.compress(lines, compresslevel=6))


def figures(frames_per_channel: int = 20_000) -> list[Figure]:
    out = []
    for sub in ({"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}, {"type": "bbo", "coin": "ETH"}):
        frames = synthetic_frames(sub, frames_per_channel)
        ours, theirs = archive_bytes(frames, sub) / len(frames), gzip_jsonl_bytes(frames) / len(frames)
        target = sub["type"] in ("l2Book", "trades")
        out.append(Figure(f"archive bytes/msg, {sub['type']}", ours, theirs, "gzip JSON lines", "<= 0.6x" if target else "", ours / theirs <= 0.6 if target else None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=20_000)
    args = parser.parse_args()
    print(f"archive size, bytes per message, {args.frames:,} frames a channel ({machine()})")
    print(table([f.row() for f in figures(args.frames)], HEADER))


if __name__ == "__main__":
    main()

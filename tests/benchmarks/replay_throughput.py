"""Replay to a no-op callback, ``raw_messages()`` bytes, Arrow batches, ``serve`` to one client, and
peak memory, vs gzip JSON lines read with orjson.

    python -m tests.benchmarks.replay_throughput [--frames 100000] [--runs 3] [--channel trades ...]
    python -m tests.benchmarks.replay_throughput --coins 5 [--frames 150000] [--runs 3]

The same synthetic frames (books of 20 levels a side with random sizes, trades frames of 1-3 trades
with 32-byte hashes, user fills and order updates) are written to an archive and to gzip JSON lines
(``recv_ns json``); the baseline reads the lines back and calls the same no-op callback, its runs taking
turns with the archive's. ``serve``:
``hlarchive serve --speed 0`` in its own process, one client reading l2Book frames. Peak memory:
replay of an archive ten times larger, in a fresh process (peak RSS), next to the 1x archive (at
least 20,000 books: one whole row group and more).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import statistics
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from websockets.asyncio.client import connect

from recorder import ArchiveWriter
from replay import Replay
from replay.archive import data_dictionary_columns
from schemas.channels import channel_spec
from schemas.protocol import subscribe_frame
from schemas.shapes import column_values

from .common import (
    HEADER,
    Figure,
    cli_process,
    interleaved,
    machine,
    median_of,
    round_lines,
    round_ratios,
    run_measured,
    synthetic_frames,
    table,
)

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


def raw_fps(root: Path, sub: dict) -> float:
    replay = Replay(root / "archive")
    replay.subscribe(sub, lambda msg: None)
    start = time.perf_counter()
    total = sum(1 for _ in replay.raw_messages())
    return total / (time.perf_counter() - start)


async def receive_all(url: str, sub: dict, n: int) -> float:
    """Frames/s of the first ``n`` frames of ``sub`` (after a warm-up of 200)."""
    async with connect(url, ping_interval=None, max_size=2**22) as ws:
        await ws.recv()  # the greeting
        await ws.send(subscribe_frame(sub))
        await ws.recv()  # subscriptionResponse
        for _ in range(200):
            await ws.recv()
        start = time.perf_counter()
        for _ in range(n - 200):
            await ws.recv()
        return (n - 200) / (time.perf_counter() - start)


def serve_fps(root: Path, sub: dict, frames: int) -> float:
    """``hlarchive serve --speed 0`` in its own process; frames/s one client reads."""
    with cli_process("serve", str(root / "archive"), "--speed", "0") as url:
        return asyncio.run(receive_all(url, sub, frames))


def jsonl_fps(lines: Path) -> float:
    callback = lambda msg: None
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


def decode_us(root: Path, runs: int) -> tuple[float, float]:
    """Microseconds a frame to turn a part's typed ``data`` column into the frames' values: as Replay
    does (column by column, the book's strings read as dictionaries), and as Arrow's ``to_pylist``
    plus a restore per row (the way before). Interleaved in one process, so both see the same
    machine; the median of ``runs`` each."""
    parts = sorted((root / "archive").rglob("*.parquet"))
    rows = sum(pq.read_metadata(p).num_rows for p in parts)
    spec = channel_spec(pq.read_table(parts[0], columns=["wire_channel"]).column(0)[0].as_py())
    assert spec is not None
    restore = spec.shape.restore if spec.shape.restores else None

    def ours() -> float:
        start = time.perf_counter()
        for part in parts:
            metadata = pq.read_metadata(part)
            for batch in pq.ParquetFile(part, read_dictionary=data_dictionary_columns(metadata)).iter_batches(batch_size=2048, columns=["data"]):
                column_values(spec.shape, batch.column(0))
        return (time.perf_counter() - start) / rows * 1e6

    def before() -> float:
        start = time.perf_counter()
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=2048, columns=["data"]):
                values = batch.column(0).to_pylist()
                if restore is not None:
                    values = [restore(v) for v in values]
        return (time.perf_counter() - start) / rows * 1e6

    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        timings[0].append(ours())
        timings[1].append(before())
    return statistics.median(timings[0]), statistics.median(timings[1])


PEAK = r"""
import sys
from replay import Replay
from schemas.protocol import subscribe_frame
from tests.benchmarks.common import vm_hwm_mb
replay = Replay(sys.argv[1])
replay.subscribe({"type": sys.argv[2], "coin": "BTC"}, lambda m: None)
replay.run()
print(f"PEAK_RSS_MB={vm_hwm_mb():.1f}", file=sys.stderr)
"""


def peak_rss_mb(root: Path, channel: str) -> float:
    return run_measured("", str(root / "archive"), channel, code=PEAK)[1]


CHANNELS = (
    {"type": "trades", "coin": "BTC"},
    {"type": "bbo", "coin": "BTC"},
    {"type": "l2Book", "coin": "BTC"},
    {"type": "userFills", "user": "0x" + "ab" * 20},
    {"type": "orderUpdates", "user": "0x" + "ab" * 20},
)


def figures(frames_per_channel: int = 100_000, runs: int = 3, channels: list[str] | None = None) -> list[Figure]:
    out = []
    for sub in CHANNELS:
        if channels and sub["type"] not in channels:
            continue
        frames = synthetic_frames(sub, frames_per_channel)
        with tempfile.TemporaryDirectory() as tmp:
            lines = write_both(Path(tmp), sub, frames)
            del frames  # millions of live objects would make every garbage collection of both sides slow
            gc.collect()
            ours_, raw_, theirs_ = interleaved(runs, lambda: replay_fps(Path(tmp), sub), lambda: raw_fps(Path(tmp), sub), lambda: jsonl_fps(lines), warm_up=True)
            ours, raw, theirs = (statistics.median(v) for v in (ours_, raw_, theirs_))
            dicts_rounds, bytes_rounds = round_ratios(ours_, theirs_), round_ratios(raw_, theirs_)
            out.append(Figure(f"replay {sub['type']} frames/s (dicts)", ours, theirs, "gzip JSON lines + orjson", ">= 1.0x", statistics.median(dicts_rounds) >= 1.0, dicts_rounds))
            out.append(Figure(f"raw_messages() {sub['type']} frames/s (bytes)", raw, theirs, "gzip JSON lines + orjson", ">= 2.0x", statistics.median(bytes_rounds) >= 2.0, bytes_rounds))
            decoded, to_pylist = decode_us(Path(tmp), max(runs, 5))
            out.append(Figure(f"decode {sub['type']} us/frame (column by column)", decoded, to_pylist, "to_pylist + restore, same run", "", None))
            if sub["type"] == "trades":
                rows_s = median_of(runs, lambda: batch_rows_per_s(Path(tmp), "trades"))
                out.append(Figure("batches() rows/s, trades", rows_s, theirs, "gzip JSON lines + orjson (frames/s)", ">= 5,000,000", rows_s >= 5_000_000))
            if sub["type"] == "l2Book":
                served = median_of(runs, lambda: serve_fps(Path(tmp), sub, frames_per_channel))
                out.append(Figure("serve --speed 0 -> 1 client, l2Book frames/s", served, None, "", "", None))
    if channels and "l2Book" not in channels:
        return out
    sub = {"type": "l2Book", "coin": "BTC"}
    # the 1x archive holds at least one whole row group (16,384 rows): a replay reads a row group's
    # column chunks at once, so against a smaller 1x archive the figure measured the row group's
    # size, not the archive's length
    frames = synthetic_frames(sub, max(frames_per_channel // 5, 20_000))
    with tempfile.TemporaryDirectory() as small, tempfile.TemporaryDirectory() as large:
        write_both(Path(small), sub, frames, copies=1)
        write_both(Path(large), sub, frames, copies=10)
        one = median_of(runs, lambda: peak_rss_mb(Path(small), "l2Book"))
        ten = median_of(runs, lambda: peak_rss_mb(Path(large), "l2Book"))
    out.append(Figure("replay peak RSS MB, 10x l2Book archive", ten, one, "the same replay of the 1x archive", "within 10%", ten <= one * 1.1))
    return out


MULTI_COINS = ("BTC", "ETH", "SOL", "kPEPE", "xyz:HOOD", "@1", "PURR/USDC", "AVAX")
MULTI_CHANNELS = ("l2Book", "trades", "bbo")


def write_interleaved(root: Path, subs: list[dict], frames_per_sub: int, copies: int = 1) -> dict[str, Path]:
    """Every sub's frames interleaved in time (each stream ticks every 10 ms, streams staggered), into
    one archive and into gzip JSON lines per channel and for the mix, in the same order."""
    per_sub = [synthetic_frames(sub, frames_per_sub, seed=i) for i, sub in enumerate(subs)]
    outs = {name: gzip.open(root / f"{name}.jsonl.gz", "wb", compresslevel=6) for name in (*MULTI_CHANNELS, "mix")}
    # row groups of 4,096 rows: the 1x archive of the peak-RSS line then holds whole row groups too (a
    # replay reads a row group's column chunks at once: with fewer rows than one, the figure would
    # measure the row group's size, not the archive's length)
    with ArchiveWriter(root / "archive", row_group_rows=4096) as writer:
        for copy in range(copies):
            for i in range(frames_per_sub):
                for k, (sub, frames) in enumerate(zip(subs, per_sub)):
                    t = T0 + (copy * frames_per_sub + i) * 10_000_000 + k * 10_000_000 // len(subs)
                    frame = frames[i]
                    writer.write(frame, t, sub)
                    line = b"%d " % t + orjson.dumps(frame) + b"\n"
                    outs[sub["type"]].write(line)
                    outs["mix"].write(line)
    for handle in outs.values():
        handle.close()
    return {name: root / f"{name}.jsonl.gz" for name in outs}


def multi_run_fps(root: Path, subs: list[dict]) -> float:
    replay = Replay(root / "archive")
    for sub in subs:
        replay.subscribe(sub, lambda msg: None)
    start = time.perf_counter()
    total = replay.run().total
    return total / (time.perf_counter() - start)


def multi_raw_fps(root: Path, subs: list[dict]) -> float:
    replay = Replay(root / "archive")
    for sub in subs:
        replay.subscribe(sub, lambda msg: None)
    start = time.perf_counter()
    total = sum(1 for _ in replay.raw_messages())
    return total / (time.perf_counter() - start)


MULTI_PEAK = r"""
import sys, orjson
from replay import Replay
from tests.benchmarks.common import vm_hwm_mb
replay = Replay(sys.argv[1])
for sub in orjson.loads(sys.argv[2]):
    replay.subscribe(sub, lambda m: None)
replay.run()
print(f"PEAK_RSS_MB={vm_hwm_mb():.1f}", file=sys.stderr)
"""


def multi_coin_figures(frames_total: int = 150_000, runs: int = 3, n_coins: int = 5) -> list[Figure]:
    """Books, trades and bbo of ``n_coins`` coins interleaved in time: what a backtest reads."""
    coins = MULTI_COINS[:n_coins]
    subs = [{"type": channel, "coin": coin} for coin in coins for channel in MULTI_CHANNELS]
    per_sub = max(1, frames_total // len(subs))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        lines = write_interleaved(Path(tmp), subs, per_sub)
        gc.collect()
        for name in (*MULTI_CHANNELS, "mix"):
            chosen = subs if name == "mix" else [s for s in subs if s["type"] == name]
            label = f"{n_coins} coins, {name if name != 'mix' else 'l2Book+trades+bbo'}"
            ours_, raw_, theirs_ = interleaved(
                runs, lambda: multi_run_fps(Path(tmp), chosen), lambda: multi_raw_fps(Path(tmp), chosen), lambda: jsonl_fps(lines[name]), warm_up=True
            )
            ours, raw, theirs = (statistics.median(v) for v in (ours_, raw_, theirs_))
            dicts_rounds, bytes_rounds = round_ratios(ours_, theirs_), round_ratios(raw_, theirs_)
            out.append(Figure(f"replay {label} frames/s (dicts, callbacks)", ours, theirs, "gzip JSON lines + orjson", ">= 1.2x", statistics.median(dicts_rounds) >= 1.2, dicts_rounds))
            out.append(Figure(f"raw_messages() {label} frames/s (bytes)", raw, theirs, "gzip JSON lines + orjson", ">= 2.0x", statistics.median(bytes_rounds) >= 2.0, bytes_rounds))
    with tempfile.TemporaryDirectory() as small, tempfile.TemporaryDirectory() as large:
        few = max(per_sub // 2, 2_000)
        write_interleaved(Path(small), subs, few, copies=1)
        write_interleaved(Path(large), subs, few, copies=10)
        args = orjson.dumps(subs).decode()
        one = median_of(runs, lambda: run_measured("", str(Path(small) / "archive"), args, code=MULTI_PEAK)[1])
        ten = median_of(runs, lambda: run_measured("", str(Path(large) / "archive"), args, code=MULTI_PEAK)[1])
    out.append(Figure(f"replay peak RSS MB, 10x archive of {n_coins} coins x 3 channels", ten, one, "the same replay of the 1x archive", "within 10%", ten <= one * 1.1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--channel", action="append", choices=[c["type"] for c in CHANNELS], help="only these channels (repeatable)")
    parser.add_argument("--coins", type=int, default=None, help="the interleaved multi-coin corpus instead: l2Book, trades and bbo of this many coins (--frames in all)")
    args = parser.parse_args()
    print(f"replay, median of {args.runs} interleaved runs; a ratio is the median of the rounds' ratios ({machine()})")
    if args.coins:
        results = multi_coin_figures(args.frames, args.runs, args.coins)
        print(table([f.row() for f in results], HEADER))
        print(round_lines(results))
        return
    results = figures(args.frames, args.runs, args.channel)
    print(table([f.row() for f in results], HEADER))
    print(round_lines(results))


if __name__ == "__main__":
    main()

"""Recorder end to end (frames received -> parts committed) vs the official SDK's websocket client.

    python -m tests.benchmarks.recorder_throughput [--seconds 10] [--runs 3]

The simulator runs in its own process, as fast as it can (``--rate 0``), with mixed l2Book,
trades, bbo and allMids traffic; each client runs in its own process too, so peak RSS is its own.
Figures: frames/s the client took in (for the recorder: rows in committed parts / seconds), and
peak RSS. The SDK baseline counts callback invocations of ``WebsocketManager``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import duckdb

from .common import HEADER, Figure, machine, median_of, run_measured, simulator_process, table

COINS = ["BTC", "ETH", "SOL", "@1"]
SUBS = [{"type": t, "coin": c} for c in COINS for t in ("l2Book", "trades", "bbo")] + [{"type": "allMids"}]

SDK_CLIENT = r"""
import json, sys, threading, time
from hyperliquid.websocket_manager import WebsocketManager
from tests.benchmarks.common import vm_hwm_mb
url, seconds, subs = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
count = [0]
def cb(msg): count[0] += 1
manager = WebsocketManager(url.replace("ws://", "http://").removesuffix("/ws"))
manager.start()
for sub in subs:
    manager.subscribe(sub, cb)
time.sleep(1.0)
start_count, start = count[0], time.perf_counter()
time.sleep(seconds)
rate = (count[0] - start_count) / (time.perf_counter() - start)
manager.stop()
print(json.dumps({"fps": rate, "rss_mb": vm_hwm_mb()}))
"""


def run_recorder(url: str, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as root:
        args = [sys.executable, "-m", "replay.cli", "record", "--out", root, "--url", url, "--no-meta", "--quiet", "--duration", str(seconds)]
        for sub in SUBS:
            args += ["--sub", json.dumps(sub)]
        started = time.perf_counter()
        _, rss = run_measured("replay.cli", *args[3:])
        elapsed = time.perf_counter() - started
        rows = duckdb.sql(
            f"select count(*) from read_parquet('{root}/channel=*/*/*/*.parquet', union_by_name=true) where wire_channel is not null"
        ).fetchall()[0][0]
        # the process also starts up and flushes: count its whole life, a conservative figure
        return rows / elapsed, rss


def run_sdk(url: str, seconds: float) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", SDK_CLIENT, url, str(seconds), json.dumps(SUBS)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["fps"], result["rss_mb"]


def figures(seconds: float = 10.0, runs: int = 3, total_rate: float = 0, sdk_baseline: bool = True) -> list[Figure]:
    """``total_rate`` 0: as fast as the simulator goes; else that many frames/s over all subscriptions."""
    ours: list[tuple[float, float]] = []
    sdk: list[tuple[float, float]] = [] if sdk_baseline else [(float("nan"), float("nan"))]
    per_subscription = str(total_rate / len(SUBS)) if total_rate else "0"

    def one(fn: Any, out: list[tuple[float, float]]) -> float:
        # frames encoded once (--prerender): the simulator is less of a bottleneck
        with simulator_process("--rate", per_subscription, "--prerender", "5000") as url:
            out.append(fn(url, seconds))
        return out[-1][0]

    ours_fps = median_of(runs, lambda: one(run_recorder, ours))
    sdk_fps = median_of(runs, lambda: one(run_sdk, sdk)) if sdk_baseline else float("nan")
    ours_rss = statistics.median(r for _, r in ours)
    sdk_rss = statistics.median(r for _, r in sdk)
    return [
        Figure("recorder frames/s, end to end", ours_fps, sdk_fps if sdk_baseline else None, "SDK WebsocketManager receiving", ">= 50,000 and >= 8x", ours_fps >= 50_000 and ours_fps >= 8 * sdk_fps),
        Figure("recorder peak RSS MB", ours_rss, sdk_rss if sdk_baseline else None, "SDK WebsocketManager", "<= 300", ours_rss <= 300),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0, help="frames/s over all subscriptions (0: as fast as possible)")
    parser.add_argument("--no-sdk", action="store_true", help="skip the SDK baseline (e.g. for a 10-minute memory run)")
    args = parser.parse_args()
    print(f"recorder vs SDK client, {len(SUBS)} subscriptions (l2Book/trades/bbo x {len(COINS)} + allMids), median of {args.runs} x {args.seconds:.0f}s, "
          f"{f'{args.rate:,.0f} frames/s offered' if args.rate else 'as fast as possible'} ({machine()})")
    print(table([f.row() for f in figures(args.seconds, args.runs, args.rate, not args.no_sdk)], HEADER))


if __name__ == "__main__":
    main()

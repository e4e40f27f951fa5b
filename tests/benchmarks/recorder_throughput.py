"""Recorder end to end (frames received -> parts committed) vs the official SDK's websocket client.

    python -m tests.benchmarks.recorder_throughput [--seconds 10] [--runs 3]

The simulator runs in its own process, as fast as it can (``--rate 0``), with mixed l2Book,
trades, bbo and allMids traffic; each client runs in its own process too, so peak RSS is its own.
Figures: frames/s the client took in, and peak RSS. The SDK baseline counts callback invocations
of ``WebsocketManager``; the bare client counts frames from its first ``recv``. The recorder counts
rows in committed parts over the time from the first frame it received (its ``recv_ns``) to its
exit, after every part is committed: the same window as the bare client's, plus the drain. Its
whole-life rate (interpreter start and imports included) is printed too. The recorder is two
processes (receiver and archiver): its CPU and peak RSS are both processes' together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb

from recorder.archiver import peak_rss_mb

from .common import HEADER, Figure, free_port, machine, median_of, run_measured, simulator_process, table

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


BARE_CLIENT = r"""
import asyncio, json, sys, time
import orjson
from websockets.asyncio.client import connect
url, seconds, subs = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
async def main():
    async with connect(url, ping_interval=None, max_size=None, compression=None) as ws:
        for sub in subs:
            await ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
        count, start = 0, time.perf_counter()
        end = start + seconds
        while time.perf_counter() < end:
            text = await ws.recv()
            if text[:1] == "{":
                orjson.loads(text)
                count += 1
        return count / (time.perf_counter() - start)
print(json.dumps({"fps": asyncio.run(main())}))
"""


WHOLE_LIFE: list[float] = []  # the recorder's rate over its whole life, per run (printed beside)
ROUND_RATIOS: list[float] = []  # recorder / bare client, each round's pair measured back to back


def run_recorder(url: str, seconds: float, *extra: str) -> tuple[float, float]:
    fps, rss, _ = run_recorder_cpu(url, seconds, *extra)
    return fps, rss


def run_recorder_cpu(url: str, seconds: float, *extra: str, parts: list[int] | None = None) -> tuple[float, float, float]:
    """Frames/s into committed parts from the first frame to exit, peak RSS (receiver + archiver),
    and CPU µs a frame (both processes, whole life). ``parts`` gets the number of parts left."""
    with tempfile.TemporaryDirectory() as root:
        args = [sys.executable, "-m", "replay.cli", "record", "--out", root, "--url", url, "--no-meta", "--quiet", "--duration", str(seconds), *extra]
        for sub in SUBS:
            args += ["--sub", json.dumps(sub)]
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peaks, cpu = watch_tree(proc)
        ended_ns, elapsed = time.time_ns(), time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.read()[-2000:] if proc.stderr else f"record exited {proc.returncode}")
        rows, first_ns = duckdb.sql(
            f"select count(*), min(recv_ns) from read_parquet('{root}/channel=*/*/*/*.parquet', union_by_name=true) where wire_channel is not null"
        ).fetchall()[0]
        WHOLE_LIFE.append(rows / elapsed)
        if parts is not None:
            parts.append(sum(1 for _ in Path(root).glob("channel=*/*/*/*.parquet")))
        return rows / ((ended_ns - first_ns) / 1e9), sum(peaks.values()), sum(cpu.values()) / max(rows, 1) * 1e6


def run_bare(url: str, seconds: float) -> tuple[float, float]:
    """A bare websockets + orjson client that parses every frame and keeps none: the ceiling."""
    stdout, rss = run_measured("", url, str(seconds), json.dumps(SUBS), code=BARE_CLIENT)
    return json.loads(stdout.strip().splitlines()[-1])["fps"], rss


def run_sdk(url: str, seconds: float) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", SDK_CLIENT, url, str(seconds), json.dumps(SUBS)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["fps"], result["rss_mb"]


def figures(seconds: float = 10.0, runs: int = 3, total_rate: float = 0, sdk_baseline: bool = True, cpu_rate: float = 2000.0) -> list[Figure]:
    """``total_rate`` 0: as fast as the simulator goes; else that many frames/s over all subscriptions."""
    ours: list[tuple[float, float]] = []
    sdk: list[tuple[float, float]] = [] if sdk_baseline else [(float("nan"), float("nan"))]
    per_subscription = str(total_rate / len(SUBS)) if total_rate else "0"

    def one(fn: Any, out: list[tuple[float, float]]) -> float:
        # frames encoded once (--prerender): the simulator is less of a bottleneck
        with simulator_process("--rate", per_subscription, "--prerender", "5000") as url:
            out.append(fn(url, seconds))
        return out[-1][0]

    bare: list[tuple[float, float]] = []
    metered: list[tuple[float, float]] = []
    whole_life_runs: list[float] = []
    # one round = one run of each client, back to back: this machine's speed drifts by up to 2x
    # within minutes, and a drift between one client's runs and another's would move the ratios
    for _ in range(runs):
        one(run_recorder, ours)
        whole_life_runs.append(WHOLE_LIFE[-1])
        one(run_bare, bare)
        if sdk_baseline:
            one(run_sdk, sdk)
        one(lambda url, s: run_recorder(url, s, "--metrics", f"127.0.0.1:{free_port()}"), metered)
    ROUND_RATIOS.extend(o / b for (o, _), (b, _) in zip(ours, bare))
    ours_fps, bare_fps = statistics.median(f for f, _ in ours), statistics.median(f for f, _ in bare)
    sdk_fps = statistics.median(f for f, _ in sdk)
    metrics_fps = statistics.median(f for f, _ in metered)
    ours_rss = statistics.median(r for _, r in ours)
    sdk_rss = statistics.median(r for _, r in sdk)
    whole_life = statistics.median(whole_life_runs)
    figures = [
        Figure("recorder frames/s, end to end", ours_fps, bare_fps, "bare websockets + orjson client", ">= 0.8x", ours_fps >= 0.8 * bare_fps),
        Figure("recorder frames/s over its whole life (start-up too)", whole_life, bare_fps, "bare websockets + orjson client", "", None),
        Figure("recorder frames/s vs the SDK client", ours_fps, sdk_fps if sdk_baseline else None, "SDK WebsocketManager receiving", ">= 5x", ours_fps >= 5 * sdk_fps if sdk_baseline else None),
        Figure("recorder frames/s with --metrics", metrics_fps, ours_fps, "the recorder without --metrics", "cost < 2%", metrics_fps >= 0.98 * ours_fps),
        Figure("recorder peak RSS MB (receiver + archiver)", ours_rss, sdk_rss if sdk_baseline else None, "SDK WebsocketManager", "<= 300", ours_rss <= 300),
    ]
    if cpu_rate:
        def at_rate() -> float:
            with simulator_process("--rate", str(cpu_rate / len(SUBS)), "--prerender", "5000") as url:
                return steady_cpu_us_per_frame(url, seconds)

        figures.append(Figure(f"recorder CPU us/frame at {cpu_rate:,.0f} frames/s (steady state)", median_of(runs, at_rate), None, "", "", None))
    return figures


def _cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the recorder and its archiver process)."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            with open(f"/proc/{pids[i]}/task/{pids[i]}/children") as handle:
                pids += [int(p) for p in handle.read().split()]
        except OSError:
            pass
        i += 1
    return pids


def tree_cpu_s(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            total += _cpu_s(p)
        except OSError:
            pass
    return total


def watch_tree(proc: subprocess.Popen[str]) -> tuple[dict[int, float], dict[int, float]]:
    """Until ``proc`` exits: each process's peak RSS (MB) and last CPU seconds, read from /proc every 50 ms."""
    peaks: dict[int, float] = {}
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        for p in _tree(proc.pid):
            try:
                peaks[p] = max(peaks.get(p, 0.0), peak_rss_mb(p))
                cpu[p] = _cpu_s(p)
            except OSError:
                pass  # it just ended: its last reading stands
        time.sleep(0.05)
    return peaks, cpu


def _frames(port: int) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == "hlarchive_frames_received_total")


def steady_cpu_us_per_frame(url: str, seconds: float) -> float:
    """CPU the recorder (both processes) spends a frame once running (start-up and idle loops excluded):
    their /proc CPU time and the frames counter (--metrics), sampled after warm-up and ``seconds`` later."""
    port = free_port()
    with tempfile.TemporaryDirectory() as root:
        args = [sys.executable, "-m", "replay.cli", "record", "--out", root, "--url", url, "--no-meta", "--quiet", "--metrics", f"127.0.0.1:{port}"]
        for sub in SUBS:
            args += ["--sub", json.dumps(sub)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3.0)
            cpu0, frames0 = tree_cpu_s(proc.pid), _frames(port)
            time.sleep(seconds)
            cpu1, frames1 = tree_cpu_s(proc.pid), _frames(port)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return (cpu1 - cpu0) / max(frames1 - frames0, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0, help="frames/s over all subscriptions (0: as fast as possible)")
    parser.add_argument("--no-sdk", action="store_true", help="skip the SDK baseline (e.g. for a 10-minute memory run)")
    parser.add_argument("--cpu-rate", type=float, default=2000.0, help="also measure CPU us/frame at this offered rate (0: skip); 2,000/s is the real market busy")
    args = parser.parse_args()
    print(f"recorder vs SDK client, {len(SUBS)} subscriptions (l2Book/trades/bbo x {len(COINS)} + allMids), median of {args.runs} x {args.seconds:.0f}s, "
          f"{f'{args.rate:,.0f} frames/s offered' if args.rate else 'as fast as possible'} ({machine()})")
    print(table([f.row() for f in figures(args.seconds, args.runs, args.rate, not args.no_sdk, args.cpu_rate)], HEADER))
    print("recorder / bare client, round by round: " + ", ".join(f"{r:.2f}x" for r in ROUND_RATIOS))


if __name__ == "__main__":
    main()

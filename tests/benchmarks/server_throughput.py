"""Frames per second the simulator sustains to one client (simulator in its own process).

    python -m tests.benchmarks.server_throughput [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from websockets.asyncio.client import connect

from schemas.protocol import subscribe_frame

from .common import HEADER, Figure, machine, median_of, simulator_process, table

MIXES = {
    "bbo x4": [{"type": "bbo", "coin": c} for c in ("BTC", "ETH", "SOL", "@1")],
    "trades x4": [{"type": "trades", "coin": c} for c in ("BTC", "ETH", "SOL", "@1")],
    "l2Book x4": [{"type": "l2Book", "coin": c} for c in ("BTC", "ETH", "SOL", "@1")],
    "mixed": [{"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}, {"type": "bbo", "coin": "BTC"}, {"type": "allMids"}],
}


async def receive(url: str, subs: list[dict], seconds: float) -> tuple[float, float]:
    async with connect(url, ping_interval=None, max_size=2**22) as ws:
        await ws.recv()
        for sub in subs:
            await ws.send(subscribe_frame(sub))
        for _ in range(200):  # warm up
            await ws.recv()
        frames = nbytes = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            nbytes += len(await ws.recv())
            frames += 1
        return frames / elapsed, nbytes / elapsed / 1e6


def figures(seconds: float = 5.0, runs: int = 3) -> list[Figure]:
    out = []
    # the last row: frames encoded once and cycled, as the recorder benchmark feeds its clients
    cases = [(name, subs, ()) for name, subs in MIXES.items()] + [("mixed, prerendered", MIXES["mixed"], ("--prerender", "5000"))]
    for name, subs, extra in cases:
        def one() -> float:
            with simulator_process("--rate", "0", *extra) as url:
                return asyncio.run(receive(url, subs, seconds))[0]

        out.append(Figure(f"simulator -> 1 client frames/s, {name}", median_of(runs, one), None, "", "", None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"simulator -> one client, median of {args.runs} runs of {args.seconds:.0f}s ({machine()})")
    print(table([f.row() for f in figures(args.seconds, args.runs)], HEADER))


if __name__ == "__main__":
    main()

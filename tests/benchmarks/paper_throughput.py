"""Paper trading: orders/s through ``POST /exchange`` and in-process, and a backtest's replay speed.

    python -m tests.benchmarks.paper_throughput [--frames 40000] [--runs 3]

- ``/exchange``: SDK-signed order and cancel requests, signed before the clock starts, posted one
  after the other on one keep-alive connection to ``hlarchive simulate`` in its own process.
- in-process: the same actions through ``Replay.paper()``'s engine (no signing, no sockets).
- backtest: the same archive (BTC l2Book, 20 levels a side, and trades) replayed to no-op callbacks
  with a paper account holding 100 resting orders, next to the same replay without paper trading;
  and a stress case, the 100 orders kept at the touch (re-placed as they fill).
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from recorder import ArchiveWriter
from replay import Replay
from replay.paper.assets import AssetSpec
from replay.paper.engine import PaperEngine
from replay.paper.signing import sign_action

from .common import HEADER, Figure, machine, median_of, simulator_process, synthetic_frames, table

T0 = 1_767_225_600_000_000_000
KEY = "0x" + "55" * 32
BTC = {0: AssetSpec(0, "BTC", 5, 40, False)}
RESTING = 100


def write_archive(root: Path, n: int) -> Path:
    books = synthetic_frames({"type": "l2Book", "coin": "BTC"}, n, seed=2)
    trades = synthetic_frames({"type": "trades", "coin": "BTC"}, n, seed=2)
    with ArchiveWriter(root) as writer:
        t = T0
        for book, trade in zip(books, trades):
            writer.write(book, t, {"type": "l2Book", "coin": "BTC"})
            writer.write(trade, t + 500_000, {"type": "trades", "coin": "BTC"})
            t += 1_000_000
    return root


def _subscribed(root: Path) -> Replay:
    replay = Replay(root)
    replay.subscribe({"type": "l2Book", "coin": "BTC"}, lambda m: None)
    replay.subscribe({"type": "trades", "coin": "BTC"}, lambda m: None)
    return replay


def plain_fps(root: Path) -> float:
    replay = _subscribed(root)
    start = time.perf_counter()
    total = replay.run().total
    return total / (time.perf_counter() - start)


def paper_fps(root: Path, *, keep_at_touch: bool) -> tuple[float, int]:
    """Frames/s with ``RESTING`` paper orders: placed once around the first book (they fill as the
    market walks into them), or kept at the touch (re-placed as they fill: a fill every few frames)."""
    replay = _subscribed(root)
    paper = replay.paper("0x" + "66" * 20, coins=["BTC"], assets=BTC, balance=1e9)
    placed = []

    def ladder(msg: dict[str, Any]) -> None:
        if placed and not keep_at_touch:
            return
        open_now = len(paper.engine.account(paper.address).orders)
        if open_now >= RESTING:
            return
        bids, asks = msg["data"]["levels"]
        best_bid, best_ask = float(bids[0]["px"]), float(asks[0]["px"])
        spacing = 1 if keep_at_touch else 5
        requests = []
        for k in range(RESTING - open_now):
            is_buy = k % 2 == 0
            px = best_bid - spacing * (k // 2) if is_buy else best_ask + spacing * (k // 2)
            requests.append({"coin": "BTC", "is_buy": is_buy, "sz": 0.001, "limit_px": px, "order_type": {"limit": {"tif": "Gtc"}}})
        paper.bulk_orders(requests)
        placed.append(True)

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, ladder)
    start = time.perf_counter()
    total = replay.run().total
    return total / (time.perf_counter() - start), len(paper.fills)


def _actions(n: int) -> list[dict[str, Any]]:
    """Alternating: a resting order far below the market, then its cancel (oids count up from the engine's first)."""
    out: list[dict[str, Any]] = []
    for i in range(n // 2):
        out.append({"type": "order", "orders": [{"a": 0, "b": True, "p": "50000", "s": "0.001", "r": False, "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"})
        out.append({"type": "cancel", "cancels": [{"a": 0, "o": 1_000_000_001 + i}]})
    return out


def in_process_ops(n: int) -> float:
    engine = PaperEngine(BTC, balance=1e9)
    book = synthetic_frames({"type": "l2Book", "coin": "BTC"}, 1, seed=2)[0]["data"]
    engine.on_book("BTC", book["time"], book["levels"])
    actions = _actions(n)
    start = time.perf_counter()
    for action in actions:
        response = engine.act("0x" + "77" * 20, action, book["time"])
    elapsed = time.perf_counter() - start
    assert response["status"] == "ok", response
    return n / elapsed


def exchange_ops(n: int) -> float:
    actions = _actions(n)
    nonce0 = int(time.time() * 1000)
    bodies = [orjson.dumps({"action": a, "nonce": nonce0 + i, "signature": sign_action(KEY, a, nonce0 + i), "vaultAddress": None, "expiresAfter": None}) for i, a in enumerate(actions)]
    with simulator_process("--coins", "BTC", "--latency-ms", "0") as url:  # the exchange's own cost, not the modelled latency
        parsed = urlparse(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        start = time.perf_counter()
        for body in bodies:
            conn.request("POST", "/exchange", body, {"Content-Type": "application/json"})
            answer = conn.getresponse().read()
        elapsed = time.perf_counter() - start
        conn.close()
    assert b'"ok"' in answer, answer
    return n / elapsed


def figures(frames: int = 40_000, runs: int = 3, orders: int = 2_000) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_archive(Path(tmp) / "archive", frames)
        plain = median_of(runs, lambda: plain_fps(root))
        placed = median_of(runs, lambda: paper_fps(root, keep_at_touch=False)[0])
        placed_fills = paper_fps(root, keep_at_touch=False)[1]
        touch = median_of(runs, lambda: paper_fps(root, keep_at_touch=True)[0])
        touch_fills = paper_fps(root, keep_at_touch=True)[1]
    return [
        Figure(f"backtest frames/s, {RESTING} resting paper orders ({placed_fills} fills)", placed, plain, "same replay, no paper", ">= 0.5x", placed >= 0.5 * plain),
        Figure(f"backtest frames/s, {RESTING} orders kept at the touch ({touch_fills} fills)", touch, plain, "same replay, no paper", "-", None),
        Figure("paper orders+cancels/s in-process", median_of(runs, lambda: in_process_ops(orders * 10)), None, "", "", None),
        Figure("paper orders+cancels/s via POST /exchange (signed)", median_of(runs, lambda: exchange_ops(orders)), None, "", "", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=40_000, help="l2Book frames (and as many trades frames)")
    parser.add_argument("--orders", type=int, default=2_000, help="actions posted to /exchange")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"paper trading, median of {args.runs} runs ({machine()})")
    print(table([f.row() for f in figures(args.frames, args.runs, args.orders)], HEADER))


if __name__ == "__main__":
    main()

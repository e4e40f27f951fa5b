"""A deep, quiet order book in a node's files, as the L4 issue measured one: ~12,000 resting
orders, 10-40 events a block (orders placed near the touch, canceled, partly filled), a block every
100 ms. Written as a node writes its hourly files, with the node's snapshot of the book at the
first block, and each block's ``l2Book`` (20 levels) as the exchange would send it, from the
reference state machine.

    python -m tests.benchmarks.quiet_book DIR [--blocks 6000]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from schemas.l4.book import L4Book
from schemas.l4.node import NODE_DIRS

COIN = "BTC"
START_MS = 1_767_225_600_000  # 2026-01-01
BLOCK_MS = 100
FIRST = 700_000_000
LATENCY_MS = 130
MID = 100_000


def _iso(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}000000"


class QuietBook:
    """Orders of one coin, moved a block at a time; ``book`` is the reference book after each block."""

    def __init__(self, seed: int = 3, orders: int = 12_000) -> None:
        self.rng = random.Random(seed)
        self.next_oid = 1
        self.resting: dict[int, dict[str, Any]] = {}  # oid -> order (status line's order, with user)
        self.oids: list[int] = []  # the resting oids, to draw from
        self.users = [f"0x{self.rng.getrandbits(160):040x}" for _ in range(400)]
        for _ in range(orders):
            self._place(self._price(self.rng.choice("BA"), deep=True))
        self.book = L4Book.from_snapshot(COIN, FIRST, START_MS, *self.sides())

    def _price(self, side: str, *, deep: bool = False) -> tuple[str, str]:
        away = int(self.rng.expovariate(1 / (300 if deep else 8))) + 1
        return side, f"{MID - away if side == 'B' else MID + away}.0"

    def _order(self, side: str, px: str, sz: str, time_ms: int) -> dict[str, Any]:
        oid = self.next_oid
        self.next_oid += 1
        return {"coin": COIN, "side": side, "limitPx": px, "sz": sz, "oid": oid, "timestamp": time_ms, "triggerCondition": "N/A", "isTrigger": False,
                "triggerPx": "0.0", "children": [], "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "origSz": sz, "tif": "Alo", "cloid": None}

    def _place(self, where: tuple[str, str], time_ms: int = START_MS) -> dict[str, Any]:
        side, px = where
        order = self._order(side, px, f"{self.rng.randint(1, 5000) / 10000:.4f}".rstrip("0").rstrip("."), time_ms)
        self.resting[order["oid"]] = {"user": self.rng.choice(self.users), **order}
        self.oids.append(order["oid"])
        return self.resting[order["oid"]]

    def sides(self) -> list[list[dict[str, Any]]]:
        bids = sorted((o for o in self.resting.values() if o["side"] == "B"), key=lambda o: (-float(o["limitPx"]), o["oid"]))
        asks = sorted((o for o in self.resting.values() if o["side"] == "A"), key=lambda o: (float(o["limitPx"]), o["oid"]))
        return [[dict(o) for o in bids], [dict(o) for o in asks]]

    def block(self, n: int) -> tuple[int, int, list[dict[str, Any]], list[dict[str, Any]]]:
        """Block ``n``'s status lines and diffs (applied to ``book``)."""
        height, time_ms = FIRST + n, START_MS + n * BLOCK_MS
        statuses: list[dict[str, Any]] = []
        diffs: list[dict[str, Any]] = []
        t = _iso(time_ms)
        touched: set[int] = set()
        for _ in range(self.rng.randint(8, 25)):
            what = self.rng.random()
            drawn = (self.oids[self.rng.randrange(len(self.oids))] for _ in range(40))
            near = [oid for oid in drawn if oid in self.resting and oid not in touched]
            if what < 0.5 or not near:
                order = self._place(self._price(self.rng.choice("BA")), time_ms)
                touched.add(order["oid"])
                line = {k: v for k, v in order.items() if k != "user"}
                statuses.append({"time": t, "user": order["user"], "status": "open", "order": line})
                diffs.append({"user": order["user"], "oid": order["oid"], "coin": COIN, "side": order["side"], "px": order["limitPx"], "raw_book_diff": {"new": {"sz": order["sz"]}}})
                continue
            oid = min(near, key=lambda o: abs(float(self.resting[o]["limitPx"]) - MID))
            order = self.resting[oid]
            touched.add(oid)
            base = {"user": order["user"], "oid": oid, "coin": COIN, "side": order["side"], "px": order["limitPx"]}
            line = {k: v for k, v in order.items() if k != "user"}
            if what < 0.8:
                del self.resting[oid]
                if len(self.oids) > 2 * len(self.resting):  # drop the oids gone now and then
                    self.oids = [o for o in self.oids if o in self.resting]
                statuses.append({"time": t, "user": order["user"], "status": "canceled", "order": line})
                diffs.append({**base, "raw_book_diff": "remove"})
            else:
                left = max(1, int(float(order["sz"]) * 10000) // 2)
                new = f"{left / 10000:.4f}".rstrip("0").rstrip(".")
                diffs.append({**base, "raw_book_diff": {"update": {"origSz": order["sz"], "newSz": new}}})
                order["sz"] = new
        assert not self.book.apply_block(height, time_ms, statuses, diffs)
        return height, time_ms, statuses, diffs


def write(directory: Path, blocks: int, seed: int = 3, orders: int = 12_000) -> tuple[list[Any], Iterator[tuple[int, dict[str, Any]]]]:
    """Node files of ``blocks`` blocks under ``directory``; the node's snapshot payload at the first
    block, and the ``(receive ms, l2Book frame)`` of each block."""
    quiet = QuietBook(seed, orders)
    snapshot = [FIRST, [[COIN, [[[o["user"], {k: v for k, v in o.items() if k != "user"}] for o in side] for side in quiet.sides()]]]]
    handles = {}
    for stream in ("statuses", "diffs"):
        path = directory / NODE_DIRS[stream] / "hourly" / "20260101" / "0"
        path.parent.mkdir(parents=True, exist_ok=True)
        handles[stream] = open(path, "wb")  # noqa: SIM115 - closed below
    frames = []
    try:
        for n in range(1, blocks + 1):
            height, time_ms, statuses, diffs = quiet.block(n)
            head = {"local_time": _iso(time_ms + LATENCY_MS), "block_time": _iso(time_ms), "block_number": height}
            handles["statuses"].write(orjson.dumps({**head, "events": statuses}) + b"\n")
            handles["diffs"].write(orjson.dumps({**head, "events": diffs}) + b"\n")
            frames.append((time_ms + LATENCY_MS, {"channel": "l2Book", "data": quiet.book.l2(20)}))
    finally:
        for handle in handles.values():
            handle.close()
    return snapshot, iter(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--blocks", type=int, default=6000)
    args = parser.parse_args()
    write(args.directory, args.blocks)


if __name__ == "__main__":
    main()

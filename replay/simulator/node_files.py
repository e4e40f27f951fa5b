"""``simulate --node-data DIR``: the synthetic market's blocks written as a node writes them.

Three streams, one line a block each, in hourly files (``<stream>/hourly/YYYYMMDD/H``); every
block appears in every stream (``"events": []`` when it has none of that kind). Each line is
written in two parts with a flush between, so a reader sees half lines as it would on a real node;
``lag_blocks`` holds the diffs stream that many blocks behind the statuses, to test a reader's join.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import IO, Any

import orjson

from schemas.l4.node import DIFFS, FILLS, NODE_DIRS, STATUSES

from .l4shared import Tapes
from .l4tape import NODE_LATENCY_NS, height_of, iso_time


class NodeFiles:
    """Writes blocks of ``coins`` from ``tapes`` under ``root``, tick after tick."""

    def __init__(self, tapes: Tapes, coins: list[str], root: str | os.PathLike[str], decimals: dict[str, int], *, lag_blocks: int = 0) -> None:
        self.tapes = tapes
        self.coins = coins
        self.root = Path(root)
        self.decimals = decimals
        self.lag_blocks = lag_blocks
        self.next_tick: int | None = None
        self.written_height = 0  # the newest block in every stream
        self._open: dict[str, tuple[Path, IO[bytes]]] = {}
        self._held: deque[tuple[int, bytes]] = deque()  # the lagging stream's lines not yet written

    def write_through(self, tick: int, most: int | None = None) -> int:
        """Write every block up to ``tick`` (at most ``most`` of them); the number written."""
        if self.next_tick is None:
            self.next_tick = tick
        count = 0
        while self.next_tick <= tick and (most is None or count < most):
            self._write_block(self.next_tick)
            self.next_tick += 1
            count += 1
        return count

    def _write_block(self, tick: int) -> None:
        with self.tapes.lock:
            blocks = [self.tapes.get(coin, tick).block(tick) for coin in self.coins]
        time_ms = blocks[0].time_ms
        block_ns = time_ms * 1_000_000
        head = {"local_time": iso_time(block_ns + NODE_LATENCY_NS), "block_time": iso_time(block_ns), "block_number": height_of(tick)}
        events = {
            STATUSES: [s for b in blocks for s in b.statuses],
            DIFFS: [d for b in blocks for d in b.diffs],
            FILLS: [f for b in blocks for f in b.fills],
        }
        for stream in (STATUSES, FILLS, DIFFS):
            line = orjson.dumps({**head, "events": events[stream]}) + b"\n"
            if stream == DIFFS and self.lag_blocks:
                self._held.append((time_ms, line))
                while len(self._held) > self.lag_blocks:
                    self._append(DIFFS, *self._held.popleft())
            else:
                self._append(stream, time_ms, line)
        self.written_height = height_of(tick) - (self.lag_blocks if self.lag_blocks else 0)

    def flush_lagging(self) -> None:
        """Write what the lagging stream still holds (at a stop: every block in every stream)."""
        while self._held:
            self._append(DIFFS, *self._held.popleft())

    def _append(self, stream: str, time_ms: int, line: bytes) -> None:
        handle = self._handle(stream, time_ms)
        cut = len(line) // 2
        handle.write(line[:cut])
        handle.flush()  # a reader now sees half a line
        handle.write(line[cut:])
        handle.flush()

    def _handle(self, stream: str, time_ms: int) -> IO[bytes]:
        seconds = time_ms // 1000
        import time as _time

        stamp = _time.gmtime(seconds)
        path = self.root / NODE_DIRS[stream] / "hourly" / _time.strftime("%Y%m%d", stamp) / str(stamp.tm_hour)
        current = self._open.get(stream)
        if current is None or current[0] != path:
            if current is not None:
                current[1].close()
            path.parent.mkdir(parents=True, exist_ok=True)
            current = self._open[stream] = (path, open(path, "ab"))  # noqa: SIM115 - held while its hour lasts
        return current[1]

    def snapshot_payload(self) -> list[Any]:
        """The node's ``fileSnapshot`` of ``l4Snapshots``: ``[height, [[coin, [bids, asks]], ...]]`` at one
        height for every coin (the newest any tape has reached)."""
        with self.tapes.lock:
            tapes = [self.tapes.get(coin, self.next_tick or 0) for coin in self.coins]
            tick = max(t.market.n for t in tapes)
            for shared in tapes:
                shared.advance_to(tick)
            books = [[coin, [[list(pair) for pair in side] for side in shared.tape.sides(self.decimals[coin])]] for coin, shared in zip(self.coins, tapes)]
            return [height_of(tick), books]

    def close(self) -> None:
        self.flush_lagging()
        for _, handle in self._open.values():
            handle.close()
        self._open.clear()

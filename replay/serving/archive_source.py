"""An archive as the local server's message source: ``hlarchive serve``.

Each connection has its own replay clock, started by its first subscription at ``start``.
Subscriptions sent within ``join_window_s`` of the first (clients subscribe in a burst on connect)
all start at ``start``; a later one joins the running clock, as on a live feed.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from schemas.subscriptions import COIN_TYPES, Subscription

from ..archive import check_root, find_parts
from ..replay import Replay, to_ns
from .archive_info import ArchiveInfo


class ArchiveSource:
    info_blocks = True  # /info answers read parts: the server runs them off its event loop

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        start: datetime | str | int | None = None,
        end: datetime | str | int | None = None,
        speed: float | None = 1.0,
        join_window_s: float = 1.0,
    ) -> None:
        self.root = check_root(root)  # resolved once: an object store is not re-opened per request
        parts = find_parts(self.root)
        self.available: dict[str, set[str]] = defaultdict(set)
        for part in parts:
            self.available[part.channel].add(part.coin)
        first = min((p.name.first_recv_ns for p in parts), default=0)
        self.start_ns = to_ns(start, "--from") or first
        self.end_ns = to_ns(end, "--to")
        self.speed = speed
        self.join_window_s = join_window_s
        self._info = ArchiveInfo(self.root)
        self._paper_started_ns: int | None = None

    @property
    def paper_started_ns(self) -> int | None:
        """When the paper clock started (wall time), if it has."""
        return self._paper_started_ns

    def paper_clock_ns(self, now_ns: int) -> int:
        """The paper exchange's one clock: ``--from`` until the first subscription or action on the
        server, then moving at ``speed`` (as fast as possible counts as real time)."""
        if self._paper_started_ns is None:
            self._paper_started_ns = now_ns
        return self.start_ns + int(max(0, now_ns - self._paper_started_ns) * (self.speed or 1.0))

    def clock_ns(self, now_ns: int, clock_start_ns: int | None) -> int:
        """Where a connection's replay clock stands: ``--from`` until it subscribes, then moving at ``speed``
        (as fast as possible counts as real time here)."""
        if clock_start_ns is None:
            return self.start_ns
        return self.start_ns + int(max(0, now_ns - clock_start_ns) * (self.speed or 1.0))

    def info(self, request: dict[str, Any], now_ns: int, clock_start_ns: int | None = None) -> Any:
        return self._info.answer(request, self.clock_ns(now_ns, clock_start_ns))

    def check(self, sub: Subscription) -> str | None:
        coins = self.available.get(sub.type, set())
        if coins and (sub.type not in COIN_TYPES or sub.coin in coins):
            return None
        if sub.type in ("l4Book", "l2Book", "bbo") and sub.coin in self.available.get("l4Diffs", set()):
            return None  # derived from the coin's L4 rows (Replay does it)
        has = "; ".join(f"{ch} ({', '.join(sorted(c))})" for ch, c in sorted(self.available.items())) or "nothing"
        return f"Invalid subscription {sub}: the archive has no data for it (it has {has})"

    def _replay(self, sub: Subscription, from_ns: int) -> Replay:
        replay = Replay(self.root, start=from_ns / 1_000_000, end=None if self.end_ns is None else self.end_ns / 1_000_000)
        replay.subscribe(sub, _ignore)
        return replay

    def frames(self, sub: Subscription) -> Iterator[bytes]:
        return self._replay(sub, self.start_ns).raw_messages()

    def timed_frames(self, sub: Subscription, clock_start_ns: int) -> Iterator[tuple[float | None, bytes]]:
        if self._paper_started_ns is None or clock_start_ns < self._paper_started_ns:
            self._paper_started_ns = clock_start_ns  # the paper clock runs with the first connection's
        elapsed_s = max(0.0, (time.time_ns() - clock_start_ns) / 1e9)
        joined = elapsed_s > self.join_window_s
        position_ns = self.start_ns + (int(elapsed_s * (self.speed or 0) * 1e9) if joined else 0)
        for item in self._replay(sub, position_ns).items(decode="bytes"):  # sent as read: no dicts
            if item.stream is None:
                continue
            if self.speed is None:
                yield None, item.message
            else:
                yield (item.recv_ns - self.start_ns) / 1e9 / self.speed - elapsed_s, item.message


def _ignore(message: Any) -> None:
    pass

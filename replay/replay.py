"""Replay: an archive through the SDK's ``subscribe(subscription, callback)`` interface, in order.

Order is ``(recv_ns, session, seq)``: the exact order frames were received, across every part,
channel and session. The merge streams part by part, so memory does not grow with the archive.
"""

from __future__ import annotations

import heapq
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Protocol

from schemas.layout import ArchiveError
from schemas.subscriptions import COIN_TYPES, Subscription, parse_subscription

from .archive import find_parts, part_rows

Callback = Callable[[Any], None]


class Clock(Protocol):
    """Where replay gets the time and waits: the wall clock, or a simulated one in tests."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def to_ns(value: datetime | date | str | int | float | None, name: str) -> int | None:
    """A bound as UTC nanoseconds: a datetime, an ISO-8601 string, or epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ArchiveError(f"bad {name} {value!r}: give a datetime, an ISO-8601 time or epoch milliseconds")
    if isinstance(value, (int, float)):
        return int(value * 1_000_000)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text) * 1_000_000
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ArchiveError(f"bad {name} {text!r}: give an ISO-8601 time like 2026-01-31T12:00:00Z or epoch milliseconds") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
    raise ArchiveError(f"bad {name} {value!r}: give a datetime, an ISO-8601 time or epoch milliseconds")


@dataclass
class Summary:
    """What a run delivered: frames per subscription stream, and the first and last receive times."""

    frames: Counter[str] = field(default_factory=Counter)
    first_recv_ns: int | None = None
    last_recv_ns: int | None = None

    @property
    def total(self) -> int:
        return sum(self.frames.values())


class Replay:
    """Replays the archive at ``root``: ``subscribe`` callbacks, then ``run``; or iterate ``messages()``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        start: datetime | str | int | None = None,
        end: datetime | str | int | None = None,
        *,
        order: str = "recv",
        clock: Clock | None = None,
    ) -> None:
        if order not in ("recv",):
            raise ArchiveError(f"bad order {order!r}: use 'recv'")
        self.root = root
        self.start_ns = to_ns(start, "start")
        self.end_ns = to_ns(end, "end")
        self.order = order
        self.clock = clock or WallClock()
        self._subscriptions: dict[str, tuple[Subscription, list[tuple[int, Callback]]]] = {}
        self._next_id = 0
        find_parts(root, channels=())  # checks the root exists now, not at the first message

    # --- the SDK's interface --------------------------------------------------------------------

    def subscribe(self, subscription: Mapping[str, Any] | Subscription, callback: Callback) -> int:
        sub = subscription if isinstance(subscription, Subscription) else parse_subscription(subscription, allow_unknown=True)
        coins = [sub.coin] if sub.type in COIN_TYPES and sub.coin else None
        if not find_parts(self.root, channels=[sub.type], coins=coins):
            raise ArchiveError(f"the archive has no data for {sub}: it has {self._describe()}")
        self._next_id += 1
        self._subscriptions.setdefault(sub.stream, (sub, []))[1].append((self._next_id, callback))
        return self._next_id

    def unsubscribe(self, subscription: Mapping[str, Any] | Subscription, subscription_id: int) -> bool:
        sub = subscription if isinstance(subscription, Subscription) else parse_subscription(subscription, allow_unknown=True)
        entry = self._subscriptions.get(sub.stream)
        if entry is None:
            return False
        before = len(entry[1])
        entry[1][:] = [(i, cb) for i, cb in entry[1] if i != subscription_id]
        if not entry[1]:
            del self._subscriptions[sub.stream]
        return len(entry[1]) != before

    def _describe(self) -> str:
        found = defaultdict(set)
        for part in find_parts(self.root):
            found[part.channel].add(part.coin)
        if not found:
            return "nothing yet"
        return "; ".join(f"{ch} ({', '.join(sorted(coins))})" for ch, coins in sorted(found.items()))

    # --- reading --------------------------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[int, str, int, int, str, dict[str, Any]]]:
        if self._subscriptions:
            subs = [sub for sub, _ in self._subscriptions.values()]
            channels = {s.type for s in subs}
            coins = None
            if all(s.type in COIN_TYPES and s.coin for s in subs):
                coins = {s.coin for s in subs if s.coin}
            streams = set(self._subscriptions)
        else:
            channels = coins = streams = None
        parts = find_parts(self.root, channels=channels, coins=coins, start_ns=self.start_ns, end_ns=self.end_ns)

        def rows_of(index: int) -> Iterator[tuple[int, str, int, int, str, dict[str, Any]]]:
            for recv_ns, session, seq, _exch, stream, message in part_rows(
                parts[index], streams=streams, start_ns=self.start_ns, end_ns=self.end_ns
            ):
                yield recv_ns, session, seq, index, stream, message

        return heapq.merge(*(rows_of(i) for i in range(len(parts))))

    def messages(self) -> Iterator[dict[str, Any]]:
        """The archived frames in order: those subscribed, or all when nothing is subscribed."""
        for row in self._rows():
            yield row[5]

    def run(self, speed: float | None = None) -> Summary:
        """Deliver every subscribed frame to its callbacks on this thread; ``speed`` 1.0 is real time."""
        if speed is not None and speed <= 0:
            raise ArchiveError(f"bad speed {speed!r}: give a positive factor (1.0 = real time) or None for as fast as possible")
        summary = Summary()
        wall_start = recv_start = None
        for recv_ns, _session, _seq, _index, stream, message in self._rows():
            entry = self._subscriptions.get(stream)
            if entry is None:
                continue
            if speed is not None:
                if recv_start is None:
                    recv_start, wall_start = recv_ns, self.clock.monotonic()
                due = wall_start + (recv_ns - recv_start) / 1e9 / speed
                wait = due - self.clock.monotonic()
                if wait > 0:
                    self.clock.sleep(wait)
            for _id, callback in list(entry[1]):
                callback(message)
            summary.frames[stream] += 1
            if summary.first_recv_ns is None:
                summary.first_recv_ns = recv_ns
            summary.last_recv_ns = recv_ns
        return summary

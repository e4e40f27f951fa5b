"""Where a recorded stream has a hole, and why: read from the recorder's ``_events`` rows. Pure.

A stream is down from a ``disconnect`` (or the ``stall`` that caused one) of the connection it was
subscribed on until it is ``subscribed`` again; between two sessions that both record it, from the
end of the first (its ``session_end``, or its last row when it crashed) until the second subscribes
it. A ``desync`` event (the L4 book) is a gap of its coin's book until the next snapshot says so.
Intentional ends (``unsubscribed``, a delisting, the recorder stopping) are not gaps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from .subscriptions import SubscriptionError, parse_subscription

# what a consumer gets back after a gap: a full state in the next frame, a snapshot frame, or nothing
FULL_STATE = ("l2Book", "bbo", "allMids", "activeAssetCtx", "activeAssetData", "webData2", "webData3", "spotState", "allDexsClearinghouseState", "allDexsAssetCtxs", "l4Book")
SNAPSHOT_FIRST = ("userFills", "userFundings", "userNonFundingLedgerUpdates", "userTwapSliceFills", "userTwapHistory")


@dataclass(frozen=True)
class Gap:
    """A hole in one stream: no frame of it was received in ``(start_ns, end_ns)``."""

    stream: str
    channel: str
    coin: str | None
    start_ns: int
    end_ns: int | None  # None: not resumed before the archive ends
    cause: str  # "disconnect (code 1006)", "stall (silent 61.2 s)", "recorder down", "desync"
    session: str  # the session it began in
    resumes_with: str  # "full state" (the next frame is whole), "snapshot" (isSnapshot first), "nothing" (frames lost)

    def overlaps(self, start_ns: int | None, end_ns: int | None) -> bool:
        return (end_ns is None or self.start_ns <= end_ns) and (start_ns is None or self.end_ns is None or self.end_ns >= start_ns)

    @property
    def seconds(self) -> float | None:
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e9

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": self.seconds}

    def describe(self) -> str:
        end = "not resumed" if self.end_ns is None else f"to {utc_text(self.end_ns)} ({self.seconds:.3f} s)"
        return f"{self.stream}: from {utc_text(self.start_ns)} {end}, {self.cause}; resumes with {self.resumes_with}"


def utc_text(ns: int) -> str:
    """``2026-01-31 12:00:00.250``: a receive time as people read it (UTC, milliseconds)."""
    return datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + f".{ns // 1_000_000 % 1000:03d}"


def resumes_with(channel: str) -> str:
    if channel in FULL_STATE:
        return "full state"
    if channel in SNAPSHOT_FIRST:
        return "snapshot"
    return "nothing"


@dataclass
class _Stream:
    channel: str
    coin: str | None


def find_gaps(events: Iterable[Mapping[str, Any]], session_last_ns: Mapping[str, int] | None = None) -> list[Gap]:
    """Every gap the events show, ordered by start. ``events`` have ``recv_ns``, ``session``,
    ``seq``, ``kind``, ``connection`` and ``detail`` (a dict or its JSON text); ``session_last_ns``
    gives the last receive time of sessions that ended without a ``session_end`` (a crash)."""
    ordered = sorted(events, key=lambda e: (e["recv_ns"], e["session"], e["seq"]))
    session_last_ns = session_last_ns or {}
    known: dict[str, _Stream] = {}
    on_connection: dict[tuple[str, int], set[str]] = {}  # (session, connection) -> streams subscribed there
    stall: dict[tuple[str, int], str] = {}
    down: dict[str, tuple[int, str, str]] = {}  # stream -> (since, cause, session)
    live: dict[str, str] = {}  # stream -> the session recording it now
    ended: dict[str, tuple[int, str]] = {}  # stream -> (when its last session ended, that session)
    found: list[Gap] = []

    def close(stream: str, at: int) -> None:
        since, cause, session = down.pop(stream)
        info = known[stream]
        found.append(Gap(stream, info.channel, info.coin, since, at, cause, session, resumes_with(info.channel)))

    def end_session(session: str, at: int) -> None:
        for stream in [s for s, owner in live.items() if owner == session]:
            del live[stream]
            if stream not in down:
                ended[stream] = (at, session)

    for event in ordered:
        kind, session, at = event["kind"], event["session"], event["recv_ns"]
        connection = event.get("connection") or 0
        detail = event.get("detail")
        if isinstance(detail, (str, bytes)):
            detail = orjson.loads(detail) if detail else None
        detail = detail or {}
        if kind == "session_start":
            for previous in {owner for owner in live.values() if owner != session and owner in session_last_ns}:
                end_session(previous, session_last_ns[previous])  # a crashed session, superseded
        elif kind == "subscribed":
            stream = _stream_of(detail.get("subscription"), known)
            if stream is None:
                continue
            on_connection.setdefault((session, connection), set()).add(stream)
            live[stream] = session
            if stream in down:
                close(stream, at)
            elif stream in ended and ended[stream][1] != session:
                since, previous = ended.pop(stream)
                down[stream] = (since, "recorder down", previous)
                close(stream, at)
            ended.pop(stream, None)
        elif kind == "stall":
            stall[(session, connection)] = f"stall (silent {detail.get('silent_s', '?')} s)"
        elif kind == "disconnect":
            streams = on_connection.pop((session, connection), set())
            cause = stall.pop((session, connection), None)
            if detail.get("stopping"):
                continue  # the recorder stopping: the session's end says the rest
            cause = cause or f"disconnect ({detail.get('by') or 'code ' + str(detail.get('code'))})"
            for stream in streams:
                if stream not in down:
                    down[stream] = (at, cause, session)
        elif kind in ("unsubscribed", "unsubscribed_delisted"):
            stream = _stream_of(detail.get("subscription"), known)
            if stream is not None:
                live.pop(stream, None)
                for streams in on_connection.values():
                    streams.discard(stream)
        elif kind == "desync":
            stream = _stream_of({"type": "l4Book", "coin": detail.get("coin")}, known)
            if stream is not None and stream not in down:
                down[stream] = (at, f"desync at height {detail.get('height')}", session)
        elif kind == "resync":
            stream = _stream_of({"type": "l4Book", "coin": detail.get("coin")}, known)
            if stream is not None and stream in down:
                close(stream, at)
        elif kind == "session_end":
            end_session(session, at)
    for stream, (since, cause, session) in sorted(down.items()):
        info = known[stream]
        found.append(Gap(stream, info.channel, info.coin, since, None, cause, session, resumes_with(info.channel)))
    return sorted(found, key=lambda g: (g.start_ns, g.stream))


def _stream_of(subscription: Any, known: dict[str, _Stream]) -> str | None:
    if not isinstance(subscription, Mapping) or subscription.get("type") is None:
        return None
    try:
        sub = parse_subscription(dict(subscription), allow_unknown=True)
    except SubscriptionError:
        return None
    known.setdefault(sub.stream, _Stream(sub.type, sub.coin))
    return sub.stream

"""The live recorder: connections in, journal first, Parquet parts out, in an archiver process.

The event loop only receives, stamps (``recv_ns``, ``seq``) and journals each frame's bytes as they
came: receiving never waits on Parquet, nor on the interpreter lock Arrow's conversion would hold.
The archiver process (``archiver.py``) tails the journal into parts. The journal is fsynced at least
every ``sync_s`` and rotates every ``flush_seconds``; the archiver commits what it has read at each
rotation and deletes the segments behind it. A crash leaves the journal for ``recover``.

If the archiver falls behind (a burst, a slow disk), the frames wait in the journal on disk: memory
stays bounded whatever the feed does, and receiving still never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from schemas.layout import JOURNAL_DIR, check_session, session_id
from schemas.subscriptions import Subscription

from .archiver import Archiver
from .connection import MAINNET_URL, Connection, ConnectionConfig
from .journal import DATA, EVENT, META, Journal
from .meta import SNAPSHOT_KINDS, fetch_info, info_url, snapshot_requests
from .parts.catalog import catch_up, start_catalog
from .parts.compactor import BackgroundCompactor
from .planning.plan import MAX_CONNECTIONS, MarketPlan, RecorderError, check_limits
from .root import prepare_root


@dataclass
class Status:
    """What the status line shows; counters are cumulative."""

    started: float = field(default_factory=time.monotonic)
    frames: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    max_lag_frames: int = 0  # the most the archiver was ever behind the journal
    last_frames: Counter[str] = field(default_factory=Counter)
    last_time: float = field(default_factory=time.monotonic)
    disconnects: Counter[str] = field(default_factory=Counter)  # by reason: recorder, stall, close code


class Recorder:
    """Record ``subscriptions`` from ``url`` into the archive at ``root`` until stopped."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        subscriptions: list[Subscription],
        *,
        url: str = MAINNET_URL,
        max_per_connection: int = 200,
        flush_seconds: float = 60.0,
        sync_s: float = 0.5,
        meta: bool = True,
        meta_interval_s: float = 3600.0,
        meta_url: str | None = None,
        connection_config: ConnectionConfig = ConnectionConfig(),
        status_s: float | None = 5.0,
        status_out: Callable[[str], None] | None = None,
        lag_warning_frames: int = 200_000,
        session: str | None = None,
        writer_options: dict[str, Any] | None = None,
        market_plan: MarketPlan | None = None,
        market_refresh_s: float = 300.0,
        upload_url: str | None = None,
        keep_local_days: float | None = None,
        metrics_address: tuple[str, int] | None = None,
        health_address: tuple[str, int] | None = None,
        compact_every_s: float = 3600.0,
        compact_after_s: float = 600.0,
    ) -> None:
        self.root = Path(root)
        self.subscriptions = list(subscriptions)
        self.max_per_connection = max_per_connection
        self.plan = check_limits(self.subscriptions, max_per_connection)
        self.market_plan = market_plan  # --coin all: re-resolved every market_refresh_s
        self.market_refresh_s = market_refresh_s
        self.metrics_address = metrics_address  # /metrics and /healthz
        self.health_address = health_address  # /healthz alone
        self.last_frame_ns: dict[Subscription, int] = {}  # per subscription: the metrics' frame age (named when scraped)
        self.url = url
        self.flush_seconds = flush_seconds
        self.sync_s = sync_s
        self.meta = meta
        self.meta_interval_s = meta_interval_s
        self.meta_url = meta_url or info_url(url)
        self.connection_config = connection_config
        self.status_s = status_s
        self.status_out = status_out or (lambda line: print(line, file=sys.stderr, flush=True))
        self.lag_warning_frames = lag_warning_frames
        prepare_root(self.root)
        self.recovered = _recover(self.root)
        start_catalog(self.root)
        catch_up(self.root)  # a crash between a part and its catalog entry
        self.compactor = BackgroundCompactor(self.root, compact_every_s, compact_after_s, on_round=self._compacted) if compact_every_s and upload_url is None else None  # with --upload the store would keep both the small parts and the merged ones: compact it with `hlarchive compact URL`
        self.uploader = None
        if upload_url is not None:  # every committed part goes to the store in the background
            from .parts.upload import Uploader

            self.uploader = Uploader(self.root, upload_url, keep_local_days=keep_local_days, on_event=lambda kind, detail: self._upload_event(kind, detail))
        self.session = check_session(session) if session else session_id(time.time_ns(), secrets.token_hex(3))
        self.journal = Journal(self.root, self.session)
        self.archiver = Archiver(
            self.root, self.journal.directory, self.session, url, {"flush_seconds": flush_seconds, **(writer_options or {})},
            on_commit=(lambda path, rows, seq: self.uploader.submit(path)) if self.uploader is not None else None,  # type: ignore[union-attr]
            on_error=self._archiver_failed,
        )
        self.status = Status()
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lagging = False
        self._writer_error: str | None = None
        self._journal_error: OSError | None = None
        self._stop: asyncio.Event | None = None
        self._sub_ids: dict[Subscription, int] = {}  # by the whole subscription: a stream name omits the user
        for sub in self.subscriptions:
            self._define(sub)
        self.connections: list[Connection] = []
        self._connection_tasks: list[asyncio.Task[None]] = []

    def _compacted(self, round_: dict[str, Any]) -> None:
        """A compaction round behind the recorder finished: an event in the archive (thread-safe)."""
        if round_.get("partitions") and self._loop is not None:
            self._loop.call_soon_threadsafe(self.on_event, "compacted", 0, dict(round_))

    def _define(self, sub: Subscription) -> None:
        self._sub_ids[sub] = len(self._sub_ids) + 1
        self.journal.define(self._sub_ids[sub], orjson.dumps(sub.to_dict()))

    # --- the sink of every connection (runs on the event loop) ----------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _journal(self, kind: int, recv_ns: int, seq: int, payload: bytes, sub_id: int = 0) -> bool:
        """Append to the journal; on a write error (disk full) stop recording instead of losing frames silently."""
        if self._journal_error is not None:
            return False
        try:
            self.journal.append(kind, recv_ns, seq, payload, sub_id)
            return True
        except OSError as exc:
            self._journal_failed(exc)
            return False

    def _journal_failed(self, exc: OSError) -> None:
        if self._journal_error is None:
            self._journal_error = exc
            self.status_out(f"error: cannot write the journal ({_one_line(exc)}): stopping")
            if self._stop is not None:
                self._stop.set()

    def on_data(self, connection: int, channel: str, payload: bytes, recv_ns: int, sub: Subscription | None) -> None:
        """A data frame, as the exact bytes received: journaled, and that is all (the archiver does the rest)."""
        if self._journal_error is not None:
            return
        self._seq += 1
        try:
            self.journal.append(DATA, recv_ns, self._seq, payload, self._sub_ids.get(sub, 0) if sub else 0)
        except OSError as exc:
            self._journal_failed(exc)
            return
        self.status.frames[channel] += 1
        if sub is not None:
            self.last_frame_ns[sub] = recv_ns

    def on_event(self, kind: str, connection: int, detail: dict[str, Any] | None = None, text: str | None = None) -> None:
        recv_ns, seq = time.time_ns(), self._next_seq()
        record = {"kind": kind, "connection": connection, "detail": detail, "text": text}
        if not self._journal(EVENT, recv_ns, seq, orjson.dumps(record)):
            return
        self.status.events[kind] += 1
        if kind == "connect" and (detail or {}).get("attempt", 1) > 1:
            self.status.reconnects += 1
        elif kind == "disconnect":
            detail = detail or {}
            reason = "recorder" if detail.get("stopping") else str(detail.get("by") or f"code {detail.get('code')}")
            self.status.disconnects[reason] += 1
        if kind in ("server_error", "stall", "connect_failed") and self.status_s is not None:
            self.status_out(f"[{kind}] connection {connection}: {orjson.dumps(detail).decode()}")

    @property
    def failed(self) -> str | None:
        """Why recording had to stop, if it did (the health probe says it)."""
        if self._journal_error is not None:
            return f"cannot write the journal: {_one_line(self._journal_error)}"
        if self._writer_error is not None:
            return f"cannot write parts: {self._writer_error}"
        return None

    @property
    def lag_frames(self) -> int:
        """Journal records (frames, events, snapshots) the archiver has not read yet."""
        return max(0, self._seq - self.archiver.progress.last_seq)

    def _archiver_failed(self, why: str) -> None:
        """From the archiver's pipe thread: parts cannot be written, so stop (the journal keeps every frame)."""
        self._writer_error = why
        if self._stop is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    def _check_lag(self) -> None:
        lag = self.lag_frames
        self.status.max_lag_frames = max(self.status.max_lag_frames, lag)
        if lag > self.lag_warning_frames and not self._lagging:
            self._lagging = True
            self.status_out(f"warning: the archiver is {lag} frames behind (disk or CPU too slow?); frames are safe in the journal")
            self.on_event("writer_lagging", 0, {"frames_behind": lag})
        elif self._lagging and lag < self.lag_warning_frames // 2:
            self._lagging = False

    # --- the event loop --------------------------------------------------------------------------

    async def run(self, duration_s: float | None = None) -> Status:
        """Record until ``stop()``, a signal handled by the caller, or ``duration_s``; then flush all."""
        self._loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        stop_endpoints = self._start_endpoints()  # a port in use fails here, before anything is started
        # The receive path allocates a few objects a frame and keeps none: the cyclic collector
        # would only cost CPU every few hundred allocations.
        gc_threshold = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(200_000, 50, 100)
        self.journal.flush()  # the subscriptions, before the archiver opens the first segment
        self.archiver.start()
        if self.uploader is not None:
            self.uploader.start()
        if self.compactor is not None:
            self.compactor.start()
        self.on_event("session_start", 0, {"url": self.url, "subscriptions": [s.to_dict() for s in self.subscriptions], "connections": len(self.plan), "recovered": self.recovered})
        self.connections = [
            Connection(i + 1, self.url, group, self, self.connection_config) for i, group in enumerate(self.plan)
        ]
        self._connection_tasks = [asyncio.create_task(c.run(stop)) for c in self.connections]
        helpers = [asyncio.create_task(self._sync_loop(stop)), asyncio.create_task(self._rotate_loop(stop))]
        if self.market_plan is not None:
            helpers.append(asyncio.create_task(self._market_loop(stop)))
        if self.meta:
            helpers.append(asyncio.create_task(self._meta_loop(stop)))
        if self.status_s:
            helpers.append(asyncio.create_task(self._status_loop(stop)))
        try:
            if duration_s is not None:
                try:
                    await asyncio.wait_for(stop.wait(), duration_s)
                except asyncio.TimeoutError:
                    pass
            else:
                await stop.wait()
        finally:
            stop.set()
            await asyncio.gather(*self._connection_tasks, return_exceptions=True)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self.on_event("session_end", 0, {"frames": sum(self.status.frames.values())})
            try:
                self.journal.sync()
            except OSError as exc:
                self._journal_failed(exc)
            if self.compactor is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.compactor.stop)
            if not await asyncio.get_running_loop().run_in_executor(None, self.archiver.stop) and self._writer_error is None:
                self._writer_error = self.archiver.error
            if self.uploader is not None:  # the last parts: a bounded wait, the rest goes next start
                await asyncio.get_running_loop().run_in_executor(None, self.uploader.stop)
            gc.set_threshold(*gc_threshold)
            gc.unfreeze()
            for stop_endpoint in stop_endpoints:
                stop_endpoint()
        if self._journal_error is not None:
            with contextlib.suppress(OSError):
                self.journal.close()
            raise RecorderError(
                f"could not write the journal ({_one_line(self._journal_error)}): recording stopped; the parts "
                f"committed so far are intact. Free space, run `hlarchive recover {self.root}`, then record again"
            )
        if self._writer_error is not None:
            self.journal.close()
            raise RecorderError(
                f"could not write parts ({self._writer_error}); every frame is kept in {self.journal.directory}: "
                "free space or fix the problem, then run `hlarchive recover ROOT`"
            )
        self.journal.close(remove=True)
        return self.status

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # --- following the market list ------------------------------------------------------------------

    def add_subscriptions(self, subs: list[Subscription]) -> None:
        """Subscribe more while recording: onto a connection with room, else a new one (within the limits)."""
        assert self._stop is not None, "add_subscriptions runs while recording"
        for sub in subs:
            if any(s == sub for s in self.subscriptions):
                continue
            if sub not in self._sub_ids:
                self._define(sub)
            self.subscriptions.append(sub)
            for connection in self.connections:
                if connection.has_room_for(sub, self.max_per_connection):
                    connection.add(sub)
                    break
            else:
                if len(self.connections) >= MAX_CONNECTIONS:
                    self.on_event("subscription_left_out", 0, {"subscription": sub.to_dict(), "why": f"{MAX_CONNECTIONS} connections in use"})
                    continue
                connection = Connection(len(self.connections) + 1, self.url, [sub], self, self.connection_config)
                self.connections.append(connection)
                self._connection_tasks.append(asyncio.create_task(connection.run(self._stop)))

    def remove_subscriptions(self, subs: list[Subscription]) -> None:
        streams = {s.stream for s in subs}
        self.subscriptions = [s for s in self.subscriptions if s.stream not in streams]
        for connection in self.connections:
            connection.remove(streams)

    async def _market_loop(self, stop: asyncio.Event) -> None:
        """Every ``market_refresh_s``: subscribe markets listed since, drop the delisted, each an event."""
        assert self.market_plan is not None
        loop = asyncio.get_running_loop()
        left_out: list[str] = []
        while True:
            try:
                await asyncio.wait_for(stop.wait(), self.market_refresh_s)
                return
            except asyncio.TimeoutError:
                pass
            try:
                wanted = await loop.run_in_executor(None, self.market_plan.resolve)
            except Exception as exc:  # noqa: BLE001 - a failed refresh is an event; the current set goes on
                self.on_event("market_refresh_failed", 0, {"error": _one_line(exc)})
                continue
            current = {s.stream: s for s in self.subscriptions}
            wanted_streams = {s.stream for s in wanted}
            added = [s for s in wanted if s.stream not in current]
            removed = [s for s in current.values() if s.stream not in wanted_streams]
            for coin, group in _by_coin(added).items():
                self.on_event("subscribed_new_market", 0, {"coin": coin, "subscriptions": [s.to_dict() for s in group]})
            for coin, group in _by_coin(removed).items():
                self.on_event("unsubscribed_delisted", 0, {"coin": coin, "subscriptions": [s.to_dict() for s in group]})
            if added:
                self.add_subscriptions(added)
            if removed:
                self.remove_subscriptions(removed)
            if self.market_plan.left_out != left_out:
                left_out = list(self.market_plan.left_out)
                if left_out:
                    self.on_event("markets_left_out", 0, {"coins": left_out, "why": "past Hyperliquid's per-IP limits; the most traded are recorded"})

    async def _sync_loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await asyncio.sleep(self.sync_s)
            self._check_lag()
            try:
                fd = self.journal.flush()
                await loop.run_in_executor(None, os.fsync, fd)
            except OSError as exc:
                self._journal_failed(exc)
                return
            self.journal.unsynced_bytes = 0

    async def _rotate_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.flush_seconds)
            try:
                self.journal.rotate()  # the archiver commits what it read, then deletes the older segments
            except OSError as exc:
                self._journal_failed(exc)
                return

    async def _meta_loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            requests: list[tuple[str, dict[str, Any]]] = [(kind, {"type": kind}) for kind in SNAPSHOT_KINDS]
            while requests:
                info_type, request = requests.pop(0)
                try:
                    payload = await loop.run_in_executor(None, fetch_info, self.meta_url, request)
                except Exception as exc:  # noqa: BLE001 - a failed snapshot is an event, never a crash
                    self.on_event("meta_failed", 0, {"type": info_type, "url": self.meta_url, "error": _one_line(exc)})
                    continue
                if info_type == "perpDexs":
                    requests.extend(snapshot_requests(payload))
                self._journal(META, time.time_ns(), self._next_seq(), orjson.dumps({"kind": info_type, "payload": payload}))
            try:
                await asyncio.wait_for(stop.wait(), self.meta_interval_s)
            except asyncio.TimeoutError:
                pass

    async def _status_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.status_s or 5.0)
            self.status_out(self.status_line())

    def _start_endpoints(self) -> list[Callable[[], None]]:
        from .metrics import serve

        stale_s = min(self.connection_config.stall_s, 30.0)
        stops = []
        if self.metrics_address is not None:
            stops.append(serve(self, self.metrics_address, metrics=True, stale_s=stale_s))
        if self.health_address is not None:
            stops.append(serve(self, self.health_address, metrics=False, stale_s=stale_s))
        return stops

    def _upload_event(self, kind: str, detail: dict[str, Any]) -> None:
        """Upload news from the uploader thread: retries are events (a store outage shows in SQL)."""
        if kind == "upload_retry" and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.on_event, kind, 0, detail)

    def status_line(self) -> str:
        now = time.monotonic()
        s = self.status
        elapsed = max(now - s.last_time, 1e-9)
        rates = {k: (v - s.last_frames.get(k, 0)) / elapsed for k, v in s.frames.items()}
        s.last_frames, s.last_time = Counter(s.frames), now
        total = sum(rates.values())
        by_channel = " ".join(f"{k}={v:.0f}" for k, v in sorted(rates.items()))
        return (
            f"{total:,.0f} frames/s [{by_channel}] | {sum(s.frames.values()):,} frames, {self.archiver.stats.parts} parts, "
            f"{s.reconnects} reconnects | journal lag {self.lag_frames} frames, {self.journal.unsynced_bytes:,} B unsynced"
            + (f" | upload backlog {self.uploader.backlog} parts" if self.uploader is not None else "")
        )


def _recover(root: Path) -> list[dict[str, Any]]:
    """Journals a crashed session left, turned into parts (Arrow is loaded only when there are any)."""
    if not any((root / JOURNAL_DIR).glob("*/seg-*.wal")):
        return []
    from .recovery import recover

    return recover(root)


def _by_coin(subs: list[Subscription]) -> dict[str, list[Subscription]]:
    out: dict[str, list[Subscription]] = {}
    for sub in subs:
        out.setdefault(sub.coin or "_all", []).append(sub)
    return out


def _one_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]

"""The live recorder: connections in, journal first, Parquet parts out, on a writer thread.

The event loop only receives, stamps (``recv_ns``, ``seq``) and journals each frame, then hands it
to the writer thread: receiving never waits on Parquet. The journal is fsynced at least every
``sync_s``; every ``flush_seconds`` the journal rotates and, once the writer has committed every
buffered row, the older segments are deleted. A crash leaves the journal for ``recover``.

If the writer falls ``spill_after`` frames behind (a burst, a slow disk), the event loop stops
queueing frames in memory: they are in the journal already, so the writer later reads that stretch
back from it. Memory stays bounded whatever the feed does, and receiving still never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import queue
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from schemas.subscriptions import Subscription

from .connection import MAINNET_URL, Connection, ConnectionConfig
from .journal import DATA, EVENT, META, SUBSCRIPTION, Journal, read_segment, segments
from .meta import SNAPSHOT_KINDS, fetch_info, info_url, snapshot_requests
from .planning.plan import MAX_CONNECTIONS, MarketPlan, RecorderError, check_limits
from .recovery import recover, write_record
from .writer import ArchiveWriter


@dataclass
class Status:
    """What the status line shows; counters are cumulative."""

    started: float = field(default_factory=time.monotonic)
    frames: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    spills: int = 0  # times the writer fell behind and read frames back from the journal
    spilled_frames: int = 0
    rotations_in_spill: int = 0  # journal rotations whose trimming waited for a spill to be read back
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
        compact_queue_after: int = 1_000,
        spill_after: int = 20_000,
        session: str | None = None,
        writer_options: dict[str, Any] | None = None,
        market_plan: MarketPlan | None = None,
        market_refresh_s: float = 300.0,
        upload_url: str | None = None,
        keep_local_days: float | None = None,
        metrics_address: tuple[str, int] | None = None,
        health_address: tuple[str, int] | None = None,
    ) -> None:
        self.root = Path(root)
        self.subscriptions = list(subscriptions)
        self.max_per_connection = max_per_connection
        self.plan = check_limits(self.subscriptions, max_per_connection)
        self.market_plan = market_plan  # --coin all: re-resolved every market_refresh_s
        self.market_refresh_s = market_refresh_s
        self.metrics_address = metrics_address  # /metrics and /healthz
        self.health_address = health_address  # /healthz alone
        self.last_frame_ns: dict[str, int] = {}  # per subscription stream: the metrics' frame age
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
        self.compact_queue_after = compact_queue_after
        self.spill_after = spill_after
        self.recovered = recover(self.root)
        self.uploader = None
        if upload_url is not None:  # every committed part goes to the store in the background
            from .upload import Uploader

            self.uploader = Uploader(self.root, upload_url, keep_local_days=keep_local_days, on_event=lambda kind, detail: self._upload_event(kind, detail))
            writer_options = {**(writer_options or {}), "on_commit": lambda path, rows, seq: self.uploader.submit(path)}  # type: ignore[union-attr]
        self.writer = ArchiveWriter(self.root, session=session, source_url=url, flush_seconds=flush_seconds, **(writer_options or {}))
        self.session = self.writer.session
        self.journal = Journal(self.root, self.session)
        self.status = Status()
        self._seq = 0
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._put_count = 0  # frames handed over; written by the event loop only
        self._got_count = 0  # frames taken; written by the writer thread only
        self._spill_start: tuple[int, int] | None = None  # journal position where the current spill began
        self._spilled = 0  # frames of the current spill
        self._spill_last_seq = 0
        self._trim_after_spill: int | None = None  # a rotation during a spill: trim once the stretch is read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lagging = False
        self._writer_error: BaseException | None = None
        self._journal_error: OSError | None = None
        self._stop: asyncio.Event | None = None
        self._sub_ids: dict[str, int] = {}
        for sub in self.subscriptions:
            self._define(sub)
        self.connections: list[Connection] = []
        self._connection_tasks: list[asyncio.Task[None]] = []

    def _define(self, sub: Subscription) -> None:
        self._sub_ids[sub.stream] = len(self._sub_ids) + 1
        self.journal.define(self._sub_ids[sub.stream], orjson.dumps(sub.to_dict()))

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

    def on_data(self, connection: int, message: dict[str, Any], text: str, recv_ns: int, sub: Subscription | None) -> None:
        seq = self._next_seq()
        payload = text.encode()
        if not self._journal(DATA, recv_ns, seq, payload, self._sub_ids.get(sub.stream, 0) if sub else 0):
            return
        self.status.frames[message["channel"]] += 1
        if sub is not None:
            self.last_frame_ns[sub.stream] = recv_ns
        if self._spilling(seq):
            return
        if self._put_count - self._got_count > self.compact_queue_after:
            # the writer is behind: queue the frame's bytes, a fifth of its parsed size, to keep memory down
            self._put(("text", payload, recv_ns, seq, sub))
        else:
            self._put(("data", message, recv_ns, seq, sub))

    def on_event(self, kind: str, connection: int, detail: dict[str, Any] | None = None, text: str | None = None) -> None:
        recv_ns, seq = time.time_ns(), self._next_seq()
        record = {"kind": kind, "connection": connection, "detail": detail, "text": text}
        if not self._journal(EVENT, recv_ns, seq, orjson.dumps(record)):
            return
        if not self._spilling(seq):
            self._put(("event", record, recv_ns, seq))
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
    def writer_backlog(self) -> int:
        """Frames handed to the writer thread and not yet taken."""
        return self._put_count - self._got_count

    @property
    def failed(self) -> str | None:
        """Why recording had to stop, if it did (the health probe says it)."""
        if self._journal_error is not None:
            return f"cannot write the journal: {_one_line(self._journal_error)}"
        if self._writer_error is not None:
            return f"cannot write parts: {_one_line(self._writer_error)}"
        return None

    @property
    def lag_frames(self) -> int:
        """Frames journaled but not yet taken by the archive writer."""
        return self._put_count - self._got_count + self._spilled

    def _spilling(self, seq: int) -> bool:
        """Whether the record just journaled as ``seq`` stays in the journal only, for the writer to read back."""
        behind = self._put_count - self._got_count
        if self._spill_start is None:
            if behind <= self.spill_after:
                return False
            self._spill_start = self.journal.position()  # from the next record on
            self.status.spills += 1
            return False
        self._spilled += 1
        self._spill_last_seq = seq
        if behind <= self.spill_after // 4:
            self._end_spill()
        return True

    def _end_spill(self) -> None:
        """Queue the spilled stretch as one item: the writer reads it back from the journal files."""
        if self._spill_start is None:
            return
        if self._spilled:
            self.journal.flush()  # the records must be in the file before the writer thread reads them
            self._put(("journal", *self._spill_start, self._spill_last_seq), frames=self._spilled)
            self.status.spilled_frames += self._spilled
        self._spill_start, self._spilled = None, 0
        if self._trim_after_spill is not None:
            self._put(("rotate", self._trim_after_spill))
            self._trim_after_spill = None

    def _put(self, item: tuple[Any, ...], frames: int = 1) -> None:
        self._put_count += frames
        self._queue.put(item)
        lag = self.lag_frames
        if lag > self.lag_warning_frames and not self._lagging:
            self._lagging = True
            self.status_out(f"warning: the writer is {lag} frames behind (disk too slow?); frames are safe in the journal")
            self.on_event("writer_lagging", 0, {"frames_behind": lag})
        elif self._lagging and lag < self.lag_warning_frames // 2:
            self._lagging = False

    # --- the writer thread -----------------------------------------------------------------------

    def _write_loop(self) -> None:
        writer, q = self.writer, self._queue
        try:
            while True:
                try:
                    item = q.get(timeout=0.2)
                except queue.Empty:
                    writer.flush_due()
                    continue
                self._got_count += 1
                kind = item[0]
                if kind == "data":
                    _, message, recv_ns, seq, sub = item
                    writer.write(message, recv_ns, sub, seq=seq)
                elif kind == "text":
                    _, payload, recv_ns, seq, sub = item
                    writer.write(orjson.loads(payload), recv_ns, sub, seq=seq)
                elif kind == "event":
                    _, record, recv_ns, seq = item
                    writer.write_event(record["kind"], recv_ns=recv_ns, seq=seq, connection=record["connection"], detail=record["detail"], text=record["text"])
                elif kind == "meta":
                    _, info_type, payload, recv_ns, seq = item
                    writer.write_meta(info_type, payload, recv_ns=recv_ns, seq=seq)
                elif kind == "journal":
                    self._got_count -= 1  # counted record by record below
                    self._write_spilled(*item[1:])
                elif kind == "rotate":
                    writer.flush()
                    self.journal.trim(before=item[1])
                elif kind == "stop":
                    writer.close()
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by run(); the journal keeps the frames
            self._writer_error = exc
            if self._stop is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)

    def _write_spilled(self, first_segment: int, offset: int, last_seq: int) -> None:
        """Write the journal's records from ``(first_segment, offset)`` through ``last_seq`` (a spill
        may span a rotation, so it reads on into the following segments)."""
        subscriptions = {i: sub for sub in self.subscriptions if (i := self._sub_ids[sub.stream])}
        for number, path in segments(self.journal.directory):
            if number < first_segment:
                continue
            for record in read_segment(path, offset if number == first_segment else 0):
                if record.kind == SUBSCRIPTION:
                    continue
                if record.seq > last_seq:
                    return
                write_record(self.writer, record, subscriptions)
                self._got_count += 1

    # --- the event loop --------------------------------------------------------------------------

    async def run(self, duration_s: float | None = None) -> Status:
        """Record until ``stop()``, a signal handled by the caller, or ``duration_s``; then flush all."""
        self._loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        # Frames are acyclic (JSON), so reference counting frees them; the cyclic collector would
        # only rescan the growing buffers on every few hundred allocations, costing most of the CPU.
        gc_threshold = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(200_000, 50, 100)
        writer_thread = threading.Thread(target=self._write_loop, name="hlarchive-writer", daemon=True)
        writer_thread.start()
        if self.uploader is not None:
            self.uploader.start()
        stop_endpoints = self._start_endpoints()
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
                self._end_spill()
            except OSError as exc:
                self._journal_failed(exc)
            self._queue.put(("stop",))
            await asyncio.get_running_loop().run_in_executor(None, writer_thread.join)
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
                f"could not write parts ({_one_line(self._writer_error)}); every frame is kept in {self.journal.directory}: "
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
            if sub.stream in self._sub_ids and any(s.stream == sub.stream for s in self.subscriptions):
                continue
            if sub.stream not in self._sub_ids:
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
            if self._spill_start is not None and self._put_count - self._got_count <= self.spill_after // 4:
                self._end_spill()  # the feed went quiet while spilling: no frame will end the spill
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
            segment = self.journal.rotate()
            if self._spill_start is not None:
                self._trim_after_spill = segment  # trimming now would delete the stretch still to be read back
                self.status.rotations_in_spill += 1
            else:
                self._put(("rotate", segment))

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
                recv_ns, seq = time.time_ns(), self._next_seq()
                if self._journal(META, recv_ns, seq, orjson.dumps({"kind": info_type, "payload": payload})) and not self._spilling(seq):
                    self._put(("meta", info_type, payload, recv_ns, seq))
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
            f"{total:,.0f} frames/s [{by_channel}] | {sum(s.frames.values()):,} frames, {self.writer.stats.parts} parts, "
            f"{s.reconnects} reconnects | journal lag {self.lag_frames} frames ({s.spills} spills), {self.journal.unsynced_bytes:,} B unsynced"
            + (f" | upload backlog {self.uploader.backlog} parts" if self.uploader is not None else "")
        )


def _by_coin(subs: list[Subscription]) -> dict[str, list[Subscription]]:
    out: dict[str, list[Subscription]] = {}
    for sub in subs:
        out.setdefault(sub.coin or "_all", []).append(sub)
    return out


def _one_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]

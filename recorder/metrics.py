"""``record --metrics HOST:PORT`` and ``--health HOST:PORT``: Prometheus text metrics and a health probe.

Nothing is counted twice on the receive path: a scrape reads the recorder's own counters (its
status, the writer's stats, the journal, the uploader) through a custom collector, so metrics cost
nothing per frame beyond the last-receipt time kept per subscription. ``/healthz`` answers 200 while
every connection is up and received a frame recently, else 503 with the reason, for systemd and
Kubernetes probes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterable, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.layout import ArchiveError

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")



class RecorderCounters(Protocol):
    """What a scrape reads of a running recorder. The live loop hands itself in (``Recorder`` has
    all of these), so this module never imports the live loop."""

    status: Any  # frames by channel, events by kind, reconnects, disconnects by reason
    archiver: Any  # its stats, progress and pid
    journal: Any  # unsynced_bytes, size_bytes()
    uploader: Any  # None, or backlog, uploaded, failures
    connections: Sequence[Any]  # each with number, connected, last_frame
    subscriptions: Sequence[Any]
    last_frame_ns: Mapping[Any, int]  # subscription -> receive time of its last frame
    failed: str | None

    @property
    def lag_frames(self) -> int: ...


def parse_address(text: str, option: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise ArchiveError(f"{option} {text!r}: give HOST:PORT, e.g. 127.0.0.1:9108")
    return host or "127.0.0.1", int(port)


class RecorderCollector(Collector):
    """The recorder's counters, read at scrape time."""

    def __init__(self, recorder: RecorderCounters) -> None:
        self.recorder = recorder

    def collect(self) -> Iterable[Metric]:
        r = self.recorder
        status = r.status
        frames = CounterMetricFamily("hlarchive_frames_received", "Data frames received (journaled), by wire channel", labels=["channel"])
        for channel, n in sorted(status.frames.items()):
            frames.add_metric([channel], n)
        yield frames
        stats = r.archiver.stats
        yield CounterMetricFamily("hlarchive_parts_committed", "Parquet parts committed", value=stats.parts)
        yield CounterMetricFamily("hlarchive_rows_committed", "Rows in committed parts", value=stats.rows_committed)
        yield CounterMetricFamily("hlarchive_bytes_committed", "Bytes of committed parts", value=stats.bytes_committed)
        yield CounterMetricFamily("hlarchive_reconnects", "Connections opened again after the first", value=status.reconnects)
        disconnects = CounterMetricFamily("hlarchive_disconnects", "Connections lost, by reason", labels=["reason"])
        for reason, n in sorted(status.disconnects.items()):
            disconnects.add_metric([reason], n)
        yield disconnects
        yield CounterMetricFamily("hlarchive_malformed_frames", "Frames that were not JSON or not a frame (kept as events)", value=status.events.get("malformed", 0) + r.archiver.progress.malformed)
        yield CounterMetricFamily("hlarchive_server_error_frames", "Error frames the server sent", value=status.events.get("server_error", 0))
        yield CounterMetricFamily("hlarchive_stalls", "Connections closed for silence", value=status.events.get("stall", 0))
        archived = CounterMetricFamily(
            "hlarchive_frames_archived", "Data frames the archiver wrote, by path: columns (a block through Arrow, proven exact) or row", labels=["path"]
        )
        archived.add_metric(["columns"], r.archiver.progress.as_columns)
        archived.add_metric(["row"], r.archiver.progress.by_row)
        yield archived
        yield GaugeMetricFamily("hlarchive_journal_lag_frames", "Journal records the archiver process has not read yet", value=r.lag_frames)
        yield GaugeMetricFamily("hlarchive_journal_unsynced_bytes", "Journal bytes written but not yet fsynced", value=r.journal.unsynced_bytes)
        yield GaugeMetricFamily("hlarchive_journal_bytes", "Journal bytes on disk: frames not yet in a committed part", value=r.journal.size_bytes())
        yield GaugeMetricFamily("hlarchive_writer_backlog_frames", "Frames the archiver has read but not yet committed in a part", value=r.archiver.progress.buffered_rows)
        archiver = _process_figures(r.archiver.pid)
        if archiver is not None:  # the process collector reports the receiving process only
            yield GaugeMetricFamily("hlarchive_archiver_resident_memory_bytes", "Resident memory of the archiver process", value=archiver[0])
            yield CounterMetricFamily("hlarchive_archiver_cpu_seconds", "CPU time of the archiver process (user + system)", value=archiver[1])
        ages = GaugeMetricFamily("hlarchive_last_frame_age_seconds", "Seconds since the last frame of each subscription (absent: none yet)", labels=["subscription"])
        now = time.time_ns()
        newest: dict[str, int] = {}
        for sub, recv_ns in list(r.last_frame_ns.items()):
            newest[sub.stream] = max(newest.get(sub.stream, 0), recv_ns)
        for stream, recv_ns in sorted(newest.items()):
            ages.add_metric([stream], max(0.0, (now - recv_ns) / 1e9))
        yield ages
        yield GaugeMetricFamily("hlarchive_subscriptions", "Subscriptions being recorded", value=len(r.subscriptions))
        yield GaugeMetricFamily("hlarchive_connections_up", "Connections open now", value=sum(1 for c in r.connections if c.connected))
        if r.uploader is not None:
            yield GaugeMetricFamily("hlarchive_upload_backlog_parts", "Committed parts not yet uploaded and verified", value=r.uploader.backlog)
            yield CounterMetricFamily("hlarchive_uploads", "Parts uploaded and verified", value=r.uploader.uploaded)
            yield CounterMetricFamily("hlarchive_upload_failures", "Upload attempts that failed (retried)", value=r.uploader.failures)


def _process_figures(pid: int | None) -> tuple[float, float] | None:
    """Resident bytes and CPU seconds of a child process, from /proc (None when it is gone)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[21]) * PAGE_BYTES, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def health(recorder: RecorderCounters, stale_s: float) -> tuple[bool, str]:
    """Whether every connection is receiving: up, and a frame within ``stale_s``; else why not."""
    problems = []
    now = time.monotonic()
    if not recorder.connections:
        problems.append("not connected yet")
    for connection in recorder.connections:
        if not connection.connected:
            problems.append(f"connection {connection.number} is down")
        elif now - connection.last_frame > stale_s:
            problems.append(f"connection {connection.number} received nothing for {now - connection.last_frame:.0f} s")
    if recorder.failed is not None:
        problems.append(recorder.failed)
    return (not problems), ("ok" if not problems else "; ".join(problems))


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _ThreadedWSGIServer(WSGIServer):
    daemon_threads = True


def serve(recorder: RecorderCounters, address: tuple[str, int], *, metrics: bool, stale_s: float) -> Callable[[], None]:
    """Serve ``/metrics`` (if ``metrics``) and ``/healthz`` at ``address`` on a thread; returns a stop function."""
    registry = CollectorRegistry()
    registry.register(RecorderCollector(recorder))
    registry.register(ProcessCollector(registry=None))  # process_resident_memory_bytes, process_cpu_seconds_total
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/health"):
            ok, reason = health(recorder, stale_s)
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
            return [reason.encode() + b"\n"]
        if metrics and path in ("/metrics", "/"):
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"try /healthz" + (b" or /metrics" if metrics else b"") + b"\n"]

    try:
        server = make_server(address[0], address[1], app, server_class=_ThreadedWSGIServer, handler_class=_Quiet)
    except OSError as exc:
        raise ArchiveError(f"cannot listen on {address[0]}:{address[1]} for metrics/health: {exc.strerror}; pick another port") from None
    thread = threading.Thread(target=server.serve_forever, name="hlarchive-metrics", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    stop.port = server.server_port  # type: ignore[attr-defined]
    return stop

"""``record --node-data ... --metrics HOST:PORT``: the follower's figures as Prometheus text."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.layout import ArchiveError

from ..metrics import _Quiet, _ThreadedWSGIServer
from .follow import FollowStatus


class NodeCollector(Collector):
    """Reads the follower's status at each scrape: nothing is counted twice."""

    def __init__(self, status: FollowStatus) -> None:
        self.status = status

    def collect(self) -> Iterable[Metric]:
        s = self.status
        yield CounterMetricFamily("hlarchive_node_blocks", "Blocks joined and written", value=s.blocks)
        yield CounterMetricFamily("hlarchive_node_events", "Order statuses, book diffs and fills written", value=s.events)
        yield CounterMetricFamily("hlarchive_node_bad_lines", "Lines that were not blocks (kept as events)", value=s.bad_lines)
        yield CounterMetricFamily("hlarchive_node_stream_lag_events", "Times a stream lagged past the wait", value=s.lag_events)
        yield CounterMetricFamily("hlarchive_node_snapshots", "Node L4 snapshots stored", value=s.snapshots)
        yield GaugeMetricFamily("hlarchive_node_height", "Newest block written", value=s.height or 0)
        yield GaugeMetricFamily("hlarchive_node_lag_blocks", "Blocks the node has shown that are not written yet", value=s.lag_blocks)
        seconds = max(1e-9, time.monotonic() - s.started)
        yield GaugeMetricFamily("hlarchive_node_blocks_per_second", "Blocks a second since start", value=s.blocks / seconds)
        yield GaugeMetricFamily("hlarchive_node_events_per_second", "Events a second since start", value=s.events / seconds)


def serve_node_metrics(status: FollowStatus, address: tuple[str, int]) -> Any:
    """Serve ``/metrics`` on a thread; the returned server's ``shutdown()`` stops it."""
    registry = CollectorRegistry()
    registry.register(NodeCollector(status))
    registry.register(ProcessCollector(registry=None))
    app: Callable[..., Any] = make_wsgi_app(registry)
    try:
        server = make_server(address[0], address[1], app, server_class=_ThreadedWSGIServer, handler_class=_Quiet)
    except OSError as exc:
        raise ArchiveError(f"cannot listen on {address[0]}:{address[1]} for metrics: {exc.strerror}; pick another port") from None
    threading.Thread(target=server.serve_forever, name="hlarchive-node-metrics", daemon=True).start()
    return server

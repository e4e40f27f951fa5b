"""``record --metrics`` and ``--health``: Prometheus metrics and the health probe, while recording from the simulator."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from recorder.connection import ConnectionConfig
from recorder.live import Recorder
from replay.cli import main
from replay.serving.server import Faults, HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource
from schemas import parse_subscription

from .benchmarks.common import free_port
from .recording import archived

SUBS = [{"type": "bbo", "coin": "BTC"}, {"type": "trades", "coin": "ETH"}]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode().strip()
    except urllib.error.URLError:
        return 0, "not listening (yet, or any more)"


def frames(samples: dict) -> float:
    return sum(v for (name, _), v in samples.items() if name == "hlarchive_frames_received_total")


def test_metrics_grow_count_reconnects_and_never_exceed_the_archive(tmp_path):
    port = free_port()
    seen: list[dict] = []
    market = SyntheticSource(seed=2, tick_ms=20)
    with ServerThread(lambda: HyperliquidServer(market, rate=50, faults=Faults(drop_after_frames=60, connections=frozenset({1, 2})))) as server:
        recorder = Recorder(
            tmp_path, [parse_subscription(s) for s in SUBS], url=server.ws_url, meta=False, status_s=None, flush_seconds=0.5,
            connection_config=ConnectionConfig(ping_interval_s=0.5, stall_s=30, backoff_base_s=0.05, backoff_cap_s=0.2),
            metrics_address=("127.0.0.1", port),
        )

        def poll() -> None:
            time.sleep(0.8)
            for _ in range(8):
                seen.append(scrape(port))
                time.sleep(0.4)

        poller = threading.Thread(target=poll)
        poller.start()
        asyncio.run(recorder.run(duration_s=4.5))
        poller.join()
    totals = [frames(s) for s in seen]
    assert totals == sorted(totals) and totals[-1] > totals[0] > 0  # counters only grow
    last = seen[-1]
    assert last[("hlarchive_reconnects_total", ())] >= 2  # two injected drops
    assert sum(v for (n, labels), v in last.items() if n == "hlarchive_disconnects_total") >= 2
    assert ("process_resident_memory_bytes", ()) in last and ("process_cpu_seconds_total", ()) in last
    assert any(n == "hlarchive_last_frame_age_seconds" for n, _ in last)
    archived_frames = sum(len(v) for v in archived(tmp_path).values())
    assert totals[-1] <= archived_frames  # every counted frame ended in the archive
    final = recorder.archiver.progress  # what the last scrape would say, once the archiver is done
    assert final.as_columns + final.by_row == archived_frames and final.as_columns > 0  # bbo and trades in blocks
    assert ("hlarchive_frames_archived_total", (("path", "columns"),)) in last


def test_health_flips_to_503_during_a_stall_and_back(tmp_path):
    port = free_port()
    states: list[tuple[float, int, str]] = []
    market = SyntheticSource(seed=2, tick_ms=20)
    with ServerThread(lambda: HyperliquidServer(market, rate=50, faults=Faults(stall_after_frames=40, connections=frozenset({1})))) as server:
        recorder = Recorder(
            tmp_path, [parse_subscription(SUBS[0])], url=server.ws_url, meta=False, status_s=None,
            # a second between reconnect attempts: the stalled-then-down window is long enough to see
            connection_config=ConnectionConfig(ping_interval_s=0.3, stall_s=1.5, backoff_base_s=1.0, backoff_cap_s=1.0),
            health_address=("127.0.0.1", port),
        )
        began = time.monotonic()

        def poll() -> None:
            while time.monotonic() - began < 6.5:
                states.append((time.monotonic() - began, *healthz(port)))
                time.sleep(0.1)

        poller = threading.Thread(target=poll)
        poller.start()
        asyncio.run(recorder.run(duration_s=7.0))
        poller.join()
    codes = [code for _, code, _ in states]
    assert 200 in codes and 503 in codes
    first_503 = codes.index(503)
    assert 200 in codes[first_503:]  # healthy again after the reconnect
    assert any("received nothing for" in reason or "is down" in reason for _, code, reason in states if code == 503)


def test_metrics_option_is_checked_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["record", "--coin", "BTC", "--metrics", "nonsense", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "give HOST:PORT" in result.output


def test_unknown_paths_point_to_the_endpoints(tmp_path):
    port = free_port()
    market = SyntheticSource(seed=2)
    with ServerThread(lambda: HyperliquidServer(market, rate=20)) as server:
        recorder = Recorder(Path(tmp_path), [parse_subscription(SUBS[0])], url=server.ws_url, meta=False, status_s=None, metrics_address=("127.0.0.1", port))
        result: list[int] = []

        def poll() -> None:
            time.sleep(0.7)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=5)
            except urllib.error.HTTPError as error:
                result.append(error.code)

        poller = threading.Thread(target=poll)
        poller.start()
        asyncio.run(recorder.run(duration_s=1.5))
        poller.join()
    assert result == [404]

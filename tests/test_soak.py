"""Soak: a recorder under a schedule of faults, a SIGKILL and a restart; nothing sent is lost.

CI runs the short version (about a minute); ``pytest --long tests/test_soak.py`` runs about ten.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from replay.cli import main
from replay.serving.server import Faults, HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource
from schemas.protocol import DataFrame, parse_server_frame

from .recording import archived, events

# connection n gets SCHEDULE[n % len]: every kind of bad day, over and over
SCHEDULE = [
    Faults(drop_after_frames=400, refuse_after_drop_s=1.5),
    Faults(malformed_every=40, error_every=90, drop_after_s=6.0),
    Faults(stall_after_frames=250),
    Faults(),
    Faults(drop_after_s=4.0),
]


def _record(root: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "replay.cli", "record", "--out", str(root), "--url", url,
         "--coin", "BTC", "--coin", "ETH", "--channel", "l2Book", "--channel", "trades", "--channel", "bbo",
         "--per-connection", "3", "--stall-seconds", "2", "--ping-seconds", "0.5", "--flush-seconds", "2",
         "--status-seconds", "5", "--no-meta"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _sent(log: Path) -> tuple[list[tuple[int, int, dict]], dict[int, int]]:
    frames, opened = [], {}
    for line in log.read_bytes().splitlines():
        entry = orjson.loads(line)
        opened.setdefault(entry["conn"], entry["t_ns"])
        frame = parse_server_frame(entry["frame"])
        if isinstance(frame, DataFrame):
            frames.append((entry["conn"], entry["t_ns"], frame.message))
    return frames, opened


def test_soak_with_faults_sigkill_and_restart(tmp_path, long_run):
    phase_s = 240.0 if long_run else 25.0
    log, root = tmp_path / "sent.jsonl", tmp_path / "archive"
    market = SyntheticSource(seed=21, tick_ms=500)
    make = lambda: HyperliquidServer(market, rate=60, sent_log=log, fault_schedule=lambda n: SCHEDULE[n % len(SCHEDULE)])  # noqa: E731
    with ServerThread(make) as server:
        first = _record(root, server.ws_url)
        time.sleep(phase_s)
        killed_ns = time.time_ns()
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        second = _record(root, server.ws_url)  # recovers the first session's journal on start
        time.sleep(phase_s)
        server.quiesce()  # the feed ends; let what is in flight arrive
        time.sleep(1.5)
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=30)
        stats = dict(server.stats)
    assert second.returncode == 0, err
    assert "recovered from a previous crash" in err

    sent, opened = _sent(log)
    must_have = Counter(
        orjson.dumps(m) for conn, t_ns, m in sent if opened[conn] > killed_ns or t_ns < killed_ns - 1_500_000_000
    )
    everything_sent = Counter(orjson.dumps(m) for _, _, m in sent)
    got = Counter(orjson.dumps(m) for frames in archived(root).values() for m in frames)
    missing = must_have - got
    if missing:  # say where each lost frame came from: connection, its fault, when it left
        lost = [
            f"conn {conn} ({SCHEDULE[conn % len(SCHEDULE)]}) at {(t_ns - killed_ns) / 1e9:+.2f}s from the kill"
            for conn, t_ns, m in sent if orjson.dumps(m) in missing
        ]
        pytest.fail(f"{sum(missing.values())} frames sent while recording are not in the archive: {lost[:5]}")
    assert not (got - everything_sent), "the archive holds frames nobody sent (or one twice)"
    assert sum(got.values()) > (1_000 if not long_run else 10_000)

    kinds = Counter(kind for kind, *_ in events(root))
    for kind in ("connect", "disconnect", "reconnect_wait", "stall", "malformed", "server_error", "connect_failed", "session_start"):
        assert kinds[kind] > 0, f"no {kind} event: {dict(kinds)}"
    assert kinds["session_start"] == 2 and stats["dropped"] >= 2 and stats["refused"] >= 1

    verified = CliRunner().invoke(main, ["verify", str(root)])
    assert verified.exit_code == 0, verified.output
    print(  # the figures a run reports (pytest -s): frames, faults, gaps
        f"soak {2 * phase_s:.0f}s: {sum(got.values()):,} frames archived, {sum(must_have.values()):,} required, "
        f"{sum(everything_sent.values()):,} sent; server {dict(stats)}; events {dict(kinds)}"
    )

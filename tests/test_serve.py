from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

from replay import Replay, archive_meta
from replay.serving.archive_source import ArchiveSource
from replay.serving.server import HyperliquidServer, ServerThread
from schemas.protocol import DataFrame, ServerError, SubscriptionResponse

from .archives import make_archive
from .conftest import same
from .wsclient import Client

BOOK = {"type": "l2Book", "coin": "BTC"}
TRADES = {"type": "trades", "coin": "BTC"}
BBO = {"type": "bbo", "coin": "ETH"}


def archived(root, sub) -> list[dict[str, Any]]:
    r = Replay(root)
    r.subscribe(sub, lambda m: None)
    return list(r.messages())


def test_the_official_sdk_client_receives_exactly_the_archived_frames(tmp_path):
    from hyperliquid.websocket_manager import WebsocketManager

    make_archive(tmp_path, [BOOK, TRADES, BBO], 40)
    expected = {"book": archived(tmp_path, BOOK), "trades": archived(tmp_path, TRADES)}
    got: dict[str, list[Any]] = {"book": [], "trades": []}
    with ServerThread(lambda: HyperliquidServer(ArchiveSource(tmp_path, speed=None), rate=None)) as srv:
        manager = WebsocketManager(srv.base_url)
        manager.start()
        try:
            manager.subscribe(dict(BOOK), got["book"].append)
            manager.subscribe(dict(TRADES), got["trades"].append)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and any(len(got[k]) < len(expected[k]) for k in got):
                time.sleep(0.05)
            time.sleep(0.2)
        finally:
            manager.stop()
    for key in got:
        assert len(got[key]) == len(expected[key]) and all(same(a, b) for a, b in zip(got[key], expected[key])), key


def test_serve_paces_in_real_time_and_refuses_what_it_does_not_have(tmp_path):
    make_archive(tmp_path, [BBO], 12, step_ns=100_000_000)  # 1.1 s of frames

    async def go(url: str) -> None:
        client = await Client.open(url)
        await client.next()
        await client.subscribe({"type": "trades", "coin": "DOGE"})
        error = await client.next()
        assert isinstance(error, ServerError) and "no data" in error.message and "bbo (ETH)" in error.message
        await client.subscribe(BBO)
        assert isinstance(await client.next(), SubscriptionResponse)
        started = time.monotonic()
        frames = await client.data(12)
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed <= 3.0, elapsed
        assert all(same(a, b) for a, b in zip(frames, archived(tmp_path, BBO)))
        await client.close()

    with ServerThread(lambda: HyperliquidServer(ArchiveSource(tmp_path, speed=1.0), rate=None)) as srv:
        asyncio.run(go(srv.ws_url))


def test_a_late_subscription_joins_the_running_clock(tmp_path):
    make_archive(tmp_path, [BOOK, BBO], 40, step_ns=50_000_000)  # 4 s
    all_bbo = archived(tmp_path, BBO)

    async def go(url: str) -> None:
        client = await Client.open(url)
        await client.next()
        await client.subscribe(BOOK)
        await asyncio.sleep(1.5)  # past the 0.5 s join window
        await client.subscribe(BBO)
        bbo: list[dict] = []
        while len(bbo) < 3:
            frame = await client.next()
            if isinstance(frame, DataFrame) and frame.channel == "bbo":
                bbo.append(frame.message)
        first = all_bbo.index(bbo[0])
        assert 8 <= first <= 25, first  # about 1.5 s into the archive, not its start
        await client.close()

    with ServerThread(lambda: HyperliquidServer(ArchiveSource(tmp_path, speed=1.0, join_window_s=0.5), rate=None)) as srv:
        asyncio.run(go(srv.ws_url))


def test_archive_meta_feeds_the_sdk_info(tmp_path):
    from recorder import ArchiveWriter

    meta = {"universe": [{"name": "BTC", "szDecimals": 5}]}
    spot = {"tokens": [{"name": "USDC", "index": 0, "szDecimals": 8}, {"name": "PURR", "index": 1, "szDecimals": 0}], "universe": [{"name": "PURR/USDC", "tokens": [1, 0], "index": 0}]}
    with ArchiveWriter(tmp_path) as w:
        w.write_meta("meta", {"universe": []}, recv_ns=1)
        w.write_meta("meta", meta, recv_ns=2)
        w.write_meta("spotMeta", spot, recv_ns=2)
    assert archive_meta(tmp_path) == {"meta": meta, "spotMeta": spot}
    from hyperliquid.info import Info

    info = Info("http://127.0.0.1:9", skip_ws=True, meta=meta, spot_meta=spot)
    assert info.name_to_asset("BTC") == 0


def test_serve_command_runs_and_stops_cleanly(tmp_path):
    make_archive(tmp_path, [BBO], 5)
    proc = subprocess.Popen([sys.executable, "-m", "replay.cli", "serve", str(tmp_path), "--port", "0", "--speed", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = proc.stdout.readline().split()[-1]

        async def go() -> list[Any]:
            client = await Client.open(url)
            await client.subscribe(BBO)
            frames = await client.data(5)
            await client.close()
            return frames

        assert asyncio.run(go()) == archived(tmp_path, BBO)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err


def test_serve_an_empty_archive_is_one_line_exit_2(tmp_path):
    from click.testing import CliRunner

    from replay.cli import main

    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "holds no frames yet" in result.output

"""Clients nobody here wrote, unchanged, against ``simulate`` and ``serve``: the TypeScript SDK ``@nktkas/hyperliquid``.

Its package and lockfile are in ``tests/clients/``; ``npm ci`` installs them (CI does it up front;
here it runs once if ``node_modules`` is missing). Node 20 lacks a global ``WebSocket``: the script
gives it the ``ws`` package's, as Node 22 would have one; the SDK's code is untouched.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from replay import Replay
from replay.serving.archive_source import ArchiveSource
from replay.serving.server import HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource

from .recording import record

CLIENTS = Path(__file__).parent / "clients"
USER = "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a"


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "these tests run the TypeScript SDK: install Node.js 20+ and npm (apt-get install nodejs npm)"
    if not (CLIENTS / "node_modules" / "@nktkas" / "hyperliquid").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENTS, check=True, capture_output=True, timeout=300)
    return node


def run_ts_client(node: str, base_url: str) -> dict[str, Any]:
    done = subprocess.run([node, "hyperliquid_ts.mjs", base_url, USER], cwd=CLIENTS, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return orjson.loads(done.stdout)


def check_answers(out: dict[str, Any]) -> None:
    assert out["meta"]["universe"][0]["name"] == "BTC" and out["wsMeta"] == out["meta"]
    assert out["spotMeta"]["universe"] and out["metaAndAssetCtxs"][0]["universe"]
    assert "BTC" in out["allMids"]
    for book, coin in ((out["l2Book"], "BTC"), (out["wsL2Book"], "ETH")):
        assert book["coin"] == coin and len(book["levels"]) == 2 and book["levels"][0]
    assert float(out["clearinghouseState"]["marginSummary"]["accountValue"]) > 0
    assert "balances" in out["spotClearinghouseState"]
    assert out["trades"] and all(t["coin"] == "BTC" for t in out["trades"])


def test_typescript_sdk_against_simulate(node):
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=2), rate=20)) as server:
        out = run_ts_client(node, server.base_url)
    check_answers(out)
    assert out["candleSnapshot"] and out["candleSnapshot"][0]["s"] == "BTC"


def test_typescript_sdk_against_serve(node, tmp_path):
    subs = [{"type": "allMids"}, {"type": "trades", "coin": "BTC"}, {"type": "l2Book", "coin": "BTC"}, {"type": "l2Book", "coin": "ETH"}, {"type": "webData2", "user": USER}]
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=2), rate=20)) as server:
        record(tmp_path, server.ws_url, subs, 3.0, meta=True)
    with ServerThread(lambda: HyperliquidServer(ArchiveSource(tmp_path, speed=1.0), rate=None)) as server:
        out = run_ts_client(node, server.base_url)
    check_answers(out)
    replay = Replay(tmp_path)
    replay.subscribe({"type": "l2Book", "coin": "BTC"}, lambda m: None)
    assert out["l2Book"] == next(replay.messages())["data"]  # the clock at the archive's start


# --- paper trading through the TypeScript SDK's ExchangeClient (its own signing, with viem's wallet) ---

KEY = "0x" + "5c" * 32


def run_ts_exchange(node: str, base_url: str) -> dict[str, Any]:
    done = subprocess.run([node, "hyperliquid_ts_exchange.mjs", base_url, KEY], cwd=CLIENTS, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return orjson.loads(done.stdout)


def check_exchange(out: dict[str, Any]) -> None:
    oid = out["resting"]["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert [o["oid"] for o in out["openOrders"]] == [oid]
    assert out["cancel"]["response"]["data"]["statuses"] == ["success"]
    filled = out["filled"]["response"]["data"]["statuses"][0]["filled"]
    assert filled["totalSz"] == "0.05" and out["leverage"] == {"status": "ok", "response": {"type": "default"}}
    [position] = out["state"]["assetPositions"]
    assert position["position"]["szi"] == "0.05" and position["position"]["leverage"] == {"type": "cross", "value": 7}
    assert "resting" in out["wsResting"]["response"]["data"]["statuses"][0]  # an action posted over the socket
    assert out["wsCancel"]["response"]["data"]["statuses"] == ["success"]
    assert {f["oid"] for f in out["fills"]} == {filled["oid"]}


def test_typescript_sdk_trades_on_simulate(node):
    from replay.paper.session import synthetic_session

    def make() -> HyperliquidServer:
        market = SyntheticSource(seed=2)
        return HyperliquidServer(market, rate=20, paper=synthetic_session(market, accounts={eth_address(KEY)}))

    with ServerThread(make) as server:
        check_exchange(run_ts_exchange(node, server.base_url))  # its signer is the listed account: signing agrees


def test_typescript_sdk_trades_on_serve_paper(node, tmp_path):
    from replay.paper.session import archive_session

    subs = [{"type": "l2Book", "coin": "ETH"}, {"type": "trades", "coin": "ETH"}]
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=2), rate=20)) as server:
        record(tmp_path, server.ws_url, subs, 3.0, meta=True)
    source = ArchiveSource(tmp_path, speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None, paper=archive_session(source, accounts={eth_address(KEY)}))) as server:
        start_paper_clock(server)
        check_exchange(run_ts_exchange(node, server.base_url))


def eth_address(key: str) -> str:
    import eth_account

    return eth_account.Account.from_key(key).address.lower()


def start_paper_clock(server: HyperliquidServer) -> None:
    """``serve --paper``'s market clock starts with the first subscription or action: send one, let books print."""
    import http.client

    from replay.paper.signing import sign_action

    action, nonce = {"type": "scheduleCancel"}, int(time.time() * 1000) - 10_000
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", "/exchange", orjson.dumps({"action": action, "nonce": nonce, "signature": sign_action(KEY, action, nonce)}))
    assert orjson.loads(conn.getresponse().read())["status"] == "ok"
    conn.close()
    time.sleep(0.3)


def test_the_recorder_takes_a_feed_from_the_ws_package_whole_even_in_fragments(node, tmp_path):
    """A websocket server nobody here wrote (Node's ``ws``) feeds the recorder; every third message comes
    in three fragments with a ping between them. The archive must hold exactly what was sent."""
    log = tmp_path / "sent.jsonl"
    feed = subprocess.Popen([node, "ws_feed.mjs", str(log), "300"], cwd=CLIENTS, stdout=subprocess.PIPE, text=True)
    try:
        assert feed.stdout is not None
        port = int(feed.stdout.readline().split()[1])
        subs = [{"type": "bbo", "coin": "BTC"}, {"type": "trades", "coin": "ETH"}, {"type": "l2Book", "coin": "SOL"}]
        rec = record(tmp_path / "a", f"ws://127.0.0.1:{port}/ws", subs, 3.0)
    finally:
        feed.terminate()
        feed.wait(timeout=10)
    sent = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert len(sent) == 900
    got = list(Replay(tmp_path / "a").messages())
    by_channel = lambda frames, channel: [f for f in frames if f["channel"] == channel]  # noqa: E731
    for channel in ("bbo", "trades", "l2Book"):
        assert orjson.dumps(by_channel(got, channel)) == orjson.dumps(by_channel(sent, channel)), channel
    assert rec.archiver.progress.malformed == 0 and rec.status.events.get("malformed", 0) == 0
    # the ws package writes JSON as the exchange does, so every frame took the proven column path
    assert (rec.archiver.progress.as_columns, rec.archiver.progress.by_row) == (900, 0)

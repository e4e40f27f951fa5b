"""Clients nobody here wrote, unchanged, against ``simulate`` and ``serve``: the TypeScript SDK ``@nktkas/hyperliquid``.

Its package and lockfile are in ``tests/clients/``; ``npm ci`` installs them (CI does it up front;
here it runs once if ``node_modules`` is missing). Node 20 lacks a global ``WebSocket``: the script
gives it the ``ws`` package's, as Node 22 would have one; the SDK's code is untouched.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from replay import Replay
from replay.serving.archive_source import ArchiveSource
from replay.serving.server import HyperliquidServer, ServerThread
from replay.serving.synthetic import SyntheticMarket

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
    with ServerThread(lambda: HyperliquidServer(SyntheticMarket(seed=2), rate=20)) as server:
        out = run_ts_client(node, server.base_url)
    check_answers(out)
    assert out["candleSnapshot"] and out["candleSnapshot"][0]["s"] == "BTC"


def test_typescript_sdk_against_serve(node, tmp_path):
    subs = [{"type": "allMids"}, {"type": "trades", "coin": "BTC"}, {"type": "l2Book", "coin": "BTC"}, {"type": "l2Book", "coin": "ETH"}, {"type": "webData2", "user": USER}]
    with ServerThread(lambda: HyperliquidServer(SyntheticMarket(seed=2), rate=20)) as server:
        record(tmp_path, server.ws_url, subs, 3.0, meta=True)
    with ServerThread(lambda: HyperliquidServer(ArchiveSource(tmp_path, speed=1.0), rate=None)) as server:
        out = run_ts_client(node, server.base_url)
    check_answers(out)
    replay = Replay(tmp_path)
    replay.subscribe({"type": "l2Book", "coin": "BTC"}, lambda m: None)
    assert out["l2Book"] == next(replay.messages())["data"]  # the clock at the archive's start

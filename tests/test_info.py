"""``POST /info`` on ``simulate`` and ``serve``: the exchange's answers, its errors, unchanged SDK code."""

from __future__ import annotations

import http.client
import itertools
import time
from pathlib import Path
from typing import Any

import eth_account
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay import Replay
from replay.serving.archive_info import ArchiveInfo
from replay.serving.archive_source import ArchiveSource
from replay.serving.server import HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource
from schemas import parse_subscription
from schemas.info import BODY_LIMIT_BYTES, InfoError, parse_info_body
from schemas.protocol import post_frame

from .archives import make_archive
from .recording import record
from .wsclient import Client

WALLET = eth_account.Account.from_key("0x" + "11" * 32)  # a throwaway key, as the SDK examples' config holds
ADDRESS = WALLET.address


def seed_example_subscriptions(address: str) -> list[dict[str, Any]]:
    """The subscriptions of hyperliquid-python-sdk's ``examples/basic_ws.py``, in its order."""
    return [
        {"type": "allMids"},
        {"type": "l2Book", "coin": "ETH"},
        {"type": "trades", "coin": "PURR/USDC"},
        {"type": "userEvents", "user": address},
        {"type": "userFills", "user": address},
        {"type": "candle", "coin": "ETH", "interval": "1m"},
        {"type": "orderUpdates", "user": address},
        {"type": "userFundings", "user": address},
        {"type": "userNonFundingLedgerUpdates", "user": address},
        {"type": "webData2", "user": address},
        {"type": "bbo", "coin": "ETH"},
        {"type": "activeAssetCtx", "coin": "BTC"},
        {"type": "activeAssetCtx", "coin": "@1"},
        {"type": "activeAssetData", "user": address, "coin": "BTC"},
    ]


def post(base_url: str, body: bytes, method: str = "POST", path: str = "/info") -> tuple[int, bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body if method == "POST" else None, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- the request rules, without a server ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "Failed to parse the request body as JSON"),
        (b"[1, 2]", 422, "Failed to deserialize"),
        (b'{"coin": "BTC"}', 422, "missing field `type`"),
        (b'{"type": "nope"}', 422, "unknown variant `nope`"),
        (b"x" * (BODY_LIMIT_BYTES + 1), 413, "length limit exceeded"),
    ],
)
def test_bad_bodies_get_the_exchanges_status_and_sentence(body, status, words):
    with pytest.raises(InfoError) as error:
        parse_info_body(body)
    assert error.value.status == status and words in error.value.text


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 3),
    coin=st.sampled_from(["BTC", "ETH", "@1", "PURR/USDC", "xyz:HOOD"]),
    joined=st.integers(0, 1500),
    later=st.integers(0, 60),
    sig_figs=st.sampled_from([None, 2, 3, 5]),
)
def test_simulate_info_book_equals_the_streams_book_at_that_tick(seed, coin, joined, later, sig_figs):
    """For any instant, the book /info gives is the book a stream (joined at any earlier tick) sends then."""
    market = SyntheticSource(seed=seed)
    request = {"type": "l2Book", "coin": coin, "nSigFigs": sig_figs}
    sub = parse_subscription({"type": "l2Book", "coin": coin, **({"nSigFigs": sig_figs} if sig_figs else {})})
    stream = market.ticked(sub, joined)
    tick, frame = next(itertools.islice(stream, later, None))
    assert tick == joined + later
    from replay.simulator.info import answer

    assert answer(market, request, tick) == frame["data"]


# --- simulate ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator():
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=3), rate=20)) as server:
        yield server


def run_seed_example(base_url: str, address: str, seconds: float = 4.0) -> dict[str, list[Any]]:
    """What ``examples/example_utils.setup`` + ``basic_ws.py`` do, unchanged: Info(base_url), the equity
    check, Exchange(...) construction, then every subscription of the example."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    info = Info(base_url, False)
    try:
        user_state = info.user_state(address)
        spot_user_state = info.spot_user_state(address)
        assert not (float(user_state["marginSummary"]["accountValue"]) == 0 and len(spot_user_state["balances"]) == 0)
        Exchange(WALLET, base_url, account_address=address)
        got: dict[str, list[Any]] = {}
        for sub in seed_example_subscriptions(address):
            key = orjson.dumps(sub).decode()
            got[key] = []
            info.subscribe(sub, got[key].append)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not all(got.values()):
            time.sleep(0.05)
        return got
    finally:
        info.disconnect_websocket()


def test_the_sdk_examples_run_unchanged_against_simulate(simulator):
    got = run_seed_example(simulator.base_url, ADDRESS)
    assert all(got.values()), [k for k, v in got.items() if not v]


def test_sdk_info_calls_against_simulate(simulator):
    from hyperliquid.info import Info

    info = Info(simulator.base_url, skip_ws=True)
    assert {"BTC", "ETH", "SOL", "kPEPE", "@1", "PURR/USDC"} <= set(info.coin_to_asset)
    assert info.coin_to_asset["PURR/USDC"] == 10000 and info.coin_to_asset["@1"] == 10001
    assert info.asset_to_sz_decimals[info.coin_to_asset["BTC"]] == 5
    meta = info.meta()
    assert [(a["name"], a["szDecimals"], a["maxLeverage"]) for a in meta["universe"]] == [("BTC", 5, 40), ("ETH", 4, 25), ("SOL", 2, 20), ("kPEPE", 0, 10)]
    assert info.meta(dex="xyz")["universe"][0]["name"] == "xyz:HOOD"
    assert [d and d["name"] for d in info.perp_dexs()] == [None, "xyz"]
    spot_meta, spot_ctxs = info.spot_meta_and_asset_ctxs()
    assert [u["name"] for u in spot_meta["universe"]] == ["PURR/USDC", "@1"] and len(spot_ctxs) == 2
    perp_meta, ctxs = info.post("/info", {"type": "metaAndAssetCtxs"})
    assert len(ctxs) == len(perp_meta["universe"]) and all("funding" in c and "markPx" in c for c in ctxs)
    state = info.user_state(ADDRESS)
    assert state["marginSummary"]["accountValue"] == "100000.0" and state["assetPositions"] == []
    assert info.spot_user_state(ADDRESS) == {"balances": []}
    mids = info.all_mids()
    book = info.l2_snapshot("BTC")
    bids, asks = book["levels"]
    assert len(bids) == len(asks) == 20 and float(bids[0]["px"]) < float(asks[0]["px"]) and set(mids) == set(info.name_to_coin.values()) | {"xyz:HOOD"}
    assert book["time"] <= time.time() * 1000 + 1  # exchange time never runs ahead of the clock
    now_ms = int(time.time() * 1000)
    time.sleep(0.5)  # a few ticks with trades
    candles = info.candles_snapshot("BTC", "1m", 0, int(time.time() * 1000))
    assert candles and all(c["s"] == "BTC" and c["i"] == "1m" for c in candles)
    assert info.funding_history("BTC", 0)[0]["coin"] == "BTC"
    assert info.open_orders(ADDRESS) == [] and info.frontend_open_orders(ADDRESS) == []
    fills = info.user_fills(ADDRESS)
    if fills:
        assert info.query_order_by_oid(ADDRESS, fills[0]["oid"])["status"] == "order"
    assert info.query_order_by_oid(ADDRESS, 1)["status"] == "unknownOid"
    # asked a moment later: the same fills, oldest first, and maybe newer ones after them
    assert info.user_fills_by_time(ADDRESS, 0, now_ms + 60_000)[: len(fills)] == sorted(fills, key=lambda f: f["time"])
    assert info.post("/info", {"type": "exchangeStatus"})["time"] <= time.time() * 1000 + 1


def test_simulate_book_over_http_equals_the_stream_at_that_instant(simulator):
    from hyperliquid.info import Info

    info = Info(simulator.base_url)
    got: list[dict[str, Any]] = []
    try:
        info.subscribe({"type": "l2Book", "coin": "ETH"}, got.append)
        time.sleep(0.5)
        answers = []
        for _ in range(5):
            answers.append(info.l2_snapshot("ETH"))
            time.sleep(0.13)
        time.sleep(0.3)
    finally:
        info.disconnect_websocket()
    by_time = {m["data"]["time"]: m["data"] for m in got}
    for answer in answers:
        assert by_time[answer["time"]] == answer


def test_bad_requests_get_4xx_and_the_server_keeps_serving(simulator):
    base = simulator.base_url
    assert post(base, b"{oops")[0] == 400
    assert post(base, b'{"type": "nope"}') == (422, post(base, b'{"type": "nope"}')[1])
    status, text = post(base, b'{"type": "l2Book"}')
    assert status == 422 and b"missing field `coin`" in text
    status, text = post(base, b'{"type": "clearinghouseState", "user": "bob"}')
    assert status == 422 and b"invalid address" in text
    assert post(base, b"x" * 1_000_000)[0] == 413
    assert post(base, b"", method="GET")[0] == 405
    assert post(base, b"{}", path="/nowhere")[0] == 404
    status, body = post(base, b'{"type": "allMids"}')
    assert status == 200 and "BTC" in orjson.loads(body)


def test_info_over_the_websocket_with_post_requests(simulator):
    async def go() -> list[dict[str, Any]]:
        client = await Client.open(simulator.ws_url)
        await client.next()  # greeting
        await client.ws.send(post_frame(7, "info", {"type": "l2Book", "coin": "BTC"}))
        await client.ws.send(post_frame(8, "info", {"type": "nope"}))
        await client.ws.send(post_frame(9, "action", {"type": "order"}))
        answers = [orjson.loads(await client.ws.recv()) for _ in range(3)]
        await client.ws.close()
        return answers

    import asyncio

    book, unknown, action = asyncio.run(go())
    assert book["channel"] == "post" and book["data"]["id"] == 7
    response = book["data"]["response"]
    assert response["type"] == "info" and response["payload"]["type"] == "l2Book" and response["payload"]["data"]["coin"] == "BTC"
    assert unknown["data"] == {"id": 8, "response": {"type": "error", "payload": unknown["data"]["response"]["payload"]}}
    assert "unknown variant `nope`" in unknown["data"]["response"]["payload"]
    assert action["data"]["response"]["type"] == "error"


# --- serve ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """An archive recorded from simulate, with meta snapshots and the example's user streams."""
    root = tmp_path_factory.mktemp("served")
    subs = seed_example_subscriptions(ADDRESS) + [{"type": "l2Book", "coin": "BTC"}, {"type": "candle", "coin": "BTC", "interval": "1m"}]
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=5), rate=20)) as server:
        record(root, server.ws_url, subs, 4.0, meta=True)
    return root


def test_the_sdk_examples_run_unchanged_against_serve(recorded):
    source = ArchiveSource(recorded, speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None)) as server:
        got = run_seed_example(server.base_url, ADDRESS)
    assert all(got.values()), [k for k, v in got.items() if not v]


def test_sdk_info_calls_against_serve_answer_from_the_archive(recorded):
    from hyperliquid.info import Info

    source = ArchiveSource(recorded, speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None)) as server:
        info = Info(server.base_url, skip_ws=True)
        assert info.coin_to_asset["BTC"] == 0 and info.coin_to_asset["@1"] == 10001
        assert info.meta()["universe"][0]["name"] == "BTC"
        book = info.l2_snapshot("ETH")
        first = next(m for m in _archived(recorded, {"type": "l2Book", "coin": "ETH"}))
        assert book == first["data"]  # the clock stands at --from (the archive's start) before any subscription
        assert info.user_state(ADDRESS)["marginSummary"]["accountValue"] == "100000.0"
        assert "BTC" in info.all_mids()
        assert info.candles_snapshot("BTC", "1m", 0, 2**62) == []  # no candle closed before the clock yet
        later = ArchiveInfo(recorded).answer({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": 0}}, 2**62)
        assert later and later[-1]["s"] == "BTC" and later[-1] == _archived(recorded, {"type": "candle", "coin": "BTC", "interval": "1m"})[-1]["data"]
        assert info.post("/info", {"type": "spotMetaAndAssetCtxs"})[0]["universe"]
        status, text = post(server.base_url, b'{"type": "l2Book", "coin": "DOGE"}')
        assert status == 404 and b"record that subscription" in text


def _archived(root: Path, sub: dict[str, Any]) -> list[dict[str, Any]]:
    replay = Replay(root)
    replay.subscribe(sub, lambda m: None)
    return list(replay.messages())


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory) -> tuple[Path, list[tuple[int, dict[str, Any]]]]:
    root = tmp_path_factory.mktemp("books")
    written = make_archive(root, [{"type": "l2Book", "coin": "BTC"}, {"type": "bbo", "coin": "BTC"}], 60, flush_rows=25)
    return root, [(t, m) for t, m in written if m["channel"] == "l2Book"]


@settings(max_examples=30, deadline=None)
@given(offset_ns=st.integers(-50_000_000, 1_300_000_000))
def test_serve_info_book_is_the_archived_frame_at_or_before_the_clock(small_archive, offset_ns):
    root, books = small_archive
    at_ns = books[0][0] + offset_ns
    before = [m for t, m in books if t <= at_ns]
    expected = before[-1] if before else books[0][1]  # before the first frame: the first frame
    assert ArchiveInfo(root).answer({"type": "l2Book", "coin": "BTC"}, at_ns) == expected["data"]


def test_serve_without_meta_names_what_to_record(small_archive):
    root, _ = small_archive
    with pytest.raises(InfoError) as error:
        ArchiveInfo(root).answer({"type": "meta"}, 2**62)
    assert error.value.status == 404 and "record without --no-meta" in error.value.text


def test_both_servers_answer_every_documented_info_type():
    """The two answer tables are separate (each source answers its own way); neither may drift from the list."""
    from replay.paper.session import PAPER_INFO
    from replay.serving import archive_info
    from replay.simulator import info as synthetic_info
    from schemas.info import INFO_TYPES

    market_wide = set(INFO_TYPES) - set(archive_info.PAPER_ONLY)  # the rest only a paper account answers
    assert set(synthetic_info._HANDLERS) == market_wide
    assert set(archive_info._HANDLERS) == market_wide
    assert set(archive_info.PAPER_ONLY) <= set(PAPER_INFO) <= set(INFO_TYPES)

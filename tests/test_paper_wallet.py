"""A new user's first minute of paper trading, with the SDK unchanged and a fresh wallet, over
``serve --paper`` of an archive that recorded only the market, and over ``simulate``: every wallet
stream accepted, its first frames the exchange's, then the account's own events only; the flows of
the SDK's examples; a market maker; one market at one clock for ``/info`` and the matching engine.
Every frame either server sent is read back from its sent log: no ``error`` frame anywhere."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eth_account
import orjson
import pyarrow.parquet as pq
import pytest

from replay.paper.session import archive_session, synthetic_session
from replay.serving.archive_source import ArchiveSource
from replay.serving.server import HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource

from .recording import record

GTC = {"limit": {"tif": "Gtc"}}
MARKET_ONLY = [
    {"type": "l2Book", "coin": "ETH"},
    {"type": "l2Book", "coin": "BTC"},
    {"type": "trades", "coin": "ETH"},
    {"type": "trades", "coin": "BTC"},
    {"type": "bbo", "coin": "ETH"},
    {"type": "activeAssetCtx", "coin": "ETH"},
    {"type": "activeAssetCtx", "coin": "BTC"},
    {"type": "allMids"},
]


@pytest.fixture(scope="module")
def market_only(tmp_path_factory) -> Path:
    """What `record --coin ETH --coin BTC` of the market channels makes: no user stream at all."""
    root = tmp_path_factory.mktemp("market-only")
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=21), rate=40)) as server:
        record(root, server.ws_url, MARKET_ONLY, 8.0, meta=True)
    return root


@pytest.fixture(params=["serve --paper", "simulate"])
def server(request, market_only, tmp_path) -> Iterator[HyperliquidServer]:
    """Each server that takes orders, logging every frame it sends."""
    log = tmp_path / "sent.jsonl"
    if request.param == "simulate":
        def make() -> HyperliquidServer:
            market = SyntheticSource(seed=4, start_ms=int(time.time() * 1000) - 60_000)
            return HyperliquidServer(market, rate=10, sent_log=log, paper=synthetic_session(market))
    else:
        source = ArchiveSource(market_only, speed=1.0)

        def make() -> HyperliquidServer:
            return HyperliquidServer(source, rate=None, sent_log=log, paper=archive_session(source))
    with ServerThread(make) as srv:
        srv.sent_log_path = log  # type: ignore[attr-defined]
        yield srv
    frames = sent_frames(log)
    errors = [f for f in frames if f.get("channel") == "error"]
    assert errors == [], f"the server refused something: {errors[:3]}"


def sent_frames(log: Path) -> list[dict[str, Any]]:
    """Every JSON frame sent (the greeting on connect is plain text)."""
    texts = [orjson.loads(line)["frame"] for line in log.read_text().splitlines()]
    return [orjson.loads(text) for text in texts if text.startswith("{")]


def fresh_wallet() -> Any:
    return eth_account.Account.create()


def statuses(response: dict[str, Any]) -> list[Any]:
    assert response["status"] == "ok", response
    return response["response"]["data"]["statuses"]


class Streams:
    """Frames a wallet's subscriptions received through the SDK, by channel."""

    def __init__(self) -> None:
        self.q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.frames: list[dict[str, Any]] = []

    def drain(self, until: Any = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.frames.append(self.q.get(timeout=0.1))
            except queue.Empty:
                if until is None or until(self):
                    break
        return self.frames

    def of(self, channel: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["channel"] == channel]


WALLET_SUBS = ("userEvents", "userFills", "orderUpdates", "userFundings", "userNonFundingLedgerUpdates", "webData2", "notification")


def subscribe_all(info: Any, user: str) -> Streams:
    streams = Streams()
    for kind in WALLET_SUBS:
        info.subscribe({"type": kind, "user": user}, streams.q.put)
    info.subscribe({"type": "activeAssetData", "user": user, "coin": "ETH"}, streams.q.put)
    return streams


def max_leverage(info: Any, coin: str) -> int:
    return next(u["maxLeverage"] for u in info.meta()["universe"] if u["name"] == coin)


def test_a_fresh_wallet_gets_the_exchanges_first_frames_on_every_wallet_stream(server):
    from hyperliquid.info import Info

    me = fresh_wallet().address
    info = Info(server.base_url, skip_ws=False)
    try:
        streams = subscribe_all(info, me)
        firsts = lambda s: {f["channel"] for f in s.frames} >= {"userFills", "userFundings", "userNonFundingLedgerUpdates", "webData2", "activeAssetData"}  # noqa: E731
        streams.drain(until=firsts, timeout=10)
        lev = max_leverage(info, "ETH")
    finally:
        info.disconnect_websocket()
    [fills] = streams.of("userFills")
    assert fills["data"] == {"isSnapshot": True, "user": me, "fills": []}
    [fundings] = streams.of("userFundings")
    assert fundings["data"] == {"isSnapshot": True, "user": me, "fundings": []}
    [ledger] = streams.of("userNonFundingLedgerUpdates")
    assert ledger["data"] == {"isSnapshot": True, "user": me, "nonFundingLedgerUpdates": []}
    [web] = streams.of("webData2")
    assert web["data"]["user"] == me and web["data"]["openOrders"] == [] and web["data"]["clearinghouseState"]["assetPositions"] == []
    [asset] = streams.of("activeAssetData")
    data = asset["data"]
    assert list(data) == ["user", "coin", "leverage", "maxTradeSzs", "availableToTrade", "markPx"]  # the exchange's key order
    assert (data["user"], data["coin"], data["leverage"]) == (me, "ETH", {"type": "cross", "value": lev})
    assert float(data["maxTradeSzs"][0]) > 0 and float(data["availableToTrade"][0]) == pytest.approx(100_000 * lev, rel=1e-6)
    assert float(data["markPx"]) > 0
    assert streams.of("user") == [] and streams.of("orderUpdates") == [] and streams.of("notification") == []  # nothing happened yet


def test_the_sdks_example_flows_and_the_streams_show_exactly_what_the_wallet_did(server):
    """basic_order, basic_order_with_cloid, basic_order_modify, basic_market_order,
    basic_leverage_adjustment and cancel_open_orders, one after another, with a fresh wallet."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info
    from hyperliquid.utils.types import Cloid

    wallet = fresh_wallet()
    me = wallet.address
    info = Info(server.base_url, skip_ws=False)
    other = fresh_wallet().address
    watcher = Info(server.base_url, skip_ws=False)  # the SDK routes userEvents and orderUpdates by channel: one wallet a socket
    try:
        streams = subscribe_all(info, me)
        others = Streams()
        watcher.subscribe({"type": "userEvents", "user": other}, others.q.put)
        watcher.subscribe({"type": "orderUpdates", "user": other}, others.q.put)
        streams.drain(until=lambda s: bool(s.of("activeAssetData")), timeout=10)
        ex = Exchange(wallet, server.base_url)
        book = info.l2_snapshot("ETH")["levels"]
        bid = float(book[0][0]["px"])

        # basic_order: rest far from the touch, ask its status, cancel it
        [placed] = statuses(ex.order("ETH", True, 0.2, round(bid * 0.9, 1), GTC))
        oid = placed["resting"]["oid"]
        assert info.query_order_by_oid(me, oid)["order"]["status"] == "open"
        assert statuses(ex.cancel("ETH", oid)) == ["success"]
        assert info.query_order_by_oid(me, oid)["order"]["status"] == "canceled"

        # basic_order_with_cloid
        cloid = Cloid.from_str("0x00000000000000000000000000000001")
        [placed] = statuses(ex.order("ETH", True, 0.2, round(bid * 0.9, 1), GTC, cloid=cloid))
        assert placed["resting"]["cloid"] == cloid.to_raw()
        assert info.query_order_by_cloid(me, cloid)["order"]["order"]["cloid"] == cloid.to_raw()
        assert statuses(ex.cancel_by_cloid("ETH", cloid)) == ["success"]

        # basic_order_modify
        [placed] = statuses(ex.order("ETH", True, 0.2, round(bid * 0.9, 1), GTC))
        oid = placed["resting"]["oid"]
        modified = ex.modify_order(oid, "ETH", True, 0.3, round(bid * 0.8, 1), GTC)
        assert modified["status"] == "ok", modified
        [resting] = info.open_orders(me)
        assert (resting["sz"], float(resting["limitPx"])) == ("0.3", round(bid * 0.8, 1))

        # cancel_open_orders
        for order in info.open_orders(me):
            assert statuses(ex.cancel(order["coin"], order["oid"])) == ["success"]
        assert info.open_orders(me) == []

        # basic_market_order
        [bought] = statuses(ex.market_open("ETH", True, 0.05))
        assert bought["filled"]["totalSz"] == "0.05"
        [sold] = statuses(ex.market_close("ETH"))
        assert sold["filled"]["totalSz"] == "0.05"

        # basic_leverage_adjustment: cross, then isolated, then margin added to an isolated position
        assert ex.update_leverage(5, "ETH")["status"] == "ok"
        assert info.post("/info", {"type": "activeAssetData", "user": me, "coin": "ETH"})["leverage"] == {"type": "cross", "value": 5}
        assert ex.update_leverage(4, "ETH", False)["status"] == "ok"
        [opened] = statuses(ex.market_open("ETH", True, 0.05))
        assert "filled" in opened
        [position] = info.user_state(me)["assetPositions"]
        assert position["position"]["leverage"]["type"] == "isolated"
        before = float(position["position"]["marginUsed"])
        assert ex.update_isolated_margin(10, "ETH")["status"] == "ok"
        after = float(info.user_state(me)["assetPositions"][0]["position"]["marginUsed"])
        assert after == pytest.approx(before + 10, abs=1e-6)
        refused = ex.update_isolated_margin(-1_000_000, "ETH")
        assert refused["status"] == "err" and "margin" in refused["response"]
        assert ex.update_leverage(500, "ETH")["status"] == "err"

        n_fills = len(info.user_fills(me))
        streams.drain(until=lambda s: sum(len(f["data"]["fills"]) for f in s.of("userFills")) >= n_fills + 0 and len(s.of("user")) >= n_fills, timeout=10)
        time.sleep(0.3)
        streams.drain(timeout=0.5)
        others.drain(timeout=0.3)

        # what /info says of the account, in the exchange's shapes
        history = info.historical_orders(me)
        assert {h["status"] for h in history} >= {"canceled", "filled"}
        fees = info.user_fees(me)
        assert fees["userCrossRate"] == "0.00045" and fees["userAddRate"] == "0.00015" and fees["dailyUserVlm"]
        limit = info.user_rate_limit(me)
        assert limit["nRequestsUsed"] >= 12 and float(limit["cumVlm"]) > 0
        periods = [p for p, _ in info.portfolio(me)]
        assert periods == ["day", "week", "month", "allTime", "perpDay", "perpWeek", "perpMonth", "perpAllTime"]
        fills = list(reversed(info.user_fills(me)))
    finally:
        info.disconnect_websocket()
        watcher.disconnect_websocket()

    assert len(fills) >= 3
    streamed = [fill for f in streams.of("userFills") if not f["data"].get("isSnapshot") for fill in f["data"]["fills"]]
    assert streamed == fills  # every fill once, in order, and nothing else
    events = [fill for f in streams.of("user") for fill in f["data"].get("fills", [])]
    assert events == fills
    updates = [u for f in streams.of("orderUpdates") for u in f["data"]]
    assert [u["status"] for u in updates[:6]] == ["open", "canceled", "open", "canceled", "open", "canceled"]  # order, cloid order, modify's first
    assert {u["order"]["oid"] for u in updates} >= {f["oid"] for f in fills}
    leverages = [f["data"]["leverage"] for f in streams.of("activeAssetData")]
    assert {"type": "cross", "value": 5} in leverages and any(lv["type"] == "isolated" and lv["value"] == 4 for lv in leverages)
    assert len(streams.of("webData2")) >= 2  # the state again after the account changed
    assert others.frames == []  # another wallet's streams carry none of this


def test_the_first_market_order_meets_the_book_the_client_was_just_shown(market_only, tmp_path):
    """A market order sent right after start, after /info l2Book showed the touch, fills there."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    # the clock barely moves, from the ETH book that the longest wait for the next one follows: the
    # order meets the same book however slow the machine (a recorder under load takes frames in bursts)
    times = sorted(t for part in market_only.glob("channel=l2Book/coin=ETH/*/*.parquet") for t in pq.read_table(part, columns=["recv_ns"]).column("recv_ns").to_pylist())
    quiet = max(range(len(times) - 1), key=lambda i: times[i + 1] - times[i])
    source = ArchiveSource(market_only, start=-(-times[quiet] // 1_000_000), speed=0.001)  # epoch ms, at or just after that book
    with ServerThread(lambda: HyperliquidServer(source, rate=None, paper=archive_session(source))) as server:
        info = Info(server.base_url, skip_ws=True)
        ex = Exchange(fresh_wallet(), server.base_url)
        book = info.l2_snapshot("ETH")["levels"]
        ask, size = book[1][0]["px"], float(book[1][0]["sz"])
        [filled] = statuses(ex.market_open("ETH", True, min(0.05, size)))
        assert filled["filled"]["avgPx"].rstrip("0").rstrip(".") == ask.rstrip("0").rstrip(".")
        assert info.l2_snapshot("ETH")["levels"] == book  # the engine's book, the one the order met


def test_a_market_maker_quotes_both_sides_and_sees_its_own_fills(server):
    """Quotes at the touch from l2Book, re-quoted as the book moves, fills heard on userEvents and
    polled with open_orders and user_state, as a bot written against the SDK does."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    wallet = fresh_wallet()
    me = wallet.address
    info = Info(server.base_url, skip_ws=False)
    books: queue.Queue[dict[str, Any]] = queue.Queue()
    heard: list[dict[str, Any]] = []
    try:
        info.subscribe({"type": "l2Book", "coin": "ETH"}, books.put)
        info.subscribe({"type": "userEvents", "user": me}, heard.append)
        ex = Exchange(wallet, server.base_url)
        quoted: dict[bool, tuple[int, float]] = {}
        requotes = 0
        deadline = time.time() + 6
        while time.time() < deadline:
            try:
                frame = books.get(timeout=1)
            except queue.Empty:
                continue
            while not books.empty():
                frame = books.get_nowait()  # the newest book only
            bids, asks = frame["data"]["levels"]
            touch = {True: float(bids[0]["px"]), False: float(asks[0]["px"])}
            open_oids = {o["oid"] for o in info.open_orders(me)}
            for side in (True, False):
                current = quoted.get(side)
                if current is not None and current[0] in open_oids and current[1] == touch[side]:
                    continue
                if current is not None and current[0] in open_oids:
                    ex.cancel("ETH", current[0])
                    requotes += 1
                [status] = statuses(ex.order("ETH", side, 0.01 if touch[side] > 1000 else 1.0, touch[side], {"limit": {"tif": "Alo"}}))
                if "resting" in status:
                    quoted[side] = (status["resting"]["oid"], touch[side])
            state = info.user_state(me)
            assert float(state["marginSummary"]["accountValue"]) > 0
        open_orders = info.open_orders(me)
        for order in open_orders:  # nothing rests any more, so no fill can come after the poll below
            ex.cancel("ETH", order["oid"])
        settled = time.time() + 5
        while True:  # a fill's userEvents frame may still be on its way when /info already has it
            fills = info.user_fills(me)
            heard_fills = [f for e in list(heard) for f in e["data"].get("fills", [])]
            if len(heard_fills) >= len(fills) or time.time() > settled:
                break
            time.sleep(0.1)
    finally:
        info.disconnect_websocket()
    assert requotes > 0, "the book never moved: nothing was re-quoted"
    assert fills, "the quotes never filled: the market is too quiet for this test"
    assert len(open_orders) <= 2
    assert sorted(f["tid"] for f in heard_fills) == sorted(f["tid"] for f in fills)  # its own fills, each once


def test_in_process_the_same_streams_follow_leverage_margin_and_fills(hl_replay):
    """``replay.paper()`` serves the wallet streams through the same code: activeAssetData after each
    change, as it was then; a ledger snapshot; nothing for another coin's or another wallet's events."""
    from replay.paper.assets import AssetSpec

    from .test_paper import _book, _trade

    assets = {0: AssetSpec(0, "BTC", 2, 40, False)}
    t0 = 1_767_225_600_000
    replay = hl_replay([_book(t0, ("100", "50"), ("101", "50")), _book(t0 + 1_000, ("100", "50"), ("101", "50")), _trade(t0 + 2_000, "A", "99", "1", 1)])
    paper = replay.paper("0x" + "51" * 20, coins=["BTC"], assets=assets)
    got: list[dict[str, Any]] = []
    for kind in ("activeAssetData", "userNonFundingLedgerUpdates", "notification"):
        sub = {"type": kind, "user": paper.address} | ({"coin": "BTC"} if kind == "activeAssetData" else {})
        replay.subscribe(sub, got.append)
    acted: list[Any] = []

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] == t0 + 1_000:
            acted.append(paper.update_leverage(10, "BTC", is_cross=False))
            acted.append(statuses(paper.market_open("BTC", True, 1.0)))
            acted.append(paper.update_isolated_margin(5, "BTC"))

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    assert [a["status"] for a in (acted[0], acted[2])] == ["ok", "ok"] and "filled" in acted[1][0]
    ledger = [f for f in got if f["channel"] == "userNonFundingLedgerUpdates"]
    assert ledger == [{"channel": "userNonFundingLedgerUpdates", "data": {"isSnapshot": True, "user": paper.address, "nonFundingLedgerUpdates": []}}]
    assets_seen = [f["data"] for f in got if f["channel"] == "activeAssetData"]
    assert assets_seen[0]["leverage"] == {"type": "cross", "value": 40}  # a new account: cross at the coin's largest
    assert assets_seen[1]["leverage"] == {"type": "isolated", "value": 10, "rawUsd": "0.0"}  # updateLeverage, no position yet
    last = assets_seen[-1]["leverage"]
    assert last["type"] == "isolated" and float(last["rawUsd"]) == pytest.approx(-101.0 + 101.0 / 10 + 5)  # the fill, then 5 USDC added
    assert all(f["data"]["user"] == paper.address for f in got)
    assert [f for f in got if f["channel"] == "notification"] == []


def test_an_archive_without_meta_or_users_serves_every_wallet_stream(tmp_path):
    """Imported history's shape (books and trades, no /info snapshots, no user stream): the same
    first frames, then the wallet's own fill, and no error frame."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    from .archives import make_archive

    root = tmp_path / "archive"
    make_archive(root, [{"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}], 200)
    log = tmp_path / "sent.jsonl"
    source = ArchiveSource(root, speed=1.0)
    wallet = fresh_wallet()
    with ServerThread(lambda: HyperliquidServer(source, rate=None, sent_log=log, paper=archive_session(source))) as server:
        info = Info(server.base_url, skip_ws=False)
        try:
            streams = Streams()
            for kind in WALLET_SUBS:
                info.subscribe({"type": kind, "user": wallet.address}, streams.q.put)
            info.subscribe({"type": "activeAssetData", "user": wallet.address, "coin": "BTC"}, streams.q.put)
            streams.drain(until=lambda s: bool(s.of("activeAssetData")) and bool(s.of("webData2")), timeout=10)
            [filled] = statuses(Exchange(wallet, server.base_url).market_open("BTC", True, 0.001))
            streams.drain(until=lambda s: bool(s.of("user")), timeout=10)
        finally:
            info.disconnect_websocket()
    assert "filled" in filled
    assert {f["channel"] for f in streams.frames} >= {"userFills", "userFundings", "userNonFundingLedgerUpdates", "webData2", "activeAssetData", "user", "orderUpdates"}
    assert [fill["oid"] for f in streams.of("user") for fill in f["data"]["fills"]] == [filled["filled"]["oid"]]
    assert [f for f in sent_frames(log) if f.get("channel") == "error"] == []


def test_basic_tpsl_with_a_fresh_wallet_and_its_order_updates(server):
    """The SDK's basic_tpsl flow on both servers: a long, a reduce-only stop below the market (shown as
    a trigger, canceled), and a normalTpsl entry with its take profit; orderUpdates says each step."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    wallet = fresh_wallet()
    me = wallet.address
    info = Info(server.base_url, skip_ws=False)
    updates: list[dict[str, Any]] = []
    try:
        info.subscribe({"type": "orderUpdates", "user": me}, updates.append)
        ex = Exchange(wallet, server.base_url)
        assert statuses(ex.market_open("ETH", True, 0.05))[0]["filled"]["totalSz"] == "0.05"
        bid = float(info.l2_snapshot("ETH")["levels"][0][0]["px"])
        stop = {"trigger": {"triggerPx": round(bid * 0.5, 1), "isMarket": True, "tpsl": "sl"}}
        [resting] = statuses(ex.order("ETH", False, 0.05, round(bid * 0.4, 1), stop, reduce_only=True))
        oid = resting["resting"]["oid"]
        [shown] = [o for o in info.frontend_open_orders(me) if o["oid"] == oid]
        assert shown["isTrigger"] is True and shown["orderType"] == "Stop Market" and shown["triggerCondition"].startswith("Price below")
        assert statuses(ex.cancel("ETH", oid)) == ["success"]
        assert info.query_order_by_oid(me, oid)["order"]["status"] == "canceled"
        entry = {"coin": "ETH", "is_buy": True, "sz": 0.05, "limit_px": round(bid * 0.9, 1), "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False}
        take_profit = {"coin": "ETH", "is_buy": False, "sz": 0.05, "limit_px": round(bid * 1.5, 1), "order_type": {"trigger": {"triggerPx": round(bid * 1.5, 1), "isMarket": True, "tpsl": "tp"}}, "reduce_only": True}
        placed = statuses(ex.bulk_orders([entry, take_profit], grouping="normalTpsl"))
        assert "resting" in placed[0] and placed[1] == "waitingForFill"
        deadline = time.time() + 10
        while len(updates) < 5 and time.time() < deadline:
            time.sleep(0.1)
    finally:
        info.disconnect_websocket()
    seen = [(u["order"]["oid"], u["status"]) for frame in updates for u in frame["data"]]
    assert (oid, "open") in seen and (oid, "canceled") in seen
    assert [status for _, status in seen][:1] == ["filled"]  # the market order came first
    assert info.user_state(me)["assetPositions"][0]["position"]["szi"] == "0.05"

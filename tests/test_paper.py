"""Paper trading: unchanged SDK ``Exchange`` code against ``simulate`` and ``serve --paper``, the
matching engine's queue and book rules, and in-process backtests that fill exactly as over the wire."""

from __future__ import annotations

import http.client
import queue
import time
from pathlib import Path
from typing import Any

import eth_account
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay import Replay
from replay.paper.assets import AssetSpec
from replay.paper.engine import PaperEngine
from replay.paper.session import archive_session, synthetic_session
from replay.paper.signing import sign_action
from replay.pytest_plugin import FIRST_NS
from replay.serving.archive_source import ArchiveSource
from replay.serving.server import HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource

from .browser import PAGE_FACTS, Browser
from .recording import record

WALLET = eth_account.Account.from_key("0x" + "22" * 32)
OTHER = eth_account.Account.from_key("0x" + "33" * 32)
GTC = {"limit": {"tif": "Gtc"}}


def simulate(accounts: set[str] | None = None, latency_ms: int = 0, **market: Any) -> ServerThread:
    def make() -> HyperliquidServer:
        m = SyntheticSource(seed=3, start_ms=int(time.time() * 1000) - 60_000, **market)
        return HyperliquidServer(m, rate=10, paper=synthetic_session(m, accounts=accounts, latency_ms=latency_ms))

    return ServerThread(make)


def statuses(response: dict[str, Any]) -> list[Any]:
    assert response["status"] == "ok", response
    return response["response"]["data"]["statuses"]


# --- the SDK against simulate ---------------------------------------------------------------------------


@pytest.fixture(params=["simulate", "serve --paper"])
def paper_server(request):
    """Each local server that takes orders, with its market running."""
    if request.param == "simulate":
        with simulate() as server:
            yield server
        return
    root = request.getfixturevalue("recorded")
    source = ArchiveSource(root, speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None, paper=archive_session(source))) as server:
        yield server


def test_sdk_exchange_places_fills_cancels_and_sees_its_position(paper_server):
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info
    from hyperliquid.utils.types import Cloid

    server = paper_server
    info = Info(server.base_url, skip_ws=True)
    ex = Exchange(WALLET, server.base_url)
    me = WALLET.address
    assert ex.schedule_cancel(None)["status"] == "ok"  # an action starts serve's paper clock
    time.sleep(0.3)  # books have printed
    bid = float(info.l2_snapshot("ETH")["levels"][0][0]["px"])

    # a resting limit order shows in openOrders and orderStatus, and cancels by oid
    [resting] = statuses(ex.order("ETH", True, 0.05, round(bid * 0.9, 1), GTC))
    oid = resting["resting"]["oid"]
    assert [o["oid"] for o in info.open_orders(me)] == [oid]
    assert info.query_order_by_oid(me, oid)["order"]["status"] == "open"
    assert statuses(ex.cancel("ETH", oid)) == ["success"]
    assert info.open_orders(me) == [] and info.query_order_by_oid(me, oid)["order"]["status"] == "canceled"
    assert "never placed" in statuses(ex.cancel("ETH", oid))[0]["error"]

    # by cloid, and modified
    cloid = Cloid.from_str("0x" + "ab" * 16)
    [resting] = statuses(ex.order("ETH", False, 0.05, round(bid * 1.1, 1), GTC, cloid=cloid))
    assert resting["resting"]["cloid"] == cloid.to_raw()
    assert ex.modify_order(resting["resting"]["oid"], "ETH", False, 0.06, round(bid * 1.2, 1), GTC)["status"] == "ok"
    [moved] = info.open_orders(me)
    assert (moved["sz"], moved["limitPx"]) == ("0.06", f"{round(bid * 1.2, 1)}".rstrip("0").rstrip("."))
    statuses(ex.cancel("ETH", moved["oid"]))
    [again] = statuses(ex.order("ETH", False, 0.05, round(bid * 1.1, 1), GTC, cloid=Cloid.from_str("0x" + "cd" * 16)))
    assert again["resting"]["cloid"] == "0x" + "cd" * 16
    assert statuses(ex.cancel_by_cloid("ETH", Cloid.from_str("0x" + "cd" * 16))) == ["success"]
    assert info.open_orders(me) == []

    # a market order fills at the book; the position shows in clearinghouseState
    [filled] = statuses(ex.market_open("ETH", True, 0.05))
    assert filled["filled"]["totalSz"] == "0.05"
    [pos] = info.user_state(me)["assetPositions"]
    assert pos["position"]["coin"] == "ETH" and pos["position"]["szi"] == "0.05"
    fills = info.user_fills(me)
    assert sum(float(f["sz"]) for f in fills if f["oid"] == filled["filled"]["oid"]) == pytest.approx(0.05)
    assert all(f["crossed"] and f["dir"] == "Open Long" for f in fills)

    # reduce only: refused while it would increase, closes otherwise
    assert "would increase position" in statuses(ex.order("ETH", True, 0.05, round(bid * 1.05, 1), {"limit": {"tif": "Ioc"}}, reduce_only=True))[0]["error"]
    statuses(ex.market_close("ETH"))
    assert info.user_state(me)["assetPositions"] == []
    assert info.user_fills(me)[0]["dir"] == "Close Long"  # newest first

    # leverage: isolated 5x while flat, shown on the next position
    assert ex.update_leverage(5, "ETH", is_cross=False)["status"] == "ok"
    statuses(ex.market_open("ETH", False, 0.05))
    [pos] = info.user_state(me)["assetPositions"]
    assert pos["position"]["leverage"]["type"] == "isolated" and pos["position"]["leverage"]["value"] == 5
    assert ex.update_leverage(500, "ETH")["status"] == "err"


def test_the_exchange_refuses_what_the_exchange_refuses(paper_server):
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    server = paper_server
    info = Info(server.base_url, skip_ws=True)
    ex = Exchange(WALLET, server.base_url)
    assert ex.schedule_cancel(None)["status"] == "ok"  # an action starts serve's paper clock
    time.sleep(0.3)
    book = info.l2_snapshot("ETH")["levels"]
    bid, ask = float(book[0][0]["px"]), float(book[1][0]["px"])
    first = lambda r: statuses(r)[0]["error"]
    assert first(ex.order("ETH", True, 0.05, bid + 0.123456, GTC)) == "Price must be divisible by tick size. asset=1"
    assert first(ex.order("ETH", True, 0.00001, bid, GTC)) == "Order has invalid size. asset=1"
    assert first(ex.order("ETH", True, 0.001, bid, GTC)) == "Order must have minimum value of $10. asset=1"
    assert first(ex.order("ETH", True, 10_000.0, bid, GTC)) == "Insufficient margin to place order. asset=1"  # at the default: cross at the coin's largest leverage
    assert first(ex.order("ETH", True, 0.05, round(bid * 0.5), {"limit": {"tif": "Ioc"}})) == "Order could not immediately match against any resting orders. asset=1"
    alo = first(ex.order("ETH", True, 0.05, round(ask * 1.01, 1), {"limit": {"tif": "Alo"}}))
    assert alo.startswith("Post only order would have immediately matched, bbo was ") and alo.endswith(" asset=1")


def _post_exchange(server: HyperliquidServer, body: dict[str, Any] | bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", "/exchange", body if isinstance(body, bytes) else orjson.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, orjson.loads(data) if response.status == 200 else data.decode()


def test_forged_signatures_and_replayed_nonces_are_refused():
    action = {"type": "cancel", "cancels": [{"a": 1, "o": 1}]}
    with simulate(accounts={WALLET.address}) as server:
        nonce = int(time.time() * 1000)
        good = {"action": action, "nonce": nonce, "signature": sign_action(WALLET.key, action, nonce)}
        status, answer = _post_exchange(server, good)
        assert status == 200 and answer["status"] == "ok"
        # the same nonce again
        status, answer = _post_exchange(server, good)
        assert answer["status"] == "err" and "already used" in answer["response"]
        # signed by someone else, or the action changed after signing: a signer the exchange does not know
        forged = {"action": action, "nonce": nonce + 1, "signature": sign_action(OTHER.key, action, nonce + 1)}
        assert _post_exchange(server, forged)[1] == {"status": "err", "response": f"User or API Wallet {OTHER.address.lower()} does not exist."}
        tampered = {"action": {**action, "cancels": [{"a": 1, "o": 2}]}, "nonce": nonce + 2, "signature": sign_action(WALLET.key, action, nonce + 2)}
        assert "does not exist" in _post_exchange(server, tampered)[1]["response"]
        # signed for mainnet: the server is not mainnet, so the recovered signer is someone else
        mainnet = {"action": action, "nonce": nonce + 3, "signature": sign_action(WALLET.key, action, nonce + 3, mainnet=True)}
        assert "does not exist" in _post_exchange(server, mainnet)[1]["response"]
        # malformed signature, stale nonce, bad bodies
        broken = {"action": action, "nonce": nonce + 4, "signature": {"r": "0x0", "s": "0x0", "v": 27}}
        assert _post_exchange(server, broken)[1]["response"].startswith("Invalid signature")
        stale = nonce - 3 * 86_400_000
        assert "Invalid nonce" in _post_exchange(server, {"action": action, "nonce": stale, "signature": sign_action(WALLET.key, action, stale)})[1]["response"]
        assert _post_exchange(server, b"{not json")[0] == 400
        status, text = _post_exchange(server, {"action": action, "nonce": nonce})
        assert status == 422 and "missing field `signature`" in text


def test_wallet_streams_carry_the_paper_account_over_the_websocket():
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    me = WALLET.address
    with simulate(accounts={me}) as server:
        info = Info(server.base_url, skip_ws=False)
        got: queue.Queue[dict[str, Any]] = queue.Queue()
        try:
            info.subscribe({"type": "userFills", "user": me}, got.put)
            info.subscribe({"type": "orderUpdates", "user": me}, got.put)
            info.subscribe({"type": "userEvents", "user": me}, got.put)
            first = got.get(timeout=10)
            assert first["data"]["isSnapshot"] is True and first["data"]["fills"] == []
            ex = Exchange(WALLET, server.base_url)
            bid = float(info.l2_snapshot("ETH")["levels"][0][0]["px"])
            [resting] = statuses(ex.order("ETH", True, 0.05, round(bid * 0.9, 1), GTC))
            statuses(ex.cancel("ETH", resting["resting"]["oid"]))
            [filled] = statuses(ex.market_open("ETH", True, 0.05))
            n_fills = len(info.user_fills(me))
            frames: list[dict[str, Any]] = []

            def count(channel: str) -> int:
                if channel == "orderUpdates":
                    return sum(len(f["data"]) for f in frames if f["channel"] == channel)
                return sum(len(f["data"]["fills"]) for f in frames if f["channel"] == channel)

            deadline = time.time() + 10
            while (count("userFills") < n_fills or count("user") < n_fills or count("orderUpdates") < 3) and time.time() < deadline:
                frames.append(got.get(timeout=10))
        finally:
            info.disconnect_websocket()
    updates = [u for f in frames if f["channel"] == "orderUpdates" for u in f["data"]]
    assert [u["status"] for u in updates][:3] == ["open", "canceled", "filled"]
    streamed = [fill for f in frames if f["channel"] == "userFills" for fill in f["data"]["fills"]]
    assert {fill["oid"] for fill in streamed} == {filled["filled"]["oid"]}
    events = [fill for f in frames if f["channel"] == "user" for fill in f["data"]["fills"]]
    assert events == streamed  # userEvents carries the same fills


# --- serve --paper, and the same fills in-process -------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """An archive recorded from simulate: ETH's book, trades and context, with meta snapshots."""
    root = tmp_path_factory.mktemp("paper")
    subs = [{"type": "l2Book", "coin": "ETH"}, {"type": "trades", "coin": "ETH"}, {"type": "activeAssetCtx", "coin": "ETH"}, {"type": "allMids"}]
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=9), rate=50)) as server:
        record(root, server.ws_url, subs, 4.0, meta=True)
    return root


def _ladder(mid: float) -> list[tuple[bool, float, float]]:
    """Resting orders around ``mid`` that the recorded market reaches: (is_buy, size, price)."""
    return [(True, 0.05, round(mid - k * 0.3, 1)) for k in range(1, 4)] + [(False, 0.05, round(mid + k * 0.3, 1)) for k in range(1, 4)]


def _ladder_requests(mid: float) -> list[dict[str, Any]]:
    return [{"coin": "ETH", "is_buy": b, "sz": s, "limit_px": p, "order_type": GTC, "reduce_only": False} for b, s, p in _ladder(mid)]


def _first_mid(root: Path) -> tuple[int, float]:
    replay = Replay(root)
    replay.subscribe({"type": "l2Book", "coin": "ETH"}, lambda m: None)
    item = next(i for i in replay.items() if i.stream is not None)
    bids, asks = item.message["data"]["levels"]
    return item.recv_ns, (float(bids[0]["px"]) + float(asks[0]["px"])) / 2


def _in_process(root: Path, start_ns: int, mid: float) -> list[dict[str, Any]]:
    replay = Replay(root, start=start_ns / 1e6)
    paper = replay.paper(WALLET.address, coins=["ETH"])
    assert all("resting" in s for s in statuses(paper.bulk_orders(_ladder_requests(mid))))
    replay.run()
    return paper.fills


def test_serve_paper_fills_equal_the_in_process_backtest(recorded):
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    first_ns, mid = _first_mid(recorded)
    start_ns = first_ns - 1_000_000  # before any frame: both sides act on an empty market, then see the same frames
    source = ArchiveSource(recorded, start=start_ns // 1_000_000, speed=20.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None, paper=archive_session(source))) as server:
        ex = Exchange(WALLET, server.base_url)
        # one action: it lands at the clock's start whatever the network's delay (a second one would not)
        assert all("resting" in s for s in statuses(ex.bulk_orders(_ladder_requests(mid))))
        time.sleep(0.6)  # 5 s of archive at 20x
        over_the_wire = list(reversed(Info(server.base_url, skip_ws=True).user_fills(WALLET.address)))
    in_process = _in_process(recorded, start_ns, mid)
    assert in_process, "the ladder never filled: the test archive is too quiet"
    assert over_the_wire == in_process
    assert _in_process(recorded, start_ns, mid) == in_process  # and again: deterministic


def test_sdk_exchange_against_serve_paper_trades_the_archived_book(recorded):
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    source = ArchiveSource(recorded, speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None, paper=archive_session(source))) as server:
        info = Info(server.base_url, skip_ws=True)
        ex = Exchange(WALLET, server.base_url)
        # the first action starts the paper clock at the archive's first frame: no book has printed yet
        assert ex.update_leverage(10, "ETH")["status"] == "ok"
        time.sleep(0.5)
        book = info.l2_snapshot("ETH")["levels"]
        [filled] = statuses(ex.market_open("ETH", True, 0.05))
        assert float(filled["filled"]["avgPx"]) >= float(book[1][0]["px"]) * 0.99
        [pos] = info.user_state(WALLET.address)["assetPositions"]
        assert pos["position"]["szi"] == "0.05"
        [resting] = statuses(ex.order("ETH", False, 0.05, round(float(book[1][0]["px"]) * 1.2, 1), GTC))
        assert info.frontend_open_orders(WALLET.address)[0]["oid"] == resting["resting"]["oid"]
        statuses(ex.cancel("ETH", resting["resting"]["oid"]))
        assert info.open_orders(WALLET.address) == []


def test_serve_without_paper_says_how_to_get_it(recorded):
    source = ArchiveSource(recorded, speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None)) as server:
        status, text = _post_exchange(server, {"action": {"type": "cancel"}, "nonce": 1, "signature": {}})
    assert status == 404 and "serve --paper" in text


# --- the matching rules on a hand-made archive ---------------------------------------------------------

BTC = {0: AssetSpec(0, "BTC", 2, 20, False)}


def _book(t: int, bid: tuple[str, str], ask: tuple[str, str]) -> dict[str, Any]:
    return {"channel": "l2Book", "data": {"coin": "BTC", "time": t, "levels": [[{"px": bid[0], "sz": bid[1], "n": 1}], [{"px": ask[0], "sz": ask[1], "n": 1}]]}}


def _trade(t: int, side: str, px: str, sz: str, tid: int) -> dict[str, Any]:
    return {"channel": "trades", "data": [{"coin": "BTC", "side": side, "px": px, "sz": sz, "time": t, "hash": "0x" + "00" * 32, "tid": tid, "users": ["0x1", "0x2"]}]}


def test_a_resting_order_queues_behind_the_size_at_its_level(hl_replay):
    frames = [
        _book(1, ("100", "5"), ("101", "4")),
        _trade(2, "A", "100", "3", 1),  # 3 of the 5 ahead
        _trade(3, "B", "100", "9", 2),  # a buyer at our bid's price never reaches the bids
        _trade(4, "A", "100", "2.5", 3),  # the last 2 ahead, then 0.5 of ours
        _book(5, ("100", "1"), ("101", "4")),
        _trade(6, "A", "99", "10", 4),  # through our price: the rest of ours
        _book(7, ("99", "1"), ("100", "4")),
    ]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "44" * 20, coins=["BTC"], assets=BTC)
    placed: list[Any] = []

    def on_book(msg: dict[str, Any]) -> None:
        if not placed:
            placed.append(statuses(paper.order("BTC", True, 1.0, 100.0, GTC))[0]["resting"]["oid"])
            # a second order at the same level queues behind ours too (and behind the 5)
            placed.append(statuses(paper.order("BTC", True, 0.2, 100.0, GTC))[0]["resting"]["oid"])

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    fills = [(f["oid"], f["px"], f["sz"], f["crossed"]) for f in paper.fills]
    assert fills == [(placed[0], "100", "0.5", False), (placed[0], "100", "0.5", False), (placed[1], "100", "0.2", False)]
    assert paper.user_state()["assetPositions"][0]["position"]["szi"] == "1.2"
    fee = sum(float(f["fee"]) for f in paper.fills)
    assert fee == pytest.approx(1.2 * 100 * 0.00015)


def test_a_book_that_crosses_a_resting_order_fills_it_at_its_price(hl_replay):
    frames = [_book(1, ("100", "5"), ("101", "4")), _book(2, ("98", "5"), ("99", "0.3")), _book(3, ("98", "5"), ("99", "7"))]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "45" * 20, coins=["BTC"], assets=BTC)

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] == 1:
            statuses(paper.order("BTC", False, 1.0, 100.0, GTC))

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    # the crossing bid at 100 took 5 of ours... only 1 was for sale
    assert [(f["px"], f["sz"], f["side"]) for f in paper.fills] == [("100", "1.0", "A")]


def test_marketable_orders_walk_the_book_and_do_not_take_the_same_size_twice(hl_replay):
    replay = hl_replay([_book(1, ("100", "5"), ("101", "0.4")), _book(2, ("100", "5"), ("101", "0.4"))])
    paper = replay.paper("0x" + "46" * 20, coins=["BTC"], assets=BTC)
    got: list[Any] = []

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] == 1:
            got.append(statuses(paper.order("BTC", True, 0.3, 101.0, {"limit": {"tif": "Ioc"}}))[0])
            got.append(statuses(paper.order("BTC", True, 0.3, 101.0, {"limit": {"tif": "Ioc"}}))[0])
            got.append(statuses(paper.order("BTC", True, 0.3, 101.0, {"limit": {"tif": "Ioc"}}))[0])

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    assert got[0]["filled"]["totalSz"] == "0.3" and got[1]["filled"]["totalSz"] == "0.1"
    assert got[2] == {"error": "Order could not immediately match against any resting orders. asset=0"}


def test_schedule_cancel_cancels_every_order_at_its_time(hl_replay):
    t0 = FIRST_NS // 1_000_000
    frames = [_book(t0 + t, ("100", "5"), ("101", "4")) for t in range(0, 20_000, 1000)]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "47" * 20, coins=["BTC"], assets=BTC)
    updates: list[Any] = []
    replay.subscribe({"type": "orderUpdates", "user": paper.address}, updates.append)

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] == t0:
            statuses(paper.order("BTC", True, 1.0, 90.0, GTC))
            assert paper.schedule_cancel(paper.engine.time_ms + 1000)["status"] == "err"  # under 5 s ahead
            assert paper.schedule_cancel(paper.engine.time_ms + 10_000)["status"] == "ok"

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    assert [u["data"][0]["status"] for u in updates] == ["open", "scheduledCancel"]
    assert paper.open_orders() == []


# --- properties of the accounts ---------------------------------------------------------------------------

ENGINE_BOOK = [[{"px": f"{100 - i}", "sz": "50", "n": 1} for i in range(5)], [{"px": f"{101 + i}", "sz": "50", "n": 1} for i in range(5)]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(2, 200), st.integers(0, 6)), min_size=1, max_size=25))
def test_positions_are_the_sum_of_signed_fills_and_value_is_conserved_minus_fees(orders):
    engine = PaperEngine(BTC, balance=1_000_000.0)
    user = "0x" + "48" * 20
    for step, (is_buy, size, shift) in enumerate(orders):
        # the book moves between orders; the engine's marks move with it
        levels = [[{**lv, "px": str(int(lv["px"]) + shift)} for lv in side] for side in ENGINE_BOOK]
        engine.on_book("BTC", 1000 * (step + 1), levels)
        px = 110 + shift if is_buy else 90 + shift
        engine.act(user, {"type": "order", "orders": [{"a": 0, "b": is_buy, "p": str(px), "s": f"{size / 10:.1f}", "r": False, "t": {"limit": {"tif": "Ioc"}}}], "grouping": "na"})
    acc = engine.account(user)
    signed = sum(float(f["sz"]) * (1 if f["side"] == "B" else -1) for f in acc.fills)
    assert acc.positions["BTC"].szi == pytest.approx(signed, abs=1e-9) and len(acc.fills) >= len(orders)
    cash_flow = sum(-float(f["sz"]) * float(f["px"]) * (1 if f["side"] == "B" else -1) for f in acc.fills)
    fees = sum(float(f["fee"]) for f in acc.fills)
    mark = engine.mark("BTC")
    state = engine.clearinghouse_state(user)
    assert float(state["marginSummary"]["accountValue"]) == pytest.approx(1_000_000.0 + cash_flow + signed * mark - fees, abs=1e-4)
    closed = sum(float(f["closedPnl"]) for f in acc.fills)
    assert acc.usdc == pytest.approx(1_000_000.0 + closed - fees, abs=1e-4)


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=0, max_value=10**7, places=8, allow_nan=False, allow_infinity=False))
def test_wire_numbers_count_decimals_and_figures_as_decimal_does(value):
    from decimal import Decimal

    from replay.paper.assets import wire_decimal

    text = format(value, "f")
    parsed = wire_decimal(text)
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    assert parsed is not None and Decimal(parsed.text) == value and parsed.value == float(text)
    assert parsed.decimals == max(0, -exponent)
    if parsed.decimals:
        assert parsed.sig_figs == len(normal.as_tuple().digits)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=1e7, allow_nan=False).map(lambda x: round(x, 6)))
def test_in_process_orders_post_the_sdks_wire_numbers(x):
    from hyperliquid.utils.signing import float_to_wire as sdk_float_to_wire

    from replay.paper.client import float_to_wire

    assert float_to_wire(x) == sdk_float_to_wire(x)


def test_spot_orders_move_token_balances():
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    with simulate() as server:
        info = Info(server.base_url, skip_ws=True)
        ex = Exchange(WALLET, server.base_url)
        ask = float(info.l2_snapshot("@1")["levels"][1][0]["px"])
        [filled] = statuses(ex.order("@1", True, 300, round(ask * 1.05, 6), {"limit": {"tif": "Ioc"}}))
        bought = float(filled["filled"]["totalSz"])
        balances = {b["coin"]: b for b in info.spot_user_state(WALLET.address)["balances"]}
        fee = sum(float(f["fee"]) for f in info.user_fills(WALLET.address))
        assert [f["feeToken"] for f in info.user_fills(WALLET.address)] == ["HFUN"] * len(info.user_fills(WALLET.address))
        hfun = next(t["index"] for t in info.spot_meta()["tokens"] if t["name"] == "HFUN")
        assert float(balances["HFUN"]["total"]) == pytest.approx(bought - fee, abs=1e-6) and balances["HFUN"]["token"] == hfun
        assert float(balances["USDC"]["total"]) < 100_000
        too_much = statuses(ex.order("@1", False, 10_000, round(ask * 0.5, 6), GTC))[0]["error"]
        assert too_much == "Order has insufficient spot balance to trade. asset=10001"


def test_funding_is_paid_on_the_hour_from_the_recorded_rate(hl_replay):
    hour = 1_767_225_600_000 + 3_600_000  # the first frame is 10 s before it
    frames = [
        _book(hour - 10_000, ("100", "5"), ("101", "4")),
        {"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": {"funding": "0.0001", "markPx": "100.5"}}},
        _book(hour + 1_000, ("110", "5"), ("111", "4")),
    ]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "49" * 20, coins=["BTC"], assets=BTC)
    fundings: list[Any] = []
    replay.subscribe({"type": "userFundings", "user": paper.address}, fundings.append)

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] < hour:
            statuses(paper.order("BTC", True, 2.0, 101.0, {"limit": {"tif": "Ioc"}}))

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    snapshot, frame = fundings  # the exchange's first frame: the account's fundings so far
    assert snapshot == {"channel": "userFundings", "data": {"isSnapshot": True, "user": paper.address, "fundings": []}}
    [delta] = frame["data"]["fundings"]
    # a long pays: 2 BTC x mark 100.5 (the last mid before the hour) x 0.0001
    assert (delta["time"], delta["coin"], delta["szi"], delta["usdc"], delta["fundingRate"]) == (hour, "BTC", "2.0", "-0.0201", "0.0001")
    assert paper.user_state()["assetPositions"][0]["position"]["cumFunding"]["allTime"] == "0.0201"


def test_cli_paper_options_are_checked(tmp_path):
    from click.testing import CliRunner

    from replay.cli import main

    from .archives import make_archive

    make_archive(tmp_path / "a", [{"type": "l2Book", "coin": "BTC"}], 5)
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "a"), "--account", "0x" + "12" * 20])
    assert result.exit_code == 2 and "--account needs --paper" in result.output
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "a"), "--paper", "--account", "bob"])
    assert result.exit_code == 2 and "is not an address" in result.output and "Traceback" not in result.output


def test_webdata2_and_modify_in_process(hl_replay):
    frames = [_book(t, ("100", "5"), ("101", "4")) for t in range(1, 6)]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "4a" * 20, coins=["BTC"], assets=BTC)
    states: list[Any] = []
    replay.subscribe({"type": "webData2", "user": paper.address}, states.append)
    oids: list[int] = []

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] == 2:
            oids.append(statuses(paper.order("BTC", True, 1.0, 90.0, GTC))[0]["resting"]["oid"])
        if msg["data"]["time"] == 3:  # the single "modify" action (the SDK sends batchModify)
            wire = {"a": 0, "b": True, "p": "95", "s": "2", "r": False, "t": {"limit": {"tif": "Gtc"}}}
            assert paper.session.act(paper.address, {"type": "modify", "oid": oids[0], "order": wire}, paper.now_ns) == {"status": "ok", "response": {"type": "default"}}
            bad = paper.session.act(paper.address, {"type": "modify", "oid": oids[0], "order": wire}, paper.now_ns)
            assert bad == {"status": "err", "response": "Cannot modify canceled or filled order"}

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    assert states[0]["data"]["openOrders"] == []  # the snapshot, before anything happened
    assert [o["limitPx"] for o in states[1]["data"]["openOrders"]] == ["90"]
    assert [(o["limitPx"], o["sz"]) for o in states[-1]["data"]["openOrders"]] == [("95", "2.0")]
    assert states[-1]["data"]["clearinghouseState"]["marginSummary"]["accountValue"] == "100000.0"


def test_serve_paper_info_follows_the_paper_clock_without_a_socket(recorded):
    """The SDK's market_open prices from /info allMids: without a socket, /info must see the market traded in."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    source = ArchiveSource(recorded, speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None, paper=archive_session(source))) as server:
        info = Info(server.base_url, skip_ws=True)
        first = info.l2_snapshot("ETH")["time"]
        assert Exchange(WALLET, server.base_url).schedule_cancel(None)["status"] == "ok"  # the paper clock starts
        time.sleep(1.0)
        later = info.l2_snapshot("ETH")["time"]
    assert later - first >= 500  # about a second of archive later, as the paper clock is


def test_serve_paper_over_an_archive_without_meta_snapshots(tmp_path):
    """Imported history has no /info snapshots: the SDK still starts, from the paper exchange's own assets."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    from .archives import make_archive

    make_archive(tmp_path, [{"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}], 200)
    source = ArchiveSource(tmp_path, speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None, paper=archive_session(source))) as server:
        info = Info(server.base_url, skip_ws=True)
        assert info.meta()["universe"] == [{"name": "BTC", "szDecimals": 5, "maxLeverage": 20}]  # lot size read from the books
        ex = Exchange(WALLET, server.base_url)
        assert ex.schedule_cancel(None)["status"] == "ok"
        time.sleep(0.3)
        [filled] = statuses(ex.market_open("BTC", True, 0.001))
        assert filled["filled"]["totalSz"] == "0.001"


# --- clean accounts: a wallet's streams carry only what it does ---------------------------------------------

SAMPLE = "0xe746435d136c4714383a64ee28e35c8bdb8d5cb1"  # the simulator's sample user (its orderUpdates stream is busy)
NEWCOMER = eth_account.Account.from_key("0x" + "5a" * 32)


@pytest.fixture(scope="module")
def recorded_with_a_user(tmp_path_factory) -> Path:
    """ETH's market and a sample user's wallet streams, recorded from simulate."""
    root = tmp_path_factory.mktemp("paper-user")
    subs = [{"type": "l2Book", "coin": "ETH"}, {"type": "trades", "coin": "ETH"}, {"type": "orderUpdates", "user": SAMPLE}, {"type": "userFills", "user": SAMPLE}]
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=9), rate=50)) as server:
        record(root, server.ws_url, subs, 3.0, meta=True)
    return root


@pytest.fixture(params=["simulate", "serve --paper"])
def server_with_sample_user(request):
    if request.param == "simulate":
        def make() -> HyperliquidServer:
            m = SyntheticSource(seed=3, start_ms=int(time.time() * 1000) - 60_000)
            return HyperliquidServer(m, rate=20, paper=synthetic_session(m, sample_users={SAMPLE}))

        with ServerThread(make) as server:
            yield server
        return
    source = ArchiveSource(request.getfixturevalue("recorded_with_a_user"), speed=1.0)
    with ServerThread(lambda: HyperliquidServer(source, rate=None, paper=archive_session(source))) as server:
        yield server


def test_a_new_wallet_sees_only_its_own_orders_and_fills(server_with_sample_user):
    """The SDK's flow: subscribe to your own streams first, then place and cancel a resting order."""
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    server = server_with_sample_user
    me = NEWCOMER.address
    info = Info(server.base_url, skip_ws=False)
    watcher = Info(server.base_url, skip_ws=False)  # the SDK routes orderUpdates by channel alone: one user a connection
    mine: queue.Queue[dict[str, Any]] = queue.Queue()
    sample: queue.Queue[dict[str, Any]] = queue.Queue()
    try:
        info.subscribe({"type": "orderUpdates", "user": me}, mine.put)
        info.subscribe({"type": "userFills", "user": me}, mine.put)
        watcher.subscribe({"type": "orderUpdates", "user": SAMPLE}, sample.put)
        ex = Exchange(NEWCOMER, server.base_url)
        assert ex.schedule_cancel(None)["status"] == "ok"  # starts serve's paper clock
        time.sleep(0.5)
        bid = float(info.l2_snapshot("ETH")["levels"][0][0]["px"])
        [resting] = statuses(ex.order("ETH", True, 0.05, round(bid * 0.8, 1), GTC))
        oid = resting["resting"]["oid"]
        assert statuses(ex.cancel("ETH", oid)) == ["success"]
        assert info.query_order_by_oid(me, oid)["order"]["status"] == "canceled"
        frames: list[dict[str, Any]] = []
        deadline = time.time() + 10
        while sum(len(f["data"]) for f in frames if f["channel"] == "orderUpdates") < 2 and time.time() < deadline:
            try:
                frames.append(mine.get(timeout=1))
            except queue.Empty:
                pass
        time.sleep(1.5)  # anything else that would come, comes now
        while not mine.empty():
            frames.append(mine.get())
        sample_frames = []
        while not sample.empty():
            sample_frames.append(sample.get())
    finally:
        info.disconnect_websocket()
        watcher.disconnect_websocket()
    updates = [u for f in frames if f["channel"] == "orderUpdates" for u in f["data"]]
    assert [(u["order"]["oid"], u["status"]) for u in updates] == [(oid, "open"), (oid, "canceled")]
    fills = [f for f in frames if f["channel"] == "userFills"]
    assert fills == [{"channel": "userFills", "data": {"isSnapshot": True, "user": me, "fills": []}}]
    assert info.user_fills(me) == [] and info.open_orders(me) == []
    assert sample_frames, "the market's own user keeps its (sample or recorded) traffic"
    assert all(u["order"]["oid"] != oid for f in sample_frames for u in f["data"])


# --- trigger orders -------------------------------------------------------------------------------------------


def _ctx(t: int, mark: str) -> dict[str, Any]:
    return {"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": {"funding": "0.0", "markPx": mark, "midPx": mark, "oraclePx": mark}}}


def test_a_stop_loss_rests_off_the_book_and_closes_the_long_when_the_mark_crosses(hl_replay):
    frames = [
        _book(1, ("100", "5"), ("101", "5")), _ctx(1, "100.5"),
        _book(2, ("99", "5"), ("100", "5")), _ctx(2, "99.5"),  # above the stop: nothing
        _book(3, ("96", "5"), ("97", "5")), _ctx(3, "96.5"),  # the mark falls through 98: the stop fires
        _book(4, ("95", "5"), ("96", "5")), _ctx(4, "95.5"),
    ]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "4b" * 20, coins=["BTC"], assets=BTC)
    updates: list[Any] = []
    seen: dict[str, Any] = {}
    replay.subscribe({"type": "orderUpdates", "user": paper.address}, lambda m: updates.extend(m["data"]))

    def on_book(msg: dict[str, Any]) -> None:
        t = msg["data"]["time"]
        if t == 1:
            assert statuses(paper.order("BTC", True, 1.0, 101.0, {"limit": {"tif": "Ioc"}}))[0]["filled"]["totalSz"] == "1.0"
            [stop] = statuses(paper.order("BTC", False, 1.0, 90.0, {"trigger": {"triggerPx": 98.0, "isMarket": True, "tpsl": "sl"}}, reduce_only=True))
            seen["oid"] = stop["resting"]["oid"]
        if t == 2:
            seen["before"] = paper.engine.open_orders(paper.address, frontend=True)
            seen["book"] = [o.oid for side in paper.engine._resting("BTC") for o in side]

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    [before] = seen["before"]
    assert (before["oid"], before["isTrigger"], before["triggerPx"], before["triggerCondition"], before["orderType"]) == (seen["oid"], True, "98.0", "Price below 98.0", "Stop Market")
    assert seen["book"] == []  # off the book until it fires
    mine = [(u["order"]["oid"], u["status"]) for u in updates if u["order"]["oid"] == seen["oid"]]
    assert mine == [(seen["oid"], "open"), (seen["oid"], "triggered"), (seen["oid"], "filled")]
    closing = [f for f in paper.fills if f["oid"] == seen["oid"]]
    assert [(f["px"], f["sz"], f["side"]) for f in closing] == [("96", "1.0", "A")] and closing[0]["time"] == 3
    assert paper.user_state()["assetPositions"] == [] and paper.open_orders() == []


def test_normal_tpsl_waits_for_its_entry_and_a_filled_take_profit_cancels_the_stop(hl_replay):
    frames = [
        _book(1, ("100", "5"), ("101", "5")), _ctx(1, "100.5"),
        _book(2, ("99", "5"), ("100", "5")), _ctx(2, "99.5"),  # the entry (a bid at 100) fills when the ask comes down to it
        _book(3, ("104", "5"), ("105", "5")), _ctx(3, "104.5"),  # the take profit at 104 fires
    ]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "4c" * 20, coins=["BTC"], assets=BTC)
    got: dict[str, Any] = {}

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] == 1:
            got["statuses"] = statuses(paper.bulk_orders([
                {"coin": "BTC", "is_buy": True, "sz": 1.0, "limit_px": 100.0, "order_type": GTC, "reduce_only": False},
                {"coin": "BTC", "is_buy": False, "sz": 1.0, "limit_px": 103.0, "order_type": {"trigger": {"triggerPx": 104.0, "isMarket": False, "tpsl": "tp"}}, "reduce_only": True},
                {"coin": "BTC", "is_buy": False, "sz": 1.0, "limit_px": 90.0, "order_type": {"trigger": {"triggerPx": 95.0, "isMarket": True, "tpsl": "sl"}}, "reduce_only": True},
            ], grouping="normalTpsl"))

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    assert [list(s) if isinstance(s, dict) else s for s in got["statuses"]] == [["resting"], "waitingForFill", "waitingForFill"]
    assert [(f["side"], f["px"]) for f in paper.fills] == [("B", "100"), ("A", "104")]
    states = {o.oid: s for o, s, _ in paper.engine.account(paper.address).statuses.values()}
    assert sorted(states.values()) == ["filled", "filled", "siblingFilledCanceled"]
    assert paper.open_orders() == [] and paper.user_state()["assetPositions"] == []


# --- latency --------------------------------------------------------------------------------------------------


def _latency_run(tmp_path: Path, latency_ms: int) -> list[tuple[str, str, int]]:
    from replay.pytest_plugin import build_archive

    ms = 1_000_000
    frames = [(FIRST_NS, _book(1000, ("100", "5"), ("101", "5"))), (FIRST_NS + 150 * ms, _book(1150, ("104", "5"), ("105", "5"))), (FIRST_NS + 300 * ms, _book(1300, ("105", "5"), ("106", "5")))]
    root = build_archive(tmp_path / f"latency-{latency_ms}-{time.monotonic_ns()}", frames)
    replay = Replay(root)
    responses: list[Any] = []
    paper = replay.paper("0x" + "4d" * 20, coins=["BTC"], assets=BTC, latency_ms=latency_ms, on_response=responses.append)

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] == 1000:
            sent = paper.order("BTC", True, 1.0, 110.0, {"limit": {"tif": "Ioc"}})
            if latency_ms:
                assert sent["response"]["type"] == "pending" and not responses  # it has not arrived yet
            else:
                responses.append(sent)

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    assert [statuses(r)[0]["filled"]["totalSz"] for r in responses] == ["1.0"]
    return [(f["px"], f["sz"], f["time"]) for f in paper.fills]


def test_latency_makes_an_order_meet_the_book_of_its_arrival_deterministically(tmp_path):
    instant, late = _latency_run(tmp_path, 0), _latency_run(tmp_path, 200)
    t0 = FIRST_NS // 1_000_000
    assert instant == [("101", "1.0", t0)]
    assert late == [("105", "1.0", t0 + 200)]  # 200 ms later the book had moved up
    assert _latency_run(tmp_path, 200) == late  # the same inputs, the same fills


def test_over_the_wire_the_answer_comes_after_the_latency():
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    with simulate(latency_ms=300) as server:
        info = Info(server.base_url, skip_ws=True)
        ex = Exchange(WALLET, server.base_url)
        bid = float(info.l2_snapshot("ETH")["levels"][0][0]["px"])
        started = time.monotonic()
        [resting] = statuses(ex.order("ETH", True, 0.05, round(bid * 0.9, 1), GTC))
        assert time.monotonic() - started >= 0.3
        assert info.query_order_by_oid(WALLET.address, resting["resting"]["oid"])["order"]["status"] == "open"


# --- liquidation -----------------------------------------------------------------------------------------------


def test_a_20x_long_is_liquidated_at_the_mark_through_a_recorded_drop(hl_replay):
    frames = [
        _book(1, ("100", "500"), ("101", "500")), _ctx(1, "100.5"),
        _book(2, ("99", "500"), ("100", "500")), _ctx(2, "99.5"),  # down, not enough
        _book(3, ("97", "500"), ("98", "500")), _ctx(3, "97.5"),  # the margin runs out
        _book(4, ("90", "500"), ("91", "500")), _ctx(4, "90.5"),  # further down: nothing left to lose
    ]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "4e" * 20, coins=["BTC"], assets=BTC, balance=1_000.0)
    equity: list[float] = []

    def on_book(msg: dict[str, Any]) -> None:
        if msg["data"]["time"] == 1:
            assert statuses(paper.order("BTC", True, 190.0, 101.0, {"limit": {"tif": "Ioc"}}))[0]["filled"]["totalSz"] == "190.0"  # 19,190 USDC at 20x
            statuses(paper.order("BTC", True, 1.0, 95.0, GTC))  # a resting bid: liquidation takes it away
        equity.append(float(paper.user_state()["marginSummary"]["accountValue"]))

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    liquidated = [f for f in paper.fills if "liquidation" in f]
    [fill] = liquidated
    assert fill["liquidation"] == {"liquidatedUser": paper.address, "markPx": "97.5", "method": "market"}
    assert (fill["px"], fill["sz"], fill["side"]) == ("97.5", "190.0", "A")
    assert list(fill)[list(fill).index("tid") + 1 :] == ["liquidation", "feeToken"]  # where the exchange puts it
    assert paper.user_state()["assetPositions"] == [] and paper.open_orders() == []
    final = float(paper.user_state()["marginSummary"]["accountValue"])
    assert min(equity) > 0 and final == equity[-1] > 0  # never below zero; the drop to 90 after it moved nothing


# --- the report ---------------------------------------------------------------------------------------------------


def _round_trip(hl_replay) -> Any:
    t0 = FIRST_NS // 1_000_000
    frames = []
    for i in range(40):
        mid = 100 + (i if i < 20 else 40 - i)  # up, then down
        frames += [_book(t0 + i * 1000, (str(mid), "50"), (str(mid + 1), "50")), _ctx(t0 + i * 1000, f"{mid}.5")]
    replay = hl_replay(frames)
    paper = replay.paper("0x" + "4f" * 20, coins=["BTC"], assets=BTC, balance=10_000.0)

    def on_book(msg: dict[str, Any]) -> None:
        i = (msg["data"]["time"] - t0) // 1000
        if i == 2:
            statuses(paper.order("BTC", True, 10.0, 110.0, {"limit": {"tif": "Ioc"}}))
        if i == 25:
            statuses(paper.order("BTC", False, 4.0, 90.0, {"limit": {"tif": "Ioc"}}))

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    return paper


def test_the_report_says_what_the_run_did(hl_replay):
    paper = _round_trip(hl_replay)
    report = paper.report()
    [btc] = report["coins"]
    assert report["fills"] == btc["fills"] == 2 and btc["position"] == 6.0
    assert btc["realized_pnl"] == pytest.approx(4 * (115 - 103))  # bought at 103, sold 4 at 115
    assert btc["unrealized_pnl"] == pytest.approx(6 * (101.5 - 103))  # the last mark
    assert report["fees"] == pytest.approx(sum(float(f["fee"]) for f in paper.fills))
    assert report["volume"] == pytest.approx(10 * 103 + 4 * 115)
    assert report["max_drawdown"] > 0 and 0 < report["time_in_market_pct"] <= 1
    assert report["equity_end"] == pytest.approx(10_000 + report["pnl"], abs=0.01)


def test_the_report_page_in_a_real_browser(hl_replay, tmp_path):
    paper = _round_trip(hl_replay)
    page = paper.report_html(tmp_path / "report.html")
    report = paper.report()
    browser = Browser()
    try:
        facts = browser.evaluate(page, PAGE_FACTS)
        shown = browser.evaluate(page, "Object.fromEntries([...document.querySelectorAll('tr[data-figure]')].map(r => [r.dataset.figure, r.querySelector('td').innerText]))")
    finally:
        browser.close()
    assert shown["pnl"] == f"{report['pnl']:,.2f}" and shown["fees"] == f"{report['fees']:,.2f}"
    assert shown["realized_pnl"] == f"{report['realized_pnl']:,.2f}" and shown["fills"] == "2"
    assert shown["time_in_market_pct"] == f"{report['time_in_market_pct']:.2%}"
    assert facts["chart"]["width"] > 300 and facts["chart"]["height"] > 100
    assert facts["requests"] == [] and paper.address in facts["text"]


def test_simulate_writes_the_report_of_the_accounts_that_traded_when_stopped(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from hyperliquid.exchange import Exchange

    report = tmp_path / "paper.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "replay.cli", "simulate", "--port", "0", "--rate", "20", "--latency-ms", "0", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        proc.stdout.readline()  # ws URL
        base = proc.stdout.readline().split()[2]  # base URL: http://...
        ex = Exchange(WALLET, base)
        statuses(ex.market_open("ETH", True, 0.05))
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "wrote the paper report of 1 account(s)" in err
    page = report.read_text()
    assert WALLET.address.lower() in page and 'id="chart"' in page

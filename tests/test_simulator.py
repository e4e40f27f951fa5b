from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from replay.serving.server import Faults, HyperliquidServer, Limits, ServerThread
from replay.serving.synthetic_source import SyntheticSource
from schemas import parse_subscription, to_row
from schemas.protocol import GREETING, DataFrame, Greeting, Malformed, Pong, ServerError, SubscriptionResponse

from .conftest import same
from .recording import EVERY_CHANNEL, USER
from .wsclient import Client

SNAPSHOT_FIRST = {"userFills", "userFundings", "userNonFundingLedgerUpdates", "userTwapSliceFills", "userTwapHistory"}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def server(**kw: Any) -> HyperliquidServer:
    kw.setdefault("rate", None)
    return HyperliquidServer(SyntheticSource(seed=kw.pop("seed", 7), tick_ms=kw.pop("tick_ms", 1000)), **kw)


def receive(sub: dict[str, Any], n: int, **server_options: Any) -> list[dict[str, Any]]:
    """The first ``n`` data frames one client gets for ``sub`` from a fresh simulator."""

    async def go() -> list[dict[str, Any]]:
        async with server(**server_options) as srv:
            client = await Client.open(srv.ws_url)
            await client.subscribe(sub)
            frames = await client.data(n)
            await client.close()
        return frames

    return run(go())


@pytest.mark.parametrize("raw", EVERY_CHANNEL, ids=lambda s: "-".join(str(v) for v in s.values())[:40])
def test_every_channel_is_served_with_hyperliquids_frames(raw):
    async def go() -> None:
        async with server() as srv:
            client = await Client.open(srv.ws_url)
            assert await client.next() == Greeting(GREETING)
            await client.subscribe(raw)
            response = await client.next()
            sub = parse_subscription(raw)
            assert isinstance(response, SubscriptionResponse) and response.method == "subscribe"
            assert parse_subscription(response.subscription) == sub
            frames = await client.data(3, timeout=20)
            for frame in frames:
                assert frame["channel"] == sub.channel
                assert to_row(frame, recv_ns=1, session="s", seq=1).typed, "synthetic frames fit the same shapes as real ones"
            if sub.type in SNAPSHOT_FIRST:
                assert frames[0]["data"]["isSnapshot"] is True and "isSnapshot" not in frames[1]["data"]
                assert frames[0]["data"]["user"] == USER
            await client.close()

    run(go())


def test_book_bbo_trades_and_mids_agree_at_the_same_tick():
    market = SyntheticSource(seed=3)
    frames = {t: market.frames(parse_subscription(s)) for t, s in {
        "l2Book": {"type": "l2Book", "coin": "BTC"}, "bbo": {"type": "bbo", "coin": "BTC"}, "allMids": {"type": "allMids"},
    }.items()}
    for _ in range(50):
        book, bbo, mids = (next(frames[k])["data"] for k in ("l2Book", "bbo", "allMids"))
        bids, asks = book["levels"]
        assert 17 <= len(bids) <= 20 and 17 <= len(asks) <= 20  # a trade can empty up to 3 levels
        assert [bids[0], asks[0]] == bbo["bbo"] and book["time"] == bbo["time"]
        assert float(bids[0]["px"]) < float(mids["mids"]["BTC"]) < float(asks[0]["px"])
        assert all(float(a["px"]) > float(b["px"]) for a, b in zip(bids, bids[1:]))
        assert all(float(a["px"]) < float(b["px"]) for a, b in zip(asks, asks[1:]))
    market = SyntheticSource(seed=3)
    books, trades = market.frames(parse_subscription({"type": "l2Book", "coin": "ETH"})), market._ticks("ETH")
    for _ in range(50):
        bids, asks = next(books)["data"]["levels"]
        for trade in next(trades).trades():
            # the book is shown after the tick's trades: a trade's level is still there, or it emptied it
            if trade["side"] == "A":
                assert float(trade["px"]) >= float(bids[2]["px"]), "trades walk the book"
            else:
                assert float(trade["px"]) <= float(asks[2]["px"]), "trades walk the book"


def test_candles_are_built_from_the_trades():
    market = SyntheticSource(seed=5, tick_ms=1000)
    end_ms = market.start_ms + 180_000  # three minutes
    last_candle: dict[int, dict] = {}
    for frame in market.frames(parse_subscription({"type": "candle", "coin": "BTC", "interval": "1m"})):
        if frame["data"]["t"] >= end_ms - 60_000:
            break
        last_candle[frame["data"]["t"]] = frame["data"]
    minutes: dict[int, list[dict]] = {}
    for frame in market.frames(parse_subscription({"type": "trades", "coin": "BTC"})):
        if frame["data"][0]["time"] >= end_ms - 60_000:
            break
        for trade in frame["data"]:
            minutes.setdefault(trade["time"] - trade["time"] % 60_000, []).append(trade)
    assert sorted(last_candle) == sorted(minutes) and len(minutes) == 2
    for t, trades in minutes.items():
        candle = last_candle[t]
        assert (candle["o"], candle["c"], candle["n"]) == (trades[0]["px"], trades[-1]["px"], len(trades))
        assert float(candle["h"]) == max(float(x["px"]) for x in trades) and float(candle["l"]) == min(float(x["px"]) for x in trades)
        assert float(candle["v"]) == pytest.approx(sum(float(x["sz"]) for x in trades))


def test_same_seed_same_frames_different_seed_different_frames():
    async def first_frames(seed: int) -> list[dict[str, Any]]:
        async with server(seed=seed) as srv:
            client = await Client.open(srv.ws_url)
            for raw in EVERY_CHANNEL[:6]:
                await client.subscribe(raw)
            frames = await client.data(300)
            await client.close()
        by_channel: dict[str, list[Any]] = {}
        for f in frames:
            by_channel.setdefault(f["channel"], []).append(f)
        return sorted((k, v[:5]) for k, v in by_channel.items())  # interleaving may differ; each stream may not

    a, b, c = run(first_frames(1)), run(first_frames(1)), run(first_frames(2))
    assert same(a, b) and a != c


def test_prerendered_streams_cycle_through_their_first_frames():
    frames = receive({"type": "l2Book", "coin": "BTC"}, 7, prerender=3)
    expected = list(itertools.islice(SyntheticSource(seed=7, tick_ms=1000).frames(parse_subscription({"type": "l2Book", "coin": "BTC"})), 3))
    assert same(frames[:3], expected) and same(frames[3:6], expected) and same(frames[6], expected[0])


def test_protocol_replies_ping_errors_and_unsubscribe():
    async def go() -> None:
        async with server(rate=50) as srv:
            client = await Client.open(srv.ws_url)
            await client.next()
            await client.ping()
            assert await client.next() == Pong()
            await client.ws.send("hello")
            frame = await client.next()
            assert isinstance(frame, ServerError) and "Error parsing JSON" in frame.message
            await client.subscribe({"type": "nope"})
            assert await client.next() == ServerError('Invalid subscription {"type":"nope"}')
            await client.subscribe({"type": "trades", "coin": "DOGE"})
            frame = await client.next()
            assert isinstance(frame, ServerError) and "DOGE" in frame.message
            sub = {"type": "bbo", "coin": "BTC"}
            await client.subscribe(sub)
            await client.subscribe(sub)
            seen: list[Any] = []
            while not any(isinstance(f, ServerError) for f in seen):
                seen.append(await client.next())
            assert seen[-1].message.startswith("Already subscribed")
            await client.unsubscribe(sub)
            while not (isinstance(f := await client.next(), SubscriptionResponse) and f.method == "unsubscribe"):
                pass
            with pytest.raises(asyncio.TimeoutError):
                await client.next(timeout=0.5)  # no more frames after unsubscribing
            await client.close()

    run(go())


def test_idle_connections_are_closed():
    async def go() -> None:
        async with server(limits=Limits(idle_timeout_s=0.3)) as srv:
            client = await Client.open(srv.ws_url)
            await client.next()
            await asyncio.sleep(0.6)
            with pytest.raises(ConnectionClosed):
                while True:
                    await client.next()

    run(go())


def test_subscription_and_user_limits():
    async def answer(client: Client) -> Any:
        while isinstance(frame := await client.next(), DataFrame):
            pass
        return frame

    async def go() -> None:
        async with server(limits=Limits(max_subscriptions=3, max_users=1), rate=1) as srv:
            client = await Client.open(srv.ws_url)
            await client.next()
            for raw in ({"type": "bbo", "coin": "BTC"}, {"type": "userFills", "user": USER}):
                await client.subscribe(raw)
                assert isinstance(await answer(client), SubscriptionResponse)
            await client.subscribe({"type": "userFills", "user": "0x" + "1" * 40})
            assert "more than 1 total users" in (await answer(client)).message
            await client.subscribe({"type": "trades", "coin": "BTC"})
            assert isinstance(await answer(client), SubscriptionResponse)
            await client.subscribe({"type": "trades", "coin": "ETH"})
            assert "more than 3 total subscriptions" in (await answer(client)).message

    run(go())


def test_fault_drop_after_frames_and_refused_reconnect():
    async def go() -> None:
        faults = Faults(drop_after_frames=5, refuse_after_drop_s=1.0)
        async with server(faults=faults) as srv:
            client = await Client.open(srv.ws_url)
            await client.subscribe({"type": "bbo", "coin": "BTC"})
            data = 0
            with pytest.raises(ConnectionClosed):
                while True:
                    if isinstance(await client.next(), DataFrame):
                        data += 1
            assert data == 5
            with pytest.raises(InvalidStatus) as refused:
                await Client.open(srv.ws_url)
            assert refused.value.response.status_code == 503
            await asyncio.sleep(1.1)
            await (await Client.open(srv.ws_url)).close()

    run(go())


def test_fault_drop_after_seconds_only_on_chosen_connections():
    async def go() -> None:
        async with server(faults=Faults(drop_after_s=0.3, connections=frozenset({1})), rate=20) as srv:
            first = await Client.open(srv.ws_url)
            second = await Client.open(srv.ws_url)
            for c in (first, second):
                await c.subscribe({"type": "bbo", "coin": "BTC"})
            with pytest.raises(ConnectionClosed):
                while True:
                    await first.next()
            assert len(await second.data(10)) == 10  # the other connection is untouched

    run(go())


def test_fault_stall_keeps_the_connection_open_but_silent():
    async def go() -> None:
        async with server(faults=Faults(stall_after_frames=3)) as srv:
            client = await Client.open(srv.ws_url)
            await client.subscribe({"type": "bbo", "coin": "BTC"})
            assert len(await client.data(3)) == 3
            await client.ping()
            with pytest.raises(asyncio.TimeoutError):
                await client.next(timeout=0.5)  # not even a pong
            assert client.ws.state.name == "OPEN"

    run(go())


def test_fault_malformed_and_error_frames():
    async def go() -> None:
        async with server(faults=Faults(malformed_every=4, error_every=6)) as srv:
            client = await Client.open(srv.ws_url)
            await client.subscribe({"type": "bbo", "coin": "BTC"})
            frames = [await client.next() for _ in range(20)]
            await client.close()
            assert any(isinstance(f, Malformed) for f in frames)
            assert any(isinstance(f, ServerError) and "injected" in f.message for f in frames)

    run(go())


def test_fault_refuse_connections_at_start():
    async def go() -> None:
        async with server(faults=Faults(refuse_for_s=0.5)) as srv:
            with pytest.raises(InvalidStatus):
                await Client.open(srv.ws_url)
            await asyncio.sleep(0.6)
            await (await Client.open(srv.ws_url)).close()
            assert srv.stats["refused"] == 1

    run(go())


def test_a_client_that_does_not_read_is_dropped_not_buffered_for():
    async def go() -> None:
        async with server(limits=Limits(send_timeout_s=0.5)) as srv:
            client = await Client.open(srv.ws_url)
            client.ws.transport.pause_reading()  # a consumer that stopped reading
            await client.subscribe({"type": "l2Book", "coin": "BTC"})
            for _ in range(100):
                await asyncio.sleep(0.1)
                if srv.stats["slow_consumers_dropped"]:
                    break
            assert srv.stats["slow_consumers_dropped"] == 1
            sent = srv.stats["frames_sent"]
            await asyncio.sleep(0.3)
            assert srv.stats["frames_sent"] == sent  # it stopped sending instead of piling frames up
            assert not srv._clients

    run(go())


def test_wrong_path_is_404():
    async def go() -> None:
        async with server() as srv:
            with pytest.raises(InvalidStatus) as error:
                await Client.open(srv.ws_url.replace("/ws", "/other"))
            assert error.value.response.status_code == 404

    run(go())


def test_sent_log_has_every_frame_sent(tmp_path):
    log = tmp_path / "sent.jsonl"
    received = receive({"type": "trades", "coin": "BTC"}, 20, sent_log=log)
    logged = [orjson.loads(line) for line in log.read_text().splitlines()]
    assert logged[0]["frame"] == GREETING and all(e["conn"] == 1 and e["t_ns"] > 0 for e in logged)
    sent_data = [orjson.loads(e["frame"]) for e in logged if e["frame"].startswith('{"channel":"trades"')]
    assert sent_data[:20] == received


def test_the_official_sdk_websocket_manager_receives_every_subscription_it_supports():
    from hyperliquid.websocket_manager import WebsocketManager

    supported = [s for s in EVERY_CHANNEL if s["type"] not in ("notification", "userTwapSliceFills", "userTwapHistory")]
    supported = [s for s in supported if not (s["type"] == "l2Book" and "nSigFigs" in s)]
    got: dict[int, list[Any]] = {}
    lock = threading.Lock()
    with ServerThread(lambda: server(rate=20)) as srv:
        manager = WebsocketManager(srv.base_url)
        manager.start()
        try:
            for i, sub in enumerate(supported):
                manager.subscribe(sub, lambda msg, i=i: (lock.acquire(), got.setdefault(i, []).append(msg), lock.release()))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len([k for k, v in got.items() if len(v) >= 2]) < len(supported):
                time.sleep(0.1)
        finally:
            manager.stop()
    missing = [supported[i] for i in range(len(supported)) if len(got.get(i, [])) < 2]
    assert not missing
    for i, sub in enumerate(supported):
        assert {m["channel"] for m in got[i]} == {parse_subscription(sub).channel}


def test_simulate_command_starts_fast_serves_and_stops_cleanly_on_ctrl_c():
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "replay.cli", "simulate", "--port", "0", "--rate", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        elapsed = time.monotonic() - started
        assert line.startswith("ws URL:") and "/ws" in line
        assert elapsed < 2.0, f"simulate took {elapsed:.2f}s to start"
        url = line.split()[-1]

        async def go() -> list[Any]:
            client = await Client.open(url)
            await client.subscribe({"type": "trades", "coin": "BTC"})
            frames = await client.data(3)
            await client.close()
            return frames

        assert len(run(go())) == 3
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "frames sent" in err


def test_simulate_rejects_a_bad_fault_in_one_line():
    from click.testing import CliRunner

    from replay.cli import main

    result = CliRunner().invoke(main, ["simulate", "--fault", "explode=1"])
    assert result.exit_code == 2 and "bad fault 'explode=1'" in result.output

"""The full book at any instant from an L4 archive: ``Replay.l4_book``, ``l4Book`` and deep ``l2Book``
frames derived from it, the SQL macros, desyncs, and the simulator's own consistency."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.node.follow import import_node_data
from recorder.writer import ArchiveWriter
from replay import Replay
from replay.simulator.l4tape import FIRST_HEIGHT, NODE_LATENCY_NS
from replay.simulator.market import SyntheticMarket
from replay.simulator.node_files import NodeFiles
from schemas.l4.book import L4Book
from schemas.l4.node import snapshot_rows
from schemas.subscriptions import parse_subscription

SEED, COINS, LAST, SNAPSHOT_TICKS = 12, ("BTC", "ETH"), 300, (100, 250)


def recv_ns_of(market: SyntheticMarket, tick: int) -> int:
    return (market.start_ms + tick * market.tick_ms) * 1_000_000 + NODE_LATENCY_NS


@pytest.fixture(scope="module")
def l4_archive(tmp_path_factory) -> Path:
    """300 blocks of two coins from the simulator's node files, imported; node snapshots at two heights."""
    node, root = tmp_path_factory.mktemp("node"), tmp_path_factory.mktemp("archive")
    market = SyntheticMarket(seed=SEED, coins=list(COINS))
    files = NodeFiles(market.tapes, list(COINS), node, {c: market.coins[c].sz_decimals for c in COINS})
    files.write_through(0)
    snapshots = []
    for tick in (*SNAPSHOT_TICKS, LAST):
        files.write_through(tick)
        if tick != LAST:
            snapshots.append((tick, files.snapshot_payload()))
    files.close()
    import_node_data(node, root, say=lambda _: None)
    with ArchiveWriter(root, session="node_snapshots") as writer:
        for tick, payload in snapshots:
            for row in snapshot_rows(payload, block_ms=market.start_ms + tick * market.tick_ms)[1]:
                writer.write(row.frame, recv_ns_of(market, tick), parse_subscription({"type": row.channel, "coin": row.coin}, allow_unknown=True), seq=row.seq)
    return root


def tape_book(coin: str, tick: int) -> list[list[tuple[Any, ...]]]:
    market = SyntheticMarket(seed=SEED, coins=[coin])
    shared = market.tapes.get(coin, 0)
    shared.advance_to(tick)
    return [[(u, o["oid"], o["limitPx"], o["sz"]) for u, o in side] for side in shared.tape.sides(market.coins[coin].sz_decimals)]


def snapshot_pairs(snapshot: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
    return [[(o["user"], o["oid"], o["limitPx"], o["sz"]) for o in side] for side in snapshot["levels"]]


def test_the_book_at_random_instants_is_the_simulators_own(l4_archive):
    market = SyntheticMarket(seed=SEED)
    rng = random.Random(3)
    tapes = {coin: SyntheticMarket(seed=SEED, coins=[coin]).tapes.get(coin, 0) for coin in COINS}
    for tick in sorted({0, 99, 100, 101, LAST, *rng.sample(range(LAST), 6)}):
        for coin in COINS:
            replay = Replay(l4_archive)
            at_ms = recv_ns_of(market, tick) // 1_000_000  # epoch ms, as Replay takes times
            book = replay.l4_book(coin, at_ms)
            assert book["height"] == FIRST_HEIGHT + tick and book["coin"] == coin
            tapes[coin].advance_to(tick)  # the simulator's own book at that block
            own = [[(u, o["oid"], o["limitPx"], o["sz"]) for u, o in side] for side in tapes[coin].tape.sides(market.coins[coin].sz_decimals)]
            assert snapshot_pairs(book) == own, (coin, tick)
            assert book["safe"] is (tick >= SNAPSHOT_TICKS[0])  # no snapshot before tick 100 vouches for it
            assert not replay.l4_desyncs()


def test_seeking_reads_the_last_snapshot_and_only_the_rows_after_it(l4_archive):
    market = SyntheticMarket(seed=SEED)
    total = sum(1 for m in Replay(l4_archive).messages() if m["channel"] in ("l4Statuses", "l4Diffs") and m["data"].get("coin", m["data"].get("order", {}).get("coin")) == "BTC")
    replay = Replay(l4_archive)
    replay.l4_book("BTC", recv_ns_of(market, 280) // 1_000_000)
    # the snapshot at 250, the rows of its 5 s of lateness and the 30 blocks after it: not the 280 before
    assert 0 < replay.l4_rows_read < total * 0.35
    replay.l4_book("BTC", recv_ns_of(market, 90) // 1_000_000)  # no snapshot yet: every block from the first
    assert replay.l4_rows_read > total * 0.25


def test_l2book_derived_from_l4_equals_the_simulators_l2book_frames(l4_archive):
    replay = Replay(l4_archive)
    got: list[dict[str, Any]] = []
    replay.subscribe({"type": "l2Book", "coin": "ETH"}, got.append)  # no l2Book recorded: derived
    replay.run()
    sent = SyntheticMarket(seed=SEED, coins=["ETH"]).frames(parse_subscription({"type": "l2Book", "coin": "ETH"}))
    expected = [next(sent) for _ in range(LAST)]  # a private market's frames start at tick 1
    assert len(got) == LAST + 1  # blocks 0 to 300
    assert [orjson.dumps(f) for f in got[1:]] == [orjson.dumps(f) for f in expected]


def test_bbo_derived_from_l4_is_the_simulators_bbo_each_time_it_changes(l4_archive):
    """No bbo recorded: derived from the book's best levels, sent when they change (as the exchange
    sends bbo), equal to the simulator's own bbo of each tick."""
    replay = Replay(l4_archive)
    got: list[dict[str, Any]] = []
    replay.subscribe({"type": "bbo", "coin": "BTC"}, got.append)
    replay.run()
    sent = SyntheticMarket(seed=SEED, coins=["BTC"]).frames(parse_subscription({"type": "bbo", "coin": "BTC"}))
    expected, last = [], got[0]["data"]["bbo"]  # block 0's, before the simulator's first frame (tick 1)
    for _ in range(LAST):
        frame = next(sent)
        if frame["data"]["bbo"] != last:
            expected.append(frame)
            last = frame["data"]["bbo"]
    assert len(expected) > LAST // 3
    assert [orjson.dumps(f) for f in got[1:]] == [orjson.dumps(f) for f in expected]


def test_l4book_frames_are_a_snapshot_then_one_update_a_block_and_rebuild_the_book(l4_archive):
    market = SyntheticMarket(seed=SEED)
    start_tick = 180
    replay = Replay(l4_archive, start=recv_ns_of(market, start_tick) // 1_000_000)
    frames: list[dict[str, Any]] = []
    deep: list[dict[str, Any]] = []
    replay.subscribe({"type": "l4Book", "coin": "BTC"}, frames.append)
    replay.subscribe({"type": "l2Book", "coin": "BTC", "nLevels": 50}, deep.append)
    replay.run()
    assert "Snapshot" in frames[0]["data"] and all("Updates" in f["data"] for f in frames[1:])
    first = frames[0]["data"]["Snapshot"]
    assert first["height"] == FIRST_HEIGHT + start_tick and snapshot_pairs(first) == tape_book("BTC", start_tick)
    book = L4Book.from_snapshot("BTC", first["height"], first["time"], *first["levels"])
    for frame in frames[1:]:
        update = frame["data"]["Updates"]
        assert not book.apply_block(update["height"], update["time"], update["order_statuses"], update["book_diffs"])
    assert book.height == FIRST_HEIGHT + LAST
    assert [[(o["user"], o["oid"], o["limitPx"], o["sz"]) for o in book.orders(s)] for s in ("B", "A")] == tape_book("BTC", LAST)
    assert len(deep) == len(frames) and deep[-1]["data"] == book.l2(50)
    assert 0 < len(deep[-1]["data"]["levels"][0]) <= 50


def test_a_desync_is_an_event_not_a_crash_and_the_next_snapshot_rebuilds_the_book(tmp_path):
    user = "0x" + "cd" * 20

    def status(oid: int, px: str, sz: str) -> dict[str, Any]:
        order = {"coin": "BTC", "side": "B", "limitPx": px, "sz": sz, "oid": oid, "timestamp": 1, "triggerCondition": "N/A", "isTrigger": False,
                 "triggerPx": "0.0", "children": [], "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "origSz": sz, "tif": "Gtc", "cloid": None}
        return {"time": "2026-01-01T00:00:00.1", "user": user, "status": "open", "order": order}

    def diff(oid: int, px: str, change: Any) -> dict[str, Any]:
        return {"user": user, "oid": oid, "coin": "BTC", "side": "B", "px": px, "raw_book_diff": change}

    blocks = [
        (1, [status(1, "100.0", "1.0"), status(2, "100.0", "2.0")], [diff(1, "100.0", {"new": {"sz": "1.0"}}), diff(2, "100.0", {"new": {"sz": "2.0"}})]),
        (2, [], [diff(99, "100.0", "remove")]),  # an oid the book does not hold
        (3, [], [diff(2, "100.0", {"update": {"origSz": "5.0", "newSz": "1.5"}})]),  # origSz is 2.0
        (4, [], [diff(1, "100.0", {"update": {"origSz": "1.0", "newSz": "0.5"}})]),
    ]
    node = tmp_path / "node"
    for stream, index in (("node_order_statuses_by_block", 1), ("node_raw_book_diffs_by_block", 2)):
        path = node / stream / "hourly" / "20260101" / "0"
        path.parent.mkdir(parents=True)
        lines = [{"local_time": f"2026-01-01T00:00:0{b[0]}.5", "block_time": f"2026-01-01T00:00:0{b[0]}.4", "block_number": b[0], "events": b[index]} for b in blocks]
        path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    root = tmp_path / "archive"
    import_node_data(node, root, say=lambda _: None)
    truth = [[user, status(1, "100.0", "0.5")["order"]], [user, status(2, "100.0", "1.5")["order"]]]
    for pair in truth:
        pair[1]["sz"] = "0.5" if pair[1]["oid"] == 1 else "1.5"
    with ArchiveWriter(root, session="node_snap") as writer:  # the node's snapshot at height 3 (written with block 4)
        for row in snapshot_rows([3, [["BTC", [[[user, status(1, "100.0", "1.0")["order"]], truth[1]], []]]]], block_ms=1_767_225_604_400)[1]:
            writer.write(row.frame, 1_767_225_604_500_000_000, parse_subscription({"type": row.channel, "coin": row.coin}, allow_unknown=True), seq=row.seq)
    replay = Replay(root)
    before = replay.l4_book("BTC", "2026-01-01T00:00:03.6Z")
    assert before["safe"] is False
    found = replay.l4_desyncs()
    assert [(d["height"], d["oid"]) for d in found] == [(2, 99), (3, 2)]
    assert found[1]["expected"] == "origSz 2.0" and found[1]["found"] == "origSz 5.0"
    after = Replay(root).l4_book("BTC", "2026-01-01T00:00:04.6Z")
    assert after["safe"] is True and [(o["oid"], o["sz"]) for o in after["levels"][0]] == [(1, "0.5"), (2, "1.5")]
    # a replay over the whole archive meets both, and goes on to the end
    replay = Replay(root)
    frames: list[Any] = []
    replay.subscribe({"type": "l4Book", "coin": "BTC"}, frames.append)
    replay.run()
    assert len(frames) == 4 and len(replay.l4_desyncs()) == 2


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_the_simulators_l2book_is_the_sum_of_its_orders(seed):
    """Property: at every block, ``simulate``'s l2Book frame equals ``l2(20)`` of its own L4 book."""
    market = SyntheticMarket(seed=seed, coins=["SOL", "kPEPE"])
    for coin in ("SOL", "kPEPE"):
        l4 = market.frames(parse_subscription({"type": "l4Book", "coin": coin}))
        l2 = market.frames(parse_subscription({"type": "l2Book", "coin": coin}))
        snap = next(l4)["data"]["Snapshot"]
        book = L4Book.from_snapshot(coin, snap["height"], snap["time"], *snap["levels"])
        assert book.l2(20) == next(l2)["data"]
        for _ in range(40):
            update = next(l4)["data"]["Updates"]
            assert not book.apply_block(update["height"], update["time"], update["order_statuses"], update["book_diffs"])
            assert book.l2(20) == next(l2)["data"]


def collector(enough: int) -> tuple[list[Any], threading.Event, Any]:
    """A callback that keeps what it is sent, and an event set once it has ``enough``."""
    got: list[Any] = []
    done = threading.Event()

    def keep(message: Any) -> None:
        got.append(message)
        if len(got) >= enough:
            done.set()

    return got, done, keep


def test_the_sdk_gets_deep_l2book_frames_and_a_client_l4book_frames_from_serve_over_an_l4_archive(l4_archive):
    import asyncio

    from hyperliquid.info import Info

    from replay.serving.archive_source import ArchiveSource
    from replay.serving.server import HyperliquidServer, ServerThread

    from .wsclient import Client

    with ServerThread(lambda: HyperliquidServer(ArchiveSource(l4_archive, speed=20.0), rate=None)) as srv:
        meta = {"universe": [{"name": "BTC", "szDecimals": 5}, {"name": "ETH", "szDecimals": 4}]}  # a node archive has no /info meta
        info = Info(srv.base_url, skip_ws=False, meta=meta, spot_meta={"tokens": [], "universe": []})
        deep, seen, on_deep = collector(5)
        bbos, got_bbo, on_bbo = collector(3)
        info.subscribe({"type": "l2Book", "coin": "BTC", "nLevels": 50}, on_deep)  # the SDK passes unknown keys through
        info.subscribe({"type": "bbo", "coin": "ETH"}, on_bbo)  # no bbo recorded: derived from the L4 book
        seen.wait(30)
        got_bbo.wait(30)
        book = info.post("/info", {"type": "l2Book", "coin": "ETH"})  # no 20-level book recorded: from the L4 book
        info.disconnect_websocket()

        async def l4_frames() -> list[dict[str, Any]]:
            # the SDK (0.x) routes no l4Book frame to a callback (its ws_msg_to_identifier knows no such
            # channel), so a plain websocket client subscribes to it, as any bot for the book server does
            client = await Client.open(srv.ws_url)
            await client.subscribe({"type": "l4Book", "coin": "ETH"})
            frames = await client.data(5, timeout=30)
            await client.close()
            return frames

        l4 = asyncio.run(l4_frames())
    assert len(deep) >= 5 and all(m["channel"] == "l2Book" and m["data"]["coin"] == "BTC" for m in deep)
    assert len(bbos) >= 3 and all(m["channel"] == "bbo" and m["data"]["coin"] == "ETH" and len(m["data"]["bbo"]) == 2 for m in bbos)
    assert all(bbos[i]["data"]["bbo"] != bbos[i + 1]["data"]["bbo"] for i in range(len(bbos) - 1))  # sent when it changes
    assert "Snapshot" in l4[0]["data"] and all("Updates" in m["data"] for m in l4[1:])
    snapshot = l4[0]["data"]["Snapshot"]
    assert snapshot["coin"] == "ETH" and len(snapshot["levels"][0]) > 20
    assert book["coin"] == "ETH" and len(book["levels"][0]) > 5


@pytest.mark.parametrize("checkpointed", [False, True])
def test_sql_l4_book_and_l4_depth_agree_with_the_state_machine_at_random_instants(l4_archive, tmp_path, checkpointed):
    """From the node's snapshots, and from this archive's checkpoints (every 5 s of blocks) when it has them."""
    from decimal import Decimal

    from replay import open_archive
    from replay.analysis.views import partitions_of

    if checkpointed:
        import shutil

        from replay.l4.checkpoints import write_checkpoints

        shutil.copytree(l4_archive, tmp_path / "cp")
        l4_archive = tmp_path / "cp"
        assert write_checkpoints(l4_archive, every_ms=5_000) == 12
        assert "l4Checkpoints" in partitions_of("select * from l4_depth('BTC', now(), 7)")
    # as `hlarchive sql` opens it: only the channels the query's macros read are listed
    con = open_archive(l4_archive, partitions=partitions_of("select * from l4_depth('BTC', now(), 7)"))
    market = SyntheticMarket(seed=SEED)
    rng = random.Random(11)
    for tick in rng.sample(range(LAST), 5) + [SNAPSHOT_TICKS[1], LAST]:
        for coin in COINS:
            at_ns = recv_ns_of(market, tick)
            book = Replay(l4_archive).l4_book(coin, at_ns // 1_000_000)
            ts = f"make_timestamp({at_ns // 1000})"
            rows = con.execute(f"select side, oid, \"user\", px_text, sz_text, priority from l4_book('{coin}', {ts})").fetchall()
            expected = []
            for side, orders in zip("BA", book["levels"]):
                place: dict[str, int] = {}
                for o in orders:
                    place[o["limitPx"]] = place.get(o["limitPx"], 0) + 1
                    expected.append((side, o["oid"], o["user"], o["limitPx"], o["sz"], place[o["limitPx"]]))
            assert rows == expected, (coin, tick)
            depth = con.execute(f"select side, px_text, sz, n from l4_depth('{coin}', {ts}, 7)").fetchall()
            l2 = L4Book.from_snapshot(coin, book["height"], book["time"], *book["levels"]).l2(7)
            want = [(s, lv["px"], Decimal(lv["sz"]), lv["n"]) for s, side in zip("BA", l2["levels"]) for lv in side]
            assert [(s, p, Decimal(z), n) for s, p, z, n in depth] == want, (coin, tick)


# --- paper orders queue exactly --------------------------------------------------------------------------

MAKER = "0x" + "12" * 20


def _l4_archive_with_trades(root: Path, tmp: Path, blocks: list[tuple[int, list[Any], list[Any], list[str]]]) -> None:
    """Node files of ``(second, statuses, diffs, trade sizes at 100.0)`` blocks, imported; the trades
    as recorded websocket frames received just after each block's rows (the harder order)."""
    node = tmp / "node"
    for stream, index in (("node_order_statuses_by_block", 1), ("node_raw_book_diffs_by_block", 2)):
        path = node / stream / "hourly" / "20260101" / "0"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [{"local_time": f"2026-01-01T00:00:{b[0]:02d}.100", "block_time": f"2026-01-01T00:00:{b[0]:02d}.000", "block_number": b[0], "events": b[index]} for b in blocks]
        path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    import_node_data(node, root, say=lambda _: None)
    t0 = 1_767_225_600_000
    sub = parse_subscription({"type": "trades", "coin": "BTC"})
    with ArchiveWriter(root, session="ws") as writer:
        for second, _, _, sizes in blocks:
            for n, size in enumerate(sizes):
                trade = {"coin": "BTC", "side": "A", "px": "100.0", "sz": size, "time": t0 + second * 1000, "hash": "0x" + "00" * 32, "tid": second * 10 + n, "users": [MAKER, "0x" + "34" * 20]}
                writer.write({"channel": "trades", "data": [trade]}, (t0 + second * 1000) * 1_000_000 + 200_000_000 + n, sub)


def _status(oid: int, px: str, sz: str, side: str = "B", status: str = "open") -> dict[str, Any]:
    order = {"coin": "BTC", "side": side, "limitPx": px, "sz": sz, "oid": oid, "timestamp": 1, "triggerCondition": "N/A", "isTrigger": False,
             "triggerPx": "0.0", "children": [], "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "origSz": sz, "tif": "Gtc", "cloid": None}
    return {"time": "2026-01-01T00:00:01.0", "user": MAKER, "status": status, "order": order}


def _diff(oid: int, change: Any, px: str = "100.0", side: str = "B") -> dict[str, Any]:
    return {"user": MAKER, "oid": oid, "coin": "BTC", "side": side, "px": px, "raw_book_diff": change}


def _paper_fill_time(root: Path) -> tuple[list[Any], str]:
    from replay.paper.assets import AssetSpec

    replay = Replay(root)
    paper = replay.paper("0x" + "56" * 20, coins=["BTC"], assets={0: AssetSpec(0, "BTC", 2, 20, False)}, latency_ms=0)
    placed: list[Any] = []

    def on_book(message: dict[str, Any]) -> None:
        if not placed and message["data"]["time"] >= 1_767_225_601_000:  # after block 1: 3 bids rest at 100
            placed.append(paper.order("BTC", True, 0.5, 100.0, {"limit": {"tif": "Gtc"}}))

    replay.subscribe({"type": "l2Book", "coin": "BTC"}, on_book)
    replay.run()
    assert "resting" in placed[0]["response"]["data"]["statuses"][0]
    assert paper.report()["queue_model"] == {"BTC": paper.engine.queue_model("BTC")}
    return [(f["time"] - 1_767_225_600_000, f["sz"]) for f in paper.fills], paper.engine.queue_model("BTC")


def test_a_paper_bid_waits_for_the_very_orders_ahead_of_it_and_moves_up_when_one_is_canceled(tmp_path):
    opening = (1, [_status(1, "100.0", "1.0"), _status(2, "100.0", "1.0"), _status(3, "100.0", "1.0"), _status(9, "101.0", "5.0", "A")],
               [_diff(1, {"new": {"sz": "1.0"}}), _diff(2, {"new": {"sz": "1.0"}}), _diff(3, {"new": {"sz": "1.0"}}), _diff(9, {"new": {"sz": "5.0"}}, "101.0", "A")], [])
    # 3.0 ahead of the paper bid: trades of 1.5, 1.0 and 1.0 at 100 reach it only with the last
    (tmp_path / "a").mkdir()
    _l4_archive_with_trades(tmp_path / "a" / "archive", tmp_path / "a", [
        opening,
        (2, [_status(1, "100.0", "0.0", status="filled")], [_diff(1, "remove"), _diff(2, {"update": {"origSz": "1.0", "newSz": "0.5"}})], ["1.5"]),
        (3, [_status(2, "100.0", "0.0", status="filled")], [_diff(2, "remove"), _diff(3, {"update": {"origSz": "1.0", "newSz": "0.5"}})], ["1.0"]),
        (4, [_status(3, "100.0", "0.0", status="filled")], [_diff(3, "remove")], ["1.0"]),
    ])
    fills, model = _paper_fill_time(tmp_path / "a" / "archive")
    assert model == "L4 exact"
    assert fills == [(4000, "0.5")]
    # the same trades, but order 2 is canceled in block 2, before that block's trade: the bid fills a second earlier
    (tmp_path / "b").mkdir()
    _l4_archive_with_trades(tmp_path / "b" / "archive", tmp_path / "b", [
        opening,
        (2, [_status(2, "100.0", "1.0", status="canceled"), _status(1, "100.0", "0.0", status="filled")],
         [_diff(2, "remove"), _diff(1, "remove"), _diff(3, {"update": {"origSz": "1.0", "newSz": "0.5"}})], ["1.5"]),
        (3, [_status(3, "100.0", "0.0", status="filled")], [_diff(3, "remove")], ["1.0"]),
        (4, [], [], ["1.0"]),
    ])
    fills, _ = _paper_fill_time(tmp_path / "b" / "archive")
    assert fills[0] == (3000, "0.5")


def row_path_frames(monkeypatch: pytest.MonkeyPatch, root: Path, subs: list[dict[str, Any]], **window: Any) -> list[tuple[str, bytes]]:
    """The same replay on the row path (an item and a dict a row), which the block path must equal."""
    import replay.l4.columns as block_path

    with monkeypatch.context() as patched:
        patched.setattr(block_path, "usable", lambda *_: False)
        return replay_frames(root, subs, **window)


def replay_frames(root: Path, subs: list[dict[str, Any]], **window: Any) -> list[tuple[str, bytes]]:
    replay = Replay(root, **window)
    got: list[tuple[str, bytes]] = []
    for sub in subs:
        replay.subscribe(sub, lambda m, s=orjson.dumps(sub).decode(): got.append((s, orjson.dumps(m))))
    replay.run()
    return got


@settings(max_examples=6, deadline=None)
@given(st.integers(0, LAST), st.integers(1, 120), st.sampled_from([None, 7, 100]), st.sampled_from([(None, None), (3, None), (5, 2)]))
def test_l2book_a_block_at_a_time_from_columns_equals_the_row_path(l4_archive, first_tick, ticks, n_levels, rounding):
    """The block path (rows read as columns, no item per row) gives the row path's frames, byte for
    byte and in the same order, from a seek at any tick, at any depth and rounding, beside another
    stream and across the node's snapshots."""
    market = SyntheticMarket(seed=SEED)
    last_tick = min(LAST, first_tick + ticks)
    start, end = recv_ns_of(market, first_tick) // 1_000_000, recv_ns_of(market, last_tick) // 1_000_000
    sig, mantissa = rounding
    deep = {"type": "l2Book", "coin": "BTC", **({"nLevels": n_levels} if n_levels else {}), **({"nSigFigs": sig} if sig else {}), **({"mantissa": mantissa} if mantissa else {})}
    subs = [deep, {"type": "l2Book", "coin": "ETH"}, {"type": "bbo", "coin": "BTC"}]
    patch = pytest.MonkeyPatch()
    try:
        rows = row_path_frames(patch, l4_archive, subs, start=start, end=end)
    finally:
        patch.undo()
    blocks = replay_frames(l4_archive, subs, start=start, end=end)
    assert blocks == rows and len(blocks) >= 2 * (last_tick - first_tick)
    assert any(stream == orjson.dumps(subs[2]).decode() for stream, _ in blocks) or last_tick == first_tick


def test_the_block_path_keeps_other_streams_in_time_and_counts_desyncs(l4_archive, tmp_path, monkeypatch):
    """Beside recorded streams of other coins, the derived frames sit where the row path puts them."""
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(l4_archive, root)
    market = SyntheticMarket(seed=SEED)
    sub = parse_subscription({"type": "trades", "coin": "SOL"})
    with ArchiveWriter(root, session="trades") as writer:
        for tick in range(0, LAST, 7):
            writer.write({"channel": "trades", "data": [{"coin": "SOL", "side": "B", "px": "1.5", "sz": "2", "time": market.start_ms + tick * 1000, "hash": "0x", "tid": tick, "users": ["a", "b"]}]}, recv_ns_of(market, tick) + (tick % 3) * 100_000_000, sub)
    subs = [{"type": "l2Book", "coin": "BTC", "nLevels": 30}, {"type": "trades", "coin": "SOL"}]
    rows = row_path_frames(monkeypatch, root, subs)
    blocks = replay_frames(root, subs)
    assert blocks == rows and {s for s, _ in blocks} == {orjson.dumps(s).decode() for s in subs}


def test_checkpoints_plus_the_blocks_after_them_are_the_whole_replay_at_random_instants(l4_archive, tmp_path):
    """Checkpoints every 5 s of blocks: the book at any instant is the one built from the node's
    snapshots and every block (safety too), read from far fewer rows; a second run goes on from the
    last checkpoint and writes none; derived frames never take a checkpoint for a node snapshot."""
    import shutil

    from replay.l4.checkpoints import write_checkpoints

    root = tmp_path / "checkpointed"
    shutil.copytree(l4_archive, root)
    said: list[str] = []
    written = write_checkpoints(root, every_ms=5_000, say=said.append)
    assert written == 2 * 6 and len(said) == 2  # 30 s of blocks, two coins
    assert write_checkpoints(root, every_ms=5_000) == 0
    market = SyntheticMarket(seed=SEED)
    rng = random.Random(11)
    for tick in sorted({0, 50, 51, 99, 100, 240, LAST, *rng.sample(range(LAST), 10)}):
        for coin in COINS:
            at = recv_ns_of(market, tick) // 1_000_000
            plain, fast = Replay(l4_archive), Replay(root)
            assert fast.l4_book(coin, at) == plain.l4_book(coin, at), (coin, tick)
            assert fast.l4_rows_read <= plain.l4_rows_read
            if tick in (99, 240):  # 49 and 40 blocks after a checkpoint, against 99 and 140 after the start or a snapshot
                assert fast.l4_rows_read < plain.l4_rows_read * (0.6 if tick == 99 else 0.4)
    subs = [{"type": "l4Book", "coin": "BTC"}, {"type": "l2Book", "coin": "ETH", "nLevels": 40}]
    assert replay_frames(root, subs) == replay_frames(l4_archive, subs)


def test_import_compact_and_checkpoint_commands_write_checkpoints_once(tmp_path):
    """``hlarchive import`` of a node's files writes checkpoints after it (``--checkpoint-every``);
    ``compact`` writes them for an archive that has none; ``checkpoint`` goes on from the last one;
    a bad duration is one line and exit 2, nothing written."""
    from click.testing import CliRunner

    from replay.cli import main

    node = tmp_path / "node"
    market = SyntheticMarket(seed=SEED, coins=["BTC"])
    files = NodeFiles(market.tapes, ["BTC"], node, {"BTC": market.coins["BTC"].sz_decimals})
    files.write_through(0)
    files.write_through(120)  # 12 s of blocks
    files.close()
    runner = CliRunner()
    imported = runner.invoke(main, ["import", str(node), "--root", str(tmp_path / "a"), "--silent", "--checkpoint-every", "2s"])
    assert imported.exit_code == 0, imported.output
    periods = len({(market.start_ms + tick * market.tick_ms) // 2000 for tick in range(121)}) - 1  # the first block's period has none
    assert f"{periods} L4 checkpoint(s) written" in imported.output and periods >= 5
    checkpoints = list((tmp_path / "a").glob("channel=l4Checkpoints/coin=BTC/date=*/part-*.parquet"))
    assert len(checkpoints) == 1 and pq.read_table(checkpoints[0]).num_rows == periods
    again = runner.invoke(main, ["checkpoint", str(tmp_path / "a"), "--every", "2s"])
    assert again.exit_code == 0 and again.output.strip().endswith("0 L4 checkpoint(s) written")
    bare = runner.invoke(main, ["import", str(node), "--root", str(tmp_path / "b"), "--silent", "--checkpoint-every", "0"])
    assert bare.exit_code == 0 and "checkpoint" not in bare.output
    assert not list((tmp_path / "b").glob("channel=l4Checkpoints/*"))
    compacted = runner.invoke(main, ["compact", str(tmp_path / "b"), "--checkpoint-every", "2s"])
    assert compacted.exit_code == 0 and f"{periods} L4 checkpoint(s) written" in compacted.output
    at = recv_ns_of(market, 119) // 1_000_000
    with_cp, without = Replay(tmp_path / "b"), Replay(tmp_path / "a")
    assert with_cp.l4_book("BTC", at) == without.l4_book("BTC", at)
    bad = runner.invoke(main, ["checkpoint", str(tmp_path / "a"), "--every", "soon"])
    assert bad.exit_code == 2 and "--checkpoint-every" not in bad.output and "soon" in bad.output and "Traceback" not in bad.output


@settings(max_examples=10, deadline=None)
@given(st.integers(0, LAST), st.sampled_from(COINS))
def test_a_seek_applying_its_window_at_once_equals_applying_it_block_by_block(l4_archive, tick, coin):
    """A seek's ``Snapshot`` shown straight from its base and the window's net effect
    (``seek.snapshot_at``, no book made), from a book changed once by the window
    (``net.apply_window``) and from applying every block: the same orders, height, time and safety."""
    import replay.l4.net as net
    import replay.l4.seek as seek

    market = SyntheticMarket(seed=SEED)
    at = recv_ns_of(market, tick) // 1_000_000
    straight: list[bool] = []
    found = seek.snapshot_at
    shown = {}
    patch = pytest.MonkeyPatch()
    try:
        patch.setattr(seek, "snapshot_at", lambda *a, **k: straight.append(True) or found(*a, **k))
        shown["straight"] = Replay(l4_archive).l4_book(coin, at)
        patch.setattr(seek, "snapshot_at", lambda *a, **k: None)
        shown["window"] = Replay(l4_archive).l4_book(coin, at)
        calls: list[bool] = []
        patch.setattr(net, "apply_window", lambda *a: calls.append(True) or False)
        shown["blocks"] = Replay(l4_archive).l4_book(coin, at)
    finally:
        patch.undo()
    assert shown["straight"] == shown["window"] == shown["blocks"]
    assert orjson.dumps(shown["straight"]) == orjson.dumps(shown["blocks"])
    assert (straight and calls) or tick in SNAPSHOT_TICKS  # a window of rows was there to apply, unless the snapshot is the instant


def test_a_seek_over_an_archive_without_l4_rows_says_what_to_record(tmp_path):
    """A market-only archive (an l2Book stream, no node rows): ``l4_book`` is a one-line error that
    says how to get L4 rows, not a crash or an empty book."""
    from schemas.layout import ArchiveError

    market = SyntheticMarket(seed=SEED)
    sub = parse_subscription({"type": "l2Book", "coin": "BTC"})
    frames = market.frames(sub)
    with ArchiveWriter(tmp_path, session="market") as writer:
        for tick in range(1, 4):
            writer.write(next(frames), recv_ns_of(market, tick), sub)
    with pytest.raises(ArchiveError, match="no L4 rows of BTC.*record --node-data"):
        Replay(tmp_path).l4_book("BTC", recv_ns_of(market, 3) // 1_000_000)

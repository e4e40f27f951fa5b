"""Recording a node's L4 files: followed as they grow (half lines, lagging streams, hour turns,
``kill -9``), imported after the fact, queryable in SQL; and the book server's ``l4Book`` websocket.

The producer is the simulator (``simulate --node-data``), a real process writing a node's hourly
files, and answering the node's ``fileSnapshot`` on its port."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import lz4.frame
import orjson
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.node.follow import NodeFollower, import_node_data
from replay import Replay
from replay.simulator.market import SyntheticMarket
from replay.simulator.node_files import NodeFiles
from schemas.l4.book import L4Book
from schemas.l4.node import DIFFS, FILLS, NODE_DIRS, STATUSES, STREAM_NO, event_of_row, node_seq, parse_block
from schemas.subscriptions import parse_subscription

HLARCHIVE = [shutil.which("hlarchive") or "hlarchive"]
L4_CHANNELS = ("l4Statuses", "l4Diffs", "nodeFills")
USER = "0x" + "ab" * 20


def start_simulator(node_dir: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*HLARCHIVE, "simulate", "--port", "0", "--node-data", str(node_dir), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("base URL:"):
            return proc, line.split()[2]
    raise AssertionError(f"simulate did not start: {proc.stderr.read() if proc.stderr else ''}")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def node_events(node_dir: Path) -> dict[int, tuple[int, str]]:
    """seq -> (height, stream) of every event in the node's files."""
    out = {}
    for stream, name in NODE_DIRS.items():
        for path in sorted((node_dir / name).rglob("*")):
            if path.is_file():
                for line in path.read_bytes().splitlines():
                    block = parse_block(line)
                    for index, _ in enumerate(block.events):
                        out[node_seq(block.height, STREAM_NO[stream], index)] = (block.height, stream)
    return out


def archive_rows(root: Path, channels: tuple[str, ...] = L4_CHANNELS) -> list[tuple[str, int, int, str]]:
    """(channel, seq, recv_ns, content) of every row of the node channels."""
    rows = []
    for channel in channels:
        for path in root.glob(f"channel={channel}/coin=*/date=*/*.parquet"):
            table = pq.read_table(path)
            data = table.column("data").to_pylist() if "data" in table.column_names else [None] * table.num_rows
            for seq, recv_ns, d, raw in zip(table.column("seq").to_pylist(), table.column("recv_ns").to_pylist(), data, table.column("raw").to_pylist()):
                rows.append((channel, seq, recv_ns, orjson.dumps(d).decode() if d is not None else raw))
    return rows


def node_event_kinds(root: Path) -> list[dict[str, Any]]:
    if not list(root.glob("channel=_events/*/*/*.parquet")):
        return []
    return [{"kind": k, **orjson.loads(d)} for k, d in duckdb.sql(f"select kind, detail from read_parquet('{root}/channel=_events/*/*/*.parquet') where kind like 'node%' order by seq").fetchall()]


def rebuild(root: Path, coin: str, through: int) -> L4Book:
    """A small reference reader: the last snapshot at or before ``through``, then each block's rows."""
    replay = Replay(root)
    snapshots = [m["data"] for m in replay.messages() if m["channel"] == "l4Snapshots" and m["data"]["coin"] == coin and m["data"]["height"] <= through]
    book = L4Book(coin)
    start = 0
    if snapshots:
        snap = snapshots[-1]
        book = L4Book.from_snapshot(coin, snap["height"], 0, *snap["levels"])
        start = snap["height"]
    blocks: dict[int, tuple[list[Any], list[Any]]] = {}
    for message in Replay(root).messages():
        if message["channel"] in ("l4Statuses", "l4Diffs") and message["data"].get("coin", message["data"].get("order", {}).get("coin")) == coin:
            height = message["data"]["block"]
            entry = blocks.setdefault(height, ([], []))
            entry[0 if message["channel"] == "l4Statuses" else 1].append(event_of_row(message["data"]))
    for height in sorted(blocks):
        if start < height <= through:
            assert not book.apply_block(height, 0, *blocks[height])
    return book


def own_book(seed: int, coin: str, first_tick: int, last_tick: int) -> list[list[tuple[str, dict[str, Any]]]]:
    """The simulator's own L4 book at a tick: a tape of the same seed, started where its files start."""
    market = SyntheticMarket(seed=seed, coins=[coin])
    shared = market.tapes.get(coin, first_tick)
    shared.advance_to(last_tick)
    return shared.tape.sides(market.coins[coin].sz_decimals)


def book_pairs(book: L4Book) -> list[list[tuple[str, dict[str, Any]]]]:
    return [[(o["user"], o["oid"], o["limitPx"], o["sz"]) for o in book.orders(side)] for side in ("B", "A")]


def tape_pairs(sides: list[list[tuple[str, dict[str, Any]]]]) -> list[list[tuple[str, int, str, str]]]:
    return [[(user, o["oid"], o["limitPx"], o["sz"]) for user, o in side] for side in sides]


# --- following the simulator -------------------------------------------------------------------------


def test_following_simulate_with_lagging_diffs_records_every_block_once_and_rebuilds_its_book(tmp_path):
    node_dir, root = tmp_path / "node", tmp_path / "archive"
    proc, base_url = start_simulator(node_dir, "--coins", "BTC,ETH", "--seed", "4", "--node-lag-blocks", "7")
    said: list[str] = []
    follower = NodeFollower(node_dir if node_dir.exists() else _wait_dir(node_dir), root, node_info=base_url, snapshot_every_s=6, max_wait_s=0.3, flush_seconds=2, say=said.append)
    stopper = threading.Event()
    thread = threading.Thread(target=follower.run, args=(stopper,))
    thread.start()
    time.sleep(20)
    stop(proc)  # the simulator writes its held-back diffs as it stops
    time.sleep(1.5)
    stopper.set()
    thread.join(timeout=30)

    expected = node_events(node_dir)
    rows = archive_rows(root)
    seqs = Counter(seq for _, seq, _, _ in rows)
    assert seqs and max(seqs.values()) == 1, "an event recorded twice"
    assert set(seqs) == set(expected), f"{len(set(expected) - set(seqs))} events missing"
    heights = sorted({h for h, _ in expected.values()})
    assert len(heights) >= 150  # 20 s at 10 blocks a second
    # joined: a block's statuses and diffs have one receive time
    recv_by_height: dict[int, set[int]] = {}
    for _, seq, recv_ns, _ in rows:
        recv_by_height.setdefault(expected[seq][0], set()).add(recv_ns)
    assert all(len(times) == 1 for times in recv_by_height.values())
    # the lag was seen, said and kept as events; nothing was dropped for it
    lags = [e for e in node_event_kinds(root) if e["kind"] == "node_stream_lag"]
    assert lags and all(e["waiting_for"] == "diffs" for e in lags)
    assert any("lags" in line for line in said)
    # snapshots from the node's info server, and the book rebuilt from the archive is the simulator's own
    snapshot_heights = [m["data"]["height"] for m in Replay(root).messages() if m["channel"] == "l4Snapshots"]
    assert len(snapshot_heights) >= 2 * 2  # at start and every 6 s, two coins each
    last = heights[-1]
    for coin in ("BTC", "ETH"):
        rebuilt = rebuild(root, coin, last)
        assert book_pairs(rebuilt) == tape_pairs(own_book(4, coin, heights[0] - 650_000_000, last - 650_000_000))
        assert len(rebuilt) > 20
    # SQL: typed views beside the exact text
    from replay import open_archive

    con = open_archive(root)
    kinds = dict(con.sql("select kind, count(*) from l4_diffs group by kind").fetchall())
    assert {"new", "update", "remove"} <= set(kinds)
    assert sum(kinds.values()) == sum(1 for h, s in expected.values() if s == DIFFS)
    px, px_text, block, block_ms = con.execute("select px, px_text, block, block_ms from l4_statuses where coin = 'BTC' limit 1").fetchone()
    assert px == float(px_text) and block >= heights[0] and block_ms > 1_700_000_000_000
    assert con.execute("select count(*) from l4_snapshots where bid_orders > 0 and best_bid < best_ask").fetchone()[0] >= 4


def _wait_dir(path: Path) -> Path:
    for _ in range(200):
        if (path / NODE_DIRS[DIFFS]).is_dir() and (path / NODE_DIRS[STATUSES]).is_dir():
            return path
        time.sleep(0.05)
    raise AssertionError(f"no node files under {path}")


def test_without_a_node_info_server_it_records_and_says_so_once(tmp_path):
    node_dir = tmp_path / "node"
    write_blocks(node_dir, 0, 30)
    said: list[str] = []
    status = NodeFollower(node_dir, tmp_path / "a", node_info="http://127.0.0.1:9", snapshot_every_s=0.2, say=said.append).run(duration_s=1.5)
    assert status.blocks == 31 and status.snapshots == 0
    assert sum("no node info server" in line for line in said) == 1


# --- half lines, hour turns, kill -9 -------------------------------------------------------------------


def write_blocks(node_dir: Path, first: int, last: int, *, seed: int = 2, coins: tuple[str, ...] = ("BTC",), start_ms: int = 1_767_225_600_000) -> NodeFiles:
    market = SyntheticMarket(seed=seed, coins=list(coins), start_ms=start_ms)
    files = NodeFiles(market.tapes, list(coins), node_dir, {c: market.coins[c].sz_decimals for c in coins})
    files.write_through(first)
    files.write_through(last)
    files.close()
    return files


def test_a_line_written_in_two_parts_is_recorded_whole(tmp_path):
    node_dir = tmp_path / "node"
    write_blocks(node_dir, 0, 5)
    lines = {s: (node_dir / NODE_DIRS[s] / "hourly/20260101/0") for s in (STATUSES, DIFFS, FILLS)}
    whole = {s: p.read_bytes().splitlines(keepends=True) for s, p in lines.items()}
    for stream, path in lines.items():  # keep blocks 0-4; block 5 is written by the test, in halves
        path.write_bytes(b"".join(whole[stream][:5]))
    follower = NodeFollower(node_dir, tmp_path / "a", flush_seconds=0.5)
    stopper = threading.Event()
    thread = threading.Thread(target=follower.run, args=(stopper,))
    thread.start()
    for stream, path in lines.items():
        line = whole[stream][5]
        with open(path, "ab") as handle:
            handle.write(line[: len(line) // 3])
            handle.flush()
    time.sleep(1.0)  # the follower polls the half lines many times meanwhile
    assert follower.status.height == 650_000_004 and follower.status.bad_lines == 0
    for stream, path in lines.items():
        line = whole[stream][5]
        with open(path, "ab") as handle:
            handle.write(line[len(line) // 3 :])
    time.sleep(0.5)
    stopper.set()
    thread.join()
    assert follower.status.height == 650_000_005 and follower.status.bad_lines == 0
    expected = node_events(node_dir)
    assert sorted(seq for _, seq, _, _ in archive_rows(tmp_path / "a")) == sorted(expected)


def test_kill_9_mid_hour_and_across_the_hour_turn_loses_nothing_and_doubles_nothing(tmp_path):
    node_dir, root = tmp_path / "node", tmp_path / "archive"
    # 40 s of blocks from 00:59:40: the files turn to hour 1 at tick 200
    market = SyntheticMarket(seed=6, coins=["BTC", "ETH"], start_ms=1_767_225_600_000 + 3_580_000)
    files = NodeFiles(market.tapes, ["BTC", "ETH"], node_dir, {c: market.coins[c].sz_decimals for c in ("BTC", "ETH")})
    files.write_through(0)
    command = [*HLARCHIVE, "record", "--node-data", str(node_dir), "--out", str(root), "--node-info", "http://127.0.0.1:9", "--flush-seconds", "0.3", "--quiet"]

    def grow(ticks: range) -> None:
        for tick in ticks:
            files.write_through(tick)
            time.sleep(0.01)

    for kill_after, ticks in ((1.5, range(1, 150)), (1.5, range(150, 260)), (None, range(260, 400))):
        proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        grow(ticks)
        if kill_after is not None:
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)  # mid-hour, then just after the turn
            proc.wait()
        else:
            time.sleep(2.0)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    files.close()
    assert len(list((node_dir / NODE_DIRS[STATUSES] / "hourly" / "20260101").iterdir())) == 2  # hours 0 and 1
    rows = archive_rows(root)
    seqs = Counter(seq for _, seq, _, _ in rows)
    assert max(seqs.values()) == 1, "an event recorded twice"
    assert set(seqs) == set(node_events(node_dir)), "events lost"


# --- import ----------------------------------------------------------------------------------------------


def test_import_gives_the_rows_following_gave_and_a_second_import_adds_nothing(tmp_path):
    node_dir = tmp_path / "node"
    write_blocks(node_dir, 0, 60, coins=("BTC", "SOL"))
    caught_up = threading.Event()  # every block written (1.5 s was not always enough on a busy machine)
    NodeFollower(node_dir, tmp_path / "followed").run(caught_up, duration_s=60, on_status=lambda s: caught_up.set() if s.blocks and s.height == s.newest else None, status_s=0.05)
    first = import_node_data(node_dir, tmp_path / "imported", say=lambda _: None)
    assert first.events > 1000 and first.skipped == 0
    content = lambda root: sorted((c, s, r, t) for c, s, r, t in archive_rows(root))
    assert content(tmp_path / "imported") == content(tmp_path / "followed")
    again = import_node_data(node_dir, tmp_path / "imported", say=lambda _: None)
    assert again.events == 0 and again.skipped == first.events
    assert content(tmp_path / "imported") == content(tmp_path / "followed")
    # the same files as the buckets keep them (.lz4) give the same rows, through the CLI
    packed = tmp_path / "packed"
    for path in node_dir.rglob("*"):
        if path.is_file():
            target = packed / path.relative_to(node_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.with_name(path.name + ".lz4").write_bytes(lz4.frame.compress(path.read_bytes()))
    done = subprocess.run(check=False, args=[*HLARCHIVE, "import", str(packed), "--root", str(tmp_path / "from_lz4"), "--silent"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{first.events:,} events" in done.stdout
    assert content(tmp_path / "from_lz4") == content(tmp_path / "followed")


def test_a_corrupt_line_is_named_kept_as_an_event_and_the_rest_recorded(tmp_path):
    node_dir = tmp_path / "node"
    write_blocks(node_dir, 0, 9)
    path = node_dir / NODE_DIRS[DIFFS] / "hourly/20260101/0"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]) + b'{"local_time": "2026-01-01T00:00:00.5", "block_num\n' + b"".join(lines[4:]))
    done = subprocess.run(check=False, args=[*HLARCHIVE, "import", str(node_dir), "--root", str(tmp_path / "a"), "--silent"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    bad = [line for line in done.stderr.splitlines() if "bad line" in line]
    assert len(bad) == 1 and f"{path}, line 5" in bad[0] and "Traceback" not in done.stderr
    events = [e for e in node_event_kinds(tmp_path / "a") if e["kind"] == "node_bad_line"]
    assert len(events) == 1 and events[0]["line"] == 5 and events[0]["stream"] == "diffs"
    assert sorted(seq for _, seq, _, _ in archive_rows(tmp_path / "a")) == sorted(node_events_ok(node_dir))


def node_events_ok(node_dir: Path) -> list[int]:
    out = []
    for stream, name in NODE_DIRS.items():
        for path in sorted(p for p in (node_dir / name).rglob("*") if p.is_file()):
            for line in path.read_bytes().splitlines():
                try:
                    block = parse_block(line)
                except ValueError:
                    continue
                out += [node_seq(block.height, STREAM_NO[stream], i) for i in range(len(block.events))]
    return out


def test_a_directory_that_is_not_a_node_gets_one_line(tmp_path):
    (tmp_path / "node" / NODE_DIRS[STATUSES]).mkdir(parents=True)
    done = subprocess.run(check=False, args=[*HLARCHIVE, "record", "--node-data", str(tmp_path / "node"), "--out", str(tmp_path / "a")], capture_output=True, text=True)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "node_raw_book_diffs_by_block" in done.stderr and len(done.stderr.strip().splitlines()) == 1


# --- what the archive gives back -----------------------------------------------------------------------------

_text = st.sampled_from(["0.015", "104250.0", "1e-5", "12", "0.0"])
_status = st.fixed_dictionaries({
    "time": st.just("2025-06-24T02:56:36.172847427"),
    "user": st.just(USER),
    "status": st.sampled_from(["open", "filled", "canceled", "triggered", "perpMarginRejected", "somethingNew"]),
    "order": st.fixed_dictionaries({
        "coin": st.sampled_from(["BTC", "@107"]), "side": st.sampled_from(["A", "B"]), "limitPx": _text, "sz": _text,
        "oid": st.integers(0, 2**63 - 1), "timestamp": st.integers(0, 2**53), "triggerCondition": st.just("N/A"),
        "isTrigger": st.booleans(), "triggerPx": _text, "children": st.just([]), "isPositionTpsl": st.booleans(),
        "reduceOnly": st.booleans(), "orderType": st.sampled_from(["Limit", "Stop Market"]), "origSz": _text,
        "tif": st.sampled_from(["Alo", "Gtc", "Ioc", None]), "cloid": st.sampled_from([None, "0x" + "1" * 32]),
    }, optional={"newField": st.integers(-(2**63), 2**63 - 1)}),
})
_diff = st.fixed_dictionaries({
    "user": st.just(USER), "oid": st.integers(0, 2**63 - 1), "coin": st.sampled_from(["BTC", "xyz:HOOD"]),
    "side": st.sampled_from(["A", "B"]), "px": _text,
    "raw_book_diff": st.one_of(st.just("remove"), st.builds(lambda s: {"new": {"sz": s}}, _text),
                               st.builds(lambda a, b: {"update": {"origSz": a, "newSz": b}}, _text, _text),
                               st.builds(lambda s: {"modified": {"sz": s}}, _text), st.just({"unheardOf": 1})),
}, optional={"extra": st.booleans()})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statuses=st.lists(_status, max_size=5), diffs=st.lists(_diff, max_size=5))
def test_node_events_come_back_from_the_archive_exactly(tmp_path_factory, statuses, diffs):
    """Property: a block line -> archive -> replay gives back every event, equal, key order included,
    whatever fields a newer node adds (``modified``, unknown diffs, new order fields)."""
    from recorder.node.follow import NodeRecorder

    root = tmp_path_factory.mktemp("a")
    head = {"local_time": "2025-06-24T02:56:36.301442118", "block_time": "2025-06-24T02:56:36.172847427", "block_number": 650123456}
    out = NodeRecorder(root, None, flush_seconds=60, resume_all=True, source="test")
    blocks = {s: parse_block(orjson.dumps({**head, "events": events})) for s, events in ((STATUSES, statuses), (DIFFS, diffs))}
    out.write_block(blocks)
    out.close()
    back: dict[str, list[Any]] = {"l4Statuses": [], "l4Diffs": []}
    for message in Replay(root).messages():
        back[message["channel"]].append((message["data"]["block"], orjson.dumps(event_of_row(message["data"]))))
    key = lambda event: orjson.dumps(event)
    assert sorted(e for _, e in back["l4Statuses"]) == sorted(map(key, statuses))
    assert sorted(e for _, e in back["l4Diffs"]) == sorted(map(key, diffs))
    assert all(h == 650123456 for h, _ in back["l4Statuses"] + back["l4Diffs"])


# --- the book server's websocket ---------------------------------------------------------------------------------


def test_l4book_from_simulate_is_recorded_and_replayed_byte_exact(tmp_path):
    from replay.serving.server import HyperliquidServer, ServerThread
    from replay.serving.synthetic_source import SyntheticSource

    from .recording import archived, record, sent_data

    log = tmp_path / "sent.jsonl"
    market = SyntheticSource(seed=8, coins=["BTC", "ETH"])
    subs = [{"type": "l4Book", "coin": "BTC"}, {"type": "l2Book", "coin": "ETH", "nLevels": 50}, {"type": "l4Book", "coin": "ETH"}]
    with ServerThread(lambda: HyperliquidServer(market, sent_log=log, rate=40)) as srv:
        record(tmp_path / "archive", srv.ws_url, subs, 2.5)
    sent = sent_data(log)
    got = archived(tmp_path / "archive")
    l4 = [s for s in sent if s.startswith("l4Book|")]
    assert len(l4) == 2 and all(len(sent[s]) >= 20 for s in l4)
    for stream in l4:
        assert [orjson.dumps(m) for m in got[stream][: len(sent[stream])]] == [orjson.dumps(m) for m in sent[stream]][: len(got[stream])]
        assert len(got[stream]) >= len(sent[stream]) - 2
        first = got[stream][0]["data"]
        assert "Snapshot" in first and all("Updates" in m["data"] for m in got[stream][1:])
    # raw_messages gives the frames' exact bytes
    raw = [r for r in Replay(tmp_path / "archive").raw_messages() if b'"l4Book"' in r[:40]]
    assert raw and all(orjson.loads(r)["channel"] == "l4Book" for r in raw)
    assert parse_subscription({"type": "l2Book", "coin": "ETH", "nLevels": 50}).n_levels == 50


def test_an_import_after_compaction_still_adds_nothing(tmp_path):
    from replay.analysis.compaction import compact

    node_dir, root = tmp_path / "node", tmp_path / "archive"
    market = SyntheticMarket(seed=9, coins=["ETH"])
    files = NodeFiles(market.tapes, ["ETH"], node_dir, {"ETH": market.coins["ETH"].sz_decimals})
    files.write_through(0)
    files.write_through(20)
    first = import_node_data(node_dir, root, say=lambda _: None)
    files.write_through(40)
    files.close()
    second = import_node_data(node_dir, root, say=lambda _: None)
    assert first.events and second.events and second.skipped == first.events  # two sessions' parts
    before = sorted(archive_rows(root))
    compact(root, target_rows=10**6)
    assert not [p for p in root.rglob("part-*node_*.parquet")]  # merged into compaction parts
    again = import_node_data(node_dir, root, say=lambda _: None)
    assert again.events == 0 and sorted(archive_rows(root)) == before


def test_the_follower_metrics_show_blocks_events_and_lag(tmp_path):
    import socket
    import urllib.request

    from recorder.node.metrics import serve_node_metrics

    node_dir = tmp_path / "node"
    write_blocks(node_dir, 0, 25)
    follower = NodeFollower(node_dir, tmp_path / "a", say=lambda _: None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve_node_metrics(follower.status, ("127.0.0.1", port))
    try:
        follower.run(duration_s=1.0)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    figures = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("hlarchive_node_")}
    assert figures["hlarchive_node_blocks_total"] == 26 and figures["hlarchive_node_height"] == 650_000_025
    assert figures["hlarchive_node_events_total"] == follower.status.events > 0
    assert figures["hlarchive_node_lag_blocks"] == 0 and figures["hlarchive_node_bad_lines_total"] == 0
    assert "process_resident_memory_bytes" in text


# --- small parts merged -----------------------------------------------------------------------------------


def parts_by_partition(root: Path) -> Counter[str]:
    return Counter(p.parent.relative_to(root).as_posix() for c in L4_CHANNELS for p in root.glob(f"channel={c}/coin=*/date=*/part-*.parquet"))


def test_an_import_writes_a_part_a_partition_and_hour_however_its_memory_budget_cuts_it(tmp_path, monkeypatch):
    """Many coins under a small budget: the writer commits each coin's rows a few blocks at a time,
    all into the partition's one open part, named when the import ends: one part a partition and
    hour, the rows a budget-less row-path import gives, and an import of the same files after that
    adds nothing. Blocks across an hour's turn go to the next hour's part."""
    from recorder.writer import ArchiveWriter

    node_dir = tmp_path / "node"
    coins = ("BTC", "ETH", "SOL", "DOGE")
    market = SyntheticMarket(seed=2, coins=list(coins), start_ms=1_767_225_600_000 + 3_590_000)  # 10 s before an hour's turn
    files = NodeFiles(market.tapes, list(coins), node_dir, {c: market.coins[c].sz_decimals for c in coins})
    files.write_through(0)
    files.write_through(200)
    files.close()
    commits: list[int] = []
    append = ArchiveWriter._append_open  # counted, to know the budget did cut the buffers
    monkeypatch.setattr(ArchiveWriter, "_append_open", lambda self, buffer, table: (commits.append(table.num_rows), append(self, buffer, table))[1])
    status = import_node_data(node_dir, tmp_path / "open", say=lambda _: None, buffer_bytes=64 << 10)
    rows_path = import_node_data(node_dir, tmp_path / "rows", say=lambda _: None, bulk=False)
    parts = parts_by_partition(tmp_path / "open")
    assert len(commits) >= 4 * len(parts)  # cut short many times...
    hours = Counter((p.parent.as_posix(), pq.ParquetFile(p).read(columns=["recv_ns"]).column("recv_ns")[0].as_py() // 3_600_000_000_000) for p in (tmp_path / "open").rglob("part-*.parquet"))
    assert set(hours.values()) == {1} and len({h for _, h in hours}) == 2  # ...one part a partition and hour, two hours
    for path in (tmp_path / "open").rglob("part-*.parquet"):
        recv = pq.ParquetFile(path).read(columns=["recv_ns"]).column("recv_ns").to_pylist()
        assert recv[0] // 3_600_000_000_000 == recv[-1] // 3_600_000_000_000 and pq.ParquetFile(path).metadata.num_row_groups >= 1
    assert not list((tmp_path / "open").rglob(".part-*"))  # no part left half written
    assert sorted(archive_rows(tmp_path / "open")) == sorted(archive_rows(tmp_path / "rows"))
    assert status.events == rows_path.events == len(node_events(node_dir))
    again = import_node_data(node_dir, tmp_path / "open", say=lambda _: None, buffer_bytes=64 << 10)
    assert again.events == 0 and again.skipped == status.events
    catalog = Replay(tmp_path / "open")
    assert sum(1 for m in catalog.messages() if m["channel"] == "l4Diffs") == sum(1 for c, *_ in archive_rows(tmp_path / "open") if c == "l4Diffs")


def test_what_was_recorded_is_found_after_a_compaction_swapped_its_parts(tmp_path):
    """A follower resuming reads its earlier parts' seqs; a compaction behind it may merge them
    meanwhile: the seqs are found again in the merged part, none taken for missing."""
    from recorder.node.resume import Recorded
    from replay.analysis.compaction import compact

    node_dir, root = tmp_path / "node", tmp_path / "archive"
    write_blocks(node_dir, 0, 30)
    import_node_data(node_dir, root, say=lambda _: None)
    write_blocks(node_dir, 0, 60)  # the same files grown: a second session's parts
    import_node_data(node_dir, root, say=lambda _: None)
    recorded = Recorded(root)
    every = {seq for _, seq, _, _ in archive_rows(root)}
    low, high = min(every), max(every)
    before = recorded.between(low, high)
    assert before == every
    report = compact(root, target_rows=10**6)
    assert report.parts_after and not list(root.rglob("part-*node_*.parquet"))  # the parts it listed are gone
    assert recorded.between(low, high) == every and all(seq in recorded for seq in sorted(every)[:: max(1, len(every) // 50)])


def test_the_follower_merges_its_parts_behind_itself(tmp_path):
    """``record --node-data`` commits a part every --flush-seconds a partition; with --compact-every
    each span's parts become one behind it, every event still recorded once."""
    node_dir, root = tmp_path / "node", tmp_path / "archive"
    start_ms = (time.time_ns() // 1_000_000) - 2_000
    market = SyntheticMarket(seed=6, coins=["BTC"], start_ms=start_ms)
    files = NodeFiles(market.tapes, ["BTC"], node_dir, {"BTC": market.coins["BTC"].sz_decimals})
    files.write_through(0)
    command = [*HLARCHIVE, "record", "--node-data", str(node_dir), "--out", str(root), "--node-info", "http://127.0.0.1:9", "--flush-seconds", "0.3",
               "--compact-every", "2s", "--compact-after", "1s", "--checkpoint-every", "0", "--quiet"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        for tick in range(1, 60):  # block times keep up with the clock: 100 ms a block
            files.write_through(tick)
            time.sleep(0.1)
        files.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(root.rglob("part-*compact*.parquet")):
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    assert list(root.rglob("part-*compact*.parquet")), "no span merged behind the follower"
    seqs = Counter(seq for _, seq, _, _ in archive_rows(root))
    assert max(seqs.values()) == 1 and set(seqs) == set(node_events(node_dir))
    assert sum(parts_by_partition(root).values()) < 59 * 2  # fewer than a part a flush of each stream

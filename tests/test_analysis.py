from __future__ import annotations

import gzip
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from recorder import ArchiveWriter
from recorder.imports.history import import_history
from replay import Replay
from replay.analysis.compaction import compact
from replay.analysis.inventory import verify
from replay.analysis.views import VIEW_NAMES, open_archive
from replay.cli import main

from .archives import T0, make_archive
from .conftest import same
from .history_files import make_history

USER = "0xe746435d136c4714383a64ee28e35c8bdb8d5cb1"
EVERY = [
    {"type": "allMids"}, {"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}, {"type": "trades", "coin": "PURR/USDC"},
    {"type": "bbo", "coin": "ETH"}, {"type": "candle", "coin": "BTC", "interval": "1m"},
    {"type": "activeAssetCtx", "coin": "BTC"}, {"type": "activeAssetCtx", "coin": "@1"},
    *({"type": t, "user": USER} for t in ("userEvents", "userFills", "orderUpdates", "userFundings", "userNonFundingLedgerUpdates")),
]
EXPECTED_TYPES = {
    "trades": {"coin": "VARCHAR", "time": "TIMESTAMP", "px": "DOUBLE", "sz": "DOUBLE", "side": "VARCHAR", "tid": "BIGINT", "hash": "VARCHAR", "buyer": "VARCHAR", "seller": "VARCHAR", "px_text": "VARCHAR", "recv_ns": "BIGINT"},
    "l2book": {"coin": "VARCHAR", "time": "TIMESTAMP", "bids": "STRUCT(px DOUBLE, sz DOUBLE, n BIGINT)[]", "best_bid": "DOUBLE", "best_ask": "DOUBLE", "mid": "DOUBLE", "spread": "DOUBLE"},
    "l2book_levels": {"side": "VARCHAR", "level": "BIGINT", "px": "DOUBLE", "sz": "DOUBLE", "n": "BIGINT"},
    "bbo": {"bid_px": "DOUBLE", "ask_px": "DOUBLE", "mid": "DOUBLE", "spread": "DOUBLE", "time": "TIMESTAMP"},
    "candles": {"coin": "VARCHAR", "interval": "VARCHAR", "open_time": "TIMESTAMP", "open": "DOUBLE", "close": "DOUBLE", "volume": "DOUBLE", "trades": "BIGINT"},
    "all_mids": {"coin": "VARCHAR", "mid": "DOUBLE", "recv_time": "TIMESTAMP"},
    "asset_ctx": {"coin": "VARCHAR", "is_spot": "BOOLEAN", "funding": "DOUBLE", "mark_px": "DOUBLE", "open_interest": "DOUBLE"},
    "fills": {"user": "VARCHAR", "coin": "VARCHAR", "time": "TIMESTAMP", "px": "DOUBLE", "sz": "DOUBLE", "fee": "DOUBLE", "oid": "BIGINT", "crossed": "BOOLEAN"},
    "order_updates": {"user": "VARCHAR", "coin": "VARCHAR", "limit_px": "DOUBLE", "status": "VARCHAR", "status_time": "TIMESTAMP"},
    "fundings": {"user": "VARCHAR", "coin": "VARCHAR", "usdc": "DOUBLE", "funding_rate": "DOUBLE", "time": "TIMESTAMP"},
    "ledger": {"user": "VARCHAR", "type": "VARCHAR", "usdc": "DOUBLE", "delta": "VARCHAR", "time": "TIMESTAMP"},
    "events": {"kind": "VARCHAR", "connection": "BIGINT", "detail": "VARCHAR", "text": "VARCHAR", "recv_time": "TIMESTAMP"},
    "meta": {"kind": "VARCHAR", "payload": "VARCHAR", "recv_time": "TIMESTAMP"},
    "node_fills": {"coin": "VARCHAR", "user": "VARCHAR", "time": "TIMESTAMP", "px": "DOUBLE", "sz": "DOUBLE", "tid": "UBIGINT", "crossed": "BOOLEAN", "block_number": "UBIGINT"},
    "node_trades": {"coin": "VARCHAR", "time": "TIMESTAMP", "px": "DOUBLE", "side": "VARCHAR", "buyer": "VARCHAR", "seller": "VARCHAR"},
    "asset_ctxs": {"coin": "VARCHAR", "time": "TIMESTAMP", "funding": "DOUBLE", "open_interest": "DOUBLE", "mark_px": "DOUBLE", "premium": "DOUBLE"},
    "l4_statuses": {"coin": "VARCHAR", "block": "BIGINT", "block_time": "TIMESTAMP", "user": "VARCHAR", "status": "VARCHAR", "oid": "BIGINT", "px": "DOUBLE", "sz": "DOUBLE", "px_text": "VARCHAR", "tif": "VARCHAR"},
    "l4_diffs": {"coin": "VARCHAR", "block": "BIGINT", "block_time": "TIMESTAMP", "oid": "BIGINT", "kind": "VARCHAR", "px": "DOUBLE", "sz": "DOUBLE", "orig_sz": "DOUBLE", "sz_text": "VARCHAR", "raw_book_diff": "VARCHAR"},
    "l4_snapshots": {"coin": "VARCHAR", "block": "BIGINT", "height": "BIGINT", "bid_orders": "BIGINT", "best_bid": "DOUBLE", "best_ask": "DOUBLE"},
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("every")
    make_archive(root, EVERY, 40)
    with ArchiveWriter(root, session="s9") as w:
        w.write_event("disconnect", recv_ns=T0 + 5, connection=1, detail={"code": 1006})
        w.write_meta("meta", {"universe": [{"name": "BTC", "szDecimals": 5}]}, recv_ns=T0 + 5)
    return root


HISTORY_VIEWS = ("node_fills", "node_trades", "asset_ctxs")


@pytest.fixture(scope="module")
def history_archive(tmp_path_factory) -> Path:
    """Hyperliquid's published history, imported: nodeFills, nodeTrades, assetCtxs."""
    bucket, root = tmp_path_factory.mktemp("bucket"), tmp_path_factory.mktemp("history")
    make_history(bucket)
    import_history([str(bucket)], root)
    return root


L4_VIEWS = ("l4_statuses", "l4_diffs", "l4_snapshots")


@pytest.fixture(scope="module")
def l4_archive(tmp_path_factory) -> Path:
    """A node's L4 files from the simulator, imported, and one node snapshot."""
    from recorder.node.follow import import_node_data
    from replay.simulator.market import SyntheticMarket
    from replay.simulator.node_files import NodeFiles
    from schemas.l4.node import snapshot_rows
    from schemas.subscriptions import parse_subscription

    node, root = tmp_path_factory.mktemp("node"), tmp_path_factory.mktemp("l4")
    market = SyntheticMarket(seed=3, coins=["BTC"])
    files = NodeFiles(market.tapes, ["BTC"], node, {"BTC": 5})
    files.write_through(0)
    files.write_through(20)
    payload = files.snapshot_payload()
    files.close()
    import_node_data(node, root, say=lambda _: None)
    with ArchiveWriter(root, session="node_snapshot") as writer:
        for row in snapshot_rows(payload, block_ms=market.start_ms + 2000)[1]:
            writer.write(row.frame, T0, parse_subscription({"type": row.channel, "coin": row.coin}, allow_unknown=True), seq=row.seq)
    return root


@pytest.mark.parametrize("view", VIEW_NAMES)
def test_each_view_has_its_columns_and_types_and_rows(archive, history_archive, l4_archive, view):
    con = open_archive(history_archive if view in HISTORY_VIEWS else l4_archive if view in L4_VIEWS else archive)
    relation = con.sql(f"select * from {view}")
    types = dict(zip(relation.columns, (str(t) for t in relation.types)))
    for column, expected in EXPECTED_TYPES[view].items():
        assert types.get(column) == expected, (column, types.get(column))
    assert con.sql(f"select count(*) from {view}").fetchall()[0][0] > 0


def test_views_exist_and_are_empty_on_an_empty_archive(tmp_path):
    con = open_archive(tmp_path)
    for view in VIEW_NAMES:
        assert con.sql(f"select count(*) from {view}").fetchall() == [(0,)]


def test_sql_numbers_match_python_over_replay(archive):
    con = open_archive(archive)
    sql_rows = dict(((c, (n, round(v, 6))) for c, n, v in con.sql("select coin, count(*), sum(px * sz) from trades group by 1").fetchall()))
    py: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    books = []
    for msg in Replay(archive).messages():
        if msg["channel"] == "trades":
            for t in msg["data"]:
                py[t["coin"]][0] += 1
                py[t["coin"]][1] += float(t["px"]) * float(t["sz"])
        elif msg["channel"] == "l2Book":
            books.append(float(msg["data"]["levels"][0][0]["px"]))
    assert sql_rows == {c: (n, round(v, 6)) for c, (n, v) in py.items()}
    assert [r[0] for r in con.sql("select best_bid from l2book order by recv_ns").fetchall()] == books
    vwap = con.sql("select vwap(px, sz) from trades where coin = 'BTC'").fetchall()[0][0]
    assert vwap == pytest.approx(py["BTC"][1] / sum(float(t["sz"]) for m in Replay(archive).messages() if m["channel"] == "trades" for t in m["data"] if t["coin"] == "BTC"))
    per_minute = con.sql("select bucket(time, '1 minute') as m, vwap(px, sz) from trades group by 1").fetchall()
    assert per_minute and all(v > 0 for _, v in per_minute)


def test_sql_command_formats_and_errors(archive, tmp_path):
    runner = CliRunner()
    query = "select coin, count(*) as n, avg(px) from trades group by 1 order by 1"
    table = runner.invoke(main, ["sql", str(archive), query])
    assert table.exit_code == 0 and "BTC" in table.output and "PURR/USDC" in table.output and "(2 rows)" in table.output
    as_csv = runner.invoke(main, ["sql", str(archive), query, "--format", "csv"])
    assert as_csv.output.splitlines()[0] == "coin,n,avg(px)"
    as_json = runner.invoke(main, ["sql", str(archive), query, "--format", "json"])
    assert [row["coin"] for row in orjson.loads(as_json.output)] == ["BTC", "PURR/USDC"]  # one array
    as_jsonl = runner.invoke(main, ["sql", str(archive), query, "--format", "jsonl"])
    assert [orjson.loads(line)["coin"] for line in as_jsonl.output.splitlines()] == ["BTC", "PURR/USDC"]  # one object a line
    out = tmp_path / "t.parquet"
    assert runner.invoke(main, ["sql", str(archive), query, "--format", "parquet", "-o", str(out)]).exit_code == 0
    assert pq.read_table(out).num_rows == 2
    bad = runner.invoke(main, ["sql", str(archive), "select nope from trades"])
    assert bad.exit_code == 2 and bad.output.startswith("Error: SQL: Binder Error") and len(bad.output.strip().splitlines()) == 1
    piped = runner.invoke(main, ["sql", str(archive)], input="select count(*) as n\nfrom bbo;\nselect 1 as one;\n")
    assert piped.exit_code == 0 and "40" in piped.output and "one" in piped.output


def test_sql_command_through_a_real_subprocess(archive):
    result = subprocess.run([sys.executable, "-m", "replay.cli", "sql", str(archive), "select coin, count(*), avg(px) from trades group by 1"], capture_output=True, text=True)
    assert result.returncode == 0 and "BTC" in result.stdout


def test_ls_lists_partitions_and_gaps(archive):
    result = CliRunner().invoke(main, ["ls", str(archive)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.split()[:2] == ["trades", "PURR/USDC"] for line in lines) and "disconnect x1" in result.output
    data = orjson.loads(CliRunner().invoke(main, ["ls", str(archive), "--json"]).output)
    trades = [p for p in data["partitions"] if p["channel"] == "trades"]
    assert {p["coin"] for p in trades} == {"BTC", "PURR/USDC"} and all(p["rows"] == 40 and p["bytes"] > 0 for p in trades)


def test_verify_passes_then_finds_a_corrupt_part(tmp_path):
    make_archive(tmp_path, [{"type": "bbo", "coin": "ETH"}, {"type": "trades", "coin": "BTC"}], 20)
    ok = CliRunner().invoke(main, ["verify", str(tmp_path)])
    assert ok.exit_code == 0 and "OK" in ok.output
    part = next(tmp_path.rglob("channel=bbo/*/*/*.parquet"))
    part.write_bytes(part.read_bytes()[:-200])
    bad = CliRunner().invoke(main, ["verify", str(tmp_path)])
    assert bad.exit_code == 1 and "PROBLEM" in bad.output and part.name in bad.output and "unreadable" in bad.output


def test_verify_finds_duplicates_and_leftover_journals(tmp_path):
    make_archive(tmp_path, [{"type": "bbo", "coin": "ETH"}], 10)
    part = next(tmp_path.rglob("*.parquet"))
    (part.parent / part.name.replace("-000001", "-000099")).write_bytes(part.read_bytes())
    (tmp_path / "_journal" / "s_old").mkdir(parents=True)
    (tmp_path / "_journal" / "s_old" / "seg-00000001.wal").write_bytes(b"HLWAL1\n")
    result = verify(tmp_path)
    assert not result.ok
    assert any("appear more than once" in p for p in result.problems)
    assert any("hlarchive recover" in p for p in result.problems)


def test_compact_merges_parts_keeping_order_and_every_row(tmp_path):
    make_archive(tmp_path, [{"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}], 60, flush_rows=7)
    make_archive(tmp_path, [{"type": "l2Book", "coin": "BTC"}], 20, session="s2", flush_rows=3, t0=T0 + 5)
    before = list(Replay(tmp_path).messages())
    parts_before = len(list(tmp_path.rglob("*.parquet")))
    result = CliRunner().invoke(main, ["compact", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.rglob("*.parquet"))) == 2 < parts_before
    after = list(Replay(tmp_path).messages())
    assert len(after) == len(before) and all(same(a, b) for a, b in zip(after, before))
    assert verify(tmp_path).ok


def test_compact_killed_midway_loses_nothing_and_finishes_next_time(tmp_path):
    make_archive(tmp_path, [{"type": "bbo", "coin": "ETH"}], 50, flush_rows=5)
    before = list(Replay(tmp_path).messages())
    code = (
        "import os, signal, sys; from replay.analysis.compaction import compact; "
        "compact(sys.argv[1], _after_write=lambda: os.kill(os.getpid(), signal.SIGKILL))"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path)])
    assert killed.returncode == -signal.SIGKILL
    assert list((tmp_path / "_compact").glob("*.json")), "the manifest of the interrupted swap is there"
    midway = list(Replay(tmp_path).messages())  # old and new parts both present: replay still sees each row once
    assert len(midway) == len(before) and all(same(a, b) for a, b in zip(midway, before))
    assert not verify(tmp_path).ok  # duplicates on disk are reported
    report = compact(tmp_path)
    assert report.finished_interrupted == 1
    assert verify(tmp_path).ok
    assert list(Replay(tmp_path).messages()) == before


def test_import_json_lines_from_other_collectors(tmp_path, real_frames):
    trades, book = real_frames[2], real_frames[1]
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(orjson.dumps(book) + b"\n" + orjson.dumps(trades) + b"\n")
    iso = tmp_path / "iso.jsonl.gz"
    with gzip.open(iso, "wb") as handle:
        handle.write(b"2026-01-02T03:04:05.123456Z " + orjson.dumps(trades) + b"\n")
        handle.write(b"1767323045123 " + orjson.dumps(book) + b"\n")  # epoch ms
        handle.write(b"this is not a frame\n")
    result = CliRunner().invoke(main, ["import", str(plain), str(iso), "--root", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "imported 4 frames from 2 file(s); 1 bad line(s)" in result.output
    messages = list(Replay(tmp_path / "a").messages())
    assert len(messages) == 4 and all(m in (trades, book) for m in messages)
    con = open_archive(tmp_path / "a")
    assert con.sql("select text from events where kind = 'malformed'").fetchall() == [("this is not a frame",)]
    times = con.sql("select recv_ns from archive_trades order by recv_ns").fetchall()
    assert times[-1][0] == 1767323045123456000
    missing = CliRunner().invoke(main, ["import", str(tmp_path / "nope.jsonl"), "--root", str(tmp_path / "b")])
    assert missing.exit_code == 2 and "no file" in missing.output


def test_compact_in_parallel_gives_the_rows_one_process_gives(tmp_path):
    import shutil

    from .archives import archive_differences

    original = tmp_path / "original"
    make_archive(original, [{"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "ETH"}, {"type": "bbo", "coin": "SOL"}], 40, flush_rows=6)
    for jobs in (1, 2):
        shutil.copytree(original, tmp_path / f"jobs{jobs}")
        report = compact(tmp_path / f"jobs{jobs}", jobs=jobs)
        assert (report.partitions, report.parts_after, report.rows) == (3, 3, 120)
    assert archive_differences(original, tmp_path / "jobs1") == [] and archive_differences(original, tmp_path / "jobs2") == []
    assert len(list((tmp_path / "jobs2").rglob("*.parquet"))) == 3 and verify(tmp_path / "jobs2").ok

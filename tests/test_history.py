"""``hlarchive import`` of Hyperliquid's published history: exact frames, pairing, views, idempotence, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lz4.frame
import orjson
import pytest
from click.testing import CliRunner

from recorder import ArchiveWriter
from recorder.imports.history import import_history, list_sources
from replay import Replay
from replay.analysis.views import open_archive
from replay.cli import main
from schemas.imports.history import iso_ns, node_trade

from .history_files import HOUR9_NS, make_history, write_lz4


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    source = tmp_path_factory.mktemp("bucket")
    made = make_history(source)
    root = tmp_path_factory.mktemp("archive")
    report = import_history([str(source)], root)
    return source, root, made, report


def messages(root: Path, sub: dict) -> list[dict]:
    replay = Replay(root)
    replay.subscribe(sub, lambda m: None)
    return list(replay.messages())


def test_the_layout_tells_every_dataset(imported):
    source, _, _, _ = imported
    kinds = {s.key: s.dataset for s in list_sources([str(source)])}
    assert kinds["market_data/20250311/9/l2Book/SOL.lz4"] == "l2Book"
    assert kinds["asset_ctxs/20250311.csv.lz4"] == "asset_ctxs"
    assert kinds["node_fills_by_block/hourly/20250311/10.lz4"] == "node_fills_by_block"
    assert kinds["node_fills/hourly/20250601/0.lz4"] == "node_fills"
    assert kinds["node_trades/hourly/20250525/13.lz4"] == "node_trades"
    order = [s.key for s in list_sources([str(source)]) if "by_block" in s.key]
    assert order == ["node_fills_by_block/hourly/20250311/9.lz4", "node_fills_by_block/hourly/20250311/10.lz4"]


def test_l2book_snapshots_replay_exactly_the_records_raw(imported):
    _, root, made, _ = imported
    for coin, lines in made["books"].items():
        expected = [orjson.loads(line)["raw"] for line in lines]
        got = messages(root, {"type": "l2Book", "coin": coin})
        assert [orjson.dumps(m) for m in got] == [orjson.dumps(m) for m in expected]  # values and key order


def test_imported_books_interleave_with_recorded_ones_by_time(imported, tmp_path):
    source, _, made, _ = imported
    root = tmp_path / "mixed"
    recorded = {"channel": "l2Book", "data": {"coin": "SOL", "time": 1, "levels": [[{"px": "1.0", "sz": "1.0", "n": 1}], []]}}
    with ArchiveWriter(root, session="live") as writer:
        writer.write(recorded, HOUR9_NS + 5_250_000_000, {"type": "l2Book", "coin": "SOL"})  # between snapshots 10 and 11
    import_history([str(source / "market_data")], root)
    got = messages(root, {"type": "l2Book", "coin": "SOL"})
    assert len(got) == 41 and got[11] == recorded and got[10] == orjson.loads(made["books"]["SOL"][10])["raw"]


def test_fills_become_node_fills_rows_and_paired_trades_across_the_hours_edge(imported):
    _, root, made, report = imported
    con = open_archive(root)
    n_fills = 2 * (len(made["pairs"]) + len(made["old_pairs"]))
    assert con.execute("select count(*) from node_fills").fetchone()[0] == n_fills
    row = con.execute("select coin, \"user\", side, px, block_number, liquidation is not null from node_fills where liquidation is not null limit 1").fetchone()
    assert row[0] in ("BTC", "ETH") and row[4] >= 560_000_000 and row[5]
    trades = messages(root, {"type": "trades", "coin": "BTC"}) + messages(root, {"type": "trades", "coin": "ETH"})
    by_tid = {t["data"][0]["tid"]: t["data"][0] for t in trades}
    assert len(by_tid) == len(made["pairs"]) and report.unpaired_fills == 0
    for (buyer, buy), (seller, sell) in made["pairs"]:
        trade = by_tid[buy["tid"]]
        taker = buy if buy["crossed"] else sell
        assert trade == {"coin": buy["coin"], "side": taker["side"], "px": buy["px"], "sz": buy["sz"], "time": buy["time"], "hash": buy["hash"], "tid": buy["tid"], "users": [buyer, seller]}
    edge = made["pairs"][9]
    assert edge[0][1]["tid"] in by_tid  # its two fills were in two files
    assert con.execute("select count(*) from trades where coin = 'SOL'").fetchone()[0] == len(made["old_pairs"]) + 0


def test_node_trades_land_whole_and_as_trades(imported):
    _, root, made, _ = imported
    con = open_archive(root)
    rows = con.execute("select px_text, buyer, seller, trade_dir_override from node_trades order by recv_ns").fetchall()
    records = [orjson.loads(line) for line in made["node_trades"]]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(t["px"], t["side_info"][0]["user"], t["side_info"][1]["user"], "Na") for t in records]
    assert [m["data"] for m in messages(root, {"type": "nodeTrades", "coin": "AAVE"})] == records  # whole, key order kept
    trades = con.execute("select side, px_text, buyer, seller, tid from trades where coin = 'AAVE' order by time").fetchall()
    assert [(s, p, b, se) for s, p, b, se, _ in trades] == [(t["side"], t["px"], t["side_info"][0]["user"], t["side_info"][1]["user"]) for t in records]
    assert [tid for *_, tid in trades] == [node_trade(line)[2]["data"][0]["tid"] for line in made["node_trades"]]  # stable


def test_asset_contexts_one_row_a_coin_minute_both_time_formats(imported):
    _, root, _, _ = imported
    con = open_archive(root)
    rows = con.execute("select coin, time, funding, premium, mid_px, impact_bid_px from asset_ctxs order by time, coin").fetchall()
    assert len(rows) == 10 and len({(r[0], r[1]) for r in rows}) == 10
    assert str(rows[2][1]) == "2025-03-11 00:01:00" and str(rows[0][1]) == "2025-03-11 00:00:00"
    btc = [r for r in rows if r[0] == "BTC"][0]
    assert btc[2] == 0.00001 and btc[3] is None and btc[4] is None and btc[5] is None


def test_a_second_import_adds_nothing(imported):
    source, root, _, _ = imported
    before = sorted(p.name for p in root.rglob("*.parquet"))
    again = import_history([str(source)], root)
    assert again.files == 0 and again.rows == 0 and again.skipped == 7
    assert sorted(p.name for p in root.rglob("*.parquet")) == before


def test_parts_name_their_source_key_and_verify_passes(imported):
    _, root, _, _ = imported
    import pyarrow.parquet as pq

    keys = {pq.read_metadata(p).metadata.get(b"hlarchive.source_url", b"").decode() for p in root.rglob("channel=l2Book/*/*/*.parquet")}
    assert keys == {"market_data/20250311/9/l2Book/SOL.lz4", "market_data/20250311/9/l2Book/BTC.lz4"}
    result = CliRunner().invoke(main, ["verify", str(root)])
    assert result.exit_code == 0, result.output


def test_an_interrupted_import_continues_leaving_only_whole_parts(tmp_path):
    source = tmp_path / "bucket"
    make_history(source)
    root = tmp_path / "archive"
    good = import_history([str(source / "market_data")], tmp_path / "reference")
    # an interrupted run: one file's parts committed, no marker (the process died before it)
    from recorder.imports.history import identity
    from recorder.imports.history import list_sources as sources_of

    first = sources_of([str(source / "market_data")])[0]
    session = identity(first)
    with ArchiveWriter(root, session=session, source_url=first.key) as writer:
        writer.write({"channel": "l2Book", "data": {"coin": "BTC", "time": 1, "levels": [[], []]}}, HOUR9_NS, {"type": "l2Book", "coin": "BTC"})
    report = import_history([str(source / "market_data")], root)
    assert report.files == 2 and report.rows == good.rows
    assert [orjson.dumps(m) for m in messages(root, {"type": "l2Book", "coin": "BTC"})] == [orjson.dumps(m) for m in messages(tmp_path / "reference", {"type": "l2Book", "coin": "BTC"})]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("market_data/20250311/9/l2Book/ETH.lz4", None, "cannot decode the LZ4 frame"),  # truncated
        ("market_data/20250311/9/l2Book/ETH.lz4", [b'{"time":"2025-03-11T09:00:00.1","ver_num":1,"raw":{"channel":"l2Book","data":{"coin":"ETH","time":1,"levels":[[],[]]}}}', b"{oops"], "line 2: not JSON"),
        ("asset_ctxs/20250312.csv.lz4", ["time,coin,funding", "2025-03-12T00:00:00Z,SOL,0.1"], "line 1: header"),
        ("node_trades/hourly/20250525/14.lz4", [b'{"coin":"AAVE","side":"B"}'], "line 1: a node_trades record lacks"),
        ("node_fills_by_block/hourly/20250311/11.lz4", [b'{"local_time":"2025-03-11T11:00:00.1","events":[["0xab",{"coin":"BTC"}]]}'], "line 1: a fill lacks"),
    ],
)
def test_bad_input_is_one_line_with_file_and_line_exit_2_and_nothing_half_imported(tmp_path, name, content, words):
    path = tmp_path / "bucket" / name
    if content is None:
        data = lz4.frame.compress(b'{"time":"2025-03-11T09:00:00.1","ver_num":1,"raw":{}}\n' * 2000)
        path.parent.mkdir(parents=True)
        path.write_bytes(data[: len(data) // 2])
    else:
        write_lz4(path, content)
    root = tmp_path / "archive"
    done = subprocess.run([sys.executable, "-m", "replay.cli", "import", str(path), "--root", str(root), "--silent"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and words in lines[0], lines
    assert not list(root.rglob("*.parquet"))


def test_iso_times_of_every_documented_form():
    assert iso_ns("2025-03-11T09:00:00.830233071") == 1_741_683_600_830_233_071
    assert iso_ns("2025-03-11T00:01:00Z") == iso_ns("2025-03-11 00:01:00") == 1_741_651_260_000_000_000


def test_import_command_reports_and_shows_progress(tmp_path):
    source = tmp_path / "bucket"
    make_history(source)
    result = CliRunner().invoke(main, ["import", str(source), "--root", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "importing: 7/7 file(s)" in result.output and "134 rows (" in result.output and "MB/s" in result.output  # files done / total, MB, MB/s, rows, rows/s
    assert "trades frames from 7 file(s)" in result.output
    again = CliRunner().invoke(main, ["import", str(source), "--root", str(tmp_path / "a"), "--silent"])
    assert "7 file(s) imported before, skipped" in again.output

"""The catalog (``_catalog/``): every committed part listed as it is committed, compacted, synced,
imported; readers plan from it and touch only the parts they need; a catalog that is missing or
behind is rebuilt or caught up from the tree, once, with one line; ``verify`` checks the two agree;
compaction through ``kill -9`` at each step loses and doubles nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import replay.archive as archive
from recorder.parts.catalog import catch_up
from replay import Replay
from replay.analysis.compaction import compact
from replay.analysis.inventory import verify
from replay.archive import find_parts, walk_parts
from replay.catalog import differences, fold_date, read_catalog
from replay.cli import main
from replay.storage import open_store

from .archives import T0, make_archive

SUBS = [{"type": "trades", "coin": c} for c in ("ETH", "BTC", "SOL")] + [{"type": "bbo", "coin": "ETH"}]
MINUTE_NS = 60_000_000_000


def minute_parts(root: Path, minutes: int = 150, per_minute: int = 6, session: str = "s1") -> list[tuple[int, dict]]:
    """Frames of four streams, a part a partition a minute (as the recorder commits them), over
    ``minutes`` minutes: hours 0, 1 and half of 2."""
    frames = make_archive(root, SUBS, minutes * per_minute, step_ns=MINUTE_NS // (per_minute * len(SUBS)), flush_rows=per_minute, session=session)
    return frames


def agree(root: Path) -> None:
    store = open_store(root)
    missing, gone = differences(store, walk_parts(store))
    assert (missing, gone) == ([], []), (missing[:2], gone[:2])


def messages(root: Path) -> list[bytes]:
    return [orjson.dumps(m) for m in Replay(root).messages()]


def test_every_commit_is_listed_with_its_rows_times_and_seqs(tmp_path):
    minute_parts(tmp_path, minutes=20)
    assert (tmp_path / "_catalog" / "COMPLETE").exists()
    agree(tmp_path)
    entries = {e.path: e for e in read_catalog(open_store(tmp_path))}
    assert len(entries) == len(list(tmp_path.glob("channel=*/coin=*/date=*/part-*.parquet"))) > 60
    for path, entry in list(entries.items())[:10]:
        table = pq.read_table(tmp_path / path)
        assert entry.rows == table.num_rows and entry.bytes == (tmp_path / path).stat().st_size
        assert (entry.first_recv_ns, entry.last_recv_ns) == (min(table.column("recv_ns").to_pylist()), max(table.column("recv_ns").to_pylist()))
        assert (entry.first_seq, entry.last_seq) == (min(table.column("seq").to_pylist()), max(table.column("seq").to_pylist()))
        assert entry.session == "s1" and path.startswith(f"channel={entry.channel}/coin={entry.coin}/date={entry.date}/")


def test_readers_plan_from_the_catalog_and_open_only_the_parts_they_need(tmp_path, monkeypatch):
    minute_parts(tmp_path, minutes=150)
    everything = messages(tmp_path)
    opened: list[str] = []
    real_open = archive.open_part

    def no_walk(*args, **kwargs):
        raise AssertionError("a reader walked the tree although the catalog is there")

    def open_part(part, *args, **kwargs):
        opened.append(part.path)
        return real_open(part, *args, **kwargs)

    monkeypatch.setattr(archive, "_values", no_walk)
    monkeypatch.setattr(archive, "_files", no_walk)
    monkeypatch.setattr(archive, "open_part", open_part)
    import replay.replay as replay_module

    monkeypatch.setattr(replay_module, "open_part", open_part)
    start, end = T0 + 60 * MINUTE_NS, T0 + 120 * MINUTE_NS - 1  # hour 1
    hour = Replay(tmp_path, start=start / 1e6, end=end / 1e6)
    hour.subscribe({"type": "trades", "coin": "BTC"}, lambda m: None)
    got = [item.recv_ns for item in hour.items() if item.stream is not None]
    assert got and all(start <= t <= end for t in got)
    wanted = {p.path for p in find_parts(tmp_path, channels=["trades"], coins=["BTC"], start_ns=start, end_ns=end)}
    assert 59 <= len(wanted) <= 61  # a part a minute of that hour (and the one straddling its start)
    assert set(opened) <= wanted
    monkeypatch.undo()
    assert messages(tmp_path) == everything


def test_an_archive_without_a_catalog_gets_one_once_with_one_line(tmp_path, capfd):
    minute_parts(tmp_path, minutes=10)
    before = messages(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "_catalog")  # as an older version left it
    capfd.readouterr()
    assert messages(tmp_path) == before
    err = capfd.readouterr().err
    assert err.count("catalog: built from the tree, once") == 1, err
    agree(tmp_path)
    assert messages(tmp_path) == before
    assert "catalog:" not in capfd.readouterr().err


def test_a_crash_between_a_part_and_its_entry_is_caught_up_and_verify_says_so(tmp_path, capfd):
    minute_parts(tmp_path, minutes=10)
    log = next((tmp_path / "_catalog").glob("date=*/*.jsonl"))
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-3]) + lines[-3][:20])  # the last entries never written, one cut short
    result = verify(tmp_path)
    assert not result.ok and any("3 part(s) the catalog does not list" in p for p in result.problems), result.problems
    capfd.readouterr()
    assert catch_up(tmp_path) == 3
    assert "catalog: caught up with the tree (3 parts added" in capfd.readouterr().err
    agree(tmp_path)
    assert verify(tmp_path).ok


def test_compaction_into_hours_keeps_every_row_and_the_catalog_folds(tmp_path):
    minute_parts(tmp_path, minutes=150)
    before = messages(tmp_path)
    report = compact(tmp_path, into="hour")
    assert report.parts_before > 500 and report.parts_after == 4 * 3  # 4 partitions x hours 0, 1, 2
    assert messages(tmp_path) == before
    agree(tmp_path)
    # the date's folded file holds the whole state; this hour's files stay (a writer may append),
    # and folding them in later (once their hour is over) gives the same
    tree = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("channel=*/coin=*/date=*/part-*.parquet"))
    assert sorted(pq.read_table(tmp_path / "_catalog" / "date=2026-01-01.pq").column("path").to_pylist()) == tree
    fold_date(open_store(tmp_path), "2026-01-01", before_hour="9999999999")
    assert not list((tmp_path / "_catalog").glob("date=*/*.jsonl"))
    agree(tmp_path)
    assert verify(tmp_path).ok
    result = CliRunner().invoke(main, ["compact", str(tmp_path), "--into", "day"])
    assert result.exit_code == 0 and "4 partitions: 12 parts -> 4" in result.output, result.output
    assert messages(tmp_path) == before
    agree(tmp_path)


@pytest.mark.parametrize("point", ["written", "cataloged", "deleting"])
def test_kill_9_at_each_step_of_a_compaction_loses_and_doubles_nothing(tmp_path, point):
    minute_parts(tmp_path, minutes=30)
    before = messages(tmp_path)
    code = f"from replay.analysis.compaction import compact; compact({str(tmp_path)!r}, into='hour')"
    done = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "HLARCHIVE_KILL_COMPACTION": point}, capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()[-500:]
    assert list((tmp_path / "_compact").glob("*.json"))  # the swap it was in the middle of
    assert not verify(tmp_path).ok  # said, until finished
    compact(tmp_path, into="hour")  # the next compaction (or the recorder's next round) finishes it
    assert messages(tmp_path) == before
    agree(tmp_path)
    assert verify(tmp_path).ok


def test_recorder_compacts_behind_itself(tmp_path):
    """A recorder with 2-second spans, a second after each: the spans that are over hold one part a
    partition, with every frame, and the catalog agrees."""
    import time

    from replay.serving.server import HyperliquidServer, ServerThread
    from replay.serving.synthetic_source import SyntheticSource

    from .recording import record

    subs = [{"type": "trades", "coin": "ETH"}, {"type": "bbo", "coin": "ETH"}, {"type": "bbo", "coin": "BTC"}]
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=2, start_ms=int(time.time() * 1000)), rate=50)) as server:
        started = time.time_ns()
        recorder = record(tmp_path, server.ws_url, subs, 9.0, writer_options={"flush_seconds": 0.5}, compact_every_s=2.0, compact_after_s=1.0)
    assert recorder.compactor is not None and recorder.compactor.rounds >= 2 and recorder.compactor.error is None
    compacted_until = recorder.compactor._done_until_ns
    assert compacted_until is not None and compacted_until > started
    by_span: dict[tuple[str, int], int] = {}
    for part in find_parts(tmp_path, channels=["trades", "bbo"]):
        if part.name.first_recv_ns < compacted_until:
            key = (part.directory, part.name.first_recv_ns // 2_000_000_000)
            by_span[key] = by_span.get(key, 0) + 1
    assert by_span and max(by_span.values()) == 1, by_span
    agree(tmp_path)
    frames = [m for m in Replay(tmp_path).messages()]
    seqs = [row for p in find_parts(tmp_path) for row in pq.read_table(p.path, columns=["session", "seq"]).to_pylist()]
    assert len(seqs) == len({(r["session"], r["seq"]) for r in seqs})  # nothing doubled
    assert len(frames) > 200
    assert recorder.compactor.cpu_s > 0 and recorder.compactor.last["end_ns"] == compacted_until


def test_catalog_command_and_bad_durations(tmp_path):
    minute_parts(tmp_path, minutes=5)
    result = CliRunner().invoke(main, ["catalog", str(tmp_path)])
    assert result.exit_code == 0 and "2026-01-01" in result.output and "parts" in result.output, result.output
    result = CliRunner().invoke(main, ["catalog", str(tmp_path), "--rebuild"])
    assert result.exit_code == 0 and "catalog rebuilt from the tree" in result.output
    agree(tmp_path)
    result = CliRunner().invoke(main, ["record", "--coin", "ETH", "--out", str(tmp_path / "x"), "--compact-every", "soon", "--duration", "1"])
    assert result.exit_code != 0 and "give a duration like 30s, 10m or 1h" in result.output and "Traceback" not in result.output
    config = tmp_path / "rec.toml"
    config.write_text('coins = ["ETH"]\ncompact_every = "5 minutes"\n')
    result = CliRunner().invoke(main, ["record", "--config", str(config), "--out", str(tmp_path / "y"), "--duration", "1"])
    assert result.exit_code != 0 and "bad --compact-every '5 minutes'" in result.output and "Traceback" not in result.output
    from recorder.parts.compactor import parse_duration

    assert [parse_duration(t, "x") for t in ("30s", "10m", "1h", "1d", "0", 90)] == [30, 600, 3600, 86_400, 0, 90]


def test_an_s3_copy_has_its_catalog_and_readers_list_no_partition(s3, tmp_path, monkeypatch):
    from replay.analysis.sync import sync

    from .test_object_storage import fresh_prefix

    minute_parts(tmp_path, minutes=30)
    url = fresh_prefix()
    sync(tmp_path, url)
    store = open_store(url)
    assert store.exists(store.path("_catalog", "COMPLETE"))
    before = messages(tmp_path)

    def no_walk(*args, **kwargs):
        raise AssertionError("a reader listed the bucket's partitions although the catalog is there")

    with monkeypatch.context() as patched:  # (the fixture's AWS environment stays)
        patched.setattr(archive, "_values", no_walk)
        patched.setattr(archive, "_files", no_walk)
        assert [orjson.dumps(m) for m in Replay(url).messages()] == before
    agree_remote = differences(store, walk_parts(store))
    assert agree_remote == ([], [])


def test_views_read_the_catalogs_parts_as_globbing_the_tree_does(tmp_path, monkeypatch):
    """Parts of two schemas in one channel (frames kept as text beside typed ones): the views built
    from the catalog's lists (one a schema) answer as the glob over the tree did."""
    from recorder import ArchiveWriter
    from replay.analysis.views import open_archive
    from schemas import parse_subscription

    minute_parts(tmp_path, minutes=10)
    sub = parse_subscription({"type": "trades", "coin": "ETH"})
    with ArchiveWriter(tmp_path, session="odd") as writer:
        writer.write({"channel": "trades", "data": [{"coin": "ETH", "side": "B", "px": "1.5", "sz": "2", "time": 1767225600000, "hash": "0x", "tid": 5, "users": ["a", "b"], "newField": 1}]}, T0 + 7, sub)
    queries = [
        "select count(*), round(sum(px), 4), min(time) from trades",
        "select count(*) from archive_trades where raw is not null",
        "select coin, count(*) from bbo group by coin order by coin",
        "select count(*) from trades where coin = 'BTC' and date = '2026-01-01'",
    ]
    ours = [open_archive(tmp_path).execute(q).fetchall() for q in queries]
    monkeypatch.setenv("HLARCHIVE_NO_CATALOG", "1")
    import shutil

    shutil.rmtree(tmp_path / "_catalog")
    assert [open_archive(tmp_path).execute(q).fetchall() for q in queries] == ours
    assert ours[1] == [(1,)] and ours[0][0][0] > 100


def test_coverage_and_ls_from_the_catalog_equal_reading_the_parts(tmp_path, monkeypatch):
    """Rows an hour from the catalog's counts (no part read) and ls's sums: as from the parts
    themselves, over the whole archive and over a window cutting hours and parts."""
    from replay.analysis.coverage import coverage
    from replay.analysis.inventory import summarize

    minute_parts(tmp_path, minutes=150)
    compact(tmp_path, into="hour", dates=None, start_ns=T0 + 60 * MINUTE_NS)  # hours 1 and 2 in parts an hour, hour 0 a minute each

    def cells(**window):
        return sorted((c.channel, c.coin, c.hour_ns, c.frames) for c in coverage(tmp_path, **window).cells)

    windows = [{}, {"start_ns": T0 + 30 * MINUTE_NS + 7, "end_ns": T0 + 95 * MINUTE_NS}]
    ours = [cells(**w) for w in windows]
    listed = summarize(tmp_path)["partitions"]
    monkeypatch.setenv("HLARCHIVE_NO_CATALOG", "1")
    assert [cells(**w) for w in windows] == ours
    assert summarize(tmp_path)["partitions"] == listed
    assert sum(f for *_, f in ours[0]) == sum(1 for _ in Replay(tmp_path).messages())


def test_the_latest_line_of_a_path_says_whether_it_is_there(tmp_path):
    """An import's retry writes again the parts its cleanup removed (same names): listed again. A
    removal after it removes it. The writers' lines and the folded file agree on it."""
    from recorder.parts.catalog import CatalogLog
    from schemas.catalog import Folding

    minute_parts(tmp_path, minutes=3)
    store = open_store(tmp_path)
    entry = next(e for e in read_catalog(store) if e.channel == "trades")
    log = CatalogLog(tmp_path, "retry")
    log.removed([entry.path])
    assert entry.path not in {e.path for e in read_catalog(store)}
    log.added([entry])  # the retry's part, written again
    assert entry.path in {e.path for e in read_catalog(store)}
    fold_date(store, entry.date, before_hour="9999999999")
    assert entry.path in {e.path for e in read_catalog(store)}
    log.removed([entry.path])
    folding = Folding()
    folding.rows(pq.read_table(tmp_path / "_catalog" / f"date={entry.date}.pq"))
    for line_file in (tmp_path / "_catalog").glob("date=*/*.jsonl"):
        folding.lines(line_file.read_bytes())
    assert entry.path not in folding.result() and entry.path not in {e.path for e in read_catalog(store)}


def test_views_of_a_window_list_only_its_parts_and_hold_only_its_rows(tmp_path):
    """``open_archive(coins=, start=, end=)`` and ``hlarchive sql --coin --start --end``: the views
    equal the whole archive's views filtered the same way, and a part outside the window is never
    opened (it is removed from under the catalog: the whole archive's views then fail on it)."""
    from replay.analysis.views import open_archive

    minute_parts(tmp_path, minutes=150)
    start_ns, end_ns = T0 + 70 * MINUTE_NS + 123_000_000, T0 + 95 * MINUTE_NS  # whole ms: bounds are epoch ms
    queries = [
        "select coin, count(*), min(recv_ns), max(recv_ns) from archive_trades group by coin order by coin",
        "select count(*), round(sum(px * sz), 6) from trades",
        "select count(*) from bbo",
        "select count(*) from events",
    ]
    whole = open_archive(tmp_path)
    expected = [
        whole.execute(q.replace("from archive_trades", "from archive_trades where coin = 'BTC' and recv_ns between ? and ?").replace("from trades", "from trades where coin = 'BTC' and recv_ns between ? and ?").replace("from bbo", "from bbo where coin = 'BTC' and recv_ns between ? and ?").replace("from events", "from events where recv_ns between ? and ?"), [start_ns, end_ns]).fetchall()
        for q in queries
    ]
    outside = [p for p in tmp_path.glob("channel=trades/coin=BTC/date=*/part-*.parquet") if pq.read_table(p, columns=["recv_ns"]).column("recv_ns").to_pylist()[-1] < start_ns]
    other_coin = next(tmp_path.glob("channel=trades/coin=ETH/date=*/part-*.parquet"))
    for path in (*outside[:3], other_coin):
        path.unlink()
    window = open_archive(tmp_path, coins=["BTC"], start=start_ns // 1_000_000, end=end_ns // 1_000_000)
    got = [window.execute(q).fetchall() for q in queries]
    assert got == expected and got[0][0][0] == "BTC" and got[0][0][1] > 100 and got[2] == [(0,)]
    assert start_ns <= got[0][0][2] and got[0][0][3] <= end_ns
    with pytest.raises(Exception, match="No such file|does not exist|IO Error"):
        open_archive(tmp_path).execute(queries[0]).fetchall()
    stamp = lambda ns: f"{ns // 1_000_000}"  # noqa: E731 - epoch ms, as the CLI takes them
    cli = CliRunner().invoke(main, ["sql", str(tmp_path), queries[1], "--coin", "BTC", "--start", stamp(start_ns), "--end", stamp(end_ns), "--format", "json"])
    assert cli.exit_code == 0, cli.output
    assert orjson.loads(cli.output)[0]["count_star()"] == expected[1][0][0]
    bad = CliRunner().invoke(main, ["sql", str(tmp_path), queries[1], "--start", "yesterday"])
    assert bad.exit_code != 0 and "bad --start 'yesterday'" in bad.output and len(bad.output.strip().splitlines()) == 1

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder import ArchiveWriter
from replay import Replay
from replay.archive import walk_parts
from replay.catalog import differences
from replay.storage import open_store
from schemas import ArchiveError

from .conftest import same
from .strategies import any_frames, frames_of

T0 = 1_751_427_259_657_000_000
USER = "0xcc0a3b6e3267c84361e91d8230868eea53431e4b"


def parts(root: Path) -> list[Path]:
    return sorted(root.rglob("part-*.parquet"))


def test_real_frames_round_trip_through_the_archive(tmp_path, real_frames):
    with ArchiveWriter(tmp_path) as writer:
        for i, msg in enumerate(real_frames):
            writer.write(msg, recv_ns=T0 + i)
    back = list(Replay(tmp_path).messages())
    assert len(back) == len(real_frames)
    for got, sent in zip(back, real_frames):
        assert same(got, sent)


@given(frames=st.lists(any_frames, min_size=1, max_size=30), flush_rows=st.integers(1, 7), stage_rows=st.integers(1, 5))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_frames_round_trip_in_receipt_order_across_many_parts(tmp_path_factory, frames, flush_rows, stage_rows):
    root = tmp_path_factory.mktemp("archive")
    with ArchiveWriter(root, flush_rows=flush_rows, stage_rows=stage_rows) as writer:
        for i, msg in enumerate(frames):
            writer.write(msg, recv_ns=T0 + i * 1_000)
    back = list(Replay(root).messages())
    assert len(back) == len(frames)
    for got, sent in zip(back, frames):
        assert same(got, sent)
    # and as bytes, never built as dicts: exactly the text orjson gives for each frame received
    assert list(Replay(root).raw_messages()) == [orjson.dumps(f) for f in frames]


@pytest.mark.parametrize("channel", ["l2Book", "trades", "bbo", "candle", "user", "userFills", "activeAssetCtx", "activeSpotAssetCtx", "activeAssetData", "webData2", "allMids"])
@given(data=st.data())
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_channel_round_trips_through_parquet(tmp_path_factory, channel, data):
    frames = data.draw(st.lists(frames_of(channel), min_size=1, max_size=8))
    root = tmp_path_factory.mktemp("archive")
    with ArchiveWriter(root, flush_rows=3) as writer:
        for i, msg in enumerate(frames):
            writer.write(msg, recv_ns=T0 + i)
    back = list(Replay(root).messages())
    assert [same(a, b) for a, b in zip(back, frames)] == [True] * len(frames) and len(back) == len(frames)


def test_two_sessions_interleave_by_receive_time(tmp_path, real_frames):
    l2, trades = real_frames[1], real_frames[2]
    with ArchiveWriter(tmp_path, session="a") as a, ArchiveWriter(tmp_path, session="b") as b:
        a.write(l2, recv_ns=T0 + 10)
        b.write(trades, recv_ns=T0 + 5)
        a.write(trades, recv_ns=T0 + 20)
        b.write(l2, recv_ns=T0 + 20)  # same time: session breaks the tie
    channels = [m["channel"] for m in Replay(tmp_path).messages()]
    assert channels == ["trades", "l2Book", "trades", "l2Book"]


def test_parts_carry_metadata_and_are_zstd(tmp_path, real_frames):
    with ArchiveWriter(tmp_path, session="s1", source_url="ws://127.0.0.1:1/ws") as writer:
        writer.write(real_frames[1], recv_ns=T0, subscription={"type": "l2Book", "coin": "BTC"})
    (part,) = parts(tmp_path)
    assert part.parent.relative_to(tmp_path).as_posix() == "channel=l2Book/coin=BTC/date=2025-07-02"
    meta = pq.ParquetFile(part).schema_arrow.metadata
    assert meta[b"hlarchive.format_version"] == b"1"
    assert meta[b"hlarchive.session"] == b"s1"
    assert meta[b"hlarchive.source_url"] == b"ws://127.0.0.1:1/ws"
    assert b"l2Book:btc" in meta[b"hlarchive.subscriptions"]
    assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"


def test_duckdb_reads_the_archive_with_hive_partitions(tmp_path, real_frames):
    with ArchiveWriter(tmp_path) as writer:
        for i in range(5):
            writer.write(real_frames[2], recv_ns=T0 + i)
        writer.write({"channel": "trades", "data": [{**real_frames[2]["data"][0], "coin": "PURR/USDC"}]}, recv_ns=T0 + 9)
    rows = duckdb.sql(
        f"select coin, count(*) from read_parquet('{tmp_path}/channel=trades/*/*/*.parquet', hive_partitioning=true) group by 1 order by 1"
    ).fetchall()
    assert rows == [("BTC", 5), ("PURR/USDC", 1)]


def test_a_half_written_part_is_never_visible(tmp_path, real_frames):
    with ArchiveWriter(tmp_path) as writer:
        writer.write(real_frames[2], recv_ns=T0)
    (part,) = parts(tmp_path)
    # a writer killed mid-part leaves only its temporary file behind
    (part.parent / ".part-0000000000000000009-x-000009.parquet.tmp").write_bytes(part.read_bytes()[:100])
    assert len(list(Replay(tmp_path).messages())) == 1
    count = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/channel=trades/*/*/*.parquet')").fetchall()
    assert count == [(1,)]


def test_buffers_flush_on_rows_on_age_and_on_close(tmp_path, real_frames):
    now = [T0]
    writer = ArchiveWriter(tmp_path, flush_rows=3, flush_seconds=5, clock=lambda: now[0])
    for _ in range(3):
        writer.write(real_frames[2])
    assert len(parts(tmp_path)) == 1  # row count reached
    writer.write(real_frames[1])
    assert writer.flush_due() == 0
    now[0] += 6 * 10**9
    assert writer.flush_due() == 1 and len(parts(tmp_path)) == 2  # age reached
    writer.write(real_frames[1])
    writer.close()
    assert len(parts(tmp_path)) == 3 and writer.buffered_rows == 0
    with pytest.raises(ArchiveError, match="closed"):
        writer.write(real_frames[1])


def test_background_writing_gives_the_same_parts_and_raises_a_failed_write_at_flush(tmp_path, real_frames):
    # the importer's writer: parts encoded by a thread while the caller parses the next chunk
    frames = [real_frames[2]] * 7 + [real_frames[1]] * 5
    for background in (False, True):
        with ArchiveWriter(tmp_path / str(background), session="s", flush_rows=3, background=background) as writer:
            for i, frame in enumerate(frames):
                writer.write(frame, recv_ns=T0 + i)
        assert writer.stats.parts == len(parts(tmp_path / str(background))) == 5  # trades 3+3+1, allMids 3+2
        assert writer.stats.rows_committed == len(frames)
    assert [p.relative_to(tmp_path / "True") for p in parts(tmp_path / "True")] == [p.relative_to(tmp_path / "False") for p in parts(tmp_path / "False")]
    assert list(Replay(tmp_path / "True").messages()) == list(Replay(tmp_path / "False").messages())

    (tmp_path / "failing").mkdir()
    (tmp_path / "failing" / "channel=trades").write_text("a file where the partition directory goes")
    writer = ArchiveWriter(tmp_path / "failing", flush_rows=3, background=True)
    for i in range(3):
        writer.write(real_frames[2], recv_ns=T0 + i)  # the part goes to the thread, which fails...
    with pytest.raises(OSError):
        writer.close()  # ...and the error is raised here
    assert writer.stats.parts == 0


@given(frames=st.lists(any_frames, min_size=1, max_size=25), flush_rows=st.integers(1, 5), gaps=st.lists(st.sampled_from([1_000, 10**12, 3_600 * 10**9]), min_size=25, max_size=25), part_rows=st.integers(2, 30))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_open_parts_hold_a_partitions_commits_and_give_back_every_frame(tmp_path_factory, monkeypatch, frames, flush_rows, gaps, part_rows):
    """An import's writer (``open_parts``): each commit is row groups of the partition's open part,
    which is named at an hour's turn, at ``PART_ROWS`` or at close; the frames come back as a
    writer with a part a commit gives them, and a partition's hour is one part of each shape (typed
    rows of a channel, or text) unless it passed ``PART_ROWS`` (or another stream joined it: a
    part's streams are in its footer)."""
    import recorder.writer as module

    monkeypatch.setattr(module, "PART_ROWS", part_rows)
    roots = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("open")
    times = [T0 + sum(gaps[: i + 1]) for i in range(len(frames))]
    for root, open_parts in zip(roots, (False, True)):
        with ArchiveWriter(root, session="s", flush_rows=flush_rows, open_parts=open_parts) as writer:
            for at, msg in zip(times, frames):
                writer.write(msg, recv_ns=at)
        assert writer.stats.rows_committed == len(frames)
    assert list(Replay(roots[1]).raw_messages()) == list(Replay(roots[0]).raw_messages()) == [orjson.dumps(f) for f in frames]
    assert not list(roots[1].rglob(".part-*"))
    hours: dict[tuple[Path, int, str], list[tuple[int, bytes]]] = {}
    for part in sorted(parts(roots[1]), key=lambda p: p.name.rsplit("-", 1)[1]):  # in the order they were opened
        table = pq.read_table(part, columns=["recv_ns"])
        recv = table.column("recv_ns").to_pylist()
        assert recv[0] // (3_600 * 10**9) == recv[-1] // (3_600 * 10**9)  # one hour a part
        shape = str(pq.read_schema(part).remove_metadata())  # typed rows of two channels (perp and spot contexts), or text, share a directory
        hours.setdefault((part.parent, recv[0] // (3_600 * 10**9), shape), []).append((len(recv), table.schema.metadata[b"hlarchive.subscriptions"]))
    for opened in hours.values():  # a second part of an hour and shape only past PART_ROWS, or for another stream
        assert all(rows >= part_rows or streams != after for (rows, streams), (_, after) in zip(opened, opened[1:]))
    store = open_store(roots[1])
    assert differences(store, walk_parts(store)) == ([], [])  # the catalog lists each part as its footer says


def test_buffers_hold_arrow_batches_not_dicts(tmp_path, real_frames):
    writer = ArchiveWriter(tmp_path, stage_rows=4)
    for i in range(10):
        writer.write(real_frames[1], recv_ns=T0 + i)
    (buffer,) = writer._buffers.values()
    assert len(buffer.staged) == 2 and buffer.rows == 8 and len(buffer.batches) == 2
    writer.close()


def test_writer_is_an_sdk_callback(tmp_path, real_frames):
    with ArchiveWriter(tmp_path) as writer:
        for msg in real_frames:
            writer(msg)
    assert len(list(Replay(tmp_path).messages())) == len(real_frames)


def test_events_and_meta_go_to_their_own_channels(tmp_path, real_frames):
    with ArchiveWriter(tmp_path) as writer:
        writer.write_event("malformed", connection=1, text="{oops", recv_ns=T0)
        writer.write_meta("meta", {"universe": [{"name": "BTC", "szDecimals": 5}]}, recv_ns=T0)
        writer.write(real_frames[2], recv_ns=T0 + 1)
    assert {p.parts[-4] for p in parts(tmp_path)} == {"channel=_events", "channel=_meta", "channel=trades"}
    text = duckdb.sql(f"select text from read_parquet('{tmp_path}/channel=_events/*/*/*.parquet')").fetchall()
    assert text == [("{oops",)]
    assert [m["channel"] for m in Replay(tmp_path).messages()] == ["trades"]  # replay serves data frames


def test_replay_subscribe_filters_streams_and_keeps_aggregations_apart(tmp_path, real_frames):
    book = real_frames[1]
    with ArchiveWriter(tmp_path) as writer:
        writer.write(book, recv_ns=T0, subscription={"type": "l2Book", "coin": "BTC"})
        writer.write(book, recv_ns=T0 + 1, subscription={"type": "l2Book", "coin": "BTC", "nSigFigs": 5})
        writer.write(real_frames[2], recv_ns=T0 + 2)
    replay = Replay(tmp_path)
    plain, five = [], []
    replay.subscribe({"type": "l2Book", "coin": "BTC"}, plain.append)
    sid = replay.subscribe({"type": "l2Book", "coin": "BTC", "nSigFigs": 5}, five.append)
    summary = replay.run()
    assert len(plain) == 1 and len(five) == 1 and summary.total == 2
    assert replay.unsubscribe({"type": "l2Book", "coin": "BTC", "nSigFigs": 5}, sid)
    assert len(list(replay.messages())) == 1


def test_replay_refuses_a_subscription_with_no_data_and_lists_what_there_is(tmp_path, real_frames):
    with ArchiveWriter(tmp_path) as writer:
        writer.write(real_frames[2], recv_ns=T0)
    with pytest.raises(ArchiveError, match=r"no data for .*ETH.*it has trades \(BTC\)"):
        Replay(tmp_path).subscribe({"type": "trades", "coin": "ETH"}, print)


def test_replay_of_a_missing_archive_says_so(tmp_path):
    with pytest.raises(ArchiveError, match="no archive at"):
        Replay(tmp_path / "nope")


def test_a_part_of_an_unknown_format_version_is_refused(tmp_path, real_frames):
    with ArchiveWriter(tmp_path) as writer:
        writer.write(real_frames[2], recv_ns=T0)
    (part,) = parts(tmp_path)
    table = pq.read_table(part)
    meta = dict(table.schema.metadata)
    meta[b"hlarchive.format_version"] = b"2"
    pq.write_table(table.replace_schema_metadata(meta), part)
    with pytest.raises(ArchiveError, match="format version 2"):
        list(Replay(tmp_path).messages())


def test_unwritable_root_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ArchiveError, match="cannot create archive directory"):
        ArchiveWriter(blocker / "archive")

from __future__ import annotations

import asyncio
import json
import tracemalloc
from datetime import datetime, timezone

import orjson
import pytest
from click.testing import CliRunner

import replay.merge
from replay import Replay
from replay.cli import main
from schemas import ArchiveError

from .archives import T0, make_archive
from .conftest import same

BOOK = {"type": "l2Book", "coin": "BTC"}
TRADES = {"type": "trades", "coin": "BTC"}
BBO = {"type": "bbo", "coin": "ETH"}


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_order_across_channels_and_sessions(tmp_path):
    a = make_archive(tmp_path, [BOOK, TRADES], 20, session="a", step_ns=2_000_000)
    b = make_archive(tmp_path, [BBO], 30, session="b", t0=T0 + 1_000_000, step_ns=3_000_000)
    expected = [m for _, m in sorted(a + b, key=lambda x: x[0])]
    got = list(Replay(tmp_path).messages())
    assert len(got) == len(expected) and all(same(x, y) for x, y in zip(got, expected))


def test_subscriptions_pick_their_streams_and_several_callbacks_share_one(tmp_path):
    written = make_archive(tmp_path, [BOOK, TRADES, BBO], 10)
    r = Replay(tmp_path)
    books, books_too, trades = [], [], []
    r.subscribe(BOOK, books.append)
    r.subscribe(BOOK, books_too.append)
    r.subscribe({"type": "trades", "coin": "BTC"}, trades.append)
    summary = r.run()
    assert len(books) == len(books_too) == 10 and books == books_too
    assert all(m["channel"] == "trades" for m in trades) and len(trades) == sum(1 for _, m in written if m["channel"] == "trades")
    assert summary.frames == {"l2Book:btc": 10, "trades:btc": len(trades)}
    assert summary.first_recv_ns == T0 and summary.last_recv_ns is not None


def test_start_and_end_filter_and_prune_parts(tmp_path, monkeypatch):
    make_archive(tmp_path, [BOOK], 100, flush_rows=10, step_ns=1_000_000_000)  # 10 parts of 10 s each
    opened: list[str] = []
    real_open = replay.merge.open_part
    for module in (replay.merge, replay.replay, replay.archive):  # the merge, and the direct path that needs none
        monkeypatch.setattr(module, "open_part", lambda part, *footer, **options: (opened.append(part.file_name), real_open(part, *footer, **options))[1])
    start = datetime.fromtimestamp((T0 + 25_000_000_000) / 1e9, tz=timezone.utc)
    r = Replay(tmp_path, start=start.isoformat(), end=(T0 + 44_000_000_000) // 1_000_000)
    got = list(r.messages())
    assert len(got) == 20  # seconds 25..44 inclusive
    assert len(opened) == 3  # parts 20-29, 30-39, 40-49; the seven others are never opened
    with pytest.raises(ArchiveError, match="end is before start"):
        Replay(tmp_path, start=2, end=1)
    with pytest.raises(ArchiveError, match="ISO-8601"):
        Replay(tmp_path, start="yesterday")


def test_same_archive_same_arguments_same_calls(tmp_path):
    make_archive(tmp_path, [BOOK, TRADES, BBO], 30, flush_rows=7)
    make_archive(tmp_path, [BOOK], 30, session="s2", flush_rows=5)  # same times: ties across sessions

    def calls() -> bytes:
        r = Replay(tmp_path)
        out: list[bytes] = []
        for sub in (BOOK, TRADES, BBO):
            r.subscribe(sub, lambda m, s=sub["type"]: out.append(s.encode() + orjson.dumps(m)))
        r.run()
        return b"\n".join(out)

    first = calls()
    assert first == calls() and first.count(b"\n") > 100


def test_unsubscribe_mid_run(tmp_path):
    make_archive(tmp_path, [BOOK, BBO], 20)
    r = Replay(tmp_path)
    got: list[dict] = []

    def on_book(msg: dict) -> None:
        got.append(msg)
        if len(got) == 3:
            r.unsubscribe(BOOK, sid)

    sid = r.subscribe(BOOK, on_book)
    bbos: list[dict] = []
    r.subscribe(BBO, bbos.append)
    r.run()
    assert len(got) == 3 and len(bbos) == 20


def test_real_time_on_a_simulated_clock(tmp_path):
    make_archive(tmp_path, [BOOK], 11, step_ns=500_000_000)  # 5 s of recorded time
    for speed, expected in ((1.0, 5.0), (10.0, 0.5)):
        clock = SimulatedClock()
        r = Replay(tmp_path, clock=clock)
        r.subscribe(BOOK, lambda m: None)
        r.run(speed=speed)
        assert clock.slept == pytest.approx(expected)
    clock = SimulatedClock()
    Replay(tmp_path, clock=clock).run()
    assert clock.slept == 0.0
    with pytest.raises(ArchiveError, match="bad speed"):
        Replay(tmp_path).run(speed=0)


def test_exchange_order_sorts_by_exchange_time(tmp_path):
    from recorder import ArchiveWriter

    def book(ms: int) -> dict:
        return {"channel": "l2Book", "data": {"coin": "BTC", "time": ms, "levels": [[], []]}}

    with ArchiveWriter(tmp_path) as w:
        w.write(book(300), T0)  # received first, happened last
        w.write(book(100), T0 + 1)
        w.write({"channel": "trades", "data": [{"coin": "BTC", "side": "A", "px": "1.0", "sz": "1.0", "time": 200, "hash": "0x", "tid": 1, "users": ["a", "b"]}]}, T0 + 2)
    exchange = [m["data"]["time"] if m["channel"] == "l2Book" else m["data"][0]["time"] for m in Replay(tmp_path, order="exchange").messages()]
    received = [m["data"]["time"] if m["channel"] == "l2Book" else m["data"][0]["time"] for m in Replay(tmp_path).messages()]
    assert exchange == [100, 200, 300] and received == [300, 100, 200]


def test_events_reach_on_event_in_order_with_frames(tmp_path):
    from recorder import ArchiveWriter

    with ArchiveWriter(tmp_path) as w:
        w.write({"channel": "bbo", "data": {"coin": "BTC", "time": 1, "bbo": [None, None]}}, T0)
        w.write_event("disconnect", recv_ns=T0 + 1, connection=1, detail={"code": 1006})
        w.write({"channel": "bbo", "data": {"coin": "BTC", "time": 2, "bbo": [None, None]}}, T0 + 2)
    seen: list[str] = []
    r = Replay(tmp_path, on_event=lambda e: seen.append(e["kind"]))
    r.subscribe({"type": "bbo", "coin": "BTC"}, lambda m: seen.append("frame"))
    r.run()
    assert seen == ["frame", "disconnect", "frame"]


def test_async_iteration_gives_the_same_frames(tmp_path):
    make_archive(tmp_path, [BOOK, BBO], 10)

    async def collect() -> list[dict]:
        r = Replay(tmp_path)
        r.subscribe(BBO, lambda m: None)
        return [m async for m in r.stream()]

    got = asyncio.run(collect())
    r = Replay(tmp_path)
    r.subscribe(BBO, lambda m: None)
    assert got == list(r.messages()) and len(got) == 10


def test_batches_give_arrow_columns(tmp_path):
    make_archive(tmp_path, [BBO], 40, flush_rows=15)
    batches = list(Replay(tmp_path, start=(T0 + 100_000_000) // 1_000_000).batches("bbo", coin="ETH", columns=["recv_ns", "data"]))
    assert sum(b.num_rows for b in batches) == 30 and batches[0].schema.names == ["recv_ns", "data"]
    assert batches[0].column("data").type.field("bbo").type.value_type.field("px").type == "string"


def test_memory_stays_bounded_however_many_parts(tmp_path):
    def peak(root, days: int) -> int:
        # 20 parts a day per stream, two streams, over ``days`` days
        make_archive(root, [BOOK, TRADES], days * 200, flush_rows=10, step_ns=86_400_000_000_000 // 400)
        assert len(list(root.rglob("*.parquet"))) >= days * 40
        tracemalloc.start()
        count = sum(1 for _ in Replay(root).messages())
        peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert count == days * 400
        return peak_bytes

    small, large = peak(tmp_path / "small", 2), peak(tmp_path / "large", 20)
    assert large < small * 1.25, (small, large)  # ten times the archive, about the same peak


def test_replay_command_prints_what_messages_gives(tmp_path):
    make_archive(tmp_path, [BOOK, TRADES, BBO], 10)
    result = CliRunner().invoke(main, ["replay", str(tmp_path), "--coin", "BTC", "--channel", "trades", "--channel", "l2Book"])
    assert result.exit_code == 0, result.output
    r = Replay(tmp_path)
    r.subscribe(TRADES, print)
    r.subscribe(BOOK, print)
    assert [orjson.loads(line) for line in result.output.splitlines()] == list(r.messages())
    with_ts = CliRunner().invoke(main, ["replay", str(tmp_path), "--sub", orjson.dumps(BBO).decode(), "--with-ts"])
    first = with_ts.output.splitlines()[0]
    assert int(first.split(" ", 1)[0]) >= T0 and orjson.loads(first.split(" ", 1)[1])["channel"] == "bbo"


@pytest.mark.parametrize("speed", [[], ["--speed", "1000000"]])  # as fast as possible (512 lines a write) / paced (a line a write)
def test_replay_command_format_json_is_one_array_of_the_same_frames(tmp_path, speed):
    make_archive(tmp_path, [BOOK, TRADES, BBO], 600)  # more than one 512-line write
    jsonl = CliRunner().invoke(main, ["replay", str(tmp_path), "--format", "jsonl", *speed])
    array = CliRunner().invoke(main, ["replay", str(tmp_path), "--format", "json", *speed])
    assert jsonl.exit_code == 0 and array.exit_code == 0, (jsonl.output, array.output)
    frames = [orjson.loads(line) for line in jsonl.stdout_bytes.splitlines()]
    assert len(frames) == 1800 and orjson.loads(array.stdout_bytes) == frames
    assert json.loads(array.stdout_bytes) == frames  # a second parser, the standard library's: strict JSON
    assert jsonl.stdout_bytes == CliRunner().invoke(main, ["replay", str(tmp_path), *speed]).stdout_bytes  # jsonl is the default


def test_replay_command_refuses_a_time_prefix_on_a_json_array(tmp_path):
    make_archive(tmp_path, [BOOK], 3)
    result = CliRunner().invoke(main, ["replay", str(tmp_path), "--format", "json", "--with-ts"])
    assert result.exit_code == 2 and "--format jsonl" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("subs", [[BBO], [TRADES, BOOK]])  # one stream (read batch by batch) / two interleaved (merged)
def test_replay_command_with_ts_prints_each_frames_receive_time(tmp_path, subs):
    make_archive(tmp_path, [BOOK, TRADES, BBO], 10, flush_rows=4)
    args = [arg for sub in subs for arg in ("--sub", orjson.dumps(sub).decode())]
    result = CliRunner().invoke(main, ["replay", str(tmp_path), *args, "--with-ts"])
    assert result.exit_code == 0, result.output
    r = Replay(tmp_path)
    for sub in subs:
        r.subscribe(sub, print)
    expected = [b"%d %s" % (item.recv_ns, orjson.dumps(item.message)) for item in r.items() if item.stream is not None]
    assert result.stdout_bytes.splitlines() == expected and len(expected) == 10 * len(subs)
    assert [(ns, orjson.loads(text)) for ns, text in r.raw_messages_with_recv_ns()] == [(int(line.split(b" ", 1)[0]), orjson.loads(line.split(b" ", 1)[1])) for line in expected]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sub", '{"type":"trades","coin":"DOGE"}'], "no data for"),
        (["--sub", "nope"], "is not JSON"),
        (["--from", "tomorrow-ish"], "ISO-8601"),
        (["--speed", "-1"], "positive"),
    ],
)
def test_replay_command_bad_input_is_one_line_exit_2(tmp_path, args, message):
    make_archive(tmp_path, [BOOK], 3)
    result = CliRunner().invoke(main, ["replay", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_replay_of_a_missing_archive_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["replay", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no archive at" in result.output


@pytest.mark.parametrize("bounds", [{}, {"start": (T0 + 95_000_000) // 1_000_000, "end": (T0 + 305_000_000) // 1_000_000}])
def test_the_direct_path_gives_what_the_merge_gives(tmp_path, bounds):
    """Parts that do not overlap are read without the merge: the same frames, bytes and callbacks."""
    aggregated = {"type": "l2Book", "coin": "BTC", "nSigFigs": 3}
    make_archive(tmp_path, [BOOK, aggregated], 40, flush_rows=7, step_ns=5_000_000)  # one partition, two streams, many parts
    from replay.archive import find_parts
    from replay.replay import _disjoint

    assert len(find_parts(tmp_path)) > 5 and _disjoint(find_parts(tmp_path)) is not None  # the direct path is taken
    replay = Replay(tmp_path, **bounds)
    replay.subscribe(BOOK, lambda m: None)
    merged = [item.message for item in replay.items() if item.stream is not None]  # the merge, as before
    assert merged and list(replay.messages()) == merged
    assert list(replay.raw_messages()) == [orjson.dumps(m) for m in merged]
    seen: list[dict] = []
    replay2 = Replay(tmp_path, **bounds)
    replay2.subscribe(BOOK, seen.append)
    summary = replay2.run()
    assert seen == merged and summary.total == len(merged)
    first_item = next(i for i in replay.items() if i.stream is not None)
    assert summary.first_recv_ns == first_item.recv_ns


def test_a_callback_that_unsubscribes_stops_the_direct_run(tmp_path):
    make_archive(tmp_path, [BOOK], 30, flush_rows=7)
    replay = Replay(tmp_path)
    got: list[dict] = []

    def once(msg: dict) -> None:
        got.append(msg)
        replay.unsubscribe(BOOK, sub_id)

    sub_id = replay.subscribe(BOOK, once)
    replay.run()
    assert len(got) == 1


def _books(n: int) -> list[dict]:
    """Books of 40 levels (a few hundred to a batch), prices repeating as real ones do."""
    return [
        {"channel": "l2Book", "data": {"coin": "BTC", "time": 1_767_225_600_000 + i, "levels": [
            [{"px": f"{100 - k - i % 7}.5", "sz": f"{(i * 31 + k) % 97}.25", "n": k + 1} for k in range(20)],
            [{"px": f"{101 + k + i % 5}", "sz": f"{(i * 17 + k) % 89}.5", "n": k + 2} for k in range(20)],
        ]}}
        for i in range(n)
    ]


def test_books_read_as_dictionaries_across_row_groups_and_after_a_column_that_cannot_be(tmp_path, monkeypatch):
    import pyarrow as pa

    from recorder import ArchiveWriter

    frames = _books(1200)
    with ArchiveWriter(tmp_path, row_group_rows=1000) as writer:  # two row groups, each with its dictionaries
        for i, frame in enumerate(frames):
            writer.write(frame, T0 + i * 1_000_000, BOOK)
    expected = [orjson.dumps(f) for f in frames]

    def replayed() -> list[bytes]:
        r = Replay(tmp_path)
        r.subscribe(BOOK, lambda m: None)
        return [orjson.dumps(m) for m in r.messages()]

    assert replayed() == expected
    real_open = replay.archive.open_part
    reads: list[bool] = []

    class FailsAfterOneBatch:  # as Arrow does when a nested column cannot come as one dictionary array
        def __init__(self, parquet):
            self.parquet = parquet

        def iter_batches(self, **options):
            batches = self.parquet.iter_batches(**options)
            yield next(batches)
            raise pa.ArrowNotImplementedError("Nested data conversions not implemented for chunked array outputs")

    def open_part(part, footer=None, *, dictionary_data=False):
        reads.append(dictionary_data)
        parquet = real_open(part, footer, dictionary_data=dictionary_data)
        return FailsAfterOneBatch(parquet) if dictionary_data else parquet

    monkeypatch.setattr(replay.archive, "open_part", open_part)
    assert replayed() == expected  # every frame once: the plain read starts where the failed one stopped
    assert reads == [True, False]

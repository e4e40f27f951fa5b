from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from recorder.live import Recorder, RecorderError
from replay.cli import main
from replay.serving.server import Faults, HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource
from schemas import parse_subscription

from .conftest import same
from .recording import EVERY_CHANNEL, USER, archived, events, record, sent_data


def simulator(log: Path, **kw: Any) -> ServerThread:
    kw.setdefault("rate", 40)
    market = SyntheticSource(seed=kw.pop("seed", 11), tick_ms=kw.pop("tick_ms", 1000))
    return ServerThread(lambda: HyperliquidServer(market, sent_log=log, **kw))


def assert_archive_equals_sent(root: Path, sent: dict[str, list[Any]]) -> None:
    got = archived(root)
    assert sorted(got) == sorted(sent)
    for stream, frames in sent.items():
        assert len(got[stream]) == len(frames), stream
        assert all(same(a, b) for a, b in zip(got[stream], frames)), stream


def test_every_channel_is_recorded_and_replayed_equal_to_what_was_sent(tmp_path):
    log = tmp_path / "sent.jsonl"
    # each connection gets exactly 120 data frames, then the server goes quiet: a finite feed
    with simulator(log, faults=Faults(stall_after_frames=120), rate=200) as srv:
        rec = record(tmp_path / "archive", srv.ws_url, EVERY_CHANNEL, 3.0, max_per_connection=4)
    assert len(rec.plan) == 5 and srv.stats["connections"] == 5  # spread over several connections
    assert_archive_equals_sent(tmp_path / "archive", sent_data(log))
    kinds = [e[0] for e in events(tmp_path / "archive")]
    assert kinds.count("subscribed") == len(EVERY_CHANNEL) and kinds.count("connect") == 5
    assert not (tmp_path / "archive" / "_journal").exists()  # everything committed, journal removed


def test_an_archiver_far_behind_reads_the_journal_across_rotations_and_loses_none(tmp_path):
    """The archiver process paused for 1.5 s (a starved CPU, a stalled disk) while 6,000 frames arrive
    and the journal rotates every 0.1 s: it must read the piled-up segments in order, then trim them."""
    import threading

    log = tmp_path / "sent.jsonl"
    subs = [{"type": t, "coin": c} for t in ("trades", "bbo", "l2Book") for c in ("BTC", "ETH")]
    piled_up: list[int] = []
    with simulator(log, faults=Faults(stall_after_frames=1_000), rate=0) as srv:
        rec = Recorder(tmp_path / "archive", [parse_subscription(s) for s in subs], url=srv.ws_url, meta=False, status_s=None,
                       flush_seconds=0.1, sync_s=0.05)

        def pause_archiver() -> None:
            while rec.archiver.pid is None:
                time.sleep(0.01)
            os.kill(rec.archiver.pid, signal.SIGSTOP)
            time.sleep(1.5)
            piled_up.append(len(list(rec.journal.directory.glob("seg-*.wal"))))
            os.kill(rec.archiver.pid, signal.SIGCONT)

        pauser = threading.Thread(target=pause_archiver)
        pauser.start()
        asyncio.run(rec.run(duration_s=4.0))
        pauser.join()
    assert piled_up[0] >= 5 and rec.status.max_lag_frames > 1_000
    assert_archive_equals_sent(tmp_path / "archive", sent_data(log))
    kinds = [e[0] for e in events(tmp_path / "archive")]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end" and kinds.count("subscribed") == len(subs)
    assert rec.archiver.progress.last_seq == rec._seq  # the archiver read every record journaled
    assert not (tmp_path / "archive" / "_journal").exists()


def test_user_frames_keep_their_users_on_separate_connections(tmp_path):
    other = "0x" + "ab" * 20
    log = tmp_path / "sent.jsonl"
    subs = [{"type": "userEvents", "user": USER}, {"type": "userEvents", "user": other}]
    with simulator(log, faults=Faults(stall_after_frames=30), rate=100) as srv:
        rec = record(tmp_path / "a", srv.ws_url, subs, 2.5)
    assert len(rec.plan) == 2  # one identifier ("userEvents") per connection
    users = duckdb.sql(f"select user, count(*) from read_parquet('{tmp_path}/a/channel=userEvents/*/*/*.parquet') group by 1 order by 1").fetchall()
    assert users == sorted([(USER, 30), (other, 30)])


def test_reconnect_after_a_dropped_connection_resubscribes_and_records_the_gap(tmp_path):
    log = tmp_path / "sent.jsonl"
    with simulator(log, faults=Faults(drop_after_frames=25, connections=frozenset({1}))) as srv:
        record(tmp_path / "a", srv.ws_url, [{"type": "bbo", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}], 2.0)
    kinds = [e[0] for e in events(tmp_path / "a")]
    assert kinds.index("disconnect") < kinds.index("reconnect_wait") < len(kinds) - 1 - kinds[::-1].index("connect")
    assert kinds.count("connect") == 2 and kinds.count("subscribed") == 4  # resubscribed everything
    sent_first = sent_data(log, connections={1})
    assert sum(len(v) for v in sent_first.values()) == 25
    got = archived(tmp_path / "a")
    for stream, frames in sent_first.items():
        assert all(same(a, b) for a, b in zip(got[stream], frames))  # the first connection's frames come first
    assert sum(len(v) for v in got.values()) > 25  # and recording went on after the reconnect


def test_a_stalled_connection_is_detected_and_replaced(tmp_path):
    from recorder.connection import ConnectionConfig

    log = tmp_path / "sent.jsonl"
    config = ConnectionConfig(ping_interval_s=0.2, stall_s=0.8, backoff_base_s=0.05, backoff_cap_s=0.1)
    with simulator(log, faults=Faults(stall_after_frames=5, connections=frozenset({1}))) as srv:
        record(tmp_path / "a", srv.ws_url, [{"type": "bbo", "coin": "BTC"}], 3.0, connection_config=config)
    evts = events(tmp_path / "a")
    stall = next(e for e in evts if e[0] == "stall")
    assert stall[1] == 1 and stall[2]["silent_s"] >= 0.8
    assert sum(len(v) for v in sent_data(log, connections={2}).values()) > 10
    assert_archive_equals_sent(tmp_path / "a", sent_data(log))


def test_malformed_and_error_frames_become_events_and_recording_goes_on(tmp_path):
    log = tmp_path / "sent.jsonl"
    with simulator(log, faults=Faults(malformed_every=7, error_every=11, stall_after_frames=60), rate=100) as srv:
        record(tmp_path / "a", srv.ws_url, [{"type": "trades", "coin": "BTC"}], 2.0)
    evts = events(tmp_path / "a")
    malformed = [e for e in evts if e[0] == "malformed"]
    errors = [e for e in evts if e[0] == "server_error"]
    assert len(malformed) == 60 // 7 and all(e[3] == '{"channel":"trades","data":[{"coin":' for e in malformed)
    assert len(errors) == 60 // 11 and "injected" in errors[0][2]["error"]
    assert_archive_equals_sent(tmp_path / "a", sent_data(log))


def test_a_frame_routed_by_its_head_whose_body_is_not_json_becomes_a_malformed_event(tmp_path):
    """Hot-channel frames are journaled unparsed; the archiver, which parses them, keeps a broken one as an event."""
    from replay.serving.faults import GARBLED_TEXT

    log = tmp_path / "sent.jsonl"
    with simulator(log, faults=Faults(garbled_every=9, stall_after_frames=60), rate=100) as srv:
        rec = record(tmp_path / "a", srv.ws_url, [{"type": "trades", "coin": "BTC"}, {"type": "bbo", "coin": "BTC"}], 2.0)
    malformed = [e for e in events(tmp_path / "a") if e[0] == "malformed"]
    assert len(malformed) == 60 // 9 and all(e[3] == GARBLED_TEXT and e[2]["reason"].startswith("not JSON") for e in malformed)
    assert rec.archiver.progress.malformed == 60 // 9
    assert_archive_equals_sent(tmp_path / "a", sent_data(log))


def test_meta_snapshots_are_stored_and_a_failing_endpoint_is_only_an_event(tmp_path):
    from recorder.meta import SNAPSHOT_KINDS
    from replay.simulator.info import meta, perp_dexs, spot_meta

    log = tmp_path / "sent.jsonl"
    with simulator(log) as srv:  # the simulator answers POST /info on the websocket's port, as the exchange does
        record(tmp_path / "a", srv.ws_url, [{"type": "bbo", "coin": "BTC"}], 1.0, meta=True)
        record(tmp_path / "b", srv.ws_url, [{"type": "bbo", "coin": "BTC"}], 1.0, meta=True, meta_url="http://127.0.0.1:9/info")
        market = srv.source
    rows = duckdb.sql(f"select kind, payload from read_parquet('{tmp_path}/a/channel=_meta/*/*/*.parquet') order by seq").fetchall()
    stored = {k: orjson.loads(p) for k, p in rows}
    assert list(stored) == [*SNAPSHOT_KINDS, "meta:xyz", "metaAndAssetCtxs:xyz"]  # every builder dex of perpDexs too
    assert stored["meta"] == meta(market) and stored["spotMeta"] == spot_meta(market) and stored["perpDexs"] == perp_dexs(market)
    assert stored["meta:xyz"] == meta(market, "xyz") and stored["metaAndAssetCtxs"][0] == meta(market)
    failed = [e for e in events(tmp_path / "b") if e[0] == "meta_failed"]
    assert {e[2]["type"] for e in failed} == set(SNAPSHOT_KINDS)
    assert archived(tmp_path / "b")  # and it recorded anyway


def test_an_archiver_that_cannot_write_stops_with_a_clear_error_and_keeps_every_frame(tmp_path):
    log = tmp_path / "sent.jsonl"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "channel=bbo").write_text("a file where the partition's directory must go")
    with simulator(log, faults=Faults(stall_after_frames=40), rate=100) as srv:
        with pytest.raises(RecorderError, match=r"could not write parts \(.*channel=bbo.*hlarchive recover"):
            record(tmp_path / "a", srv.ws_url, [{"type": "bbo", "coin": "BTC"}], 1.5, writer_options={"flush_rows": 10})
    assert not list((tmp_path / "a").rglob("*.parquet"))
    (tmp_path / "a" / "channel=bbo").unlink()
    result = CliRunner().invoke(main, ["recover", str(tmp_path / "a")])
    assert result.exit_code == 0 and "frames recovered" in result.output
    assert_archive_equals_sent(tmp_path / "a", sent_data(log))


def test_limits_are_refused_before_connecting(tmp_path):
    subs = [parse_subscription({"type": "trades", "coin": f"C{i}"}) for i in range(1001)]
    with pytest.raises(RecorderError, match="1001 subscriptions, Hyperliquid allows 1000 per IP"):
        Recorder(tmp_path, subs)
    users = [parse_subscription({"type": "userFills", "user": "0x" + f"{i:040x}"}) for i in range(11)]
    with pytest.raises(RecorderError, match="11 users"):
        Recorder(tmp_path, users)


def _record_process(root: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "replay.cli", "record", "--out", str(root), "--url", url, "--coin", "BTC", "--coin", "ETH",
         "--channel", "l2Book", "--channel", "trades", "--no-meta", "--status-seconds", "0.5", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_sigkill_mid_stream_then_recover_loses_at_most_a_second_and_every_part_reads(tmp_path):
    log = tmp_path / "sent.jsonl"
    root = tmp_path / "a"
    with simulator(log, rate=100) as srv:
        proc = _record_process(root, srv.ws_url, "--flush-seconds", "0.7")
        time.sleep(4.0)
        killed_ns = time.time_ns()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    assert (root / "_journal").exists()  # the crash left its journal
    result = CliRunner().invoke(main, ["recover", str(root)])
    assert result.exit_code == 0, result.output
    assert not any((root / "_journal").rglob("*.wal"))
    for part in root.rglob("*.parquet"):
        pq.read_table(part)  # every part reads
    got = archived(root)
    safe = sent_data(log, before_ns=killed_ns - 1_000_000_000)
    assert sum(len(v) for v in safe.values()) > 400
    for stream, frames in safe.items():
        assert len(got[stream]) >= len(frames)
        assert all(same(a, b) for a, b in zip(got[stream], frames)), stream
    seqs = duckdb.sql(f"select count(*), count(distinct (session, seq)) from read_parquet('{root}/channel=*/*/*/*.parquet', union_by_name=true)").fetchall()
    assert seqs[0][0] == seqs[0][1]  # nothing twice


def test_sigterm_flushes_everything_and_exits_0(tmp_path):
    log = tmp_path / "sent.jsonl"
    root = tmp_path / "a"
    with simulator(log, rate=200, faults=Faults(stall_after_frames=150)) as srv:
        proc = _record_process(root, srv.ws_url)
        time.sleep(3.0)  # 4 streams x 150 frames at 200/s: all sent well before
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "frames/s" in err and "stopped:" in err
    assert_archive_equals_sent(root, sent_data(log))


def test_ctrl_c_to_the_whole_process_group_flushes_everything_and_exits_0(tmp_path):
    """A terminal's Ctrl-C (and systemd's stop) signals the archiver process too: it must finish, not fail."""
    log = tmp_path / "sent.jsonl"
    root = tmp_path / "a"
    with simulator(log, rate=200, faults=Faults(stall_after_frames=150)) as srv:
        proc = subprocess.Popen(
            [sys.executable, "-m", "replay.cli", "record", "--out", str(root), "--url", srv.ws_url, "--coin", "BTC",
             "--channel", "l2Book", "--channel", "trades", "--no-meta", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        time.sleep(3.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "could not" not in err
    assert_archive_equals_sent(root, sent_data(log))
    assert not (root / "_journal").exists()


def test_record_command_equal_to_what_was_sent(tmp_path):
    """The issue's done-when: record BTC and ETH l2Book and trades for a fixed duration."""
    log = tmp_path / "sent.jsonl"
    with simulator(log, rate=50, faults=Faults(stall_after_frames=100)) as srv:
        result = subprocess.run(
            [sys.executable, "-m", "replay.cli", "record", "--url", srv.ws_url, "--coin", "BTC", "--coin", "ETH",
             "--channel", "l2Book", "--channel", "trades", "--duration", "4", "--no-meta", "--out", str(tmp_path / "a")],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert_archive_equals_sent(tmp_path / "a", sent_data(log))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--channel", "l2book", "--coin", "BTC"], "unknown subscription type 'l2book' (did you mean 'l2Book'?)"),
        (["--channel", "userFills", "--user", "0x12"], "bad user '0x12'"),
        (["--channel", "userFills"], "needs at least one --user"),
        (["--sub", "{nope"], "is not JSON"),
        (["--coin", "BTC", "--channel", "candle", "--interval", "7m"], "bad candle interval '7m'"),
        (["--coin", "BTC", "--url", "ws://x/ws", "--testnet"], "give --url or --testnet"),
        (["--config", "/nonexistent.toml"], "cannot read config"),
    ],
)
def test_record_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(main, ["record", "--out", str(tmp_path / "a"), "--duration", "0.1", "--no-meta", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_record_into_an_unwritable_place_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(main, ["record", "--out", str(tmp_path / "file" / "a"), "--coin", "BTC", "--duration", "0.1", "--no-meta"])
    assert result.exit_code == 2 and "cannot create archive directory" in result.output


def test_record_reads_a_toml_config(tmp_path):
    log = tmp_path / "sent.jsonl"
    config = tmp_path / "rec.toml"
    with simulator(log, rate=100, faults=Faults(stall_after_frames=20)) as srv:
        config.write_text(
            f'url = "{srv.ws_url}"\nout = "{tmp_path / "a"}"\ncoins = ["SOL"]\nchannels = ["bbo"]\nno_meta = true\nduration = 1.5\n'
            '[[subs]]\ntype = "l2Book"\ncoin = "BTC"\nnSigFigs = 5\n'
        )
        result = CliRunner().invoke(main, ["record", "--config", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    streams = duckdb.sql(f"select distinct stream from read_parquet('{tmp_path}/a/channel=*/*/*/*.parquet', union_by_name=true) where stream is not null order by 1").fetchall()
    assert streams == [("bbo:sol",), ("l2Book:btc,nSigFigs=5,mantissa=None",)]


def test_a_full_disk_ends_with_a_clear_error_and_intact_parts(tmp_path, monkeypatch):
    """On a real 3 MB tmpfs when this machine lets us mount one; otherwise a journal whose writes fail."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = os.environ.get("HLARCHIVE_TEST_NO_MOUNT") is None and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)], capture_output=True).returncode == 0
    if not mounted:
        import recorder.journal

        real_append, calls = recorder.journal.Journal.append, [0]

        def filling_append(self, *args):  # type: ignore[no-untyped-def]
            calls[0] += 1
            if calls[0] > 3_000:
                raise OSError(28, "No space left on device")
            return real_append(self, *args)

        monkeypatch.setattr(recorder.journal.Journal, "append", filling_append)
    log = tmp_path / "sent.jsonl"
    try:
        with simulator(log, rate=400) as srv:
            with pytest.raises(RecorderError, match="No space left on device"):
                record(small / "a", srv.ws_url, [{"type": "l2Book", "coin": c} for c in ("BTC", "ETH", "SOL")], 60.0,
                       flush_seconds=0.5, writer_options={"flush_rows": 200})
        parts = list((small / "a").rglob("*.parquet"))
        assert parts, "parts were committed before the disk filled"
        for part in parts:
            pq.read_table(part)  # every committed part is whole
        assert sum(len(v) for v in archived(small / "a").values()) >= 200
    finally:
        if mounted:
            if subprocess.run(["umount", str(small)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(small)], check=False)


def test_the_receiving_process_loads_neither_arrow_nor_duckdb():
    """The archiver process does Arrow's work; the receiver importing it would cost ~100 MB for nothing."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from replay.cli import main\n"
        "import recorder.live, recorder.cli\n"
        "result = CliRunner().invoke(main, ['record', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('pyarrow', 'duckdb') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_recovery_leaves_a_journal_alone_while_its_archiver_may_still_commit(tmp_path):
    """After a kill -9 of the receiving process, its archiver can be mid-commit for a moment: recovering
    then would write those rows twice. The archiver's own lock keeps recovery off until it is gone."""
    from recorder.journal import DATA, Journal
    from recorder.recovery import recover

    journal = Journal(tmp_path, "20260101T000000Z_abcdef")
    journal.define(1, b'{"type":"bbo","coin":"BTC"}')
    journal.append(DATA, 1_767_225_600_000_000_000, 1, b'{"channel":"bbo","data":{"coin":"BTC","time":1,"bbo":[null,null]}}', 1)
    journal.close()  # the recorder's lock is gone, as after kill -9
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from recorder.journal import hold_lock\n"
         f"h = hold_lock(Path({str(journal.directory)!r}) / 'ARCHIVER'); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert recover(tmp_path) == [] and list(journal.directory.glob("seg-*.wal"))
    finally:
        holder.kill()
        holder.wait()
    assert recover(tmp_path) == [{"session": "20260101T000000Z_abcdef", "frames": 1, "skipped": 0}]
    assert not journal.directory.exists()


def test_an_archiver_killed_mid_run_stops_recording_clearly_and_recovery_gives_every_frame_once(tmp_path):
    """The archiver process dying (an OOM kill, say) stops the recorder with a one-line error; the
    journal holds everything not yet committed, and recovery adds it exactly once."""
    import threading

    log = tmp_path / "sent.jsonl"
    root = tmp_path / "a"
    killed: list[int] = []

    with simulator(log, rate=200, faults=Faults(stall_after_frames=600)) as srv:
        rec = Recorder(root, [parse_subscription(s) for s in ({"type": "bbo", "coin": "BTC"}, {"type": "trades", "coin": "ETH"})],
                       url=srv.ws_url, meta=False, status_s=None, flush_seconds=0.3, writer_options={"flush_rows": 50})

        def kill_when_committing() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and rec.archiver.stats.parts < 2:
                time.sleep(0.05)
            if rec.archiver.pid is not None:
                os.kill(rec.archiver.pid, signal.SIGKILL)
                killed.append(rec.archiver.stats.parts)

        killer = threading.Thread(target=kill_when_committing)
        killer.start()
        with pytest.raises(RecorderError, match=r"the archiver process ended unexpectedly.*hlarchive recover"):
            asyncio.run(rec.run(duration_s=15))
        killer.join()
    assert killed and killed[0] >= 2
    result = CliRunner().invoke(main, ["recover", str(root)])
    assert result.exit_code == 0, result.output
    assert_archive_equals_sent(root, sent_data(log))
    seqs = duckdb.sql(f"select count(*), count(distinct (session, seq)) from read_parquet('{root}/channel=*/*/*/*.parquet', union_by_name=true)").fetchall()
    assert seqs[0][0] == seqs[0][1]  # nothing twice

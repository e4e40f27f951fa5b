"""Gaps are never silent: found from the recorder's events, listed by ``Replay`` (``on_gap``), by
``hlarchive replay --on-gap`` and by ``hlarchive coverage`` (a table, JSON, and a page checked in a
real browser)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from replay import Replay
from replay.analysis.coverage import coverage
from replay.cli import main
from replay.gaps import GapError
from replay.serving.server import Faults, HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource
from schemas.gaps import find_gaps

from .browser import PAGE_FACTS, Browser
from .recording import events, record

BTC_BOOK = {"type": "l2Book", "coin": "BTC"}
ETH_TRADES = {"type": "trades", "coin": "ETH"}


def event(t: int, kind: str, detail: dict | None = None, session: str = "s1", connection: int = 1) -> dict:
    return {"recv_ns": t, "session": session, "seq": t, "kind": kind, "connection": connection, "detail": orjson.dumps(detail).decode() if detail else None}


def subscribed(t: int, sub: dict, **kw) -> dict:
    return event(t, "subscribed", {"subscription": sub}, **kw)


# --- the pure rules -----------------------------------------------------------------------------------


def test_a_disconnect_is_a_gap_until_the_stream_is_subscribed_again():
    gaps = find_gaps([
        event(0, "session_start", {"subscriptions": [BTC_BOOK, ETH_TRADES]}, connection=0),
        subscribed(1, BTC_BOOK), subscribed(2, ETH_TRADES),
        event(100, "disconnect", {"code": 1006, "reason": ""}),
        subscribed(130, BTC_BOOK), subscribed(140, ETH_TRADES),
        event(200, "stall", {"silent_s": 61.0}), event(201, "disconnect", {"by": "stall", "code": 1000}),
        subscribed(260, BTC_BOOK),
        event(300, "disconnect", {"code": 1000, "stopping": True}), event(301, "session_end", connection=0),
    ])
    assert [(g.stream, g.start_ns, g.end_ns, g.cause, g.resumes_with) for g in gaps] == [
        ("l2Book:btc", 100, 130, "disconnect (code 1006)", "full state"),
        ("trades:eth", 100, 140, "disconnect (code 1006)", "nothing"),
        ("l2Book:btc", 201, 260, "stall (silent 61.0 s)", "full state"),
        ("trades:eth", 201, None, "stall (silent 61.0 s)", "nothing"),  # never subscribed again
    ]


def test_the_recorder_down_between_sessions_is_a_gap_and_a_crash_ends_at_its_last_row():
    clean = [
        event(0, "session_start", {"subscriptions": [BTC_BOOK]}, connection=0), subscribed(1, BTC_BOOK),
        event(50, "session_end", connection=0),
        event(1000, "session_start", {"subscriptions": [BTC_BOOK]}, session="s2", connection=0), subscribed(1002, BTC_BOOK, session="s2"),
    ]
    [gap] = find_gaps(clean)
    assert (gap.start_ns, gap.end_ns, gap.cause, gap.session) == (50, 1002, "recorder down", "s1")
    crashed = [e for e in clean if e["kind"] != "session_end"]
    [gap] = find_gaps(crashed, {"s1": 77})  # its last part's last row
    assert (gap.start_ns, gap.end_ns, gap.cause) == (77, 1002, "recorder down")


def test_ends_that_were_meant_are_not_gaps():
    gaps = find_gaps([
        event(0, "session_start", {"subscriptions": [BTC_BOOK, ETH_TRADES]}, connection=0),
        subscribed(1, BTC_BOOK), subscribed(2, ETH_TRADES),
        event(10, "unsubscribed_delisted", {"subscription": ETH_TRADES}),
        event(20, "disconnect", {"code": 1000, "stopping": True}), event(21, "session_end", connection=0),
    ])
    assert gaps == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 1000), st.integers(1, 1000)), min_size=1, max_size=12), st.booleans())
def test_gaps_are_exactly_the_times_a_stream_was_down(spans, across_sessions):
    """A stream up for ``up`` ns, then down for ``down`` ns, in turns: the gaps are the down spans."""
    t, session, expected = 0, 0, []
    log = [event(t, "session_start", {"subscriptions": [BTC_BOOK]}, session=f"s{session}", connection=0), subscribed(t, BTC_BOOK, session=f"s{session}")]
    for up, down in spans:
        t += up
        if across_sessions:
            log.append(event(t, "session_end", session=f"s{session}", connection=0))
            session += 1
            log.append(event(t + down - 1, "session_start", {"subscriptions": [BTC_BOOK]}, session=f"s{session}", connection=0))
        else:
            log.append(event(t, "disconnect", {"code": 1006}, session=f"s{session}"))
        log.append(subscribed(t + down, BTC_BOOK, session=f"s{session}"))
        expected.append((t, t + down))
        t += down
    assert [(g.start_ns, g.end_ns) for g in find_gaps(log)] == expected


# --- recorded through the simulator's faults ------------------------------------------------------------


@pytest.fixture(scope="module")
def dropped(tmp_path_factory) -> Path:
    """Recorded through a server that drops the connection every 40 frames."""
    root = tmp_path_factory.mktemp("dropped")
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=4, tick_ms=50), rate=40, faults=Faults(drop_after_frames=40))) as server:
        record(root, server.ws_url, [BTC_BOOK, ETH_TRADES], 3.0)
    return root


def test_mark_lists_each_gap_with_its_start_end_and_cause(dropped):
    disconnects = [e for e in events(dropped) if e[0] == "disconnect" and not (e[2] or {}).get("stopping")]
    assert len(disconnects) >= 2
    replay = Replay(dropped)
    times: list[int] = []
    replay.subscribe(BTC_BOOK, lambda msg: times.append(msg["data"]["time"]))
    summary = replay.run()
    book_gaps = [g for g in summary.gaps if g.stream == "l2Book:btc"]
    assert len(book_gaps) == len(disconnects) and all(g.cause == "disconnect (code 1006)" for g in book_gaps)
    assert all(g.end_ns is not None and g.start_ns < g.end_ns for g in book_gaps[:-1])
    inside = [
        item.recv_ns for item in Replay(dropped).items()
        if item.stream == "l2Book:btc" and any(g.start_ns < item.recv_ns < (g.end_ns or 2**63) for g in book_gaps)
    ]
    assert inside == []  # no frame was received while the gap says the stream was down
    assert summary.frames["l2Book:btc"] == len(times) > 0


def test_raise_stops_where_the_first_gap_begins(dropped):
    replay = Replay(dropped, on_gap="raise")
    received: list[int] = []
    replay.subscribe(BTC_BOOK, lambda msg: received.append(1))
    first = min(Replay(dropped).gaps(), key=lambda g: g.start_ns)
    with pytest.raises(GapError) as raised:
        replay.run()
    assert raised.value.gap == first and received
    times = [item.recv_ns for item in Replay(dropped).items() if item.stream == "l2Book:btc"]
    assert len(received) == sum(1 for t in times if t < first.start_ns)
    assert Replay(dropped, on_gap="ignore").run().gaps == []
    with pytest.raises(Exception, match="bad on_gap"):
        Replay(dropped, on_gap="sometimes")


def test_the_replay_command_exits_3_on_a_gap_with_fail(dropped):
    runner = CliRunner()
    failed = runner.invoke(main, ["replay", str(dropped), "--sub", orjson.dumps(BTC_BOOK).decode(), "--on-gap", "fail"])
    assert failed.exit_code == 3 and "Error: gap in l2Book:btc" in failed.output and "disconnect" in failed.output
    marked = runner.invoke(main, ["replay", str(dropped), "--sub", orjson.dumps(BTC_BOOK).decode()])
    assert marked.exit_code == 0 and "gap(s) in the replayed streams" in marked.output
    ignored = runner.invoke(main, ["replay", str(dropped), "--sub", orjson.dumps(BTC_BOOK).decode(), "--on-gap", "ignore"])
    assert ignored.exit_code == 0 and "gap" not in ignored.output


# --- coverage: a recorder stopped for 10 s ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stopped")
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=5, tick_ms=100), rate=20)) as server:
        record(root, server.ws_url, [BTC_BOOK, ETH_TRADES], 1.5)
        time.sleep(10)
        record(root, server.ws_url, [BTC_BOOK, ETH_TRADES], 1.5)
    return root


def test_coverage_shows_exactly_the_recorder_stopped(stopped):
    ends = [e for e in events(stopped) if e[0] in ("session_end",)]
    assert len(ends) == 2
    report = coverage(stopped)
    assert sorted(g.stream for g in report.gaps) == ["l2Book:btc", "trades:eth"]
    for gap in report.gaps:
        assert gap.cause == "recorder down" and 10.0 <= gap.seconds < 11.5
    assert report.verdict.startswith("2 gap(s)") and "missing in all" in report.verdict
    cells = {(c.channel, c.coin): c for c in report.cells}
    assert cells[("l2Book", "BTC")].frames > 0 and cells[("l2Book", "BTC")].gaps == 1
    assert abs(cells[("l2Book", "BTC")].missing_s - report.gaps[0].seconds) < 1e-6
    before = coverage(stopped, end_ns=report.gaps[0].start_ns - 1)
    assert before.gaps == [] and before.verdict.startswith("complete")


def test_coverage_command_table_json_and_ls_verdicts(stopped, dropped):
    runner = CliRunner()
    table = runner.invoke(main, ["coverage", str(stopped)])
    assert table.exit_code == 1 and "verdict: 2 gap(s)" in table.output and "recorder down" in table.output
    as_json = orjson.loads(runner.invoke(main, ["coverage", str(stopped), "--format", "json", "--coin", "BTC"]).output)
    assert as_json["complete"] is False and [g["stream"] for g in as_json["gaps"]] == ["l2Book:btc"]
    listed = runner.invoke(main, ["ls", str(stopped)])
    assert listed.exit_code == 0 and "verdict" in listed.output and "1 gap" in listed.output
    clean_root = Path(str(stopped) + "-clean")
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=6), rate=20)) as server:
        record(clean_root, server.ws_url, [BTC_BOOK], 1.0)
    assert "complete" in runner.invoke(main, ["ls", str(clean_root)]).output
    clean = runner.invoke(main, ["coverage", str(clean_root)])
    assert clean.exit_code == 0 and "verdict: complete" in clean.output


def test_the_coverage_page_in_a_real_browser(stopped, tmp_path):
    page = tmp_path / "coverage.html"
    result = CliRunner().invoke(main, ["coverage", str(stopped), "--html", str(page)])
    assert result.exit_code == 1 and page.exists()
    report = coverage(stopped)
    browser = Browser()
    try:
        facts = browser.evaluate(page, PAGE_FACTS)
    finally:
        browser.close()
    assert report.verdict in facts["text"]
    assert "l2Book · BTC" in facts["text"] or "l2Book\tBTC" in facts["text"]
    assert "recorder down" in facts["text"]
    assert facts["heatmap"]["width"] > 100 and facts["heatmap"]["height"] > 30
    assert facts["requests"] == []  # self-contained: nothing fetched

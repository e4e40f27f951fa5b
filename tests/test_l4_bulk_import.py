"""The bulk node import (Arrow's JSON reader, many blocks at once) gives exactly the rows of the row
path and of the follower: the same values, seqs and receive times, every odd event kept whole as
text in its place (unknown fields, keys in another order, an older diff without ``side``, the
``modified`` diff, escaped strings, a broken line)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recorder.node.bulk as bulk
from recorder.node.follow import NodeFollower, import_node_data
from schemas.l4.bulk import parse_lines
from schemas.l4.node import DIFFS, FILLS, NODE_DIRS, STATUSES

from .test_l4_capture import HLARCHIVE, archive_rows, node_event_kinds, write_blocks

USER = "0x" + "cd" * 20
_px = st.sampled_from(["0.015", "104250.0", "12", "0.0", "3.5"])


def _order(coin: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "coin": st.just(coin), "side": st.sampled_from(["A", "B"]), "limitPx": _px, "sz": _px, "oid": st.integers(0, 2**63 - 1),
        "timestamp": st.integers(0, 2**53), "triggerCondition": st.just("N/A"), "isTrigger": st.booleans(), "triggerPx": _px,
        "children": st.just([]), "isPositionTpsl": st.booleans(), "reduceOnly": st.booleans(), "orderType": st.sampled_from(["Limit", "Stop Market"]),
        "origSz": _px, "tif": st.sampled_from(["Alo", "Gtc", None]), "cloid": st.sampled_from([None, "0x" + "1" * 32]),
    })


_coin = st.sampled_from(["BTC", "xyz:HOOD", "@107"])
_status = _coin.flatmap(lambda coin: st.fixed_dictionaries({
    "time": st.just("2025-06-24T02:56:36.172847427"), "user": st.just(USER), "status": st.sampled_from(["open", "filled", "canceled"]), "order": _order(coin),
}))
_change = st.one_of(st.just("remove"), st.builds(lambda s: {"new": {"sz": s}}, _px), st.builds(lambda a, b: {"update": {"origSz": a, "newSz": b}}, _px, _px),
                    st.builds(lambda s: {"modified": {"sz": s}}, _px))
_diff = st.fixed_dictionaries({"user": st.just(USER), "oid": st.integers(0, 2**63 - 1), "coin": _coin, "side": st.sampled_from(["A", "B"]), "px": _px, "raw_book_diff": _change})
_fill = st.tuples(st.just(USER), st.fixed_dictionaries({"coin": _coin, "px": _px, "sz": _px, "time": st.integers(0, 2**53), "tid": st.integers(0, 2**50), "side": st.sampled_from(["A", "B"])}))


def _odd(event: dict[str, Any], how: str) -> dict[str, Any]:
    """An event the typed columns do not hold exactly, or hold only as the row path decides."""
    if how == "extra field":
        return {**event, "newField": 7}
    if how == "keys reordered":
        return dict(reversed(list(event.items())))
    if how == "no side" and "side" in event:
        return {k: v for k, v in event.items() if k != "side"}
    if how == "escaped":
        return {**event, "user": 'a "quoted" user'}
    if how == "children" and "order" in event:
        return {**event, "order": {**event["order"], "children": [{"oid": 1}]}}
    if how == "unknown diff" and "raw_book_diff" in event:
        return {**event, "raw_book_diff": {"unheardOf": {"sz": "1"}}}
    if how == "remove object" and "raw_book_diff" in event:
        return {**event, "raw_book_diff": {"remove": True}}
    return event


_how = st.sampled_from(["extra field", "keys reordered", "no side", "escaped", "children", "unknown diff", "remove object"])


@st.composite
def node_files(draw: Any) -> dict[str, list[bytes]]:
    """Lines of the three streams over some blocks: mostly the typed shape, some odd events, a stream
    skipping a block now and then, a broken line maybe."""
    lines: dict[str, list[bytes]] = {STATUSES: [], DIFFS: [], FILLS: []}
    height = 650_000_000
    for n in range(draw(st.integers(1, 12))):
        height += draw(st.integers(1, 3))
        head = {"local_time": f"2025-06-24T02:56:{10 + n:02d}.301442118", "block_time": f"2025-06-24T02:56:{10 + n:02d}.172847427", "block_number": height}
        for stream, event in ((STATUSES, _status), (DIFFS, _diff), (FILLS, _fill)):
            if draw(st.integers(0, 9)) == 0:
                continue  # no line of this stream for the block
            events = draw(st.lists(event, max_size=6))
            if stream != FILLS and events and draw(st.integers(0, 3)) == 0:
                at = draw(st.integers(0, len(events) - 1))
                events[at] = _odd(events[at], draw(_how))
            lines[stream].append(orjson.dumps({**head, "events": [list(e) if type(e) is tuple else e for e in events]}))
    if draw(st.booleans()):  # a broken line among them
        stream = draw(st.sampled_from([STATUSES, DIFFS]))
        if lines[stream]:
            lines[stream].insert(draw(st.integers(0, len(lines[stream]))), b'{"local_time": "2025-06-24T02:56:00.5", "block_num')
    return lines


def write_node(node_dir: Path, lines: dict[str, list[bytes]]) -> None:
    for stream, stream_lines in lines.items():
        half = len(stream_lines) // 2  # two hourly files: a batch spans the hour turn
        for hour, chunk in ((0, stream_lines[:half]), (1, stream_lines[half:])):
            path = node_dir / NODE_DIRS[stream] / "hourly" / "20250624" / str(hour)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"".join(line + b"\n" for line in chunk))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=node_files(), batch_bytes=st.sampled_from([1, 2000, 1 << 20]))
def test_bulk_import_gives_the_row_paths_rows_exactly(tmp_path_factory, monkeypatch, lines, batch_bytes):
    """Property: whatever the lines, the bulk import writes the row path's rows (channel, seq, receive
    time, content), counts the same events and keeps the same broken lines, in any batch size."""
    node_dir = tmp_path_factory.mktemp("node")
    write_node(node_dir, lines)
    monkeypatch.setattr(bulk, "BATCH_BYTES", batch_bytes)
    rows_root, bulk_root = tmp_path_factory.mktemp("rows"), tmp_path_factory.mktemp("bulk")
    by_rows = import_node_data(node_dir, rows_root, say=lambda _: None, bulk=False)
    by_bulk = import_node_data(node_dir, bulk_root, say=lambda _: None)
    assert sorted(archive_rows(bulk_root)) == sorted(archive_rows(rows_root))
    assert (by_bulk.events, by_bulk.blocks, by_bulk.bad_lines, by_bulk.height) == (by_rows.events, by_rows.blocks, by_rows.bad_lines, by_rows.height)
    assert [e for e in node_event_kinds(bulk_root)] == [e for e in node_event_kinds(rows_root)]
    again = import_node_data(node_dir, bulk_root, say=lambda _: None)
    assert again.events == 0 and again.skipped == by_bulk.events


def test_a_typed_line_is_proven_and_an_odd_one_is_not():
    """The proof is the line's whole text: a line Arrow reads well but whose keys are in another
    order, or that carries a field more, is not taken as typed."""
    head = {"local_time": "2025-06-24T02:56:36.3", "block_time": "2025-06-24T02:56:36.1", "block_number": 7}
    diff = {"user": USER, "oid": 5, "coin": "BTC", "side": "B", "px": "1.0", "raw_book_diff": {"new": {"sz": "2"}}}
    lines = [orjson.dumps({**head, "events": [diff]}), orjson.dumps({**head, "events": [dict(reversed(list(diff.items())))]}),
             orjson.dumps({**head, "events": [{**diff, "more": 1}]}), orjson.dumps({**head, "events": [{**diff, "raw_book_diff": "remove"}]}),
             orjson.dumps({**head, "events": []}), orjson.dumps({**head, "events": [{**diff, "oid": 5.0}]})]
    parsed = parse_lines(DIFFS, lines[:5])
    assert parsed is not None and parsed.proven == [True, False, False, True, True]
    assert parse_lines(DIFFS, lines) is None  # an oid Arrow cannot read as an integer: the row path takes them all


def test_bulk_import_equals_the_follower_with_odd_events_and_through_the_cli(tmp_path):
    """The follower, the row path and ``hlarchive import`` (bulk) agree on simulator files with odd
    events mixed in (an unknown field, a ``modified`` diff, a diff without ``side``)."""
    node_dir = tmp_path / "node"
    write_blocks(node_dir, 0, 40, coins=("BTC", "SOL"))
    for stream, how in ((STATUSES, "extra field"), (DIFFS, "no side")):
        path = node_dir / NODE_DIRS[stream] / "hourly/20260101/0"
        out = []
        for number, line in enumerate(path.read_bytes().splitlines()):
            record = orjson.loads(line)
            if number % 7 == 3 and record["events"]:
                record["events"][0] = _odd(record["events"][0], how)
            if stream == DIFFS and number % 5 == 1:
                record["events"].append({**record["events"][-1], "raw_book_diff": {"modified": {"sz": "1.5"}}} if record["events"] else {})
            out.append(orjson.dumps(record))
        path.write_bytes(b"\n".join(out) + b"\n")
    caught_up = threading.Event()
    NodeFollower(node_dir, tmp_path / "followed").run(caught_up, duration_s=60, on_status=lambda s: caught_up.set() if s.blocks and s.height == s.newest else None, status_s=0.05)
    import_node_data(node_dir, tmp_path / "rows", say=lambda _: None, bulk=False)
    done = subprocess.run([*HLARCHIVE, "import", str(node_dir), "--root", str(tmp_path / "bulk"), "--silent", "--checkpoint-every", "0", "--jobs", "1"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    followed, rows, bulk_rows = (sorted(archive_rows(tmp_path / name)) for name in ("followed", "rows", "bulk"))
    assert len(bulk_rows) > 5000
    assert bulk_rows == rows == followed
    kept_whole = [content for channel, _, _, content in bulk_rows if channel in ("l4Statuses", "l4Diffs") and content.startswith('{"channel"')]
    assert any('"newField":7' in c for c in kept_whole) and any("modified" in c for c in (content for _, _, _, content in bulk_rows))

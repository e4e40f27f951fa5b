"""Books derived from level sums (``replay.l4.levels``): over a deep book imported from a node's
files, every block's ``l2Book`` (any depth, any rounding) and ``bbo`` is the pure state machine's
own, and a window with a desync goes the block path's way and still gives the row path's frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import replay.l4.levels as levels
from recorder.node.follow import import_node_data
from recorder.writer import ArchiveWriter
from replay import Replay
from schemas.l4.node import NODE_DIRS, snapshot_rows
from schemas.subscriptions import parse_subscription
from tests.benchmarks.quiet_book import COIN, LATENCY_MS, START_MS, QuietBook, write

BLOCKS = 400
SETTINGS = [(None, None, None), (1, None, None), (100, None, None), (None, 3, None), (50, 4, None), (None, 5, 2), (7, 5, 5)]


@pytest.fixture(scope="module")
def deep_book(tmp_path_factory) -> tuple[Path, list[dict[Any, Any]]]:
    """400 blocks of a 3,000-order book from node files (imported), with the node's snapshot at the
    start; and what the reference book shows after each block (each setting's ``l2``, ``best``)."""
    node, root = tmp_path_factory.mktemp("node"), tmp_path_factory.mktemp("archive")
    snapshot, _ = write(node, BLOCKS, seed=7, orders=3000)
    import_node_data(node, root, say=lambda _: None)
    with ArchiveWriter(root, session="node_snapshots") as writer:
        for row in snapshot_rows(snapshot, block_ms=START_MS)[1]:
            writer.write(row.frame, (START_MS + LATENCY_MS) * 1_000_000, parse_subscription({"type": "l4Snapshots", "coin": COIN}, allow_unknown=True), seq=row.seq)
    reference = QuietBook(seed=7, orders=3000)
    shown = []
    for n in range(1, BLOCKS + 1):
        reference.block(n)
        book = reference.book
        shown.append({**{setting: orjson.dumps(book.l2(setting[0] or 20, setting[1], setting[2])) for setting in SETTINGS}, "best": (book.best("B"), book.best("A"))})
    return root, shown


def frames(root: Path, sub: dict[str, Any]) -> list[dict[str, Any]]:
    replay = Replay(root)
    got: list[dict[str, Any]] = []
    replay.subscribe(sub, got.append)
    replay.run()
    return got


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_blocks_l2book_is_the_state_machines(deep_book, setting):
    root, shown = deep_book
    n_levels, n_sig_figs, mantissa = setting
    sub = {"type": "l2Book", "coin": COIN, **({"nLevels": n_levels} if n_levels else {}), **({"nSigFigs": n_sig_figs} if n_sig_figs else {}), **({"mantissa": mantissa} if mantissa else {})}
    before = dict(levels.stats)
    got = frames(root, sub)
    assert levels.stats["windows"] > before["windows"] and levels.stats["fallbacks"] == before["fallbacks"]
    assert len(got) == BLOCKS
    for frame, expected in zip(got, shown):
        assert orjson.dumps(frame["data"]) == expected[setting]


def test_bbo_is_sent_when_the_best_levels_change(deep_book):
    root, shown = deep_book
    got = frames(root, {"type": "bbo", "coin": COIN})
    expected, last = [], None
    for block in shown:
        best = block["best"]
        if best != last:
            last = best
            expected.append([None if lv is None else {"px": lv[0], "sz": lv[1], "n": lv[2]} for lv in best])
    assert [f["data"]["bbo"] for f in got] == expected and len(expected) > 10


def test_a_window_with_a_desync_takes_the_block_path_and_gives_the_row_paths_frames(tmp_path, monkeypatch):
    """A diff removing an order the book never had: that window goes block by block (the desync
    counted, the book unsafe), the others from level sums; the frames are the row path's."""
    import replay.l4.columns as block_path

    node = tmp_path / "node"
    snapshot, _ = write(node, 300, seed=8, orders=500)
    path = node / NODE_DIRS["diffs"] / "hourly" / "20260101" / "0"
    lines = path.read_bytes().splitlines()
    record = orjson.loads(lines[150])
    record["events"].append({"user": "0x" + "00" * 20, "oid": 10**12, "coin": COIN, "side": "B", "px": "1.0", "raw_book_diff": "remove"})
    lines[150] = orjson.dumps(record)
    path.write_bytes(b"\n".join(lines) + b"\n")
    root = tmp_path / "archive"
    import_node_data(node, root, say=lambda _: None)
    with ArchiveWriter(root, session="node_snapshots") as writer:
        for row in snapshot_rows(snapshot, block_ms=START_MS)[1]:
            writer.write(row.frame, (START_MS + LATENCY_MS) * 1_000_000, parse_subscription({"type": "l4Snapshots", "coin": COIN}, allow_unknown=True), seq=row.seq)
    subs = [{"type": "l2Book", "coin": COIN, "nLevels": 30}, {"type": "bbo", "coin": COIN}]
    before = dict(levels.stats)
    fast = Replay(root)
    got: list[bytes] = []
    for sub in subs:
        fast.subscribe(sub, lambda m: got.append(orjson.dumps(m)))
    fast.run()
    assert levels.stats["fallbacks"] == before["fallbacks"] + 1 and levels.stats["windows"] > before["windows"]
    with monkeypatch.context() as patched:
        patched.setattr(block_path, "usable", lambda *_: False)
        slow = Replay(root)
        want: list[bytes] = []
        for sub in subs:
            slow.subscribe(sub, lambda m: want.append(orjson.dumps(m)))
        slow.run()
    assert got == want and len(got) > 300


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["node_b", "node_a", "compact_z", "é"]), st.integers(0, 5)), max_size=12), min_size=1, max_size=4))
def test_rows_are_put_in_receipt_order_as_a_full_sort_puts_them(parts):
    """Each part's rows sorted as a part holds them; rows of several parts (channels), ties in
    receive time across sessions and seqs, duplicates: the quick order is the full sort's."""
    tables = []
    for rows in parts:
        rows = sorted(rows)  # a part is in receipt order
        tables.append(pa.table({"recv_ns": pa.array([r[0] for r in rows], pa.int64()), "session": pa.array([r[1] for r in rows], pa.string()), "seq": pa.array([r[2] for r in rows], pa.int64())}))
    keys = pa.concat_tables(tables).combine_chunks()
    if not keys.num_rows:
        return
    recv, codes, names, seq, order = levels._receipt_order(keys)
    got = [(int(recv[i]), names[codes[i]], int(seq[i])) for i in order]
    assert got == sorted(got)  # Python's text order is Arrow's for these (code points, UTF-8 bytes)
    assert sorted(order.tolist()) == list(range(keys.num_rows))

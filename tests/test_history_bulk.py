"""The bulk l2Book path: whatever it accepts restores to each record's ``raw`` exactly (values and key
order); whatever it cannot prove goes line by line, and an import gives the same archive either way."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recorder.imports.history as history_import
from recorder.imports.history import import_history
from replay import Replay
from schemas.imports.history import iso_ns
from schemas.imports.historybulk import l2book_chunk

from .history_files import HOUR9_NS, iso, l2book_lines, write_lz4

decimals = st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False).map(lambda d: format(d.normalize(), "f"))
levels = st.lists(st.fixed_dictionaries({"px": decimals, "sz": decimals, "n": st.integers(0, 10**6)}), max_size=6)
records = st.fixed_dictionaries(
    {
        "ns": st.integers(HOUR9_NS, HOUR9_NS + 86_400 * 10**9),
        "coin": st.sampled_from(["BTC", "kPEPE", "@107", "PURR/USDC"]),
        "time": st.integers(0, 2**53),
        "levels": st.tuples(levels, levels),
    }
)

VARIANTS = (
    "canonical", "level keys reordered", "data keys reordered", "raw keys reordered", "outer keys reordered",
    "spaces", "escaped coin", "px as a number", "n missing", "extra level key", "null sz", "time with Z",
    "time in ms", "three sides",
)


def record_line(record: dict, variant: str, rng: random.Random) -> bytes:
    book = [[{"px": level["px"], "sz": level["sz"], "n": level["n"]} for level in side] for side in record["levels"]]
    if variant == "three sides":
        book.append([])
    for side in book:
        for level in side:
            if variant == "level keys reordered" and rng.random() < 0.5:
                items = rng.sample(list(level.items()), 3)
                level.clear()
                level.update(items)
            if variant == "px as a number":
                level["px"] = 1.5
            if variant == "n missing":
                del level["n"]
            if variant == "extra level key":
                level["x"] = 1
            if variant == "null sz":
                level["sz"] = None
    data = {"coin": record["coin"], "time": record["time"], "levels": book}
    if variant == "data keys reordered":
        data = {"time": data["time"], "coin": data["coin"], "levels": data["levels"]}
    raw = {"channel": "l2Book", "data": data}
    if variant == "raw keys reordered":
        raw = {"data": data, "channel": "l2Book"}
    time = iso(record["ns"], "Z" if variant == "time with Z" else "")
    outer = {"time": time, "ver_num": 1, "raw": raw}
    if variant == "time in ms":
        outer["time"] = time[:23]
    if variant == "outer keys reordered":
        outer = {"raw": raw, "ver_num": 1, "time": time}
    if variant == "spaces":
        return json.dumps(outer, separators=(", ", ": ")).encode()
    if variant == "escaped coin":
        data["coin"] = "PURR\u00e9"
        return json.dumps(outer, separators=(",", ":"), ensure_ascii=True).encode()
    return orjson.dumps(outer)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(records, st.sampled_from(VARIANTS)), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_whatever_the_bulk_path_accepts_restores_to_the_records_raw(cases, rng):
    lines = [record_line(record, variant, rng) for record, variant in cases]
    bulk = l2book_chunk(b"".join(line + b"\n" for line in lines))
    if all(variant in ("canonical", "outer keys reordered") for _, variant in cases):
        assert bulk is not None  # the bulk path is taken whenever it can be
    if bulk is None:
        return
    expected = [orjson.loads(line) for line in lines]
    frames = [{"channel": "l2Book", "data": data} for _, batch in bulk.batches for data in batch.to_pylist()]
    assert [orjson.dumps(f) for f in frames] == [orjson.dumps(e["raw"]) for e in expected]  # values and key order
    assert [ns for batch, _ in bulk.batches for ns in batch.to_pylist()] == [iso_ns(e["time"]) for e in expected]
    assert bulk.lines == len(lines)


def test_a_chunk_with_a_blank_line_or_no_final_newline_goes_line_by_line():
    line = l2book_lines("BTC", 1, random.Random(1))[0]
    assert l2book_chunk(line + b"\n") is not None
    assert l2book_chunk(line + b"\n\n" + line + b"\n") is None
    assert l2book_chunk(line) is None


@pytest.mark.parametrize("chunk_bytes", [600, 5_000, 1 << 22])
def test_an_import_gives_the_same_frames_in_bulk_line_by_line_or_mixed(tmp_path, monkeypatch, chunk_bytes):
    rng = random.Random(3)
    lines = l2book_lines("SOL", 60, rng)
    lines[17] = json.dumps(orjson.loads(lines[17]), separators=(", ", ": ")).encode()  # proven only line by line
    source = write_lz4(tmp_path / "bucket" / "market_data" / "20250311" / "9" / "l2Book" / "SOL.lz4", lines)
    monkeypatch.setattr(history_import, "CHUNK_BYTES", chunk_bytes)
    bulk_taken = []
    real = history_import.l2book_chunk
    def l2book_chunk(chunk, counts=None):
        bulk = real(chunk, counts)
        bulk_taken.append(bulk is not None)
        return bulk

    monkeypatch.setattr(history_import, "l2book_chunk", l2book_chunk)
    report = import_history([str(source)], tmp_path / "archive")
    assert report.rows == 60
    if chunk_bytes < 10_000:  # the chunk holding line 18 goes line by line, the others in bulk
        assert any(bulk_taken) and not all(bulk_taken)
    else:  # one chunk, with line 18 in it: all line by line
        assert bulk_taken == [False]
    replay = Replay(tmp_path / "archive")
    replay.subscribe({"type": "l2Book", "coin": "SOL"}, lambda m: None)
    got = list(replay.items())
    assert [orjson.dumps(item.message) for item in got] == [orjson.dumps(orjson.loads(line)["raw"]) for line in lines]
    assert [item.recv_ns for item in got] == [iso_ns(orjson.loads(line)["time"]) for line in lines]
    assert sorted(item.seq for item in got) == list(range(1, 61))  # seqs follow the lines, whichever path


# --- fills ---------------------------------------------------------------------------------------------

from schemas.channels import channel_spec  # noqa: E402
from schemas.imports.history import FillPairer, fills_of_line  # noqa: E402
from schemas.imports.historybulk import fills_chunk, pair_fills  # noqa: E402

from .history_files import USERS, block_line, fill  # noqa: E402

TRADES = channel_spec("trades").shape


def line_path(lines: list[bytes], dataset: str, pairer: FillPairer) -> list[tuple[str, int, bytes]]:
    out = []
    for line in lines:
        for ns, user, one, frame in fills_of_line(line, dataset):
            out.append(("fill", ns, orjson.dumps(frame)))
            paired = pairer.add(ns, user, one)
            if paired is not None:
                out.append(("trade", paired[0], orjson.dumps(paired[1])))
    return out


def bulk_path(lines: list[bytes], dataset: str, pending: dict) -> tuple[list[tuple[str, int, bytes]], dict] | None:
    if not lines:
        return [], pending
    chunk = fills_chunk(b"".join(line + b"\n" for line in lines), dataset)
    if chunk is None:
        return None
    paired = pair_fills(chunk.fills, pending)
    if paired is None:
        return None
    trades = dict(zip(paired.at.to_pylist(), zip(paired.recv_ns.to_pylist(), paired.data.to_pylist())))
    out = []
    for position, row in enumerate(chunk.fills.to_pylist()):
        out.append(("fill", row["recv_ns"], orjson.dumps(orjson.loads(row["text"]))))
        if position in trades:
            ns, data = trades[position]
            out.append(("trade", ns, orjson.dumps({"channel": "trades", "data": TRADES.restore(data)})))
    return out, paired.pending


@st.composite
def fill_lines(draw):
    """Lines of fills: trades whose two sides sit in one block, in two blocks, or are a third and
    fourth fill of a tid; liquidations, unknown fields, and now and then a line the bulk path refuses."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    dataset = draw(st.sampled_from(["node_fills_by_block", "node_fills"]))
    events = []
    for i in range(draw(st.integers(1, 12))):
        coin = rng.choice(["BTC", "ETH", "@107"])
        tid = rng.choice([7, 8, 10**15 + i])  # small tids repeat: 3rd and 4th fills of a tid
        hash_ = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
        extra = rng.choice([{}, {"liquidation": {"liquidatedUser": USERS[0], "markPx": "1.5", "method": "market"}}, {"cloid": "0xab", "builderFee": "0.1"}, {"newField": [1, {"a": None}]}])
        taker = rng.random() < 0.5
        sides = ["B", "A"] if rng.random() < 0.95 else ["B", "B"]  # now and then one side twice: refused
        for side, crossed in zip(sides, (taker, not taker)):
            events.append((rng.choice(USERS), fill(coin, "1.5", "2", side, 1_741_683_600_000 + i, tid, hash_, i, crossed, **extra)))
    rng.shuffle(events)
    lines = []
    while events:
        take = rng.randint(1, 3) if dataset == "node_fills_by_block" else 1
        group, events = events[:take], events[take:]
        if dataset == "node_fills":
            lines.append(orjson.dumps(list(group[0])))
        else:
            lines.append(block_line(560_000_000 + len(lines), HOUR9_NS + len(lines) * 1_000_000, group))
    if draw(st.booleans()) and draw(st.booleans()):
        lines[rng.randrange(len(lines))] = json.dumps(orjson.loads(lines[0]), separators=(", ", ": ")).encode()  # spaces: line by line
    return dataset, lines, draw(st.integers(0, len(lines)))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(fill_lines())
def test_bulk_fills_give_the_line_paths_frames_trades_and_order(case):
    dataset, lines, split = case
    pairer = FillPairer()
    try:
        expected = line_path(lines, dataset, pairer)
    except Exception:  # noqa: BLE001 - the line path refuses it: the bulk path must not take it either
        got = bulk_path(lines[:split], dataset, {})
        rest = bulk_path(lines[split:], dataset, got[1]) if got is not None else None
        assert got is None or rest is None
        return
    first = bulk_path(lines[:split], dataset, {})  # two chunks: fills wait across the cut
    second = bulk_path(lines[split:], dataset, first[1]) if first is not None else None
    if first is None or second is None:
        assert any(b", " in line for line in lines)  # only the spaced line sends a chunk line by line
        return
    assert first[0] + second[0] == expected
    assert {k: (ns, u) for k, (ns, u, _) in second[1].items()} == {k: (ns, u) for k, (ns, u, _) in pairer.pending.items()}


def test_a_fills_import_gives_the_same_archive_in_bulk_or_line_by_line(tmp_path, monkeypatch):
    from .history_files import make_history

    source = tmp_path / "bucket"
    make_history(source)
    monkeypatch.setattr(history_import, "FILLS_CHUNK_BYTES", 3_000)  # several chunks: pairs wait across them
    bulk = import_history([str(source / "node_fills_by_block"), str(source / "node_fills")], tmp_path / "bulk")
    monkeypatch.setattr(history_import, "fills_chunk", lambda chunk, dataset: None)
    lines = import_history([str(source / "node_fills_by_block"), str(source / "node_fills")], tmp_path / "lines")
    assert (bulk.rows, bulk.trades, bulk.unpaired_fills) == (lines.rows, lines.trades, lines.unpaired_fills)
    assert bulk.trades > 0

    def everything(root):
        return [(i.recv_ns, i.session, i.seq, orjson.dumps(i.message)) for i in Replay(root).items()]

    assert everything(tmp_path / "bulk") == everything(tmp_path / "lines")

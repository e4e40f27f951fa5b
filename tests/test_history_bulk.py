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
from schemas.history import iso_ns
from schemas.historybulk import l2book_chunk

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
    frames = [{"channel": "l2Book", "data": data} for data in bulk.data.to_pylist()]
    assert [orjson.dumps(f) for f in frames] == [orjson.dumps(e["raw"]) for e in expected]  # values and key order
    assert bulk.recv_ns.to_pylist() == [iso_ns(e["time"]) for e in expected]
    assert bulk.exch_ms.to_pylist() == [e["raw"]["data"]["time"] for e in expected]


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
    monkeypatch.setattr(history_import, "l2book_chunk", lambda chunk: bulk_taken.append(real(chunk) is not None) or real(chunk))
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

"""The batch merge gives exactly the heap merge's order (the heap merge is the reference): receive
time, then session, then seq, ties by part position, a row held by two parts given once."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder import ArchiveWriter
from replay import Replay
from replay.archive import find_parts
from replay.batch_merge import merge_batches
from replay.merge import merge

SUBS = [{"type": "trades", "coin": "BTC"}, {"type": "trades", "coin": "ETH"}, {"type": "bbo", "coin": "SOL"}, {"type": "allMids"}]


def frame(sub: dict, n: int) -> dict:
    if sub["type"] == "trades":
        return {"channel": "trades", "data": [{"coin": sub["coin"], "side": "B", "px": f"{100 + n}.5", "sz": "0.1", "time": n, "hash": "0x" + "ab" * 32, "tid": n, "users": ["0x1", "0x2"]}]}
    if sub["type"] == "bbo":
        return {"channel": "bbo", "data": {"coin": sub["coin"], "time": n, "bbo": [{"px": "1.0", "sz": "2.0", "n": 1}, None]}}
    return {"channel": "allMids", "data": {"mids": {"BTC": f"{n}.0"}}}


rows = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 40), st.sampled_from(["s_a", "s_b", "s_c"])),  # stream, receive time (ties likely), session
    min_size=1, max_size=120,
)


def write(root: Path, drawn: list[tuple[int, int, str]], flush_rows: int) -> None:
    by_session: dict[str, list[tuple[int, int]]] = {}
    for stream, t, session in drawn:
        by_session.setdefault(session, []).append((t, stream))
    for session, entries in sorted(by_session.items()):
        with ArchiveWriter(root, session=session, flush_rows=flush_rows) as writer:
            for n, (t, stream) in enumerate(sorted(entries, key=lambda e: e[0])):  # a session receives in time order
                writer.write(frame(SUBS[stream], n), 1_767_225_600_000_000_000 + t * 1_000, SUBS[stream])


@settings(max_examples=40, deadline=None)
@given(rows, st.integers(1, 7), st.booleans(), st.sampled_from(["dicts", "bytes"]))
def test_the_batch_merge_orders_as_the_heap_merge(drawn, flush_rows, duplicate_a_part, decode):
    root = Path(tempfile.mkdtemp(prefix="hl-merge-"))
    try:
        write(root, drawn, flush_rows)
        if duplicate_a_part:  # a compaction caught between writing its part and removing the old ones
            part = sorted(root.rglob("*.parquet"))[0]
            shutil.copy(part, part.with_name(part.stem[:-6] + "999999.parquet"))
        parts = find_parts(root)
        reference = [(item.recv_ns, item.stream, orjson.dumps(item.message) if decode == "dicts" else item.message) for item in merge(parts, decode=decode)]
        batched = []
        for merged in merge_batches(parts, decode=decode, with_streams=True):
            assert merged.streams is not None
            for recv, stream, message in zip(merged.recv_ns.to_pylist(), merged.streams, merged.messages):
                batched.append((recv, stream, orjson.dumps(message) if decode == "dicts" else message))
        assert batched == reference
    finally:
        shutil.rmtree(root)


def test_replay_of_many_streams_calls_back_in_merge_order(tmp_path):
    drawn = [(i % 4, (i * 7) % 50, ("s_a", "s_b")[i % 2]) for i in range(300)]
    write(tmp_path, drawn, 9)
    expected = [item.message for item in merge(find_parts(tmp_path))]
    replay = Replay(tmp_path)
    got: list[dict] = []
    for sub in SUBS:
        replay.subscribe(sub, got.append)
    summary = replay.run()
    assert got == expected and summary.total == 300
    assert list(Replay(tmp_path).messages()) == expected
    assert [orjson.loads(b) for b in Replay(tmp_path).raw_messages()] == expected

"""Recovery: turn journals left by a crashed recorder into parts, exactly once, then remove them.

Frames a crashed session had already committed are recognised by ``(session, seq)`` and skipped,
so recovering twice, or after a partial flush, never duplicates a row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from schemas.layout import JOURNAL_DIR, parse_part_name
from schemas.subscriptions import Subscription, parse_subscription

from .journal import DATA, EVENT, LOCKS, META, SUBSCRIPTION, Record, is_locked, read_segment, segments
from .writer import ArchiveWriter


@dataclass
class Recovered:
    session: str
    frames: int = 0
    skipped: int = 0  # already in committed parts

    def as_dict(self) -> dict[str, Any]:
        return {"session": self.session, "frames": self.frames, "skipped": self.skipped}


def committed_seqs(root: Path, session: str) -> set[int]:
    seqs: set[int] = set()
    for path in root.glob(f"channel=*/coin=*/date=*/part-*-{session}-*.parquet"):
        name = parse_part_name(path.name)
        if name is not None and name.session == session:
            seqs.update(pq.read_table(path, columns=["seq"]).column("seq").to_pylist())
    return seqs


def recover(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Recover every journal no live recorder holds; returns what was recovered per session."""
    journal_root = Path(root) / JOURNAL_DIR
    if not journal_root.is_dir():
        return []
    report = []
    for session_dir in sorted(p for p in journal_root.iterdir() if p.is_dir()):
        if is_locked(session_dir):
            continue
        report.append(_recover_session(Path(root), session_dir).as_dict())
    return report


def write_record(writer: ArchiveWriter, record: Record, subscriptions: dict[int, Subscription]) -> bool:
    """Hand one journal record to the writer, as the live recorder would have; False for a data
    record that turned out not to be a frame (archived as a ``malformed`` event instead)."""
    if record.kind == DATA:
        try:
            message = orjson.loads(record.payload)
        except orjson.JSONDecodeError as exc:  # journaled unparsed (routed by its first bytes): an event, as on receipt
            text = record.payload.decode("utf-8", "replace")
            writer.write_event("malformed", recv_ns=record.recv_ns, seq=record.seq, detail={"reason": f"not JSON: {exc}"}, text=text)
            return False
        writer.write(message, record.recv_ns, subscriptions.get(record.sub_id), seq=record.seq)
    elif record.kind == EVENT:
        event = orjson.loads(record.payload)
        writer.write_event(event["kind"], recv_ns=record.recv_ns, seq=record.seq, connection=event["connection"], detail=event["detail"], text=event["text"])
    elif record.kind == META:
        meta = orjson.loads(record.payload)
        writer.write_meta(meta["kind"], meta["payload"], recv_ns=record.recv_ns, seq=record.seq)
    return True


def _recover_session(root: Path, session_dir: Path) -> Recovered:
    session = session_dir.name
    done = Recovered(session)
    committed = committed_seqs(root, session)
    subscriptions: dict[int, Subscription] = {}
    with ArchiveWriter(root, session=session, source_url="recovered from journal") as writer:
        for _, path in segments(session_dir):
            for record in read_segment(path):
                if record.kind == SUBSCRIPTION:
                    subscriptions[record.sub_id] = parse_subscription(orjson.loads(record.payload), allow_unknown=True)
                    continue
                if record.seq in committed:
                    done.skipped += 1
                    continue
                committed.add(record.seq)
                write_record(writer, record, subscriptions)
                done.frames += 1
    for _, path in segments(session_dir):
        path.unlink()
    for name in LOCKS:
        (session_dir / name).unlink(missing_ok=True)
    try:
        session_dir.rmdir()
    except OSError:
        pass
    return done

"""``hlarchive import``: JSON lines of websocket frames from other collectors, into the archive.

Lines may carry a receive time before the JSON (epoch s/ms/us/ns or ISO-8601), and files may be
gzipped. A line without a time takes the frame's exchange time, or else the previous line's time.
A line that is not a frame is kept as a ``malformed`` event with its exact text: nothing is dropped.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from schemas.channels import channel_spec
from schemas.imports.jsonlines import LineError, parse_line
from schemas.layout import ArchiveError
from schemas.rows import FrameError

from ..writer import ArchiveWriter


@dataclass
class ImportReport:
    files: int = 0
    frames: int = 0
    bad_lines: int = 0


def _open(path: Path) -> tuple[Iterator[bytes], Callable[[], int]]:
    raw = open(path, "rb")
    gzipped = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
    return iter(stream), raw.tell


def import_files(
    paths: list[str | os.PathLike[str]],
    root: str | os.PathLike[str],
    *,
    start_ns: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise ArchiveError(f"no file {str(path)!r} to import")
    total = sum(p.stat().st_size for p in files)
    done_before = 0
    with ArchiveWriter(root, source_url="import") as writer:
        for path in files:
            report.files += 1
            lines, position = _open(path)
            last_ns = start_ns
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    recv_ns, frame = parse_line(line)
                    if recv_ns is None:
                        recv_ns = _exchange_ns(frame) or (last_ns + 1 if last_ns is not None else None)
                    if recv_ns is None:
                        raise LineError("no receive time: prefix lines with a timestamp, or pass --start")
                    writer.write(frame, recv_ns)
                    last_ns = recv_ns
                    report.frames += 1
                except (LineError, FrameError) as exc:
                    report.bad_lines += 1
                    writer.write_event("malformed", recv_ns=last_ns or 0, detail={"file": str(path), "line": number, "reason": str(exc)}, text=line.decode("utf-8", "replace").rstrip("\n"))
                if progress and number % 5000 == 0:
                    progress(done_before + position(), total)
            done_before += path.stat().st_size
            if progress:
                progress(done_before, total)
    return report


def _exchange_ns(frame: object) -> int | None:
    if not isinstance(frame, dict) or not isinstance(frame.get("channel"), str):
        return None
    spec = channel_spec(frame["channel"])
    if spec is None:
        return None
    try:
        ms = spec.exch_ms(frame.get("data"))
    except (AttributeError, TypeError, KeyError, IndexError):
        return None
    return ms * 1_000_000 if type(ms) is int else None

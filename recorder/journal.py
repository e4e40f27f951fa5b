"""The write-ahead journal: every frame is appended here before the writer sees it.

Layout: ``<root>/_journal/<session>/seg-<n>.wal``; each segment opens with the subscriptions it
refers to, then length-prefixed records, so a torn tail (``kill -9`` mid-write) is recognised and
ignored. A live recorder holds an advisory lock on its session directory: recovery leaves live
journals alone. Segments are trimmed once every frame in them is in a committed part.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from pathlib import Path
from typing import IO, Iterator, NamedTuple

from schemas.layout import JOURNAL_DIR, ArchiveError

MAGIC = b"HLWAL1\n"
HEADER = struct.Struct("<BqqIH")  # kind, recv_ns, seq, payload length, subscription id

DATA, EVENT, META, SUBSCRIPTION = 1, 2, 3, 4


class Record(NamedTuple):  # a tuple: the archiver makes one a frame, and a frozen dataclass costs 4x as much
    kind: int
    recv_ns: int
    seq: int
    sub_id: int
    payload: bytes


class Journal:
    """Append-only segments for one session. Not thread-safe: one writer (the event loop) appends."""

    def __init__(self, root: str | os.PathLike[str], session: str, *, buffer_bytes: int = 1 << 20) -> None:
        self.directory = Path(root) / JOURNAL_DIR / session
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.directory / "LOCK", "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchiveError(f"session {session} is already being recorded by another process") from None
        self.buffer_bytes = buffer_bytes
        self.segment = max((n for n, _ in segments(self.directory)), default=0)
        self._file: IO[bytes] | None = None
        self._subscriptions: dict[int, bytes] = {}
        self.unsynced_bytes = 0
        self.rotate()

    def define(self, sub_id: int, subscription_json: bytes) -> None:
        """Name a subscription; every later segment repeats it, so each segment stands alone."""
        self._subscriptions[sub_id] = subscription_json
        self.append(SUBSCRIPTION, 0, 0, subscription_json, sub_id)

    def append(self, kind: int, recv_ns: int, seq: int, payload: bytes, sub_id: int = 0) -> None:
        assert self._file is not None
        self._file.write(HEADER.pack(kind, recv_ns, seq, len(payload), sub_id) + payload)
        self.unsynced_bytes += HEADER.size + len(payload)

    def segment_path(self, segment: int) -> Path:
        return self.directory / f"seg-{segment:08d}.wal"

    def flush(self) -> int:
        """Hand buffered records to the OS; returns the file descriptor to fsync (off the event loop)."""
        assert self._file is not None
        self._file.flush()
        return self._file.fileno()

    def sync(self) -> None:
        os.fsync(self.flush())
        self.unsynced_bytes = 0

    def rotate(self) -> int:
        """Start a new segment; returns its number. Earlier segments can be trimmed once committed."""
        if self._file is not None:
            self.sync()
            self._file.close()
        self.segment += 1
        self._file = open(self.segment_path(self.segment), "ab", buffering=self.buffer_bytes)
        self._file.write(MAGIC)
        for sub_id, subscription_json in self._subscriptions.items():
            self.append(SUBSCRIPTION, 0, 0, subscription_json, sub_id)
        return self.segment

    def size_bytes(self) -> int:
        """The journal's bytes on disk (segments the archiver has not finished with)."""
        total = 0
        for _, path in segments(self.directory):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def close(self, *, remove: bool = False) -> None:
        """Close; with ``remove`` (everything committed) delete the session's journal."""
        try:
            if self._file is not None:
                try:
                    self.sync()
                finally:
                    try:
                        self._file.close()
                    except OSError:
                        pass  # a full disk: what could be written is written; recovery reads whole records
                    self._file = None
            if remove:
                for _, path in segments(self.directory):
                    path.unlink(missing_ok=True)
                for name in LOCKS:
                    (self.directory / name).unlink(missing_ok=True)
                for directory in (self.directory, self.directory.parent):
                    try:
                        directory.rmdir()  # only when empty: another session's journal stays
                    except OSError:
                        break
        finally:
            self._lock.close()


def trim(directory: Path, before: int) -> int:
    """Delete the segments numbered below ``before`` (every frame in them is committed); how many."""
    removed = 0
    for n, path in segments(directory):
        if n < before:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob("seg-*.wal"):
        try:
            found.append((int(path.stem[4:]), path))
        except ValueError:
            continue
    return sorted(found)


def read_segment(path: Path, offset: int = 0) -> Iterator[Record]:
    """The whole records of a segment, from ``offset`` (a record boundary); a torn tail is where it ends.

    Streams: a segment of a busy day can be larger than memory should hold.
    """
    kinds = (DATA, EVENT, META, SUBSCRIPTION)
    with open(path, "rb", buffering=1 << 20) as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            return
        if offset > len(MAGIC):
            handle.seek(offset)
        read, unpack, size = handle.read, HEADER.unpack, HEADER.size
        while True:
            header = read(size)
            if len(header) < size:
                return
            kind, recv_ns, seq, length, sub_id = unpack(header)
            if kind not in kinds:
                return
            payload = read(length)
            if len(payload) < length:
                return
            yield Record(kind, recv_ns, seq, sub_id, payload)


class JournalTail:
    """Reads a live session's journal as it grows: whole records only, in order, across rotations.

    A segment is finished once the next one exists (``rotate`` closes a segment before it creates
    the next), so a short read at the end of the newest segment only means "not written yet".
    """

    def __init__(self, directory: Path, chunk_bytes: int = 4 << 20) -> None:
        self.directory = directory
        self.chunk_bytes = chunk_bytes
        self.segment = min((n for n, _ in segments(directory)), default=1)
        self._file: IO[bytes] | None = None
        self._pending = b""  # the start of a record whose end is not written yet

    def read(self) -> tuple[list[Record], bool]:
        """The whole records written since the last call (at most about ``chunk_bytes`` of them), and
        whether the reader moved past a finished segment (every earlier segment is read whole)."""
        if self._file is None and not self._open():
            return [], False
        assert self._file is not None
        chunk = self._file.read(self.chunk_bytes)
        if chunk:
            return self._records(chunk), False
        if not self.directory.joinpath(f"seg-{self.segment + 1:08d}.wal").exists():
            return [], False
        records = self._records(self._file.read())  # what was written before the rotation closed it
        self._file.close()
        self._file, self._pending = None, b""  # a torn tail of a finished segment is never completed
        self.segment += 1
        return records, True

    def _open(self) -> bool:
        try:
            handle = open(self.directory / f"seg-{self.segment:08d}.wal", "rb", buffering=0)
        except FileNotFoundError:
            return False
        if handle.read(len(MAGIC)) != MAGIC:  # not written yet: the creator writes the magic first
            handle.close()
            return False
        self._file = handle
        return True

    def _records(self, chunk: bytes) -> list[Record]:
        data = self._pending + chunk if self._pending else chunk
        out: list[Record] = []
        position, end, size, unpack = 0, len(data), HEADER.size, HEADER.unpack_from
        while position + size <= end:
            kind, recv_ns, seq, length, sub_id = unpack(data, position)
            stop = position + size + length
            if stop > end:
                break
            out.append(Record(kind, recv_ns, seq, sub_id, data[position + size : stop]))
            position = stop
        self._pending = data[position:]
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


LOCKS = ("LOCK", "ARCHIVER")  # the receiving process's, and its archiver's (which may outlive it briefly)


def hold_lock(path: Path) -> IO[str]:
    """Take ``path``'s lock for as long as the returned handle stays open (and the process lives)."""
    handle = open(path, "a+")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def is_locked(session_dir: Path) -> bool:
    """Whether a live recorder, or its archiver still finishing a commit, holds this session's journal."""
    for name in LOCKS:
        lock_path = session_dir / name
        if not lock_path.exists():
            continue
        with open(lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    return False

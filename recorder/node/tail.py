"""Reading one stream of a node's hourly files as they grow: whole lines only, across hour turns.

A node appends a line a block and opens the next hour's file when the hour turns. A last line
without its newline is kept here until the rest arrives (never parsed early, never skipped); the
reader moves to the next file only once the current one ends in a newline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from schemas.l4.node import peek_height

READ_BYTES = 1 << 20
POLL_BYTES = 8 << 20  # read at most this much of a stream in one poll
STUCK_HALF_LINE_S = 30.0  # a half line this old in a file the node has left is reported, not waited for


def hourly_files(directory: Path) -> list[Path]:
    """A stream's files in time order: ``hourly/YYYYMMDD/H`` (plain, or ``.lz4`` as in the buckets)."""
    base = directory / "hourly" if (directory / "hourly").is_dir() else directory
    found = []
    for day in base.iterdir() if base.is_dir() else ():
        if day.is_dir() and day.name.isdigit():
            for path in day.iterdir():
                stem = path.name.split(".")[0]
                if path.is_file() and stem.isdigit():
                    found.append((day.name, int(stem), path))
    return [path for *_, path in sorted(found)]


class StreamTail:
    """Whole lines of one stream, from a position on; ``poll()`` returns what has been completed since."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.path: Path | None = None
        self.offset = 0  # of the first byte not yet returned (the start of a held half line)
        self.line_no = 0  # lines returned from the current file
        self._handle: IO[bytes] | None = None
        self._partial = b""
        self._stuck_since: float | None = None

    def start_after(self, height: int | None) -> None:
        """Position at the first line of a block after ``height`` (None: the oldest file's start)."""
        files = hourly_files(self.directory)
        if not files:
            self.path = None
            return
        chosen = files[0]
        if height is not None:
            for path in reversed(files):
                first = _first_height(path)
                if first is not None and first <= height + 1:
                    chosen = path
                    break
        self._open(chosen)
        if height is not None:
            self._skip_through(height)

    def _open(self, path: Path, offset: int = 0) -> None:
        if self._handle is not None:
            self._handle.close()
        self.path, self.offset, self.line_no, self._partial = path, offset, 0, b""
        self._handle = open(path, "rb")  # noqa: SIM115 - held while the file is followed
        self._handle.seek(offset)

    def _skip_through(self, height: int) -> None:
        assert self._handle is not None
        while True:
            start = self._handle.tell()
            line = self._handle.readline()
            if not line.endswith(b"\n"):
                self._handle.seek(start)
                return
            found = peek_height(line)
            if found is not None and found > height:
                self._handle.seek(start)
                return
            self.offset = self._handle.tell()
            self.line_no += 1

    def poll(self, now: float) -> tuple[list[tuple[int, bytes]], str | None]:
        """``([(line number, line), ...], problem)``: the lines completed since the last poll (newline
        stripped), and a one-line problem when a half line was abandoned by the node (then dropped
        into the caller's hands as a bad line)."""
        if self.path is None:
            self.start_after(None)
            if self.path is None:
                return [], None
        lines: list[tuple[int, bytes]] = []
        problem = None
        budget = POLL_BYTES
        while True:
            got = self._read_lines(lines)
            if got:
                budget -= got
                if budget <= 0:
                    break  # a backlog is read a slice a poll: memory stays bounded, the join goes on
                continue
            nxt = self._next_file()
            if nxt is None:
                break
            if self._partial:  # the node moved on: the half line may still be finishing
                if self._stuck_since is None:
                    self._stuck_since = now
                if now - self._stuck_since < STUCK_HALF_LINE_S:
                    break
                self.line_no += 1
                lines.append((self.line_no, self._partial))  # handed on whole as it is: it fails as a bad line
                problem = f"{self.path}: line {self.line_no} never got its newline"
            self._stuck_since = None
            self._open(nxt)
        return lines, problem

    def _read_lines(self, out: list[tuple[int, bytes]]) -> int:
        """Bytes read (0 at the end of the file for now)."""
        assert self._handle is not None
        chunk = self._handle.read(READ_BYTES)
        if not chunk:
            return 0
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            for line in data[:cut].split(b"\n")[:-1]:
                self.line_no += 1
                if line.strip():
                    out.append((self.line_no, line))
            self.offset += cut
        return len(chunk)

    def _next_file(self) -> Path | None:
        files = hourly_files(self.directory)
        if self.path in files:
            at = files.index(self.path)
            return files[at + 1] if at + 1 < len(files) else None
        return None

    def where(self) -> str:
        return f"{self.path}, line {self.line_no + 1}" if self.path else str(self.directory)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _first_height(path: Path) -> int | None:
    with open(path, "rb") as handle:
        return peek_height(handle.readline(1 << 16))


def file_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Every line of a finished file (plain or ``.lz4``), numbered; a last line without its newline too."""
    if path.suffix == ".lz4":
        import lz4.frame

        opened: IO[bytes] = lz4.frame.open(path, "rb")
    else:
        opened = open(path, "rb")  # noqa: SIM115 - closed by the with below
    with opened as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip(b"\n")
            if line.strip():
                yield number, line


def size_of(path: Path) -> int:
    return os.stat(path).st_size

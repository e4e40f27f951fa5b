"""The archiver: a process of its own that tails the journal into Parquet parts.

The receiving process only journals frames; this process reads the journal as it grows and does
all of Arrow's and Parquet's work, so the two never wait on one interpreter's lock. It commits
every buffered row when the journal rotates (every ``flush_seconds``), then deletes the segments it
has read, so the journal holds only what is not yet in a committed part. If the archiver falls
behind, the frames wait on disk, not in memory.

The two talk over a pair of pipes, a JSON message a line: the parent says ``stop`` (after syncing
the journal); the archiver says what it committed and how far it has read. If the parent dies, the
archiver stops without committing more: the journal it leaves is what ``recover`` turns into parts.
The archiver is a plain ``python -m recorder.archiver`` process (not ``multiprocessing``, whose
spawn adds a resource-tracker process and pickling that nothing here needs).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson

from schemas.subscriptions import Subscription, parse_subscription

from .journal import DATA, SUBSCRIPTION, JournalTail, hold_lock, trim

POLL_S = 0.02  # how long an idle archiver waits for the journal to grow
PROGRESS_S = 0.2  # how often it says how far it has read


class Pipe:
    """One end of the archiver's conversation: JSON messages, a line each, over two pipe fds."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd, self._write_fd = read_fd, write_fd
        self._buffer = b""

    def send(self, message: Any) -> None:
        data = memoryview(orjson.dumps(message) + b"\n")
        while data:
            data = data[os.write(self._write_fd, data) :]  # BrokenPipeError once the other end is gone

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether ``recv`` would return at once (a message, or EOF) within ``timeout`` seconds."""
        if b"\n" in self._buffer:
            return True
        return bool(select.select([self._read_fd], [], [], timeout)[0])

    def recv(self) -> Any:
        while b"\n" not in self._buffer:
            chunk = os.read(self._read_fd, 1 << 16)
            if not chunk:
                raise EOFError("the other end of the archiver's pipe is gone")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return orjson.loads(line)

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def run_archiver(root: str, journal_dir: str, session: str, source_url: str, writer_options: dict[str, Any], pipe: Pipe) -> None:
    """The archiver process's main: journal records in, committed parts out, until told to stop."""
    import gc
    import signal

    # Ctrl-C and systemd's stop signal the whole group: the parent stops first, then says "stop"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    from .blocks import FrameBlocks  # Arrow: here, in the archiver process only
    from .recovery import write_record
    from .writer import ArchiveWriter

    gc.freeze()
    gc.set_threshold(200_000, 50, 100)  # frames are acyclic: the cyclic collector would only rescan buffers
    try:
        # held until this process ends: recovery leaves the journal alone while a commit may still land,
        # even after the receiving process (and its lock) is gone
        lock = hold_lock(Path(journal_dir) / "ARCHIVER")
        writer = ArchiveWriter(root, session=session, source_url=source_url, **writer_options,
                               on_commit=lambda path, rows, seq: pipe.send(("commit", str(path), rows, seq, path.stat().st_size)))
        tail = JournalTail(Path(journal_dir))
        blocks = FrameBlocks(writer)
        subscriptions: dict[int, Subscription] = {}
        last_seq, written, malformed, by_row, said_at, stopping = 0, 0, 0, 0, 0.0, False
        while True:
            records, moved_on = tail.read()
            for record in records:
                if record.kind == SUBSCRIPTION:
                    subscriptions[record.sub_id] = parse_subscription(orjson.loads(record.payload), allow_unknown=True)
                    continue
                last_seq = record.seq
                if record.kind == DATA:
                    sub = subscriptions.get(record.sub_id)
                    if blocks.take(record, sub):
                        continue
                    blocks.write_partition(sub)
                if not write_record(writer, record, subscriptions):
                    malformed += 1
                elif record.kind == DATA:
                    by_row += 1
            written += len(records)
            if moved_on:  # every earlier segment is read: commit, then they can go
                blocks.write_all()
                writer.flush()
                trim(Path(journal_dir), before=tail.segment)
            now = time.monotonic()
            if now - said_at >= PROGRESS_S:
                writer.flush_due()
                pipe.send(("progress", last_seq, written, writer.buffered_rows + blocks.pending, malformed + blocks.malformed,
                           blocks.bulk_frames, by_row + blocks.single_frames))
                said_at = now
            if records or moved_on:
                if not pipe.poll():
                    continue
            elif stopping:
                break
            if pipe.poll(0 if stopping else POLL_S) and pipe.recv() == "stop":
                stopping = True  # the parent synced the journal: read it to its end, then finish
        tail.close()
        blocks.write_all()
        writer.close()
        lock.close()
        pipe.send(("progress", last_seq, written, 0, malformed + blocks.malformed, blocks.bulk_frames, by_row + blocks.single_frames))
        pipe.send(("done", peak_rss_mb()))
    except (EOFError, BrokenPipeError):
        os._exit(3)  # the parent is gone: commit nothing more, the journal is recovery's
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops recording
        try:
            pipe.send(("error", (str(exc) or type(exc).__name__).splitlines()[0]))
        finally:
            os._exit(2)


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak RSS from /proc (``ru_maxrss`` would count a forked parent's pages too)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class CommitStats:
    """What the archiver has committed, as it said."""

    parts: int = 0
    rows_committed: int = 0
    bytes_committed: int = 0


@dataclass
class ArchiverProgress:
    last_seq: int = 0  # the last journal record the archiver has handed to its writer
    records: int = 0
    buffered_rows: int = 0  # read, not yet in a committed part
    malformed: int = 0  # data records that were not JSON (journaled unparsed, archived as events)
    as_columns: int = 0  # data frames written a block at a time through Arrow, proven exact
    by_row: int = 0  # data frames written one by one (other channels, blocks not proven)
    peak_rss_mb: float = float("nan")  # the archiver's own, once it is done


class Archiver:
    """The parent's handle on the archiver process: start it, hear from it, stop it."""

    def __init__(
        self,
        root: Path,
        journal_dir: Path,
        session: str,
        source_url: str,
        writer_options: dict[str, Any],
        on_commit: Callable[[Path, int, int], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.on_commit = on_commit
        self.on_error = on_error
        self.stats = CommitStats()
        self.progress = ArchiverProgress()
        self.error: str | None = None
        self._done = threading.Event()
        self._args = [str(root), str(journal_dir), session, source_url, orjson.dumps(writer_options).decode()]
        self.process: subprocess.Popen[bytes] | None = None
        self._pipe: Pipe | None = None
        self._listener = threading.Thread(target=self._listen, name="hlarchive-archiver-pipe", daemon=True)

    def start(self) -> None:
        """Start the process: a fresh interpreter (no fork of a running event loop), its two pipe fds passed."""
        to_child, from_parent = os.pipe()[::-1]  # (write, read)
        from_child, to_parent = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "recorder.archiver", *self._args, str(from_parent), str(to_parent)],
            stdin=subprocess.DEVNULL, pass_fds=(from_parent, to_parent),
        )
        os.close(from_parent)
        os.close(to_parent)
        self._pipe = Pipe(from_child, to_child)
        self._listener.start()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def _exit_code(self) -> int | None:
        assert self.process is not None
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def _listen(self) -> None:
        assert self._pipe is not None
        try:
            while True:
                message = self._pipe.recv()
                kind = message[0]
                if kind == "commit":
                    _, path, rows, seq, size = message
                    self.stats.parts += 1
                    self.stats.rows_committed += rows
                    self.stats.bytes_committed += size
                    if self.on_commit is not None:
                        self.on_commit(Path(path), rows, seq)
                elif kind == "progress":
                    (_, self.progress.last_seq, self.progress.records, self.progress.buffered_rows, self.progress.malformed,
                     self.progress.as_columns, self.progress.by_row) = message
                elif kind == "done":
                    self.progress.peak_rss_mb = message[1]
                    break
                elif kind == "error":
                    self._failed(message[1])
                    break
        except (EOFError, OSError):
            self._failed(f"the archiver process ended unexpectedly (exit code {self._exit_code()})")
        finally:
            self._done.set()

    def _failed(self, why: str) -> None:
        self.error = why
        if self.on_error is not None:
            self.on_error(why)

    def stop(self, timeout_s: float | None = None) -> bool:
        """Ask the archiver to commit everything journaled, and wait; False if it failed."""
        if self.process is None or self._pipe is None:
            return True  # never started
        if self.error is None:
            try:
                self._pipe.send("stop")
            except OSError:
                pass
        self._done.wait(timeout_s)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self.error = self.error or "the archiver process did not finish in time"
        self._pipe.close()
        return self.error is None


def main(argv: list[str]) -> None:
    """``python -m recorder.archiver ROOT JOURNAL_DIR SESSION SOURCE_URL WRITER_OPTIONS READ_FD WRITE_FD``."""
    root, journal_dir, session, source_url, options, read_fd, write_fd = argv
    run_archiver(root, journal_dir, session, source_url, orjson.loads(options), Pipe(int(read_fd), int(write_fd)))


if __name__ == "__main__":
    main(sys.argv[1:])

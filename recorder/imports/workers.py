"""Many files at once: the per-file import run by N worker processes (or in this process for one).

Each file is imported exactly as alone (its own session, parts and marker), so the archive does not
depend on N. Workers are spawned, not forked: Arrow's threads do not survive a fork. Progress comes
back on a queue; the first error stops the run, and files already whole stay whole. On Ctrl-C every
worker removes the parts of the file it was in, so a re-run finishes exactly what was left.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

Progress = Callable[[int, int, int], None]  # (compressed bytes read, rows of files in flight, files in flight)
FileProgress = Callable[[int, int], None]  # (compressed bytes read, rows written) of one file so far
# the per-file import: (source, root, progress) -> its result, or None when it was in already; a
# module-level function, so that spawned workers find it by name (history.import_file)
ImportOne = Callable[[Any, Path, FileProgress], Any]
PROGRESS_EVERY_S = 0.25

_progress_queue: Any = None  # a worker's end of the progress queue (set by _start_worker)
_importing = False  # a worker between files ignores Ctrl-C; inside one, it cleans the file up and stops


def default_jobs() -> int:
    """One worker a core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_files(
    sources: list[Any], root: Path, import_one: ImportOne, *, jobs: int = 1, on_progress: Progress | None = None, worker_setup: Callable[[], None] | None = None
) -> Iterator[tuple[Any, Any]]:
    """``(source, result)`` as each file finishes (``None``: imported before); in order when ``jobs`` is 1.
    ``sources`` need a ``size`` (bytes, for progress)."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    if jobs == 1 or len(sources) <= 1:
        yield from _in_process(sources, root, import_one, on_progress)
    else:
        yield from _in_workers(sources, root, import_one, min(jobs, len(sources)), on_progress, worker_setup)


def _in_process(sources: list[Any], root: Path, import_one: ImportOne, on_progress: Progress | None) -> Iterator[tuple[Any, Any]]:
    done_bytes = 0
    for source in sources:
        def show(bytes_read: int, rows: int) -> None:
            if on_progress:
                on_progress(done_bytes + bytes_read, rows, 1)

        result = import_one(source, root, show)
        done_bytes += source.size
        yield source, result


def _in_workers(sources: list[Any], root: Path, import_one: ImportOne, jobs: int, on_progress: Progress | None, worker_setup: Callable[[], None] | None) -> Iterator[tuple[Any, Any]]:
    context = multiprocessing.get_context("spawn")
    updates = context.Queue()
    in_flight: dict[int, tuple[int, int]] = {}  # file index -> (bytes read, rows)
    finished_files: set[int] = set()
    done_bytes = 0
    last_shown = 0.0
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(updates, worker_setup)) as pool:
        futures: dict[Future[Any], int] = {}
        try:
            with _interrupts_held():  # the workers are started at the submits: born with Ctrl-C held
                futures = {pool.submit(_import_in_worker, import_one, i, source, root): i for i, source in enumerate(sources)}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=PROGRESS_EVERY_S, return_when=FIRST_COMPLETED)
                _drain(updates, in_flight, finished_files)
                for future in sorted(finished, key=futures.__getitem__):
                    index = futures[future]
                    result = future.result()  # a worker's error stops the run here
                    finished_files.add(index)
                    in_flight.pop(index, None)
                    done_bytes += sources[index].size
                    yield sources[index], result
                now = time.monotonic()
                if on_progress and (finished or now - last_shown >= PROGRESS_EVERY_S):
                    last_shown = now
                    on_progress(done_bytes + sum(b for b, _ in in_flight.values()), sum(r for _, r in in_flight.values()), len(in_flight))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):  # a terminal's Ctrl-C reaches the workers too; a kill of this process alone does not
                for process in list(getattr(pool, "_processes", {}).values()):
                    _interrupt(process.pid)
            pool.shutdown(wait=True, cancel_futures=True)  # each file being imported is removed whole, or finishes whole
            raise
    updates.close()


def _drain(updates: Any, in_flight: dict[int, tuple[int, int]], finished_files: set[int]) -> None:
    while True:
        try:
            index, bytes_read, rows = updates.get_nowait()
        except queue.Empty:
            return
        if index not in finished_files:  # a late word from a file already counted whole
            in_flight[index] = (bytes_read, rows)


def _interrupt(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGINT)
    except OSError:
        pass


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT held (not lost) while workers start: a Ctrl-C that reached a worker still starting up
    (importing, before its handler) printed a traceback; a held one waits for the handler, and here
    it is delivered when the hold ends."""
    hold = hasattr(signal, "pthread_sigmask")
    if hold:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if hold:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start_worker(updates: Any, setup: Callable[[], None] | None) -> None:
    global _progress_queue
    _progress_queue = updates
    signal.signal(signal.SIGINT, _on_interrupt)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # born held (``_interrupts_held``): one held is handled now
    if setup is not None:
        setup()


def _on_interrupt(signum: int, frame: Any) -> None:
    if _importing:
        raise KeyboardInterrupt


def _import_in_worker(import_one: ImportOne, index: int, source: Any, root: Path) -> Any:
    last = [0.0]

    def show(bytes_read: int, rows: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            _progress_queue.put((index, bytes_read, rows))

    global _importing
    _progress_queue.put((index, 0, 0))
    _importing = True
    try:
        return import_one(source, root, show)
    finally:
        _importing = False

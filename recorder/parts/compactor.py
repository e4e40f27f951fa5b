"""Compaction behind the recorder: once a span (``--compact-every``, default an hour) has been over
for ``--compact-after`` (default 10 minutes), every partition's parts of that span are merged into
one, and the catalog's dates folded, so a whole-market day holds about 24 parts a partition and no
timer of the user's is needed.

Each round runs ``hlarchive compact``'s own code (``replay.analysis.compaction``) in a child process
at the lowest priority there is (Linux's ``SCHED_IDLE``: it runs only on CPU nothing else wants;
``nice`` 19 where that is refused): the receiving and archiving processes keep the CPU they need, and a
``kill -9`` at any point of it is finished or undone by the next round (the swap is recorded before
any part is removed). A round also looks again at the spans before it: a part committed late (an
archiver catching up) is merged into its span the next time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

NS = 1_000_000_000
LOOK_BACK_SPANS = 3  # spans looked at again each round (late parts)
FIRST_LOOK_BACK_S = 86_400  # at start: spans of the last day a crash may have left uncompacted


def parse_duration(text: str | float | int, option: str) -> float:
    """``30s``, ``10m``, ``1h``, ``1d`` or plain seconds; ``0`` turns compaction off."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        value = text.strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
        try:
            seconds = float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
        except ValueError:
            raise ValueError(f"bad {option} {text!r}: give a duration like 30s, 10m or 1h (0: off)") from None
    if seconds < 0:
        raise ValueError(f"bad {option} {text!r}: a duration cannot be negative")
    return seconds


def lowest_priority() -> None:
    """In the child, before it runs: ``nice`` 10 still took a tenth of a core shared with the
    receiver (0.84-0.95x intake under full load); ``SCHED_IDLE`` takes only what is left over."""
    os.nice(19)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass  # not Linux, or refused: nice 19 stays


class BackgroundCompactor:
    def __init__(self, root: Path, every_s: float, after_s: float, *, on_round: Callable[[dict[str, object]], None] | None = None, clock: Callable[[], int] = time.time_ns) -> None:
        if every_s < 1:
            raise ValueError("--compact-every must be at least 1s (or 0: off)")
        self.root = root
        self.span_ns = int(every_s * NS)
        self.after_ns = int(after_s * NS)
        self.on_round = on_round
        self.clock = clock
        self.rounds = 0
        self.cpu_s = 0.0
        self.last: dict[str, object] = {}
        self.error: str | None = None
        self._done_until_ns: int | None = None  # spans before this are compacted (this run's view)
        self._stop = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._loop, name="compact-behind", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def due_until_ns(self) -> int:
        """The end of the last span that has been over for ``after``."""
        return (self.clock() - self.after_ns) // self.span_ns * self.span_ns

    def _loop(self) -> None:
        check_every = min(max(self.span_ns / NS / 4, 1.0), 60.0)
        while not self._stop.is_set():
            until = self.due_until_ns()
            if self._done_until_ns is None or until > self._done_until_ns:
                back = FIRST_LOOK_BACK_S * NS if self._done_until_ns is None else LOOK_BACK_SPANS * self.span_ns
                start = max(0, until - back) // self.span_ns * self.span_ns
                if self._run(start, until):
                    self._done_until_ns = until
            self._stop.wait(check_every)

    def _run(self, start_ns: int, end_ns: int) -> bool:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        command = [sys.executable, "-m", "replay.analysis.compaction", str(self.root), str(start_ns), str(end_ns), str(self.span_ns)]
        try:
            self._child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lowest_priority)
            out, err = self._child.communicate()
        finally:
            code = self._child.returncode if self._child is not None else None
            self._child = None
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_s += (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        self.rounds += 1
        if code != 0:
            if not self._stop.is_set():
                self.error = (err.decode(errors="replace").strip().splitlines() or [f"exit {code}"])[-1]
            return False
        self.error = None
        self.last = {**orjson.loads(out.strip().splitlines()[-1]), "start_ns": start_ns, "end_ns": end_ns}
        if self.on_round is not None:
            self.on_round(self.last)
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the round under way (bounded: past ``timeout_s`` it is killed; the next start
        finishes or undoes its swap)."""
        self._stop.set()
        self._thread.join(timeout_s)
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()
            self._thread.join(5)


__all__ = ["BackgroundCompactor", "parse_duration"]

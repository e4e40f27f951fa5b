"""The L4 checkpoints of a node's archive, written behind the follower and after an import.

The book every few minutes of blocks (``--checkpoint-every``) is what a seek starts from; it is
computed from the archive's committed rows by ``python -m replay.l4.checkpoints`` in a child process
(the recorder never imports the reader), at the lowest priority, each run going on from the last
checkpoint: following the node keeps the CPU it needs, and a ``kill -9`` loses at most a run's
checkpoints, written again by the next.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import orjson

from ..parts.compactor import lowest_priority

DEFAULT_EVERY_S = 300.0


def write_checkpoints(root: str | Path, every_s: float, *, background: bool = False) -> int:
    """Run one checkpoint pass over ``root``; the number written (``ValueError`` with the child's
    last line when it fails)."""
    command = [sys.executable, "-m", "replay.l4.checkpoints", str(root), str(int(every_s * 1000))]
    done = subprocess.run(command, capture_output=True, preexec_fn=lowest_priority if background else None)
    if done.returncode != 0:
        raise ValueError((done.stderr.decode(errors="replace").strip().splitlines() or [f"exit {done.returncode}"])[-1])
    return int(orjson.loads(done.stdout.strip().splitlines()[-1])["written"])


class BackgroundCheckpoints:
    """A pass every ``every_s`` of wall time while a follower runs (its blocks arrive in real time)."""

    def __init__(self, root: str | Path, every_s: float) -> None:
        self.root, self.every_s = root, every_s
        self.written = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="l4-checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.written += write_checkpoints(self.root, self.every_s, background=True)
                self.error = None
            except ValueError as exc:
                self.error = str(exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


__all__ = ["DEFAULT_EVERY_S", "BackgroundCheckpoints", "write_checkpoints"]

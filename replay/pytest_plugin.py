"""The ``hl_replay`` pytest fixture: run a bot's callbacks through an archive, deterministically.

Registered through the ``pytest11`` entry point, so installing hlarchive makes it available::

    def test_my_bot(hl_replay):
        replay = hl_replay("tests/data/btc.jsonl")       # or an archive directory, or a list of frames
        replay.subscribe({"type": "trades", "coin": "BTC"}, bot.on_trades)
        replay.run()
        assert bot.position == ...

A bot that trades gets a paper account on the same replay (``replay.paper(coins=["BTC"])``, the SDK
``Exchange``'s methods): its orders fill against the archived book and trades, deterministically.

A JSON-lines source (one frame a line, optionally after a receive timestamp) is written into a
small archive in the test's temporary directory first: this is the one place where replay uses the
recorder's writer, so the fixture tests exactly what production archives hold.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from schemas.imports.jsonlines import parse_line

from .replay import Replay

FIRST_NS = 1_767_225_600_000_000_000  # frames without a timestamp are spaced 1 ms apart from here


def build_archive(root: Path, frames: Iterable[tuple[int | None, Any]]) -> Path:
    from recorder import ArchiveWriter  # the writer of production archives

    with ArchiveWriter(root, session="fixture") as writer:
        for i, (recv_ns, message) in enumerate(frames):
            writer.write(message, recv_ns if recv_ns is not None else FIRST_NS + i * 1_000_000)
    return root


def _lines(path: Path) -> Iterable[tuple[int | None, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for line in handle:
            if line.strip():
                yield parse_line(line)


@pytest.fixture
def hl_replay(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Replay]:
    """Open an archive directory, a JSON-lines file of frames, or a list of frames, as a ``Replay``."""

    def open_replay(source: str | os.PathLike[str] | list[Any], **options: Any) -> Replay:
        if isinstance(source, list):
            root = build_archive(tmp_path_factory.mktemp("hl_replay"), ((None, m) for m in source))
        elif Path(source).is_file():
            root = build_archive(tmp_path_factory.mktemp("hl_replay"), _lines(Path(source)))
        else:
            root = Path(source)
        return Replay(root, **options)

    return open_replay

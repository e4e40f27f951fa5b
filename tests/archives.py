"""Small archives made from the synthetic market, deterministic, without a network."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from recorder import ArchiveWriter
from replay.simulator.market import SyntheticMarket
from schemas import parse_subscription

T0 = 1_767_225_600_000_000_000


def make_archive(
    root: Path,
    subs: list[dict[str, Any]],
    frames_per_sub: int = 50,
    *,
    session: str = "s1",
    t0: int = T0,
    step_ns: int = 10_000_000,
    flush_rows: int = 100_000,
    seed: int = 1,
) -> list[tuple[int, dict[str, Any]]]:
    """Interleave ``frames_per_sub`` frames of each subscription, ``step_ns`` apart; returns what was written."""
    market = SyntheticMarket(seed=seed)
    streams = [(parse_subscription(s, allow_unknown=True), market.frames(parse_subscription(s))) for s in subs]
    written = []
    with ArchiveWriter(root, session=session, flush_rows=flush_rows) as writer:
        t = t0
        for _ in range(frames_per_sub):
            for sub, frames in streams:
                message = next(frames)
                writer.write(message, t, sub)
                written.append((t, message))
                t += step_ns
    return written


def first(iterable: Any, n: int) -> list[Any]:
    return list(itertools.islice(iterable, n))

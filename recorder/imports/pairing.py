"""Fills whose two sides landed in two files (a block processed after the hour is in the next
hour's file), paired after the files are in: by whichever worker, in whichever order, and even when
the neighbouring hour is imported by a later command.

Each file's marker keeps its unpaired fills. Pairs found across markers are written as one import
session of their own, named by the pairs it holds, and get a marker listing them, so no pair is
written twice; parts of such a session that lost its marker (a crash) are removed first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from schemas.imports.history import FillPairer
from schemas.layout import IMPORTS_DIR, parse_part_name
from schemas.subscriptions import parse_subscription

from ..parts.catalog import CatalogLog
from ..writer import ArchiveWriter

MARKERS = IMPORTS_DIR
PAIRS_SESSION_PREFIX = "pairs_"  # file sessions are "h<hex>" (history.identity), recorded ones a UTC time


@dataclass(frozen=True)
class Pairing:
    trades: int  # trades frames written now
    unpaired: int  # fills whose other side is in no imported file
    session: str | None  # the session the trades were written in (None: none)


def pair_across_files(root: Path) -> Pairing:
    """Write the trades of fills whose two sides are in two files' markers and not paired yet."""
    markers = root / MARKERS
    records = [(path.stem, orjson.loads(path.read_bytes())) for path in sorted(markers.glob("*.json"))] if markers.is_dir() else []
    written_before: set[tuple[Any, Any]] = set()
    waiting: dict[tuple[Any, Any], list[tuple[int, str, dict[str, Any]]]] = {}
    for _, record in records:
        written_before.update((coin, tid) for coin, tid in record.get("pairs", ()))
        for recv_ns, user, fill in record.get("unpaired", ()):
            waiting.setdefault((fill["coin"], fill["tid"]), []).append((recv_ns, user, fill))
    _remove_orphans(root, {session for session, _ in records})
    trades = []
    for key in sorted(waiting, key=lambda k: (str(k[0]), k[1])):
        sides = waiting[key]
        if len(sides) != 2 or key in written_before:
            continue
        pairer = FillPairer()
        first, second = sorted(sides, key=lambda side: (side[0], side[1]))
        pairer.add(*first)
        trades.append((key, pairer.add(*second)))
    unpaired = sum(1 for key, sides in waiting.items() if len(sides) == 1 and key not in written_before)
    if not trades:
        return Pairing(0, unpaired, None)
    keys = [list(key) for key, _ in trades]
    session = PAIRS_SESSION_PREFIX + hashlib.blake2b(orjson.dumps(keys), digest_size=8).hexdigest()
    subs: dict[str, Any] = {}
    with ArchiveWriter(root, session=session, source_url="fills paired across files") as writer:
        for (coin, _), paired in sorted(trades, key=lambda item: item[1][0] if item[1] else 0):
            assert paired is not None
            recv_ns, frame = paired
            sub = subs.get(coin) or subs.setdefault(coin, parse_subscription({"type": "trades", "coin": coin}, allow_unknown=True))
            writer.write(frame, recv_ns, sub)
    temporary = markers / f"{session}.tmp"
    temporary.write_bytes(orjson.dumps({"pairs": keys}))
    temporary.replace(markers / f"{session}.json")
    return Pairing(len(trades), unpaired, session)


def _remove_orphans(root: Path, sessions_with_markers: set[str]) -> None:
    """Parts of a pairing session whose marker was never written (the run died before it)."""
    for part in root.glob(f"channel=trades/coin=*/date=*/part-*-{PAIRS_SESSION_PREFIX}*-*.parquet"):
        name = parse_part_name(part.name)
        if name is not None and name.session.startswith(PAIRS_SESSION_PREFIX) and name.session not in sessions_with_markers:
            part.unlink()
            CatalogLog(root, "import-cleanup").removed([part.relative_to(root).as_posix()])

"""The gaps of an archive: its ``_events`` read, and ``schemas.gaps`` asked where streams have holes.

Sessions that ended without a ``session_end`` (a crash) end at their last row, read from the
footers of their parts (no data is read).
"""

from __future__ import annotations

import os
from typing import Any

from schemas.gaps import Gap, find_gaps
from schemas.layout import EVENTS_CHANNEL, ArchiveError

from .archive import check_root, find_parts, last_recv_ns, open_part, read_footer
from .storage import Store

POLICIES = ("ignore", "mark", "raise")


class GapError(ArchiveError):
    """``on_gap="raise"``: the replay reached a gap."""

    def __init__(self, gap: Gap) -> None:
        super().__init__(f"gap in {gap.describe()}: replay stopped where it begins (on_gap='raise', --on-gap fail); on_gap='mark' goes on and lists the gaps")
        self.gap = gap


def event_rows(store: Store) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for part in find_parts(store, channels=[EVENTS_CHANNEL], include_special=True):
        table = open_part(part).read(columns=["recv_ns", "session", "seq", "kind", "connection", "detail"])
        rows.extend(table.to_pylist())
    return rows


def archive_gaps(root: str | os.PathLike[str] | Store) -> list[Gap]:
    """Every gap the archive's events show, ordered by start."""
    store = check_root(root)
    events = event_rows(store)
    started = {e["session"] for e in events if e["kind"] == "session_start"}
    finished = {e["session"] for e in events if e["kind"] == "session_end"}
    crashed = started - finished
    last: dict[str, int] = {}
    if crashed:
        for part in find_parts(store, include_special=True):
            if part.name.session in crashed:
                end = last_recv_ns(read_footer(part))
                if end is not None:
                    last[part.name.session] = max(last.get(part.name.session, end), end)
        for e in events:
            if e["session"] in crashed:
                last[e["session"]] = max(last.get(e["session"], e["recv_ns"]), e["recv_ns"])
    return find_gaps(events, last)


def gaps_in(gaps: list[Gap], streams: set[str] | None, start_ns: int | None, end_ns: int | None) -> list[Gap]:
    """The gaps of ``streams`` (all when None) that overlap ``[start_ns, end_ns]``."""
    return [g for g in gaps if (streams is None or g.stream in streams) and g.overlaps(start_ns, end_ns)]


def check_policy(on_gap: str) -> str:
    if on_gap not in POLICIES:
        raise ArchiveError(f"bad on_gap {on_gap!r}: use 'ignore', 'mark' (list the gaps in the summary) or 'raise' (stop at the first)")
    return on_gap

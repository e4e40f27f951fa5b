"""Which levels of a 20-level ``l2Book`` frame to tell a consumer that keeps its own book: all of them
(a snapshot) where its book must start again, else those that changed from the previous frame, a
level that left the 20 shown with size ``"0"``. Pure."""

from __future__ import annotations

from typing import Any

DAY_NS = 86_400 * 1_000_000_000

Change = tuple[int, str, str]  # (side: 0 bids, 1 asks, px text, sz text)


class LevelDiff:
    """A book starts again from a snapshot at each UTC day (each file), each recorder session and
    after each gap of the stream (``resumes``: the gaps' start times, ns)."""

    def __init__(self, resumes: list[int]) -> None:
        self.resumes = sorted(resumes)
        self._gap = 0
        self._day: int | None = None
        self._session: str | None = None
        self._shown: list[dict[str, str]] | None = None
        self.shown_before: list[dict[str, str]] | None = None  # the levels before the last frame (None: it was a snapshot)

    def moved_to(self, recv_ns: int, session: str) -> bool:
        """Say where the stream stands before each frame (of any channel); whether a new day began."""
        day = recv_ns // DAY_NS
        new_day = day != self._day
        if new_day:
            self._day, self._shown = day, None
        if session != self._session:
            self._session, self._shown = session, None
        while self._gap < len(self.resumes) and self.resumes[self._gap] < recv_ns:
            self._gap, self._shown = self._gap + 1, None
        return new_day

    @property
    def day(self) -> int | None:
        return self._day

    def frame(self, levels: list[list[dict[str, Any]]]) -> tuple[bool, list[Change]]:
        """(whether it is a snapshot, the levels to tell)."""
        now = [{level["px"]: level["sz"] for level in side} for side in levels]
        shown, self._shown = self._shown, now
        self.shown_before = shown
        if shown is None:
            return True, [(side, level["px"], level["sz"]) for side in (0, 1) for level in levels[side]]
        changes: list[Change] = []
        for side in (0, 1):
            before, after = shown[side], now[side]
            changes.extend((side, px, sz) for px, sz in after.items() if before.get(px) != sz)
            changes.extend((side, px, "0") for px in before if px not in after)  # in the shown order: the same rows every run
        return False, changes


__all__ = ["DAY_NS", "Change", "LevelDiff"]

"""One snapshot of a coin's book as the paper exchange reads it: lazily, as far as it is read. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Level:
    px: float
    px_text: str
    sz: float


class Book:
    """One snapshot of a coin's book, parsed only as far as it is read (most snapshots only show
    their touch to the engine)."""

    __slots__ = ("_sides", "raw", "taken", "time_ms")

    def __init__(self, time_ms: int, levels: list[list[dict[str, Any]]]) -> None:
        self.time_ms = time_ms
        self.raw = levels
        self.taken: dict[tuple[bool, str], float] = {}  # (ask side?, px) -> size paper orders took
        self._sides: list[list[Level] | None] = [None, None]

    def side(self, ask: bool) -> list[Level]:
        levels = self._sides[ask]
        if levels is None:
            levels = self._sides[ask] = [Level(float(x["px"]), x["px"], float(x["sz"])) for x in self.raw[ask]]
        return levels

    def walk(self, ask: bool) -> Iterator[Level]:
        """The levels of a side, best first, parsed only as far as the caller goes."""
        levels = self._sides[ask]
        if levels is not None:
            yield from levels
            return
        for x in self.raw[ask]:
            yield Level(float(x["px"]), x["px"], float(x["sz"]))

    @property
    def bids(self) -> list[Level]:
        return self.side(False)

    @property
    def asks(self) -> list[Level]:
        return self.side(True)

    def best(self, ask: bool) -> float | None:
        levels = self.raw[ask]
        return float(levels[0]["px"]) if levels else None

    def available(self, ask: bool, level: Level) -> float:
        return level.sz - self.taken.get((ask, level.px_text), 0.0)

    def size_at(self, ask: bool, px: float) -> float | None:
        """The size shown at ``px`` on one side (None when no level is there)."""
        for x in self.raw[ask]:
            level_px = float(x["px"])
            if level_px == px:
                return float(x["sz"])
            if level_px > px if ask else level_px < px:
                return None
        return None

    def within_depth(self, ask: bool, px: float) -> bool:
        levels = self.raw[ask]
        if not levels:
            return False
        last = float(levels[-1]["px"])
        return px <= last if ask else px >= last


__all__ = ["Book", "Level"]

"""What an export did, in the one line the CLI prints. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Summary:
    format: str
    events: int = 0
    paths: list[Path] = field(default_factory=list)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # coin -> tick and lot it used
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # lines after the summary (freqtrade: where each coin's candles came from)
    warnings: list[str] = field(default_factory=list)  # lines for stderr (a coin with no data in the range)

    def line(self) -> str:
        sizes = "; ".join(f"{coin} tick {spec['tick_size']:g} lot {spec['lot_size']:g}" for coin, spec in self.specs.items() if "tick_size" in spec)
        text = f"{self.format}: {self.events:,} events in {len(self.paths)} files" + (f" ({sizes})" if sizes else "")
        return text + "".join(f"; {note}" for note in self.notes)


__all__ = ["Summary"]

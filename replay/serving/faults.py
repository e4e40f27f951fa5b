"""What a local Hyperliquid enforces and what goes wrong on purpose: per-IP limits and injected faults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Hyperliquid's per-IP limits (docs: "Rate limits and user limits") and its idle timeout."""

    max_connections: int = 100
    max_subscriptions: int = 1000
    max_users: int = 10
    max_messages_per_minute: int = 2000
    idle_timeout_s: float = 60.0
    send_timeout_s: float = 10.0  # a client that reads nothing for this long is dropped, not buffered for


@dataclass(frozen=True)
class Faults:
    """Bad days on demand. Counts are data frames sent on one connection."""

    drop_after_frames: int | None = None
    drop_after_s: float | None = None
    stall_after_frames: int | None = None
    malformed_every: int | None = None
    garbled_every: int | None = None  # a frame whose head reads as data and whose body is not JSON
    error_every: int | None = None
    refuse_for_s: float = 0.0  # refuse connections for this long after the server starts
    refuse_after_drop_s: float = 0.0  # and for this long after each injected drop
    connections: frozenset[int] | None = None  # which connections (1, 2, ...) get the faults; None: all

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> Faults:
        """From CLI words like ``drop-after-frames=100`` or ``connections=1,3``."""
        known = {f.name.replace("_", "-"): f for f in fields(cls)}
        values: dict[str, Any] = {}
        for spec in specs:
            name, _, value = spec.partition("=")
            f = known.get(name.strip())
            if f is None or not value:
                raise ValueError(f"bad fault {spec!r}: use NAME=VALUE with NAME one of {', '.join(sorted(known))}")
            try:
                if f.name == "connections":
                    values[f.name] = frozenset(int(v) for v in value.split(","))
                elif "int" in str(f.type):
                    values[f.name] = int(value)
                else:
                    values[f.name] = float(value)
            except ValueError:
                raise ValueError(f"bad fault {spec!r}: {value!r} is not a number") from None
        return cls(**values)

    def applies_to(self, connection: int) -> bool:
        return self.connections is None or connection in self.connections


MALFORMED_TEXT = '{"channel":"trades","data":[{"coin":'  # cut off mid-frame
GARBLED_TEXT = '{"channel":"trades","data":[{"coin":"BTC",,"px":}]}'  # a data frame's head, a broken body

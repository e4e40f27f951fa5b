"""Candles as the exchange prints them, folded from trades: shared by the simulator's streams and
the answers ``serve`` reads from an archive. Pure."""

from __future__ import annotations

from collections import deque
from typing import Any

from .info import wire_number

INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,  # 30 days: the simulator does not follow calendar months
}


def fold_candle(
    candle: dict[str, Any] | None,
    trades: list[dict[str, Any]],
    coin: str,
    interval: str,
    span_ms: int,
    time_ms: int,
    sz_decimals: int,
    closed: deque[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The candle after one tick's trades: a candle opens with the first trade of its interval."""
    t = time_ms - time_ms % span_ms
    if candle is not None and candle["t"] != t:
        if closed is not None:
            closed.append(candle)
        candle = None
    for trade in trades:
        if candle is None:
            px = trade["px"]
            candle = {"t": t, "T": t + span_ms - 1, "s": coin, "i": interval, "o": px, "c": px, "h": px, "l": px, "v": "0.0", "n": 0}
        else:
            candle = dict(candle)
        px = float(trade["px"])
        candle["c"] = trade["px"]
        if px > float(candle["h"]):
            candle["h"] = trade["px"]
        if px < float(candle["l"]):
            candle["l"] = trade["px"]
        candle["v"] = wire_number(float(candle["v"]) + float(trade["sz"]), sz_decimals)
        candle["n"] += 1
    return candle

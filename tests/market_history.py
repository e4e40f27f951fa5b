"""Days of one coin's market as the recorder would have archived them, written straight through the
archive writer (no network, seconds to write): ``trades`` frames every few seconds, the exchange's
``candle`` updates of an interval after each (folded exactly from those trades), and an
``activeAssetCtx`` a minute (funding moving within each hour, mark at the last price)."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from recorder import ArchiveWriter
from schemas import parse_subscription

DAY_MS = 86_400_000
LATENCY_NS = 7_000_000


def write_market(
    root: Path,
    coin: str,
    start_ms: int,
    hours: float,
    *,
    session: str = "s1",
    seed: int = 1,
    price: float = 2_300.0,
    sz_decimals: int = 4,
    px_decimals: int = 1,
    candles: tuple[str, int] | None = None,  # (interval, from this ms on): the exchange's candle updates
    contexts: bool = True,
    every_s: tuple[int, int] = (2, 20),
) -> list[tuple[int, dict[str, Any]]]:
    """Write the market; the trades frames written, as ``(recv_ns, frame)``."""
    rng = random.Random(seed)
    trades_sub = parse_subscription({"type": "trades", "coin": coin})
    ctx_sub = parse_subscription({"type": "activeAssetCtx", "coin": coin})
    candle_sub = parse_subscription({"type": "candle", "coin": coin, "interval": candles[0]}) if candles else None
    span = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}[candles[0]] if candles else 0
    end_ms = start_ms + int(hours * 3_600_000)
    t = start_ms
    tid = 10_000_000 + seed * 1_000_000
    next_ctx = start_ms
    candle: dict[str, Any] | None = None
    written = []
    with ArchiveWriter(root, session=session, flush_rows=50_000) as writer:
        while t < end_ms:
            while contexts and next_ctx <= t:
                hour = next_ctx // 3_600_000
                funding = Decimal(hour % 7 - 3) * Decimal("0.00001") + Decimal(next_ctx % 3_600_000 // 60_000) * Decimal("0.0000001")
                ctx = {"coin": coin, "ctx": {"funding": str(funding), "openInterest": "1000.5", "prevDayPx": f"{price:.{px_decimals}f}", "dayNtlVlm": "1.0", "premium": "0.0001", "oraclePx": f"{price:.{px_decimals}f}", "markPx": f"{price:.{px_decimals}f}", "midPx": f"{price:.{px_decimals}f}", "impactPxs": [f"{price:.{px_decimals}f}", f"{price:.{px_decimals}f}"], "dayBaseVlm": "1.0"}}
                writer.write({"channel": "activeAssetCtx", "data": ctx}, next_ctx * 1_000_000 + LATENCY_NS, ctx_sub)
                next_ctx += 60_000
            trades = []
            for _ in range(rng.randint(1, 3)):
                price = max(10 ** -px_decimals, price * (1 + rng.gauss(0, 0.0008)))
                tid += rng.randint(1, 50)
                trades.append({
                    "coin": coin, "side": rng.choice("AB"), "px": f"{price:.{px_decimals}f}",
                    "sz": f"{rng.uniform(0.001, 3):.{sz_decimals}f}".rstrip("0").rstrip(".") or "1",
                    "time": t, "hash": f"0x{rng.getrandbits(256):064x}", "tid": tid, "users": ["0xa", "0xb"],
                })  # fmt: skip
            frame = {"channel": "trades", "data": trades}
            recv_ns = t * 1_000_000 + LATENCY_NS
            writer.write(frame, recv_ns, trades_sub)
            written.append((recv_ns, frame))
            if candle_sub is not None and candles is not None and t >= candles[1]:
                candle = fold(candle, trades, coin, candles[0], span)
                writer.write({"channel": "candle", "data": dict(candle)}, recv_ns + 1_000, candle_sub)
            t += rng.randint(*every_s) * 1_000 + rng.randint(0, 999)
    return written


def fold(candle: dict[str, Any] | None, trades: list[dict[str, Any]], coin: str, interval: str, span: int) -> dict[str, Any]:
    """The exchange's candle after ``trades`` (volume as exact decimal text)."""
    for trade in trades:
        t = trade["time"] - trade["time"] % span
        if candle is None or candle["t"] != t:
            candle = {"t": t, "T": t + span - 1, "s": coin, "i": interval, "o": trade["px"], "c": trade["px"], "h": trade["px"], "l": trade["px"], "v": "0", "n": 0}
        px = Decimal(trade["px"])
        candle["c"] = trade["px"]
        if px > Decimal(candle["h"]):
            candle["h"] = trade["px"]
        if px < Decimal(candle["l"]):
            candle["l"] = trade["px"]
        candle["v"] = str(Decimal(candle["v"]) + Decimal(trade["sz"]))
        candle["n"] += 1
    assert candle is not None
    return candle


__all__ = ["DAY_MS", "fold", "write_market"]

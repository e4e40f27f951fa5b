"""What a coin's tick shows, as the exchange's payloads: books, mids, asset contexts, fills.

Shared by the market's streams and its ``/info`` answers, so both print the same tick the same way.
"""

from __future__ import annotations

import math
import random
from typing import Any

from .coins import CoinMarket, fmt, fmt_sz, random_hex, seed_of


def l2_book(m: CoinMarket, n_sig_figs: int | None = None) -> dict[str, Any]:
    """The ``l2Book`` data of the market's current tick, aggregated to ``n_sig_figs`` if given."""
    bids, asks = m.book()
    if n_sig_figs is not None:
        bids, asks = _aggregate(bids, n_sig_figs, ask=False), _aggregate(asks, n_sig_figs, ask=True)
    return {"coin": m.spec.name, "time": m.time_ms, "levels": [bids, asks]}


def all_mids(markets: list[CoinMarket]) -> dict[str, str]:
    return {m.spec.name: mid_text(m) for m in markets}


def hour_of(time_ms: int) -> int:
    return time_ms // 3_600_000


def funding_rate(seed: int, coin: str, hour: int) -> str:
    """The funding rate paid at the start of ``hour`` (the asset context shows it during the hour before)."""
    return fmt(random.Random(seed_of(seed, coin, "funding", hour)).uniform(-0.00005, 0.00005), 10)


def perp_ctx(m: CoinMarket, seed: int) -> dict[str, Any]:
    """A perp's asset context at the market's tick (``activeAssetCtx``, ``metaAndAssetCtxs``)."""
    bids, asks = m.book()
    rng = random.Random(seed_of(seed, m.spec.name, "ctx", m.n))
    return {
        "funding": funding_rate(seed, m.spec.name, hour_of(m.time_ms) + 1),
        "openInterest": fmt(10_000 + m.n * 0.5, 5),
        "prevDayPx": m.px(round(m.spec.start_px / m.spec.tick)),
        "dayNtlVlm": fmt(m.day_ntl, 4),
        "premium": fmt(rng.uniform(-0.001, 0.001), 10),
        "oraclePx": fmt(m.mid * (1 + rng.uniform(-0.0005, 0.0005)), m.spec.px_decimals),
        "markPx": m.px(m.mid_ticks),
        "midPx": mid_text(m),
        "impactPxs": [bids[1]["px"], asks[1]["px"]],
        "dayBaseVlm": fmt(m.day_base, 5),
    }


def spot_ctx(m: CoinMarket) -> dict[str, Any]:
    return {
        "dayNtlVlm": fmt(m.day_ntl, 4),
        "markPx": m.px(m.mid_ticks),
        "midPx": mid_text(m),
        "prevDayPx": m.px(round(m.spec.start_px / m.spec.tick)),
        "circulatingSupply": "999999999.0",
        "coin": m.spec.name,
        "totalSupply": "1000000000.0",
        "dayBaseVlm": fmt(m.day_base, 2),
    }


def order_of_fill(fill: dict[str, Any]) -> dict[str, Any]:
    """The (filled) order behind a synthetic fill, placed 50 ms before it: orderUpdates and orderStatus."""
    return {
        "coin": fill["coin"],
        "side": fill["side"],
        "limitPx": fill["px"],
        "sz": "0.0",
        "oid": fill["oid"],
        "timestamp": fill["time"] - 50,
        "origSz": fill["sz"],
    }


def user_fills_at(seed: int, user: str, n: int, markets: list[CoinMarket], position: dict[str, float]) -> list[dict[str, Any]]:
    """The synthetic fills of ``user`` at tick ``n`` (markets at that tick); ``position`` is carried along."""
    rng = random.Random(seed_of(seed, user.lower(), "fills", n))
    if rng.random() >= 0.3:
        return []
    m = markets[int(rng.random() * len(markets))]
    bids, asks = m.book()
    side = "A" if rng.random() < 0.5 else "B"
    level = (bids if side == "A" else asks)[0]
    sz_val = max(10 ** -m.spec.sz_decimals, float(level["sz"]) * rng.uniform(0.01, 0.2))
    sz = fmt_sz(sz_val, m.spec.sz_decimals)
    start = position.get(m.spec.name, 0.0)
    delta = float(sz) if side == "B" else -float(sz)
    position[m.spec.name] = start + delta
    oid = seed_of(seed, user.lower(), "oid", n) % 10**11
    tid = seed_of(seed, user.lower(), "tid", n) % 10**14
    direction = ("Open Long" if start >= 0 else "Close Short") if side == "B" else ("Open Short" if start <= 0 else "Close Long")
    return [
        {
            "coin": m.spec.name,
            "px": level["px"],
            "sz": sz,
            "side": side,
            "time": m.time_ms,
            "startPosition": fmt_sz(start, m.spec.sz_decimals) if start else "0.0",
            "dir": direction,
            "closedPnl": "0.0",
            "hash": random_hex(rng, 32),
            "oid": oid,
            "crossed": rng.random() < 0.7,
            "fee": fmt(float(sz) * float(level["px"]) * 0.00045, 6),
            "tid": tid,
            "feeToken": "USDC",
            "twapId": None,
        }
    ]


def funding_event(rng: random.Random, time_ms: int, coin: str) -> dict[str, Any]:
    return {
        "time": time_ms,
        "coin": coin,
        "usdc": fmt(rng.uniform(-5, 5), 6),
        "szi": fmt(rng.uniform(-2, 2), 4),
        "fundingRate": fmt(rng.uniform(-0.0001, 0.0001), 10),
    }


def mid_text(m: CoinMarket) -> str:
    """The mid between the touch (best bid at ``mid_ticks``, best ask one tick up)."""
    return fmt(m.mid, m.spec.px_decimals + 1)


def _aggregate(levels: list[dict[str, Any]], n_sig_figs: int, *, ask: bool) -> list[dict[str, Any]]:
    """Merge levels into buckets of ``n_sig_figs`` significant figures: bids round down, asks up."""
    merged: dict[str, dict[str, Any]] = {}
    for level in levels:
        px = float(level["px"])
        exponent = math.floor(math.log10(px)) - n_sig_figs + 1 if px > 0 else 0
        bucket = 10.0**exponent
        edge = (math.ceil if ask else math.floor)(px / bucket - (1e-9 if ask else -1e-9)) * bucket
        key = fmt(edge, max(0, -exponent))
        if key in merged:
            m = merged[key]
            merged[key] = {"px": key, "sz": fmt_sz(float(m["sz"]) + float(level["sz"]), 6), "n": m["n"] + level["n"]}
        else:
            merged[key] = {"px": key, "sz": level["sz"], "n": level["n"]}
    return list(merged.values())



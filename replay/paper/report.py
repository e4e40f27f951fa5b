"""A paper run's result, in figures: PnL realised and unrealised by coin, fees, funding, volume,
fills, the largest drawdown and the time in the market. Pure: read from an account and the engine's
marks; ``report_page`` draws it."""

from __future__ import annotations

from typing import Any

from .engine.accounts import Account


def account_report(
    acc: Account, marks: dict[str, float | None], start_ms: int | None = None, end_ms: int | None = None, value_now: float | None = None
) -> dict[str, Any]:
    """The figures of one account; ``marks`` price what it still holds, ``value_now`` ends its curve."""
    coins: dict[str, dict[str, Any]] = {}

    def row(coin: str) -> dict[str, Any]:
        return coins.setdefault(coin, {"coin": coin, "realized_pnl": 0.0, "unrealized_pnl": 0.0, "fees": 0.0, "funding": 0.0, "volume": 0.0, "fills": 0, "position": 0.0})

    for fill in acc.fills:
        r = row(fill["coin"])
        px, sz = float(fill["px"]), float(fill["sz"])
        r["realized_pnl"] += float(fill["closedPnl"])
        r["fees"] += float(fill["fee"]) * (px if fill["feeToken"] != "USDC" else 1.0)  # a spot buy pays in the token bought
        r["volume"] += px * sz
        r["fills"] += 1
    for funding in acc.fundings:
        row(funding["coin"])["funding"] += float(funding["usdc"])
    for coin, pos in acc.positions.items():
        if pos.szi:
            mark = marks.get(coin) or pos.entry_px
            r = row(coin)
            r["unrealized_pnl"] = pos.szi * (mark - pos.entry_px)
            r["position"] = pos.szi
    curve = list(acc.equity)
    if value_now is not None and curve and end_ms is not None:
        curve.append((max(end_ms, curve[-1][0]), value_now))
    peak, drawdown, drawdown_pct = float("-inf"), 0.0, 0.0
    for _, value in curve:
        peak = max(peak, value)
        if peak - value > drawdown:
            drawdown, drawdown_pct = peak - value, (peak - value) / peak if peak > 0 else 0.0
    start = start_ms if start_ms is not None else (curve[0][0] if curve else None)
    end = end_ms if end_ms is not None else (curve[-1][0] if curve else None)
    in_market = _time_in_market(acc.held, start, end)
    totals = {k: sum(r[k] for r in coins.values()) for k in ("realized_pnl", "unrealized_pnl", "fees", "funding", "volume", "fills")}
    first_value = curve[0][1] if curve else None
    last_value = curve[-1][1] if curve else None
    return {
        "user": acc.user,
        "from_ms": start,
        "to_ms": end,
        "equity_start": first_value,
        "equity_end": last_value,
        "pnl": totals["realized_pnl"] + totals["unrealized_pnl"] + totals["funding"] - totals["fees"],
        **totals,
        "max_drawdown": drawdown,
        "max_drawdown_pct": drawdown_pct,
        "time_in_market_pct": in_market,
        "coins": [coins[c] for c in sorted(coins)],
    }


def _time_in_market(held: list[tuple[int, str, float]], start: int | None, end: int | None) -> float:
    """The share of ``[start, end]`` with some position open."""
    if start is None or end is None or end <= start or not held:
        return 0.0
    open_coins: dict[str, float] = {}
    since: int | None = None
    total = 0
    for t, coin, size in held:
        was_open = any(abs(s) > 1e-12 for s in open_coins.values())
        open_coins[coin] = size
        now_open = any(abs(s) > 1e-12 for s in open_coins.values())
        if not was_open and now_open:
            since = t
        elif was_open and not now_open and since is not None:
            total += t - since
            since = None
    if since is not None:
        total += end - since
    return min(1.0, total / (end - start))

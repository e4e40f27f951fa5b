"""Paper orders, positions and accounts: the state the engine moves. Pure.

A trigger order (stop loss, take profit) rests off the book until the mark price crosses its trigger:
a sell (closing a long) fires on a stop loss when the mark is at or below the trigger, on a take
profit at or above; a buy (closing a short) the other way round. Then it becomes a market order
(``isMarket``: it walks the book no further than its limit price) or a limit order at its price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..assets import AssetSpec, wire_number

DEFAULT_LEVERAGE = 20  # a Position made without its asset; an account's own start at the asset's largest

GROUPINGS = ("na", "normalTpsl", "positionTpsl")


@dataclass
class Trigger:
    px: float
    px_text: str
    is_market: bool
    tpsl: str  # "tp" | "sl"
    grouping: str = "na"
    parent: int | None = None  # normalTpsl: the entry order it waits for
    armed: bool = True  # False while its parent has not filled

    def fires_above(self, is_buy: bool) -> bool:
        """Whether it fires when the mark rises to the trigger (else when it falls to it)."""
        return (self.tpsl == "tp") != is_buy

    def fires(self, is_buy: bool, mark: float) -> bool:
        return mark >= self.px if self.fires_above(is_buy) else mark <= self.px

    def condition(self, is_buy: bool) -> str:
        return f"Price {'above' if self.fires_above(is_buy) else 'below'} {self.px_text}"

    def order_type(self) -> str:
        return ("Take Profit" if self.tpsl == "tp" else "Stop") + (" Market" if self.is_market else " Limit")


@dataclass
class Order:
    oid: int
    user: str
    spec: AssetSpec
    is_buy: bool
    px: float
    px_text: str
    sz: float  # still open
    orig_sz: float
    tif: str
    reduce_only: bool
    cloid: str | None
    timestamp: int
    queue_ahead: float = 0.0
    # with the coin's L4 book: the very orders ahead in the queue (oid -> size still ahead), in priority
    # order; ``queue_ahead`` is then their sum, moved by their diffs and by trades at the price
    ahead: dict[int, float] | None = None
    trigger: Trigger | None = None  # a trigger order not fired yet (it rests off the book)

    def wire(self) -> dict[str, Any]:
        """As ``openOrders`` and ``orderUpdates`` show it."""
        d = self.spec.sz_decimals
        out = {
            "coin": self.spec.coin,
            "side": "B" if self.is_buy else "A",
            "limitPx": self.px_text,
            "sz": wire_number(self.sz, d),
            "oid": self.oid,
            "timestamp": self.timestamp,
            "origSz": wire_number(self.orig_sz, d),
        }
        if self.cloid is not None:
            out["cloid"] = self.cloid
        return out

    def frontend(self) -> dict[str, Any]:
        """As ``frontendOpenOrders`` and ``orderStatus`` show it."""
        trigger = self.trigger
        return {
            **self.wire(),
            "triggerCondition": trigger.condition(self.is_buy) if trigger else "N/A",
            "isTrigger": trigger is not None,
            "triggerPx": trigger.px_text if trigger else "0.0",
            "children": [],
            "isPositionTpsl": bool(trigger and trigger.grouping == "positionTpsl"),
            "reduceOnly": self.reduce_only,
            "orderType": trigger.order_type() if trigger else "Limit",
            "tif": None if trigger else self.tif,
            "cloid": self.cloid,
        }


@dataclass
class Position:
    szi: float = 0.0
    entry_px: float = 0.0
    leverage: int = DEFAULT_LEVERAGE
    is_cross: bool = True
    isolated_margin: float = 0.0
    funding_all_time: float = 0.0
    funding_since_open: float = 0.0


@dataclass
class Account:
    user: str
    usdc: float  # one USDC balance for perp margin and spot buys (the exchange's unified account)
    positions: dict[str, Position] = field(default_factory=dict)  # perps, by coin
    tokens: dict[str, float] = field(default_factory=dict)  # spot tokens other than USDC
    token_cost: dict[str, float] = field(default_factory=dict)  # average USDC cost of a token held
    orders: dict[int, Order] = field(default_factory=dict)  # resting
    triggers: dict[int, Order] = field(default_factory=dict)  # trigger orders not fired yet: off the book
    fills: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    statuses: dict[int, tuple[Order, str, int]] = field(default_factory=dict)  # oid -> (order, status, at)
    by_cloid: dict[str, int] = field(default_factory=dict)
    fundings: list[dict[str, Any]] = field(default_factory=list)
    scheduled_cancel_ms: int | None = None
    fees_paid: float = 0.0
    order_margin: float = 0.0  # initial margin held by resting perp orders
    equity: list[tuple[int, float]] = field(default_factory=list)  # (time ms, account value): the report's curve
    held: list[tuple[int, str, float]] = field(default_factory=list)  # (time ms, coin, position after a fill)
    actions: int = 0  # actions sent: what userRateLimit counts

    def position(self, spec: AssetSpec) -> Position:
        pos = self.positions.get(spec.coin)
        if pos is None:
            pos = self.positions[spec.coin] = Position(leverage=max(1, spec.max_leverage))  # the exchange's default: cross at the asset's largest
        return pos


__all__ = ["DEFAULT_LEVERAGE", "GROUPINGS", "Account", "Order", "Position", "Trigger"]

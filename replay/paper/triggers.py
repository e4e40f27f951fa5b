"""Trigger orders (stop loss, take profit): when one fires, and how the exchange names it. Pure.

A trigger order rests off the book until the mark price crosses its trigger: a sell (closing a
long) fires on a stop loss when the mark is at or below the trigger, on a take profit at or above;
a buy (closing a short) the other way round. Then it becomes a market order (``isMarket``: it walks
the book no further than its limit price) or a limit order at its price.
"""

from __future__ import annotations

from dataclasses import dataclass

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


__all__ = ["GROUPINGS", "Trigger"]

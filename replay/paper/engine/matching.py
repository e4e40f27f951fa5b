"""Fills: a taker walking the visible book, a maker filled at its price, and what each fill does
to the account (position, entry, fees, PnL) and to the streams. Pure.

Within one book snapshot, liquidity a paper order took is gone for the next paper order (until the
next snapshot), so two orders cannot both take the same visible size."""

from __future__ import annotations

from typing import Any

from ..assets import wire_number
from .accounts import Account, Order
from .book import Book
from .state import EPS, EngineState, fill_hash, position_direction, round_to

# Hyperliquid's base tier (14-day volume under $5M)
PERP_TAKER_FEE = 0.00045
PERP_MAKER_FEE = 0.00015
SPOT_TAKER_FEE = 0.0007
SPOT_MAKER_FEE = 0.0004

# order statuses that end an order without its owner asking: userEvents says ``nonUserCancel``
NON_USER_CANCELS = ("marginCanceled", "liquidatedCanceled", "scheduledCancel", "reduceOnlyCanceled", "siblingFilledCanceled", "selfTradeCanceled")


class MatchingMixin(EngineState):
    """Fills, order statuses and cancels."""

    def _take(self, acc: Account, order: Order, book: Book) -> tuple[float, float]:
        """Walk the visible book as a taker: (size filled, notional)."""
        filled, notional = 0.0, 0.0
        ask = order.is_buy
        for level in book.walk(ask):
            if order.sz <= EPS or (level.px > order.px if ask else level.px < order.px):
                break
            take = round_to(min(order.sz, book.available(ask, level)), order.spec.sz_decimals)
            if take <= 0:
                continue
            book.taken[(ask, level.px_text)] = book.taken.get((ask, level.px_text), 0.0) + take
            self._fill(acc, order, level.px, level.px_text, take, crossed=True)
            filled += take
            notional += take * level.px
        return filled, notional

    def _fill(self, acc: Account, order: Order, px: float, px_text: str, sz: float, *, crossed: bool, liquidation: dict[str, Any] | None = None) -> None:
        spec = order.spec
        d = spec.sz_decimals
        tid = self._next_tid
        self._next_tid += 1
        if spec.spot:
            rate = SPOT_TAKER_FEE if crossed else SPOT_MAKER_FEE
            start = acc.tokens.get(spec.base, 0.0)
            closed = 0.0
            if order.is_buy:
                fee, fee_token = sz * rate, spec.base
                cost = acc.token_cost.get(spec.base, 0.0) * start + px * sz
                acc.tokens[spec.base] = start + sz - fee
                acc.token_cost[spec.base] = cost / max(start + sz - fee, EPS)
                acc.usdc -= px * sz
                acc.fees_paid += fee * px
            else:
                fee, fee_token = px * sz * rate, spec.quote
                closed = sz * (px - acc.token_cost.get(spec.base, px))
                acc.tokens[spec.base] = round_to(start - sz, 10)
                acc.usdc += px * sz - fee
                acc.fees_paid += fee
            direction = "Buy" if order.is_buy else "Sell"
            fee_text = wire_number(fee, 8 if order.is_buy else 6)
        else:
            rate = PERP_TAKER_FEE if crossed else PERP_MAKER_FEE
            pos = acc.position(spec)
            start = pos.szi
            delta = sz if order.is_buy else -sz
            closed = 0.0
            if start and (start > 0) != (delta > 0):
                closing = min(abs(delta), abs(start))
                closed = closing * (px - pos.entry_px) * (1 if start > 0 else -1)
                if not pos.is_cross and start:
                    pos.isolated_margin *= 1 - closing / abs(start)
            new = round_to(start + delta, d)
            if new == 0:
                pos.entry_px, pos.funding_since_open = 0.0, 0.0
            elif start == 0 or (start > 0) != (new > 0):
                pos.entry_px = px
                pos.funding_since_open = 0.0
            elif abs(new) > abs(start):
                pos.entry_px = (abs(start) * pos.entry_px + sz * px) / abs(new)
            if not pos.is_cross and abs(new) > abs(start) and (start == 0 or (start > 0) == (new > 0)):
                pos.isolated_margin += (abs(new) - abs(start)) * px / pos.leverage
            elif not pos.is_cross and start and (start > 0) != (new > 0):
                pos.isolated_margin = abs(new) * px / pos.leverage
            pos.szi = new
            fee, fee_token = px * sz * rate, "USDC"
            acc.usdc += closed - fee
            acc.fees_paid += fee
            direction = position_direction(start, new)
            fee_text = wire_number(fee, 6)
        order.sz = round_to(order.sz - sz, d)
        fill = {
            "coin": spec.coin,
            "px": px_text,
            "sz": wire_number(sz, d),
            "side": "B" if order.is_buy else "A",
            "time": self.event_ms,
            "startPosition": wire_number(start, d),
            "dir": direction,
            "closedPnl": wire_number(closed, 6),
            "hash": fill_hash(self.seed, tid),
            "oid": order.oid,
            "crossed": crossed,
            "fee": fee_text,
            "tid": tid,
            "feeToken": fee_token,
        }
        if order.cloid is not None:
            fill["cloid"] = order.cloid
        if liquidation is not None:  # where the exchange puts it: after tid (and cloid), before feeToken
            fee_token = fill.pop("feeToken")
            fill["liquidation"] = liquidation
            fill["feeToken"] = fee_token
        acc.fills.append(fill)
        acc.held.append((self.event_ms, spec.coin, acc.tokens.get(spec.base, 0.0) if spec.spot else acc.position(spec).szi))
        if not acc.equity:  # the curve starts at the first fill, from the balance before it
            acc.equity.append((self.event_ms, self.balance))
        self.events.append((acc.user, "userFills", fill))
        self.events.append((acc.user, "userEvents", {"fills": [fill]}))
        if order.oid in acc.orders:
            if not spec.spot and not order.reduce_only:  # the filled part no longer holds margin
                acc.order_margin = max(0.0, acc.order_margin - px * sz / acc.position(spec).leverage)
            if order.sz <= EPS:
                self._unrest(acc, order)
                self._status(acc, order, "filled")

    def _status(self, acc: Account, order: Order, status: str, *, emit: bool = True) -> None:
        acc.statuses[order.oid] = (order, status, self.event_ms)
        if emit:
            update = {"order": order.wire(), "status": status, "statusTimestamp": self.event_ms}
            self.events.append((acc.user, "orderUpdates", update))
            if status in NON_USER_CANCELS:  # the exchange tells userEvents of cancels the user did not ask for
                self.events.append((acc.user, "userEvents", {"nonUserCancel": [{"coin": order.spec.coin, "oid": order.oid}]}))
        if acc.triggers and status not in ("open", "triggered"):  # an entry order's TP/SL wait for it to fill
            for child in sorted(acc.triggers.values(), key=lambda o: o.oid):
                if child.trigger is not None and child.trigger.parent == order.oid and not child.trigger.armed:
                    if status == "filled":
                        child.trigger.armed = True
                    else:
                        del acc.triggers[child.oid]
                        self._status(acc, child, "canceled")

    def _cancel(self, acc: Account, order: Order, status: str = "canceled") -> None:
        if acc.triggers.pop(order.oid, None) is None:
            self._unrest(acc, order)
        self._status(acc, order, status)


__all__ = ["NON_USER_CANCELS", "MatchingMixin", "PERP_MAKER_FEE", "PERP_TAKER_FEE", "SPOT_MAKER_FEE", "SPOT_TAKER_FEE"]

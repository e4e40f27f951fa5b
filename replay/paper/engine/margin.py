"""Margin: what an account is worth, what it may still open, and liquidation when it runs out. Pure."""

from __future__ import annotations

from schemas.info import money

from ..assets import AssetSpec, wire_number
from .accounts import Account, Order, Position
from .state import EPS, EngineState

LIQUIDATOR = "0x" + "00" * 19 + "01"  # the paper exchange's own liquidator (the exchange names its vault)


class MarginMixin(EngineState):
    """Account value, margin checks and liquidation."""

    def _check_liquidations(self, coin: str) -> None:
        """Accounts holding ``coin`` whose margin ran out are liquidated at the mark: a cross account
        when its value falls below the maintenance margin of all its cross positions (half the initial
        margin at the asset's largest leverage), an isolated position when its own margin does."""
        for user in sorted(self.accounts):
            acc = self.accounts[user]
            held = acc.positions.get(coin)
            if held is None or not held.szi:
                continue
            cross = [(c, p) for c, p in sorted(acc.positions.items()) if p.szi and p.is_cross]
            if held.is_cross:
                value = acc.usdc + sum(p.szi * (self._liq_mark(c, p) - p.entry_px) for c, p in acc.positions.items() if p.szi and p.is_cross)
                needed = sum(abs(p.szi) * self._liq_mark(c, p) * self._maintenance(c) for c, p in cross)
                if value < needed:
                    for c, p in cross:
                        self._liquidate(acc, self.by_coin[c], p)
            else:
                mark = self._liq_mark(coin, held)
                if held.isolated_margin + held.szi * (mark - held.entry_px) < abs(held.szi) * mark * self._maintenance(coin):
                    self._liquidate(acc, self.by_coin[coin], held)

    def _maintenance(self, coin: str) -> float:
        return 0.5 / max(1, self.by_coin[coin].max_leverage)

    def _liq_mark(self, coin: str, pos: Position) -> float:
        return self.trigger_mark(coin) or pos.entry_px

    def _liquidate(self, acc: Account, spec: AssetSpec, pos: Position) -> None:
        """Close the position at the mark as a market order; the account's orders on the coin go."""
        for order in sorted([*acc.orders.values(), *acc.triggers.values()], key=lambda o: o.oid):
            if order.spec.coin == spec.coin:
                self._cancel(acc, order, "liquidatedCanceled")
        mark = self._liq_mark(spec.coin, pos)
        text = self.mark_text.get(spec.coin) or wire_number(mark, max(0, 6 - spec.sz_decimals))
        size = abs(pos.szi)
        order = Order(self._oid(), acc.user, spec, pos.szi < 0, mark, text, size, size, "Ioc", True, None, self.event_ms)
        value = self._account_value(acc)[0] if pos.is_cross else pos.isolated_margin + pos.szi * (mark - pos.entry_px)
        event = {"lid": order.oid, "liquidator": LIQUIDATOR, "liquidated_user": acc.user, "liquidated_ntl_pos": money(size * mark), "liquidated_account_value": money(value)}
        self.events.append((acc.user, "userEvents", {"liquidation": event}))
        note = f"Your {spec.coin} position of {wire_number(pos.szi, spec.sz_decimals)} was liquidated at a mark price of {text}."
        self.events.append((acc.user, "notification", {"notification": note}))
        liquidation = {"liquidatedUser": acc.user, "markPx": text, "method": "market"}
        self._fill(acc, order, mark, text, size, crossed=True, liquidation=liquidation)
        self._status(acc, order, "filled")

    def _affordability(self, acc: Account, spec: AssetSpec, is_buy: bool, px: float, sz: float, reduce_only: bool) -> str | None:
        if spec.spot:
            if is_buy:
                held = sum(o.px * o.sz for o in acc.orders.values() if o.spec.spot and o.is_buy)
                if px * sz > acc.usdc - held + EPS:
                    return "Order has insufficient spot balance to trade."
            else:
                held = sum(o.sz for o in acc.orders.values() if o.spec.coin == spec.coin and not o.is_buy)
                if sz > acc.tokens.get(spec.base, 0.0) - held + EPS:
                    return "Order has insufficient spot balance to trade."
            return None
        if reduce_only:
            return None
        pos = acc.position(spec)
        opposite = max(0.0, -pos.szi) if is_buy else max(0.0, pos.szi)
        increase = max(0.0, sz - opposite)
        if increase <= 0:
            return None
        if increase * px / pos.leverage > self._available_margin(acc) + EPS:
            return "Insufficient margin to place order."
        return None

    def _available_margin(self, acc: Account) -> float:
        value, used = self._account_value(acc)
        return value - used - acc.order_margin

    def _account_value(self, acc: Account) -> tuple[float, float]:
        """(perp account value, margin used by positions)."""
        value, used = acc.usdc, 0.0
        for coin, pos in acc.positions.items():
            if not pos.szi:
                continue
            mark = self.mark(coin) or pos.entry_px
            value += pos.szi * (mark - pos.entry_px)
            used += pos.isolated_margin if not pos.is_cross else abs(pos.szi) * mark / pos.leverage
        return value, used


__all__ = ["MarginMixin"]

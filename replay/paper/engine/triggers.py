"""Trigger orders (stop loss, take profit): placed off the book, fired on the recorded mark (the mid
where none was recorded), then traded as market or limit orders; a filled one cancels its siblings. Pure."""

from __future__ import annotations

from typing import Any

from ..assets import AssetSpec, price_ok, size_ok, wire_decimal
from .accounts import Account, Order, Trigger
from .state import EPS, EngineState


class TriggerMixin(EngineState):
    """Trigger orders: placing, firing, siblings."""

    def _place_trigger(self, acc: Account, spec: AssetSpec, wire: dict[str, Any], trigger: dict[str, Any], grouping: str, parent: Order | None, tail: str) -> Any:
        """A stop loss or take profit: off the book until the mark reaches its trigger."""
        if spec.spot:
            return {"error": "Trigger orders are for perps." + tail}
        tpsl = trigger.get("tpsl")
        if tpsl not in ("tp", "sl"):
            return {"error": f"Invalid tpsl {tpsl!r}: use tp or sl." + tail}
        trigger_d, px_d, sz_d = wire_decimal(trigger.get("triggerPx")), wire_decimal(wire["p"]), wire_decimal(wire["s"])
        if trigger_d is None or not price_ok(spec, trigger_d) or trigger_d.value <= 0:
            return {"error": "Invalid trigger price." + tail}
        if px_d is None or not price_ok(spec, px_d):
            return {"error": "Price must be divisible by tick size." + tail}
        if sz_d is None or not (size_ok(spec, sz_d) or (grouping == "positionTpsl" and sz_d.value == 0)):
            return {"error": "Order has invalid size." + tail}
        is_buy = bool(wire["b"])
        armed = grouping != "normalTpsl" or parent is None or acc.statuses.get(parent.oid, (None, ""))[1] == "filled"
        shown = trigger_d.text if "." in trigger_d.text else trigger_d.text + ".0"  # the exchange prints "98.0" for the SDK's "98"
        rule = Trigger(trigger_d.value, shown, bool(trigger.get("isMarket")), tpsl, grouping, parent.oid if parent is not None else None, armed)
        cloid = wire.get("c")
        order = Order(self._oid(), acc.user, spec, is_buy, px_d.value, px_d.text, sz_d.value, sz_d.value, "Gtc", bool(wire.get("r", False)) or grouping != "na", cloid, self.event_ms, trigger=rule)
        if cloid is not None:
            acc.by_cloid[cloid] = order.oid
        acc.triggers[order.oid] = order
        self._status(acc, order, "open")
        if grouping == "na":
            return {"resting": {"oid": order.oid, **({"cloid": cloid} if cloid is not None else {})}}
        return "waitingForTrigger" if armed else "waitingForFill"

    def trigger_mark(self, coin: str) -> float | None:
        """What triggers fire on: the recorded mark price, else the mid of the book."""
        return self.mark_px.get(coin, self.mark(coin))

    def _check_triggers(self, coin: str) -> None:
        mark = None
        for user in sorted(self.accounts):
            acc = self.accounts[user]
            if not acc.triggers:
                continue
            for order in sorted(acc.triggers.values(), key=lambda o: o.oid):
                if order.spec.coin != coin or order.trigger is None or not order.trigger.armed:
                    continue
                mark = self.trigger_mark(coin) if mark is None else mark
                if mark is not None and order.trigger.fires(order.is_buy, mark) and order.oid in acc.triggers:
                    self._fire(acc, order)

    def _fire(self, acc: Account, order: Order) -> None:
        """A trigger reached: ``triggered``, then a market order (to its limit price) or a limit order."""
        rule = order.trigger
        assert rule is not None
        del acc.triggers[order.oid]
        spec = order.spec
        order.trigger = None
        self._status(acc, order, "triggered")
        pos = acc.position(spec).szi
        if order.reduce_only:
            if pos == 0 or (pos > 0) == order.is_buy:
                self._status(acc, order, "reduceOnlyCanceled")
                return
            order.sz = abs(pos) if rule.grouping == "positionTpsl" or order.orig_sz == 0 else min(order.sz, abs(pos))
        book = self.books.get(spec.coin)
        filled = self._take(acc, order, book)[0] if book is not None else 0.0
        if order.sz <= EPS:
            self._status(acc, order, "filled")
        elif rule.is_market:
            self._status(acc, order, "canceled")  # what the book could not give, to its limit price
        else:
            self._join_queue(order, book)
            self._rest(acc, order)
        if filled:
            self._cancel_siblings(acc, order, rule)

    def _cancel_siblings(self, acc: Account, order: Order, rule: Trigger) -> None:
        """One TP/SL of a group filled: the others go; a closed position takes its position TP/SL with it."""
        closed = acc.position(order.spec).szi == 0
        for other in sorted(acc.triggers.values(), key=lambda o: o.oid):
            if other.trigger is None or other.spec.coin != order.spec.coin:
                continue
            same_group = rule.parent is not None and other.trigger.parent == rule.parent
            if same_group or (closed and other.trigger.grouping == "positionTpsl"):
                del acc.triggers[other.oid]
                self._status(acc, other, "siblingFilledCanceled")


__all__ = ["TriggerMixin"]

"""The order actions: ``order`` (with TP/SL groupings), ``cancel``, ``cancelByCloid``, ``modify`` and
``batchModify``, checked and answered in the exchange's words. Pure."""

from __future__ import annotations

from typing import Any

from ..assets import price_ok, size_ok, wire_decimal, wire_number
from .accounts import GROUPINGS, Account, Order
from .state import EPS, ActionError, EngineState, avg_px

MIN_ORDER_VALUE = 10.0


class OrderActions(EngineState):
    """Placing, canceling and modifying orders."""

    def _order_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        grouping = action.get("grouping", "na")
        if grouping not in GROUPINGS:
            raise ActionError(f"Unknown grouping {grouping!r}: use na, normalTpsl or positionTpsl")
        statuses: list[Any] = []
        parent: Order | None = None
        for i, wire in enumerate(action["orders"]):
            if grouping == "normalTpsl" and i > 0:  # the entry order first, then its TP/SL
                statuses.append(self._place(acc, wire, grouping, parent) if parent is not None else {"error": "The entry order of this normalTpsl group was refused."})
                continue
            status = self._place(acc, wire, grouping)
            if grouping == "normalTpsl" and i == 0:
                oid = (status.get("resting") or status.get("filled") or {}).get("oid") if isinstance(status, dict) else None
                parent = acc.statuses[oid][0] if oid is not None else None
            statuses.append(status)
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _place(self, acc: Account, wire: dict[str, Any], grouping: str = "na", parent: Order | None = None) -> Any:
        asset = wire["a"]
        spec = self.assets.get(asset) if isinstance(asset, int) else None
        if spec is None:
            return {"error": f"Unknown asset {asset!r}: not in meta or spotMeta"}
        tail = f" asset={asset}"
        kind = wire["t"] if isinstance(wire.get("t"), dict) else {}
        if isinstance(kind.get("trigger"), dict):
            return self._place_trigger(acc, spec, wire, kind["trigger"], grouping, parent, tail)
        if grouping != "na" and parent is not None:
            return {"error": "TP/SL orders of a normalTpsl group must be trigger orders." + tail}
        limit = kind.get("limit")
        if limit is None:
            return {"error": "Order type must be limit or trigger." + tail}
        tif = limit.get("tif")
        if tif not in ("Gtc", "Alo", "Ioc", "FrontendMarket"):
            return {"error": f"Invalid TIF {tif!r}: use Gtc, Alo or Ioc." + tail}
        px_d, sz_d = wire_decimal(wire["p"]), wire_decimal(wire["s"])
        if px_d is None or not price_ok(spec, px_d):
            return {"error": "Price must be divisible by tick size." + tail}
        if sz_d is None or not size_ok(spec, sz_d):
            return {"error": "Order has invalid size." + tail}
        is_buy, px, sz = bool(wire["b"]), px_d.value, sz_d.value
        reduce_only = bool(wire.get("r", False))
        cloid = wire.get("c")
        book = self.books.get(spec.coin)
        if tif == "Alo" and book is not None:
            opposite = book.asks if is_buy else book.bids
            if opposite and (opposite[0].px <= px if is_buy else opposite[0].px >= px):
                bid = book.bids[0].px_text if book.bids else "0.0"
                ask = book.asks[0].px_text if book.asks else "0.0"
                return {"error": f"Post only order would have immediately matched, bbo was {bid}@{ask}." + tail}
        if reduce_only:
            if spec.spot:
                return {"error": "Reduce only orders are for perps." + tail}
            pos = acc.position(spec)
            if pos.szi == 0 or (pos.szi > 0) == is_buy:
                return {"error": "Reduce only order would increase position." + tail}
            sz = min(sz, abs(pos.szi))
        if px * sz < MIN_ORDER_VALUE - EPS and not reduce_only:
            return {"error": ("Order must have minimum value of 10 USDC." if spec.spot else "Order must have minimum value of $10.") + tail}
        problem = self._affordability(acc, spec, is_buy, px, sz, reduce_only)
        if problem:
            return {"error": problem + tail}
        order = Order(self._oid(), acc.user, spec, is_buy, px, px_d.text, sz, sz, tif, reduce_only, cloid, self.event_ms)
        if cloid is not None:
            acc.by_cloid[cloid] = order.oid
        filled_sz, notional = 0.0, 0.0
        if tif != "Alo" and book is not None:
            filled_sz, notional = self._take(acc, order, book)
        ident = {"oid": order.oid, **({"cloid": cloid} if cloid is not None else {})}
        if order.sz <= EPS:
            self._status(acc, order, "filled")
            return {"filled": {"totalSz": wire_number(filled_sz, spec.sz_decimals), "avgPx": avg_px(notional, filled_sz), **ident}}
        if tif in ("Ioc", "FrontendMarket"):
            self._status(acc, order, "canceled" if filled_sz else "iocCancelRejected", emit=bool(filled_sz))
            if filled_sz:
                return {"filled": {"totalSz": wire_number(filled_sz, spec.sz_decimals), "avgPx": avg_px(notional, filled_sz), **ident}}
            return {"error": "Order could not immediately match against any resting orders." + tail}
        # behind everything already at its level on its own side
        self._join_queue(order, book)
        self._rest(acc, order)
        self._status(acc, order, "open")
        return {"resting": ident}

    def _find(self, acc: Account, asset: Any, oid: Any) -> Order | None:
        if isinstance(oid, str):
            oid = acc.by_cloid.get(oid)
        order = (acc.orders.get(oid) or acc.triggers.get(oid)) if isinstance(oid, int) else None
        if order is None or order.spec.asset != asset:
            return None
        return order

    def _cancel_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        return self._cancels(acc, [(c["a"], c["o"]) for c in action["cancels"]])

    def _cancel_by_cloid_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        return self._cancels(acc, [(c["asset"], str(c["cloid"])) for c in action["cancels"]])

    def _cancels(self, acc: Account, targets: list[tuple[Any, Any]]) -> dict[str, Any]:
        statuses: list[Any] = []
        for asset, oid in targets:
            order = self._find(acc, asset, oid)
            if order is None:
                statuses.append({"error": f"Order was never placed, already canceled, or filled. asset={asset}"})
            else:
                self._cancel(acc, order)
                statuses.append("success")
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _modify(self, acc: Account, oid: Any, wire: dict[str, Any]) -> dict[str, Any]:
        order = self._find(acc, wire.get("a"), oid)
        if order is None:
            return {"error": "Cannot modify canceled or filled order"}
        self._cancel(acc, order)
        return self._place(acc, wire)

    def _modify_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        status = self._modify(acc, action["oid"], action["order"])
        if "error" in status:
            raise ActionError(status["error"])
        return {"status": "ok", "response": {"type": "default"}}

    def _batch_modify_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        statuses = [self._modify(acc, m["oid"], m["order"]) for m in action["modifies"]]
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}


__all__ = ["OrderActions", "MIN_ORDER_VALUE"]

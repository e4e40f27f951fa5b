"""What ``/info`` and the wallet streams show of a paper account, in the exchange's shapes and key order. Pure."""

from __future__ import annotations

from typing import Any

from schemas.info import clearinghouse_state, money

from ..assets import wire_number
from .state import EPS, EngineState, significant


class AccountViews(EngineState):
    """The account as the exchange shows it."""

    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        acc = self.account(user)
        positions = []
        for coin, pos in sorted(acc.positions.items()):
            if not pos.szi:
                continue
            spec = self.by_coin[coin]
            mark = self.mark(coin) or pos.entry_px
            value = abs(pos.szi) * mark
            upnl = pos.szi * (mark - pos.entry_px)
            used = pos.isolated_margin if not pos.is_cross else value / pos.leverage
            leverage: dict[str, Any] = {"type": "cross" if pos.is_cross else "isolated", "value": pos.leverage}
            if not pos.is_cross:
                leverage["rawUsd"] = money(-pos.szi * pos.entry_px + pos.isolated_margin)
            positions.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": coin,
                        "szi": wire_number(pos.szi, spec.sz_decimals),
                        "leverage": leverage,
                        "entryPx": significant(pos.entry_px),
                        "positionValue": money(value),
                        "unrealizedPnl": money(upnl),
                        "returnOnEquity": wire_number(upnl / used if used else 0.0, 9),
                        "liquidationPx": None,
                        "marginUsed": money(used),
                        "maxLeverage": spec.max_leverage,
                        "cumFunding": {
                            "allTime": money(pos.funding_all_time),
                            "sinceOpen": money(pos.funding_since_open),
                            "sinceChange": money(pos.funding_since_open),
                        },
                    },
                }
            )
        return clearinghouse_state(acc.usdc, self.time_ms, positions)

    def spot_clearinghouse_state(self, user: str) -> dict[str, Any]:
        acc = self.account(user)
        index = {spec.base: spec.base_index for spec in self.assets.values() if spec.spot}
        usdc_hold = sum(o.px * o.sz for o in acc.orders.values() if o.spec.spot and o.is_buy)
        balances = [{"coin": "USDC", "token": index.get("USDC", 0), "hold": money(usdc_hold), "total": money(acc.usdc), "entryNtl": "0.0"}]
        for token, total in sorted(acc.tokens.items()):
            if total <= EPS:
                continue
            hold = sum(o.sz for o in acc.orders.values() if o.spec.spot and not o.is_buy and o.spec.base == token)
            balances.append(
                {
                    "coin": token,
                    "token": index.get(token, 0),
                    "hold": wire_number(hold, 8),
                    "total": wire_number(total, 8),
                    "entryNtl": money(total * acc.token_cost.get(token, 0.0)),
                }
            )
        return {"balances": balances}

    def open_orders(self, user: str, *, frontend: bool = False) -> list[dict[str, Any]]:
        acc = self.account(user)
        orders = sorted([*acc.orders.values(), *acc.triggers.values()], key=lambda o: -o.oid)  # newest first, as the exchange lists
        return [o.frontend() if frontend else o.wire() for o in orders]

    def order_status(self, user: str, oid: int | str) -> dict[str, Any]:
        acc = self.account(user)
        key = acc.by_cloid.get(oid) if isinstance(oid, str) else oid
        found = acc.statuses.get(key) if isinstance(key, int) else None
        if found is None:
            return {"status": "unknownOid"}
        order, status, at = found
        return {"status": "order", "order": {"order": order.frontend(), "status": status, "statusTimestamp": at}}

    def user_fills(self, user: str) -> list[dict[str, Any]]:
        """Newest first, at most 2000: as ``userFills`` answers."""
        return list(reversed(self.account(user).fills[-2000:]))

    def user_fills_by_time(self, user: str, start: int, end: int | None = None) -> list[dict[str, Any]]:
        return [f for f in self.account(user).fills if f["time"] >= start and (end is None or f["time"] <= end)][:2000]


__all__ = ["AccountViews"]

"""What ``/info`` and the wallet streams show of a paper account, in the exchange's shapes and key order. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Any

from schemas.info import clearinghouse_state, money

from ..assets import wire_number
from .matching import PERP_MAKER_FEE, PERP_TAKER_FEE, SPOT_MAKER_FEE, SPOT_TAKER_FEE
from .state import EPS, EngineState, significant

DAY_MS = 86_400_000
# portfolio's periods, as the exchange lists them: (name, window in ms or None for all time, perps only)
PORTFOLIO_PERIODS = (
    ("day", DAY_MS, False),
    ("week", 7 * DAY_MS, False),
    ("month", 30 * DAY_MS, False),
    ("allTime", None, False),
    ("perpDay", DAY_MS, True),
    ("perpWeek", 7 * DAY_MS, True),
    ("perpMonth", 30 * DAY_MS, True),
    ("perpAllTime", None, True),
)
RATE_LIMIT_BASE = 10_000  # requests every address has, plus one per USDC traded


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


    def active_asset_data(self, user: str, coin: str) -> dict[str, Any]:
        """One perp of the account: the leverage in force, the largest order each way (buy, sell) in
        size (``maxTradeSzs``) and in USDC (``availableToTrade``), and the mark."""
        spec = self.by_coin.get(coin)
        if spec is None or spec.spot:
            raise ValueError(f"activeAssetData is for perps: {coin!r} is not one the paper exchange trades")
        acc = self.account(user)
        pos = acc.position(spec)
        mark = self.trigger_mark(coin) or pos.entry_px
        leverage: dict[str, Any] = {"type": "cross" if pos.is_cross else "isolated", "value": pos.leverage}
        if not pos.is_cross:
            leverage["rawUsd"] = money(-pos.szi * pos.entry_px + pos.isolated_margin)
        usable = max(0.0, self._available_margin(acc)) * pos.leverage
        sizes, usdc = [], []
        for closing in (max(0.0, -pos.szi), max(0.0, pos.szi)):  # a buy closes a short first, a sell a long
            size = (usable / mark if mark else 0.0) + closing
            step = 10.0 ** -spec.sz_decimals
            sizes.append(wire_number(int(size / step + EPS) * step, spec.sz_decimals))
            usdc.append(money(usable + closing * mark))
        mark_text = self.mark_text.get(coin) or (significant(mark) if mark else "0.0")
        return {"user": acc.user, "coin": coin, "leverage": leverage, "maxTradeSzs": sizes, "availableToTrade": usdc, "markPx": mark_text}

    def historical_orders(self, user: str) -> list[dict[str, Any]]:
        """Every order of the account with its latest status, newest first, at most 2000."""
        statuses = sorted(self.account(user).statuses.values(), key=lambda s: (-s[2], -s[0].oid))
        return [{"order": order.frontend(), "status": status, "statusTimestamp": at} for order, status, at in statuses[:2000]]

    def user_funding(self, user: str, start: int, end: int | None = None) -> list[dict[str, Any]]:
        """``userFunding``: the funding the account paid or took in ``[start, end]``, oldest first."""
        out = []
        for delta in self.account(user).fundings:
            if delta["time"] >= start and (end is None or delta["time"] <= end):
                entry = {"type": "funding", "coin": delta["coin"], "usdc": delta["usdc"], "szi": delta["szi"], "fundingRate": delta["fundingRate"], "nSamples": None}
                out.append({"time": delta["time"], "hash": "0x" + "00" * 32, "delta": entry})
        return out[:500]

    def _volume(self, user: str, since_ms: int | None = None, *, perps: bool = False) -> tuple[float, float]:
        """(taker notional, maker notional) of the account's fills since ``since_ms``."""
        taker = maker = 0.0
        for fill in self.account(user).fills:
            if since_ms is not None and fill["time"] < since_ms:
                continue
            if perps and self.by_coin[fill["coin"]].spot:
                continue
            notional = float(fill["px"]) * float(fill["sz"])
            if fill["crossed"]:
                taker += notional
            else:
                maker += notional
        return taker, maker

    def user_fees(self, user: str) -> dict[str, Any]:
        """The base tier's rates (paper accounts trade at it), and the account's volume a day."""
        days: dict[str, list[float]] = {}
        for fill in self.account(user).fills:
            day = days.setdefault(_date(fill["time"]), [0.0, 0.0])
            day[0 if fill["crossed"] else 1] += float(fill["px"]) * float(fill["sz"])
        rates = {"cross": _rate(PERP_TAKER_FEE), "add": _rate(PERP_MAKER_FEE), "spotCross": _rate(SPOT_TAKER_FEE), "spotAdd": _rate(SPOT_MAKER_FEE)}
        return {
            "dailyUserVlm": [{"date": d, "userCross": money(v[0]), "userAdd": money(v[1]), "exchange": "0.0"} for d, v in sorted(days.items())][-15:],
            "feeSchedule": {**rates, "tiers": {"vip": [], "mm": []}, "referralDiscount": "0.0", "stakingDiscountTiers": []},
            "userCrossRate": rates["cross"],
            "userAddRate": rates["add"],
            "userSpotCrossRate": rates["spotCross"],
            "userSpotAddRate": rates["spotAdd"],
            "activeReferralDiscount": "0.0",
            "trial": None,
            "feeTrialEscrow": "0.0",
            "nextTrialAvailableTimestamp": None,
            "stakingLink": None,
            "activeStakingDiscount": {"bpsOfMaxSupply": "0.0", "discount": "0.0"},
        }

    def user_rate_limit(self, user: str) -> dict[str, Any]:
        acc = self.account(user)
        volume = sum(self._volume(user))
        return {"cumVlm": money(volume), "nRequestsUsed": acc.actions, "nRequestsCap": RATE_LIMIT_BASE + int(volume), "nRequestsSurplus": 0}

    def portfolio(self, user: str) -> list[list[Any]]:
        """Account value and PnL over each period (from the report's once-a-second samples), and volume."""
        acc = self.account(user)
        now = self.time_ms
        points = list(acc.equity) or [(now, self.balance)]
        if points[-1][0] < now:
            points.append((now, self._account_value(acc)[0] if acc.fills else self.balance))
        out: list[list[Any]] = []
        for name, span, perps in PORTFOLIO_PERIODS:
            since = None if span is None else now - span
            kept = [(t, v) for t, v in points if since is None or t >= since] or points[-1:]
            base = kept[0][1]
            history = {
                "accountValueHistory": [[t, money(v)] for t, v in kept],
                "pnlHistory": [[t, money(v - base)] for t, v in kept],
                "vlm": money(sum(self._volume(user, since, perps=perps))),
            }
            out.append([name, history])
        return out


def _rate(fee: float) -> str:
    return f"{fee:.6f}".rstrip("0")


def _date(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")


__all__ = ["AccountViews", "PORTFOLIO_PERIODS"]

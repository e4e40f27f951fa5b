"""What to subscribe to: ``--coin`` x ``--channel`` expanded, checked against Hyperliquid's per-IP
limits before connecting, and (for ``--coin all``) re-resolved from the market list as it changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from schemas.layout import ArchiveError
from schemas.subscriptions import (
    COIN_TYPES,
    USER_TYPES,
    Subscription,
    SubscriptionError,
    check_user,
    parse_subscription,
)

from ..connection import plan_connections
from .markets import Selection, list_markets


class RecorderError(ArchiveError):
    """The recorder had to stop; what is recorded so far is safe (committed, or in the journal)."""


DEFAULT_CHANNELS = ("l2Book", "trades", "bbo")
DEFAULT_USER_CHANNELS = ("userFills", "orderUpdates", "userFundings")


def expand(
    coins: list[str], channels: list[str], users: list[str], subs: list[Any], interval: str
) -> list[Subscription]:
    """``--coin`` x ``--channel`` (and ``--user`` x user channels) plus exact ``--sub``s, deduplicated."""
    out: dict[str, Subscription] = {}

    def add(raw: dict[str, Any], allow_unknown: bool = False) -> None:
        sub = parse_subscription(raw, allow_unknown=allow_unknown)
        out.setdefault(sub.stream, sub)

    for user in users:
        check_user(user)
    channels = list(channels)
    if not channels and coins:
        channels = list(DEFAULT_CHANNELS)
    if users and not any(c in USER_TYPES for c in channels):
        channels += DEFAULT_USER_CHANNELS
    for channel in channels:
        needs_coin, needs_user = channel in COIN_TYPES, channel in USER_TYPES
        if channel not in COIN_TYPES | USER_TYPES:
            add({"type": channel})  # allMids, allDexsAssetCtxs; unknown names get the validator's error
            continue
        if needs_coin and not coins:
            raise SubscriptionError(f"--channel {channel} needs at least one --coin")
        if needs_user and not users:
            raise SubscriptionError(f"--channel {channel} needs at least one --user ADDRESS")
        for coin in coins if needs_coin else [None]:
            for user in users if needs_user else [None]:
                raw: dict[str, Any] = {"type": channel}
                if user is not None:
                    raw["user"] = user
                if coin is not None:
                    raw["coin"] = coin
                if channel == "candle":
                    raw["interval"] = interval
                add(raw)
    for raw in subs:
        if isinstance(raw, str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise SubscriptionError(f"--sub {raw!r} is not JSON: give e.g. '{{\"type\": \"l2Book\", \"coin\": \"BTC\", \"nSigFigs\": 5}}'") from None
        add(raw, allow_unknown=True)
    return list(out.values())


# Hyperliquid's per-IP limits ("Rate limits and user limits")
MAX_SUBSCRIPTIONS = 1000
MAX_CONNECTIONS = 100
MAX_USERS = 10


def check_limits(subscriptions: list[Subscription], max_per_connection: int) -> list[list[Subscription]]:
    """Refuse, before connecting, a plan Hyperliquid would refuse part of."""
    if not subscriptions:
        raise RecorderError("nothing to record: give --coin/--channel, --user or --sub")
    if len(subscriptions) > MAX_SUBSCRIPTIONS:
        raise RecorderError(
            f"{len(subscriptions)} subscriptions, Hyperliquid allows {MAX_SUBSCRIPTIONS} per IP: record fewer coins or channels, or shard over machines"
        )
    users = {s.user.lower() for s in subscriptions if s.user}
    if len(users) > MAX_USERS:
        raise RecorderError(f"{len(users)} users, Hyperliquid allows {MAX_USERS} distinct users per IP in user subscriptions")
    plan = plan_connections(subscriptions, max_per_connection)
    if len(plan) > MAX_CONNECTIONS:
        raise RecorderError(f"{len(plan)} connections needed, Hyperliquid allows {MAX_CONNECTIONS} per IP: raise --per-connection")
    return plan


@dataclass
class MarketPlan:
    """The subscriptions of a recording that follows the market list (``--coin all``, ``--top``):
    resolved at start and again on every refresh, so new listings are recorded and delistings dropped."""

    selection: Selection
    channels: list[str]
    users: list[str]
    subs: list[Any]
    interval: str
    fetch: Callable[[dict[str, Any]], Any]  # a POST to /info
    max_per_connection: int = 200
    left_out: list[str] = field(default_factory=list)  # coins the limits kept out at the last resolve

    def subscriptions_for(self, coins: list[str]) -> list[Subscription]:
        channels = self.channels if coins else [c for c in self.channels if c not in COIN_TYPES]
        return expand(coins, channels, self.users, self.subs, self.interval)

    def resolve(self) -> list[Subscription]:
        """The most traded set of the chosen markets that fits the limits (``left_out`` says what did not)."""
        coins = self.selection.choose(list_markets(self.fetch, self.selection))
        fits = largest_fit(coins, self.subscriptions_for, self.max_per_connection)
        self.left_out = coins[fits:]
        return self.subscriptions_for(coins[:fits])

    def resolve_at_start(self) -> list[Subscription]:
        """As ``resolve``, but a plan past the limits is refused with the numbers and what to drop."""
        coins = self.selection.choose(list_markets(self.fetch, self.selection))
        if not coins:
            raise RecorderError(f"--coin {' '.join(self.selection.words)} matched no listed market: check --dex, --exclude, --top")
        fits = largest_fit(coins, self.subscriptions_for, self.max_per_connection)
        if fits < len(coins):
            wanted = self.subscriptions_for(coins)
            per_coin = max(1, len(wanted) - len(self.subscriptions_for([])))
            per_coin //= max(1, len(coins))
            raise RecorderError(
                f"--coin {' '.join(self.selection.words)}: {len(coins)} markets x {per_coin} channel(s) = {len(wanted)} subscriptions, "
                f"past Hyperliquid's per-IP limits ({MAX_SUBSCRIPTIONS} subscriptions, {MAX_CONNECTIONS} connections): "
                f"add --top {fits} (the {fits} most traded fit), or record fewer channels"
            )
        return self.subscriptions_for(coins)


def within_limits(subscriptions: list[Subscription], max_per_connection: int) -> bool:
    try:
        check_limits(subscriptions, max_per_connection)
    except RecorderError:
        return False
    return True


def largest_fit(coins: list[str], subscriptions_for: Callable[[list[str]], list[Subscription]], max_per_connection: int) -> int:
    """How many of ``coins`` (a prefix: the most wanted first) fit Hyperliquid's limits."""
    if within_limits(subscriptions_for(coins), max_per_connection):
        return len(coins)
    low, high = 0, len(coins)  # fits(low) is true, fits(high) false
    while high - low > 1:
        mid = (low + high) // 2
        if within_limits(subscriptions_for(coins[:mid]), max_per_connection):
            low = mid
        else:
            high = mid
    return low

"""The subscription model: validation, the SDK identifier, and the stream a frame belongs to.

One home for every rule about subscriptions, so the recorder, the simulator and replay agree.
The identifiers match hyperliquid-python-sdk's ``subscription_to_identifier`` and
``ws_msg_to_identifier`` exactly for the types the SDK knows; newer types follow the same pattern.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson


class SubscriptionError(ValueError):
    """A subscription that Hyperliquid would refuse; the message says which field and what is allowed."""


CANDLE_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M")
N_SIG_FIGS = (2, 3, 4, 5)
MANTISSAS = (2, 5)

# type -> (required fields, optional fields). The order is the wire order of the fields.
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "allMids": ((), ("dex",)),
    "l2Book": (("coin",), ("nSigFigs", "mantissa", "nLevels")),
    "trades": (("coin",), ()),
    "bbo": (("coin",), ()),
    "candle": (("coin", "interval"), ()),
    "userEvents": (("user",), ()),
    "userFills": (("user",), ("aggregateByTime",)),
    "orderUpdates": (("user",), ()),
    "userFundings": (("user",), ()),
    "userNonFundingLedgerUpdates": (("user",), ()),
    "webData2": (("user",), ()),
    "webData3": (("user",), ()),
    "activeAssetCtx": (("coin",), ()),
    "activeAssetData": (("user", "coin"), ()),
    "notification": (("user",), ()),
    "userTwapSliceFills": (("user",), ()),
    "userTwapHistory": (("user",), ()),
    "spotState": (("user",), ()),
    "allDexsClearinghouseState": (("user",), ()),
    "allDexsAssetCtxs": ((), ()),
    "l4Book": (("coin",), ()),  # Hyperliquid's open-source book server (order_book_server), fed by a node
}
N_LEVELS_MAX = 100  # the book server's deepest l2Book
SUBSCRIPTION_TYPES: tuple[str, ...] = tuple(_FIELDS)

# Subscription type -> the channel its data frames arrive on, where the two differ.
_CHANNEL_OF_TYPE = {"userEvents": "user"}
_TYPE_OF_CHANNEL = {"user": "userEvents", "activeSpotAssetCtx": "activeAssetCtx"}

# Types whose SDK identifier carries the user, and those that are per user at all.
_IDENTIFIER_WITHOUT_USER = {"userEvents", "orderUpdates", "notification"}
USER_TYPES = frozenset(t for t, (req, _) in _FIELDS.items() if "user" in req)
COIN_TYPES = frozenset(t for t, (req, _) in _FIELDS.items() if "coin" in req)

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BAD_COIN = re.compile(r"[\s\x00-\x1f\x7f]")


def subscription_type_of_channel(channel: str) -> str:
    """The subscription type whose frames arrive on ``channel`` (``user`` -> ``userEvents``)."""
    return _TYPE_OF_CHANNEL.get(channel, channel)


def is_spot_coin(coin: str) -> bool:
    """Spot coins are ``@<index>`` or a ``BASE/QUOTE`` pair name; perps (also ``dex:COIN``) are not."""
    return coin.startswith("@") or "/" in coin


@dataclass(frozen=True)
class Subscription:
    """A validated subscription. ``extra`` holds the fields of a type nobody knows yet, as JSON."""

    type: str
    coin: str | None = None
    user: str | None = None
    interval: str | None = None
    n_sig_figs: int | None = None
    mantissa: int | None = None
    n_levels: int | None = None  # the book server's l2Book depth (the exchange's is always 20)
    dex: str | None = None
    aggregate_by_time: bool | None = None
    extra: str | None = None

    @property
    def known(self) -> bool:
        return self.type in _FIELDS

    def to_dict(self) -> dict[str, Any]:
        """The wire form, fields in Hyperliquid's order; unset optional fields left out."""
        if not self.known:
            return {"type": self.type, **(orjson.loads(self.extra) if self.extra else {})}
        values = {
            "coin": self.coin,
            "user": self.user,
            "interval": self.interval,
            "nSigFigs": self.n_sig_figs,
            "mantissa": self.mantissa,
            "nLevels": self.n_levels,
            "dex": self.dex,
            "aggregateByTime": self.aggregate_by_time,
        }
        required, optional = _FIELDS[self.type]
        out: dict[str, Any] = {"type": self.type}
        for name in required:
            out[name] = values[name]
        for name in optional:
            if values[name] is not None:
                out[name] = values[name]
        return out

    @property
    def channel(self) -> str:
        """The channel this subscription's data frames arrive on."""
        if self.type == "activeAssetCtx" and self.coin is not None and is_spot_coin(self.coin):
            return "activeSpotAssetCtx"
        return _CHANNEL_OF_TYPE.get(self.type, self.type)

    @property
    def identifier(self) -> str:
        """The SDK's ``subscription_to_identifier``; extended in its own style to newer types."""
        t = self.type
        if t == "candle":
            return f"candle:{_lower(self.coin)},{self.interval}"
        if t == "activeAssetData":
            return f"activeAssetData:{_lower(self.coin)},{_lower(self.user)}"
        if self.coin is not None:
            return f"{t}:{self.coin.lower()}"
        if self.user is not None and t not in _IDENTIFIER_WITHOUT_USER:
            return f"{t}:{self.user.lower()}"
        return t

    @property
    def stream(self) -> str:
        """The identifier, plus l2Book's aggregation: different aggregations are different streams."""
        if self.type == "l2Book" and (self.n_sig_figs is not None or self.mantissa is not None or self.n_levels is not None):
            depth = "" if self.n_levels is None else f",nLevels={self.n_levels}"
            return f"{self.identifier},nSigFigs={self.n_sig_figs},mantissa={self.mantissa}{depth}"
        if not self.known and self.extra:
            return f"{self.type}:{self.extra}"
        return self.identifier

    def __str__(self) -> str:
        return orjson.dumps(self.to_dict()).decode()


def _lower(value: str | None) -> str:
    return "" if value is None else value.lower()


def _suggest(value: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    lowered = {c.lower(): c for c in choices}
    if value.lower() in lowered:
        close = [lowered[value.lower()]]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_coin(coin: Any) -> str:
    if not isinstance(coin, str) or not coin or len(coin) > 64 or _BAD_COIN.search(coin):
        raise SubscriptionError(
            f"bad coin {coin!r}: give a perp name ('BTC', 'kPEPE'), a spot index ('@107'), "
            "a pair ('PURR/USDC') or a dex coin ('xyz:HOOD')"
        )
    return coin


def check_user(user: Any) -> str:
    """A user address: ``0x`` and 40 hex digits (any case)."""
    if not isinstance(user, str) or not _ADDRESS.fullmatch(user):
        raise SubscriptionError(f"bad user {user!r}: give an address of 0x and 40 hex digits")
    return user


def parse_subscription(raw: Mapping[str, Any], *, allow_unknown: bool = False) -> Subscription:
    """Validate a subscription dict as Hyperliquid would and return its model.

    A type nobody knows yet is refused unless ``allow_unknown``: then it is kept as given, so it
    can still be recorded and replayed exactly.
    """
    if not isinstance(raw, Mapping):
        raise SubscriptionError(f"a subscription is a JSON object like {{\"type\": \"trades\", \"coin\": \"BTC\"}}, not {raw!r}")
    sub_type = raw.get("type")
    if not isinstance(sub_type, str) or not sub_type:
        raise SubscriptionError(f"subscription {dict(raw)!r} has no 'type': one of {', '.join(SUBSCRIPTION_TYPES)}")
    if sub_type not in _FIELDS:
        if allow_unknown and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", sub_type):
            rest = {k: v for k, v in raw.items() if k != "type"}
            return Subscription(
                type=sub_type,
                coin=rest["coin"] if isinstance(rest.get("coin"), str) else None,
                user=rest["user"] if isinstance(rest.get("user"), str) else None,
                extra=orjson.dumps(rest).decode() if rest else None,
            )
        raise SubscriptionError(
            f"unknown subscription type {sub_type!r}{_suggest(sub_type, SUBSCRIPTION_TYPES)}: "
            f"use one of {', '.join(SUBSCRIPTION_TYPES)}"
        )
    required, optional = _FIELDS[sub_type]
    for name in raw:
        if name != "type" and name not in required and name not in optional:
            allowed = ", ".join(required + optional) or "no other field"
            raise SubscriptionError(f"{sub_type} subscription has an unknown field {name!r}: it takes {allowed}")
    for name in required:
        if name not in raw:
            raise SubscriptionError(f"{sub_type} subscription needs {name!r}")
    fields: dict[str, Any] = {}
    if "coin" in raw:
        fields["coin"] = _check_coin(raw["coin"])
    if "user" in raw:
        fields["user"] = check_user(raw["user"])
    if "interval" in raw:
        interval = raw["interval"]
        if interval not in CANDLE_INTERVALS:
            hint = _suggest(str(interval), CANDLE_INTERVALS)
            raise SubscriptionError(f"bad candle interval {interval!r}{hint}: use one of {', '.join(CANDLE_INTERVALS)}")
        fields["interval"] = interval
    if sub_type == "l2Book":
        n_sig_figs, mantissa = raw.get("nSigFigs"), raw.get("mantissa")
        if n_sig_figs is not None and (type(n_sig_figs) is not int or n_sig_figs not in N_SIG_FIGS):
            raise SubscriptionError(f"bad l2Book nSigFigs {n_sig_figs!r}: use 2, 3, 4, 5 or null")
        if mantissa is not None:
            if type(mantissa) is not int or mantissa not in MANTISSAS:
                raise SubscriptionError(f"bad l2Book mantissa {mantissa!r}: use 2, 5 or null")
            if n_sig_figs != 5:
                raise SubscriptionError("l2Book mantissa is only allowed with nSigFigs 5: set nSigFigs to 5 or drop mantissa")
        fields["n_sig_figs"], fields["mantissa"] = n_sig_figs, mantissa
        n_levels = raw.get("nLevels")
        if n_levels is not None:
            if type(n_levels) is not int or not 1 <= n_levels <= N_LEVELS_MAX or n_levels == 20:
                raise SubscriptionError(f"bad l2Book nLevels {n_levels!r}: use 1 to {N_LEVELS_MAX} (leave it out for the usual 20)")
            fields["n_levels"] = n_levels
    if "dex" in raw and raw["dex"] is not None:
        if not isinstance(raw["dex"], str):
            raise SubscriptionError(f"bad allMids dex {raw['dex']!r}: give the dex name as a string")
        fields["dex"] = raw["dex"]
    if "aggregateByTime" in raw and raw["aggregateByTime"] is not None:
        if type(raw["aggregateByTime"]) is not bool:
            raise SubscriptionError(f"bad userFills aggregateByTime {raw['aggregateByTime']!r}: use true or false")
        fields["aggregate_by_time"] = raw["aggregateByTime"]
    return Subscription(type=sub_type, **fields)


def frame_identifier(msg: Mapping[str, Any]) -> str | None:
    """The SDK's ``ws_msg_to_identifier`` for a frame; ``None`` where the SDK drops it (an empty trade list)."""
    channel = msg.get("channel")
    if channel == "pong":
        return "pong"
    data = msg.get("data")
    if channel == "trades" and not data:
        return None
    try:  # the hot channels, without building a Subscription (the recorder routes every frame)
        if channel in ("l2Book", "bbo", "activeAssetCtx"):
            return f"{channel}:{data['coin'].lower()}"
        if channel == "trades":
            return f"trades:{data[0]['coin'].lower()}"
        if channel == "allMids":
            return "allMids"
    except (KeyError, TypeError, IndexError, AttributeError):
        pass
    sub = frame_subscription(msg)
    return None if sub is None else sub.identifier


def frame_subscription(msg: Mapping[str, Any]) -> Subscription | None:
    """The subscription a data frame answers, as far as the frame alone tells (no aggregation, maybe no user)."""
    channel = msg.get("channel")
    if not isinstance(channel, str):
        return None
    data = msg.get("data")
    sub_type = subscription_type_of_channel(channel)
    coin = user = interval = None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        coin = data[0].get("coin")
    elif channel == "l4Book" and isinstance(data, Mapping):
        coin = _l4_book_coin(data)
    elif isinstance(data, Mapping):
        coin = data.get("s") if channel == "candle" else data.get("coin")
        user = data.get("user")
        interval = data.get("i") if channel == "candle" else None
    if sub_type not in _FIELDS:
        return Subscription(
            type=sub_type,
            coin=coin if isinstance(coin, str) else None,
            user=user if isinstance(user, str) else None,
        )
    required, _ = _FIELDS[sub_type]
    return Subscription(
        type=sub_type,
        coin=coin if "coin" in required and isinstance(coin, str) else None,
        user=user if "user" in required and isinstance(user, str) else None,
        interval=interval if isinstance(interval, str) else None,
    )


def _l4_book_coin(data: Mapping[str, Any]) -> str | None:
    """An ``l4Book`` frame's coin: its ``Snapshot``'s, or an ``Updates``' first status or diff's."""
    body = data.get("Snapshot") or data.get("Updates")
    if not isinstance(body, Mapping):
        return None
    if isinstance(body.get("coin"), str):
        return body["coin"]
    for key, inner in (("order_statuses", "order"), ("book_diffs", None)):
        items = body.get(key)
        if isinstance(items, list) and items and isinstance(items[0], Mapping):
            holder = items[0].get(inner) if inner else items[0]
            if isinstance(holder, Mapping) and isinstance(holder.get("coin"), str):
                return holder["coin"]
    return None

"""Per-channel data shapes and the exchange timestamp each channel's frames carry.

Shapes follow Hyperliquid's documented ws types and the real frames in ``tests/fixtures``: prices
and sizes stay the exact decimal strings received. A frame that has drifted from its shape is still
archived exactly (as text in ``raw``), so a shape here only has to be right to be compact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .shapes import Bool, Int, Json, List, Map, Shape, Str, Struct, compile_prepare, field

_s, _i, _b = Str(), Int(), Bool()

LEVEL = Struct(field("px", _s), field("sz", _s), field("n", _i))

FILL = Struct(
    field("coin", _s),
    field("px", _s),
    field("sz", _s),
    field("side", _s),
    field("time", _i),
    field("startPosition", _s),
    field("dir", _s),
    field("closedPnl", _s),
    field("hash", _s),
    field("oid", _i),
    field("crossed", _b),
    field("fee", _s),
    field("tid", _i),
    field("cloid", _s, optional=True),
    field("liquidation", Struct(field("liquidatedUser", _s), field("markPx", _s), field("method", _s)), optional=True),
    field("feeToken", _s),
    field("builderFee", _s, optional=True),
    field("twapId", _i, nullable=True),
)

TRADE = Struct(
    field("coin", _s),
    field("side", _s),
    field("px", _s),
    field("sz", _s),
    field("time", _i),
    field("hash", _s),
    field("tid", _i),
    field("users", List(_s), optional=True),  # public API: [buyer, seller]
    field("user", _s, optional=True),  # node-side servers
)

FUNDING = Struct(
    field("time", _i),
    field("coin", _s),
    field("usdc", _s),
    field("szi", _s),
    field("fundingRate", _s),
    field("nSamples", _i, optional=True),
)

PERP_CTX = Struct(
    field("funding", _s),
    field("openInterest", _s),
    field("prevDayPx", _s),
    field("dayNtlVlm", _s),
    field("premium", _s, nullable=True),
    field("oraclePx", _s),
    field("markPx", _s),
    field("midPx", _s, nullable=True),
    field("impactPxs", List(_s), nullable=True),
    field("dayBaseVlm", _s),
)

SPOT_CTX = Struct(
    field("dayNtlVlm", _s),
    field("markPx", _s),
    field("midPx", _s, nullable=True),
    field("prevDayPx", _s),
    field("circulatingSupply", _s),
    field("coin", _s),
    field("totalSupply", _s, optional=True),
    field("dayBaseVlm", _s, optional=True),
)

# what every order shape starts with: the websocket's orderUpdates and a node's order statuses
ORDER_HEAD = (
    field("coin", _s),
    field("side", _s),
    field("limitPx", _s),
    field("sz", _s),
    field("oid", _i),
    field("timestamp", _i),
)

ORDER_UPDATE = Struct(
    field(
        "order",
        Struct(
            *ORDER_HEAD,
            field("origSz", _s),
            field("cloid", _s, optional=True),
        ),
    ),
    field("status", _s),
    field("statusTimestamp", _i),
)

TWAP_STATE = Struct(
    field("coin", _s),
    field("user", _s),
    field("side", _s),
    field("sz", _s),
    field("executedSz", _s),
    field("executedNtl", _s),
    field("minutes", _i),
    field("reduceOnly", _b),
    field("randomize", _b),
    field("timestamp", _i),
    field("trigger", Json(), nullable=True),
    field("stopPx", _s, nullable=True),
)


L4_ORDER_FIELDS = (
    *ORDER_HEAD,
    field("triggerCondition", _s),
    field("isTrigger", _b),
    field("triggerPx", _s),
    field("children", Json()),
    field("isPositionTpsl", _b),
    field("reduceOnly", _b),
    field("orderType", _s),
    field("origSz", _s),
    field("tif", _s, nullable=True),
    field("cloid", _s, nullable=True),
)
# a snapshot's order: the user, then the status line's order (the node's own snapshot keeps every field)
L4_SNAPSHOT_ORDER = Struct(field("user", _s), *L4_ORDER_FIELDS)


def _user_stream(list_name: str, item: Shape) -> Struct:
    """The common form of per-user streams: a snapshot flag on the first frame, the user, a list."""
    return Struct(field("isSnapshot", _b, optional=True), field("user", _s), field(list_name, List(item)))


def _time(data: Any) -> int | None:
    return data.get("time") if type(data) is dict else None


def _first(list_name: str | None, key: str) -> Callable[[Any], int | None]:
    def exch_ms(data: Any) -> int | None:
        items = data.get(list_name) if list_name and type(data) is dict else data
        if type(items) is list and items and type(items[0]) is dict:
            return items[0].get(key)
        return None

    return exch_ms


def _user_events_time(data: Any) -> int | None:
    if type(data) is not dict:
        return None
    if data.get("fills"):
        return _first("fills", "time")(data)
    funding = data.get("funding")
    return funding.get("time") if type(funding) is dict else None


def _twap_slice_time(data: Any) -> int | None:
    fill = _first("twapSliceFills", "fill")(data)
    return fill.get("time") if type(fill) is dict else None


def _l4_book_time(data: Any) -> int | None:
    if type(data) is dict and len(data) == 1:
        body = next(iter(data.values()))
        return body.get("time") if type(body) is dict else None
    return None


def _block_ms(data: Any) -> int | None:
    return data.get("block_ms") if type(data) is dict else None


def _order_updates_time(data: Any) -> int | None:
    return _first(None, "statusTimestamp")(data)


@dataclass(frozen=True)
class ChannelSpec:
    """What the archive knows about one wire channel: the shape of ``data`` and its exchange time."""

    channel: str
    shape: Shape
    exch_ms: Callable[[Any], Any]
    prepare: Callable[[Any], Any]  # ``shape.prepare``, compiled where that is faster


def _spec(channel: str, shape: Shape, exch_ms: Callable[[Any], Any] = lambda data: None) -> ChannelSpec:
    return ChannelSpec(channel, shape, exch_ms, compile_prepare(shape))


CHANNELS: dict[str, ChannelSpec] = {
    spec.channel: spec
    for spec in (
        _spec("allMids", Struct(field("mids", Map(_s)), field("dex", _s, optional=True))),
        _spec("l2Book", Struct(field("coin", _s), field("time", _i), field("levels", List(List(LEVEL)))), _time),
        _spec("trades", List(TRADE), _first(None, "time")),
        _spec(
            "bbo",
            Struct(field("coin", _s), field("time", _i), field("bbo", List(LEVEL, nullable_items=True))),
            _time,
        ),
        _spec(
            "candle",
            Struct(
                field("t", _i),
                field("T", _i),
                *(field(name, _s) for name in ("s", "i", "o", "c", "h", "l", "v")),
                field("n", _i),
            ),
            lambda data: data.get("t") if type(data) is dict else None,
        ),
        _spec(
            "user",
            Struct(
                field("fills", List(FILL), optional=True),
                field("funding", FUNDING, optional=True),
                field("liquidation", Json(), optional=True),
                field("nonUserCancel", List(Struct(field("coin", _s), field("oid", _i))), optional=True),
            ),
            _user_events_time,
        ),
        _spec("userFills", _user_stream("fills", FILL), _first("fills", "time")),
        _spec("orderUpdates", List(ORDER_UPDATE), _order_updates_time),
        _spec("userFundings", _user_stream("fundings", FUNDING), _first("fundings", "time")),
        _spec(
            "userNonFundingLedgerUpdates",
            _user_stream("nonFundingLedgerUpdates", Struct(field("time", _i), field("hash", _s), field("delta", Json()))),
            _first("nonFundingLedgerUpdates", "time"),
        ),
        _spec("webData2", Json(), lambda data: data.get("serverTime") if type(data) is dict else None),
        _spec("activeAssetCtx", Struct(field("coin", _s), field("ctx", PERP_CTX))),
        _spec("activeSpotAssetCtx", Struct(field("coin", _s), field("ctx", SPOT_CTX))),
        _spec(
            "activeAssetData",
            Struct(
                field("user", _s),
                field("coin", _s),
                field("leverage", Struct(field("type", _s), field("value", _i), field("rawUsd", _s, optional=True))),
                field("maxTradeSzs", List(_s)),
                field("availableToTrade", List(_s)),
                field("markPx", _s, optional=True),
            ),
        ),
        _spec("notification", Struct(field("notification", _s))),
        _spec(
            "userTwapSliceFills",
            _user_stream("twapSliceFills", Struct(field("fill", FILL), field("twapId", _i))),
            _twap_slice_time,
        ),
        _spec(
            "userTwapHistory",
            _user_stream(
                "history",
                Struct(
                    field("time", _i),
                    field("state", TWAP_STATE),
                    field("status", Struct(field("status", _s), field("description", _s, optional=True))),
                    field("twapId", _i, optional=True),
                ),
            ),
        ),
        _spec("allDexsAssetCtxs", Json()),
        # the order-level book (a node's files, and the book server's websocket)
        _spec(
            "l4Statuses",
            Struct(field("block", _i), field("block_ms", _i), field("time", _s), field("user", _s), field("status", _s), field("order", Struct(*L4_ORDER_FIELDS))),
            _block_ms,
        ),
        _spec(
            "l4Diffs",
            Struct(
                field("block", _i),
                field("block_ms", _i),
                field("user", _s),
                field("oid", _i),
                field("coin", _s),
                field("side", _s, optional=True),
                field("px", _s),
                field("raw_book_diff", Json()),
            ),
            _block_ms,
        ),
        _spec(
            "l4Snapshots",
            Struct(field("block", _i), field("block_ms", _i, nullable=True), field("coin", _s), field("height", _i), field("levels", List(List(L4_SNAPSHOT_ORDER)))),
            _block_ms,
        ),
        # derived by hlarchive, never by a node: the book every few minutes of blocks, so a seek
        # starts near its instant; ``safe`` is the book's own (False after a desync)
        _spec(
            "l4Checkpoints",
            Struct(
                field("block", _i), field("block_ms", _i, nullable=True), field("coin", _s), field("height", _i), field("safe", _b),
                field("levels", List(List(L4_SNAPSHOT_ORDER))),
                field("short", List(List(_b))),  # each order shown in the book server's shape (placed by a diff), or as a snapshot gave it
            ),
            _block_ms,
        ),
        _spec("l4Book", Json(), _l4_book_time),
    )
}


def channel_spec(channel: str) -> ChannelSpec | None:
    """The spec of a wire channel, or ``None`` for a channel the archive keeps only as text."""
    return CHANNELS.get(channel)

"""``POST /info`` answers from an archive, as of a replay clock: what ``hlarchive serve`` says.

Each answer is read from what the recorder kept: the ``_meta`` snapshot in force (``meta``,
``spotMeta``, ``perpDexs``, ``metaAndAssetCtxs``, ``spotMetaAndAssetCtxs``), the last frame of a
stream at or before the clock (``l2Book``, ``allMids``, a user's ``webData2``), or every frame up to
it (candles, fills, order updates). What the archive cannot answer is a 404 naming what to record.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from schemas.candles import INTERVAL_MS, fold_candle
from schemas.info import PAPER_ACCOUNT_INFO, InfoError, exchange_status, field, user_field, window
from schemas.layout import ArchiveError
from schemas.subscriptions import CANDLE_INTERVALS, parse_subscription

from ..archive import check_root, find_parts
from ..meta import MetaSnapshots
from ..replay import Replay
from ..storage import Store

# user queries only a paper account can answer (the archive records streams, not these)
PAPER_ONLY = PAPER_ACCOUNT_INFO
META_KINDS = ("perpDexs", "meta", "spotMeta", "metaAndAssetCtxs", "spotMetaAndAssetCtxs")


def _ignore(message: Any) -> None:
    pass


class ArchiveInfo:
    """Answers for the archive at ``root``; ``at_ns`` is the replay clock of the asking connection."""

    def __init__(self, root: str | os.PathLike[str] | Store) -> None:
        self.root = check_root(root)
        self.meta = MetaSnapshots(self.root)

    def answer(self, request: dict[str, Any], at_ns: int) -> Any:
        handler = _HANDLERS.get(request["type"])
        if handler is None and request["type"] in PAPER_ONLY:
            raise InfoError(404, f"{request['type']} of a recorded user is not in the archive: it is answered for paper accounts (hlarchive serve --paper)")
        if handler is None:
            raise InfoError(422, f"{request['type']} is a node's request; this server replays an archive")
        return handler(self, request, at_ns)

    # --- reading ----------------------------------------------------------------------------------

    def snapshot(self, kind: str, at_ns: int, hint: str) -> Any:
        """The ``_meta`` snapshot of ``kind`` in force at ``at_ns`` (the first one, if the clock is before it)."""
        found = self.meta.in_force(kind, at_ns)
        if found is None:
            raise InfoError(404, f"no {kind} snapshot in the archive: {hint}")
        return found

    def frames(self, sub: dict[str, Any], at_ns: int | None, start_ns: int | None = None) -> Iterator[dict[str, Any]]:
        """The frames of ``sub`` received in ``[start_ns, at_ns]`` (none when the archive lacks the stream)."""
        replay = Replay(self.root, start=None if start_ns is None else start_ns / 1e6, end=None if at_ns is None else at_ns / 1e6)
        try:
            replay.subscribe(sub, _ignore)
        except ArchiveError:
            return iter(())
        return replay.messages()

    def last_frame(self, sub: dict[str, Any], at_ns: int) -> dict[str, Any] | None:
        """The last frame of ``sub`` received at or before ``at_ns``, read from the newest parts back;
        before the stream's first frame, that first frame (as with snapshots: a client asks at start)."""
        parsed = parse_subscription(sub)
        coins = [parsed.coin] if parsed.coin is not None else None
        parts = find_parts(self.root, channels=[parsed.type], coins=coins, end_ns=at_ns)
        for first in sorted({p.name.first_recv_ns for p in parts}, reverse=True):
            last = None
            for last in self.frames(sub, at_ns, first):
                pass
            if last is not None:
                return last
        return next(self.frames(sub, None), None)


def _meta_kind(kind: str) -> Callable[[ArchiveInfo, dict[str, Any], int], Any]:
    def answer(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
        dex = field(request, "dex", optional=True) or ""
        name = f"{kind}:{dex}" if dex else kind
        return source.snapshot(name, at_ns, "record without --no-meta (snapshots are taken at start and hourly)")

    return answer


def _all_mids(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    frame = source.last_frame({"type": "allMids"}, at_ns)
    if frame is None:
        raise InfoError(404, "no allMids frame at or before the replay clock: record the allMids channel (--channel allMids)")
    return frame["data"]["mids"]


def _l2_book(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    sub = {"type": "l2Book", "coin": field(request, "coin")}
    for key in ("nSigFigs", "mantissa"):
        if request.get(key) is not None:
            sub[key] = field(request, key, int)
    if not find_parts(source.root, channels=["l2Book"], coins=[sub["coin"]]):
        book = _l2_from_l4(source, sub, at_ns)
        if book is not None:
            return book
    frame = source.last_frame(sub, at_ns)
    if frame is None:
        raise InfoError(404, f"no l2Book frame of {orjson.dumps(sub).decode()} at or before the replay clock: record that subscription")
    return frame["data"]


def _l2_from_l4(source: ArchiveInfo, sub: dict[str, Any], at_ns: int) -> Any:
    """With no 20-level book recorded, the coin's L4 book at the clock, summed as the exchange sums it."""
    from schemas.l4.book import L4Book

    from ..l4 import has_l4, l4_state

    if not has_l4(source.root, sub["coin"]):
        return None
    state = l4_state(source.root, sub["coin"], at_ns)
    book: L4Book = state.book
    return book.l2(20, sub.get("nSigFigs"), sub.get("mantissa"))


def _candles(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    """The recorded candles of the window; with no candle stream recorded, candles built from the trades."""
    req = field(request, "req", dict)
    coin, interval = field(req, "coin"), field(req, "interval")
    if interval not in CANDLE_INTERVALS:
        raise InfoError(422, f"unknown interval {interval!r}")
    start, end = window(req, at_ns // 1_000_000)
    sub = {"type": "candle", "coin": coin, "interval": interval}
    latest: dict[int, dict[str, Any]] = {}
    if find_parts(source.root, channels=["candle"], coins=[coin]):
        for frame in source.frames(sub, at_ns, max(0, start - 86_400_000) * 1_000_000):
            candle = frame["data"]
            if candle.get("i") == interval and start <= candle["t"] <= end:
                latest[candle["t"]] = candle
    elif find_parts(source.root, channels=["trades"], coins=[coin]):
        span = INTERVAL_MS[interval]
        candle = None
        for frame in source.frames({"type": "trades", "coin": coin}, at_ns, max(0, start - span) * 1_000_000):
            for trade in frame["data"]:
                if start <= trade["time"] - trade["time"] % span <= end:
                    candle = fold_candle(candle, [trade], coin, interval, span, trade["time"], _decimals(trade["sz"]))
                    latest[candle["t"]] = candle
    else:
        raise InfoError(404, f"no candle or trades frames for {coin}: record --sub '{orjson.dumps(sub).decode()}' (or its trades)")
    return [latest[t] for t in sorted(latest)][-5000:]


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def _web_data(source: ArchiveInfo, user: str, at_ns: int) -> dict[str, Any]:
    frame = source.last_frame({"type": "webData2", "user": user}, at_ns)
    if frame is None:
        raise InfoError(404, f"no webData2 frame for {user} at or before the replay clock: record with --user {user}")
    return frame["data"]


def _clearinghouse(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    return _web_data(source, user_field(request), at_ns)["clearinghouseState"]


def _spot_clearinghouse(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    user = user_field(request)
    frame = source.last_frame({"type": "spotState", "user": user}, at_ns)
    if frame is not None and isinstance(frame["data"].get("spotState"), dict):
        return frame["data"]["spotState"]
    data = _web_data(source, user, at_ns)
    if isinstance(data.get("spotState"), dict):
        return data["spotState"]
    raise InfoError(404, f"no spot state for {user} in the archive: record its spotState stream (--sub '{{\"type\":\"spotState\",\"user\":\"{user}\"}}')")


_BASIC_ORDER_KEYS = ("coin", "limitPx", "oid", "side", "sz", "timestamp", "origSz", "cloid")


def _open_orders(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    orders = _web_data(source, user_field(request), at_ns).get("openOrders", [])
    if request["type"] == "frontendOpenOrders":
        return orders
    return [{k: order[k] for k in _BASIC_ORDER_KEYS if k in order} for order in orders]


def _fills(source: ArchiveInfo, user: str, at_ns: int) -> list[dict[str, Any]]:
    if not find_parts(source.root, channels=["userFills"]):
        raise InfoError(404, f"no userFills frames in the archive: record with --user {user}")
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for frame in source.frames({"type": "userFills", "user": user}, at_ns):
        for fill in frame["data"].get("fills", []):
            seen[(fill.get("tid"), fill.get("oid"), fill.get("hash"))] = fill  # a snapshot repeats fills
    return sorted(seen.values(), key=lambda f: f.get("time", 0))


def _user_fills(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    return list(reversed(_fills(source, user_field(request), at_ns)))[:2000]


def _user_fills_by_time(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    user = user_field(request)
    start, end = window(request, at_ns // 1_000_000)
    return [f for f in _fills(source, user, at_ns) if start <= f.get("time", 0) <= end][:2000]


def _order_status(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    user = user_field(request)
    oid = field(request, "oid", (int, str))
    found = None
    for frame in source.frames({"type": "orderUpdates", "user": user}, at_ns):
        for update in frame["data"]:
            order = update.get("order", {})
            if order.get("oid") == oid or (isinstance(oid, str) and order.get("cloid") == oid):
                found = update
    if found is None:
        return {"status": "unknownOid"}
    return {"status": "order", "order": found}


def _funding_history(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    coin = field(request, "coin")
    start, end = window(request, at_ns // 1_000_000)
    snapshots = source.meta.of_kind("metaAndAssetCtxs")
    if not snapshots:
        raise InfoError(404, "no metaAndAssetCtxs snapshot in the archive: record without --no-meta")
    out: list[dict[str, Any]] = []
    for recv_ns, payload in snapshots:
        time_ms = recv_ns // 1_000_000
        if not start <= time_ms <= end:
            continue
        meta, ctxs = orjson.loads(payload)
        for asset, ctx in zip(meta["universe"], ctxs):
            if asset["name"] == coin:
                out.append({"coin": coin, "fundingRate": ctx["funding"], "premium": ctx.get("premium"), "time": time_ms})
    return out[:500]


def _exchange_status(source: ArchiveInfo, request: dict[str, Any], at_ns: int) -> Any:
    return exchange_status(at_ns // 1_000_000)


_HANDLERS: dict[str, Callable[[ArchiveInfo, dict[str, Any], int], Any]] = {
    **{kind: _meta_kind(kind) for kind in META_KINDS},
    "allMids": _all_mids,
    "l2Book": _l2_book,
    "candleSnapshot": _candles,
    "clearinghouseState": _clearinghouse,
    "spotClearinghouseState": _spot_clearinghouse,
    "openOrders": _open_orders,
    "frontendOpenOrders": _open_orders,
    "userFills": _user_fills,
    "userFillsByTime": _user_fills_by_time,
    "orderStatus": _order_status,
    "fundingHistory": _funding_history,
    "exchangeStatus": _exchange_status,
}

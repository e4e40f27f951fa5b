"""``POST /info`` answers of the synthetic market, read from the same ticks its streams send.

Pure: the tick is an argument (the serving layer's ``SyntheticSource.info`` turns the wall time into it). Shapes follow
the exchange's answers (the SDK's cassettes, its ``utils/types.py``); every address is a funded
account of ``market.balance`` USDC with no positions (the synthetic user streams are sample traffic
for recording, not the account's trades).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from schemas.candles import INTERVAL_MS
from schemas.info import (
    InfoError,
    clearinghouse_state,
    exchange_status,
    field,
    spot_clearinghouse_state,
    user_field,
    window,
)
from schemas.subscriptions import CANDLE_INTERVALS, is_spot_coin

from .coins import CoinMarket, fmt
from .market import SyntheticMarket
from .payloads import all_mids, funding_rate, hour_of, l2_book, order_of_fill, perp_ctx, spot_ctx, user_fills_at

FILLS_LOOKBACK_TICKS = 3000  # user fills are rebuilt from this many ticks back at most
KNOWN_SPOT_TOKENS = {1: "HFUN", 107: "HYPE", 142: "UBTC"}


def dex_of(coin: str) -> str:
    return coin.split(":", 1)[0] if ":" in coin else ""


def perp_coins(market: SyntheticMarket, dex: str = "") -> list[str]:
    return [c for c in market.coins if not is_spot_coin(c) and dex_of(c) == dex]


def perp_dexs(market: SyntheticMarket) -> list[Any]:
    names = sorted({dex_of(c) for c in market.coins if not is_spot_coin(c)} - {""})
    return [None] + [
        {
            "name": name,
            "fullName": f"{name} (synthetic builder dex)",
            "deployer": "0x" + hashlib.blake2b(f"deployer {name}".encode(), digest_size=20).hexdigest(),
            "oracleUpdater": None,
            "feeRecipient": None,
            "assetToStreamingOiCap": [],
        }
        for name in names
    ]


def meta(market: SyntheticMarket, dex: str = "") -> dict[str, Any]:
    coins = perp_coins(market, dex)
    if dex and not coins:
        raise InfoError(422, f"unknown perp dex {dex!r}")
    universe = []
    tables: dict[int, Any] = {}
    for coin in coins:
        spec = market.coins[coin]
        asset = {"szDecimals": spec.sz_decimals, "name": coin, "maxLeverage": spec.max_leverage, "marginTableId": spec.max_leverage}
        if coin in market.delisted:
            asset["isDelisted"] = True
        universe.append(asset)
        tables[spec.max_leverage] = {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": spec.max_leverage}]}
    return {"universe": universe, "marginTables": [[k, v] for k, v in sorted(tables.items())], "collateralToken": 0}


def _token(name: str, index: int, sz_decimals: int, wei_decimals: int) -> dict[str, Any]:
    token_id = "0x" + hashlib.blake2b(f"token {name}".encode(), digest_size=16).hexdigest()
    return {
        "name": name,
        "szDecimals": sz_decimals,
        "weiDecimals": wei_decimals,
        "index": index,
        "tokenId": token_id,
        "isCanonical": index <= 1,
        "evmContract": None,
        "fullName": None,
    }


def spot_pairs(market: SyntheticMarket) -> list[tuple[str, int, dict[str, Any]]]:
    """``(coin, pair index, base token)`` of every spot coin streamed: ``PURR/USDC`` is pair 0, ``@N`` pair N."""
    out = []
    for coin in market.coins:
        if not is_spot_coin(coin):
            continue
        spec = market.coins[coin]
        if coin.startswith("@"):
            index = int(coin[1:])
            name = KNOWN_SPOT_TOKENS.get(index, f"TKN{index}")
            out.append((coin, index, _token(name, index + 1, spec.sz_decimals, spec.sz_decimals + 5)))
        else:
            base = coin.split("/")[0]
            out.append((coin, 0, _token(base, 1, spec.sz_decimals, spec.sz_decimals + 5)))
    return sorted(out, key=lambda pair: pair[1])


def spot_meta(market: SyntheticMarket) -> dict[str, Any]:
    pairs = spot_pairs(market)
    tokens = {0: _token("USDC", 0, 8, 8)}
    for _, _, token in pairs:
        tokens[token["index"]] = token
    universe = [{"tokens": [token["index"], 0], "name": coin, "index": index, "isCanonical": not coin.startswith("@")} for coin, index, token in pairs]
    for pair in universe:
        if pair["name"] in market.delisted:
            pair["isDelisted"] = True
    return {"universe": universe, "tokens": [tokens[i] for i in sorted(tokens)]}


def _heads(market: SyntheticMarket, coins: list[str], n: int) -> list[CoinMarket]:
    return [market.timeline.head(c, n) for c in coins]


def _fills(market: SyntheticMarket, user: str, first: int, last: int) -> list[dict[str, Any]]:
    """The synthetic user's fills of ticks ``first..last``, oldest first: what its streams send."""
    first = max(1, first, last - FILLS_LOOKBACK_TICKS)
    if last < first:
        return []
    markets = [market.timeline.market_at(c, first - 1) for c in market.coins]
    out: list[dict[str, Any]] = []
    position: dict[str, float] = {}
    for n in range(first, last + 1):
        for m in markets:
            m.advance()
        out.extend(user_fills_at(market.seed, user, n, markets, position))
    return out


def _order_status(fill: dict[str, Any]) -> dict[str, Any]:
    order = {
        **order_of_fill(fill),
        "triggerCondition": "N/A",
        "isTrigger": False,
        "triggerPx": "0.0",
        "children": [],
        "isPositionTpsl": False,
        "reduceOnly": False,
        "orderType": "Limit",
        "tif": "Ioc",
        "cloid": None,
    }
    return {"status": "order", "order": {"order": order, "status": "filled", "statusTimestamp": fill["time"]}}


def answer(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    """The answer to a checked ``/info`` request at tick ``n`` of the shared market."""
    handler = _HANDLERS.get(request["type"])
    if handler is None:
        raise InfoError(422, f"the simulator does not answer {request['type']!r}")
    return handler(market, request, n)


def _meta(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    return meta(market, field(request, "dex", optional=True) or "")


def _meta_and_ctxs(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    dex = field(request, "dex", optional=True) or ""
    m = meta(market, dex)
    return [m, [perp_ctx(h, market.seed) for h in _heads(market, [u["name"] for u in m["universe"]], n)]]


def _spot_meta_and_ctxs(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    return [spot_meta(market), [spot_ctx(h) for h in _heads(market, [coin for coin, _, _ in spot_pairs(market)], n)]]


def _all_mids(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    dex = field(request, "dex", optional=True)
    coins = list(market.coins) if not dex else perp_coins(market, dex)  # like the allMids stream: every coin
    return all_mids(_heads(market, coins, n))


def _l2_book(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    coin = field(request, "coin")
    sig_figs = field(request, "nSigFigs", int, optional=True)
    if sig_figs is not None and sig_figs not in (2, 3, 4, 5):
        raise InfoError(422, f"nSigFigs must be 2, 3, 4 or 5 (or null), not {sig_figs}")
    if coin not in market.coins:
        return None  # the exchange answers null for a coin it does not list
    return l2_book(market.timeline.head(coin, n), sig_figs)


def _candles(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    req = field(request, "req", dict)
    coin, interval = field(req, "coin"), field(req, "interval")
    if interval not in CANDLE_INTERVALS:
        raise InfoError(422, f"unknown interval {interval!r}: use one of {', '.join(INTERVAL_MS)}")
    start, end = window(req, market.clock.time_ms(n) if market.clock else market.start_ms)
    if coin not in market.coins:
        return []
    candles = market.timeline.candles(coin, interval, n)
    return [c for c in candles if start <= c["t"] <= end][-5000:]


def _clearinghouse(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    user_field(request)
    return clearinghouse_state(market.balance, market.start_ms + n * market.tick_ms)


def _spot_clearinghouse(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    user_field(request)
    return spot_clearinghouse_state({}, {})


def _open_orders(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    user_field(request)
    return []  # synthetic orders fill at once: none rests


def _user_fills(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    user = user_field(request)
    return list(reversed(_fills(market, user, n - FILLS_LOOKBACK_TICKS, n)))[:2000]


def _user_fills_by_time(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    user = user_field(request)
    start, end = window(request, market.start_ms + n * market.tick_ms)
    first = max(1, -(-(start - market.start_ms) // market.tick_ms))
    last = min(n, (end - market.start_ms) // market.tick_ms)
    return _fills(market, user, first, last)[:2000]


def _order_status_answer(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    user = user_field(request)
    oid = field(request, "oid", (int, str))
    for fill in _fills(market, user, n - FILLS_LOOKBACK_TICKS, n):
        if fill["oid"] == oid:
            return _order_status(fill)
    return {"status": "unknownOid"}


def _funding_history(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    coin = field(request, "coin")
    start, end = window(request, market.start_ms + n * market.tick_ms)
    if coin not in market.coins or is_spot_coin(coin):
        return []
    first = max(-(-start // 3_600_000), -(-market.start_ms // 3_600_000))
    out = []
    for hour in range(first, hour_of(end) + 1):
        rate = funding_rate(market.seed, coin, hour)
        out.append({"coin": coin, "fundingRate": rate, "premium": fmt(float(rate) - 0.0000125, 8), "time": hour * 3_600_000})
        if len(out) == 500:
            break
    return out


def _exchange_status(market: SyntheticMarket, request: dict[str, Any], n: int) -> Any:
    return exchange_status(market.start_ms + n * market.tick_ms)


_HANDLERS: dict[str, Callable[[SyntheticMarket, dict[str, Any], int], Any]] = {
    "meta": _meta,
    "spotMeta": lambda market, request, n: spot_meta(market),
    "metaAndAssetCtxs": _meta_and_ctxs,
    "spotMetaAndAssetCtxs": _spot_meta_and_ctxs,
    "perpDexs": lambda market, request, n: perp_dexs(market),
    "allMids": _all_mids,
    "l2Book": _l2_book,
    "candleSnapshot": _candles,
    "clearinghouseState": _clearinghouse,
    "spotClearinghouseState": _spot_clearinghouse,
    "openOrders": _open_orders,
    "frontendOpenOrders": _open_orders,
    "userFills": _user_fills,
    "userFillsByTime": _user_fills_by_time,
    "orderStatus": _order_status_answer,
    "fundingHistory": _funding_history,
    "exchangeStatus": _exchange_status,
}

"""``POST /info`` without I/O: parse a request, check its fields, answer errors as the exchange does.

The exchange is an axum server: a body that is not JSON is a 400, a body that does not fit its
request types a 422 ("Failed to deserialize the JSON body into the target type"), a body past its
limit a 413. Each source (the synthetic market, an archive) answers the types it can through
``InfoSource.info``; this module holds what they share, so both speak the same errors and shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

BODY_LIMIT_BYTES = 256 * 1024  # the largest /info or /exchange body read; past it, a 413

NODE_FILE_SNAPSHOT = "fileSnapshot"  # a node's own info server (port 3001), not the exchange: ``simulate --node-data``

# what the SDK's Info asks of a user that only a paper account (simulate, serve --paper) answers
PAPER_ACCOUNT_INFO = ("historicalOrders", "userFees", "userRateLimit", "portfolio", "activeAssetData", "userFunding", "userNonFundingLedgerUpdates")

# every type the servers answer (what the issue and DESIGN.md list); others are the exchange's 422
INFO_TYPES = (
    "meta",
    "spotMeta",
    "metaAndAssetCtxs",
    "spotMetaAndAssetCtxs",
    "perpDexs",
    "allMids",
    "l2Book",
    "candleSnapshot",
    "clearinghouseState",
    "spotClearinghouseState",
    "openOrders",
    "frontendOpenOrders",
    "userFills",
    "userFillsByTime",
    "orderStatus",
    "fundingHistory",
    "exchangeStatus",
    *PAPER_ACCOUNT_INFO,
)

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
DESERIALIZE = "Failed to deserialize the JSON body into the target type"


@dataclass
class InfoError(Exception):
    """An answer that is not a 200: the HTTP status and the short text the body carries."""

    status: int
    text: str

    def __str__(self) -> str:
        return f"{self.status}: {self.text}"


class InfoSource(Protocol):
    def info(self, request: dict[str, Any], at_ns: int) -> Any:
        """The answer to ``request`` (already checked by ``parse_info_body``) as of ``at_ns``; or ``InfoError``."""


def parse_info_body(body: bytes) -> dict[str, Any]:
    """The request object of a body, or the exchange's error for it."""
    if len(body) > BODY_LIMIT_BYTES:
        raise InfoError(413, "Failed to buffer the request body: length limit exceeded")
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InfoError(400, f"Failed to parse the request body as JSON: {exc}") from None
    return check_info_request(request)


def parse_exchange_body(body: bytes) -> dict[str, Any]:
    """A ``POST /exchange`` body: ``{"action": {"type": ...}, "nonce": N, "signature": {...}, ...}``, or the 400/422."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InfoError(400, f"Failed to parse the request body as JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InfoError(422, f"{DESERIALIZE}: invalid type: expected an object")
    for name in ("action", "nonce", "signature"):
        if name not in request:
            raise InfoError(422, f"{DESERIALIZE}: missing field `{name}`")
    if not isinstance(request["action"], dict) or "type" not in request["action"]:
        raise InfoError(422, f"{DESERIALIZE}: `action` must be an object with a `type`")
    return request


def check_info_request(request: Any) -> dict[str, Any]:
    """A parsed request checked for its ``type``: the same rule over HTTP and over the websocket."""
    if not isinstance(request, dict):
        raise InfoError(422, f"{DESERIALIZE}: invalid type: expected an object")
    kind = request.get("type")
    if kind is None:
        raise InfoError(422, f"{DESERIALIZE}: missing field `type`")
    if kind not in INFO_TYPES and kind != NODE_FILE_SNAPSHOT:
        raise InfoError(422, f"{DESERIALIZE}: unknown variant `{kind}`, expected one of {', '.join(f'`{t}`' for t in INFO_TYPES)}")
    return request


def field(request: dict[str, Any], name: str, kind: type | tuple[type, ...] = str, *, optional: bool = False) -> Any:
    """A field of the request, of the right JSON type, or the exchange's 422 naming it."""
    if name not in request or request[name] is None:
        if optional:
            return None
        raise InfoError(422, f"{DESERIALIZE}: missing field `{name}`")
    value = request[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InfoError(422, f"{DESERIALIZE}: invalid type for `{name}`: {orjson.dumps(value).decode()[:80]}")
    return value


def user_field(request: dict[str, Any], name: str = "user") -> str:
    """A user address, lower-cased (the exchange takes either case)."""
    value = field(request, name)
    if not _ADDRESS.match(value):
        raise InfoError(422, f"{DESERIALIZE}: invalid address `{value}` for `{name}`: expected 0x and 40 hex digits")
    return value.lower()


def wire_number(value: float, decimals: int) -> str:
    """A number as the exchange prints it: rounded to ``decimals``, trailing zeros trimmed, at least
    one decimal (``"0.0"``, ``"12.5"``, ``"3.0"``), never ``"-0.0"``."""
    text = f"{value:.{max(0, decimals)}f}"
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text += "0"
    else:
        text += ".0"
    return "0.0" if text in ("-0.0", "-0") else text


def money(value: float) -> str:
    """USDC amounts as the exchange prints them: up to 6 decimals."""
    return wire_number(value, 6)


def margin_summary(account_value: float, ntl_pos: float = 0.0, raw_usd: float | None = None, margin_used: float = 0.0) -> dict[str, str]:
    return {
        "accountValue": money(account_value),
        "totalNtlPos": money(ntl_pos),
        "totalRawUsd": money(account_value if raw_usd is None else raw_usd),
        "totalMarginUsed": money(margin_used),
    }


def clearinghouse_state(balance: float, time_ms: int, positions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A perp account: ``positions`` are ``assetPositions`` entries; the summary adds them up."""
    positions = positions or []
    ntl = sum(float(p["position"]["positionValue"]) for p in positions)
    upnl = sum(float(p["position"]["unrealizedPnl"]) for p in positions)
    used = sum(float(p["position"]["marginUsed"]) for p in positions)
    value = balance + upnl
    summary = margin_summary(value, ntl, balance, used)
    return {
        "marginSummary": summary,
        "crossMarginSummary": dict(summary),
        "crossMaintenanceMarginUsed": money(used / 2),
        "withdrawable": money(max(0.0, value - used)),
        "assetPositions": positions,
        "time": time_ms,
    }


def spot_clearinghouse_state(balances: dict[str, float], token_index: dict[str, int]) -> dict[str, Any]:
    """Spot balances by token name, as ``{"balances": [{"coin", "token", "hold", "total", "entryNtl"}]}``."""
    return {
        "balances": [
            {"coin": coin, "token": token_index.get(coin, 0), "hold": "0.0", "total": money(total), "entryNtl": "0.0"}
            for coin, total in balances.items()
        ]
    }


def exchange_status(time_ms: int) -> dict[str, Any]:
    return {"time": time_ms, "specialStatuses": None}


def window(request: dict[str, Any], now_ms: int) -> tuple[int, int]:
    """``startTime``/``endTime`` of a request (end defaults to now, and never passes it)."""
    start = field(request, "startTime", int)
    end = field(request, "endTime", int, optional=True)
    return start, min(now_ms, end) if end is not None else now_ms


__all__ = [
    "BODY_LIMIT_BYTES",
    "INFO_TYPES",
    "PAPER_ACCOUNT_INFO",
    "InfoError",
    "InfoSource",
    "check_info_request",
    "clearinghouse_state",
    "exchange_status",
    "field",
    "margin_summary",
    "money",
    "parse_exchange_body",
    "parse_info_body",
    "spot_clearinghouse_state",
    "user_field",
    "window",
    "wire_number",
]

"""Hyperliquid's websocket protocol, sans I/O: build and parse the frames of both sides.

The recorder (a client) and the simulator/replay server use these, so both speak exactly the
same wire format. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import orjson

from .subscriptions import Subscription, SubscriptionError, parse_subscription

GREETING = "Websocket connection established."


class FrameError(ValueError):
    """Something that is not a websocket data frame was given to be archived."""


class ProtocolError(ValueError):
    """A frame that does not follow the protocol; the message is what the server would answer."""


# --- client -> server -------------------------------------------------------------------------


def subscribe_frame(subscription: Subscription | Mapping[str, Any]) -> str:
    return _request("subscribe", subscription)


def unsubscribe_frame(subscription: Subscription | Mapping[str, Any]) -> str:
    return _request("unsubscribe", subscription)


def ping_frame() -> str:
    return '{"method":"ping"}'


def _request(method: str, subscription: Subscription | Mapping[str, Any]) -> str:
    body = subscription.to_dict() if isinstance(subscription, Subscription) else dict(subscription)
    return orjson.dumps({"method": method, "subscription": body}).decode()


@dataclass(frozen=True)
class Subscribe:
    subscription: Subscription
    echo: dict[str, Any]  # the subscription as the server echoes it back


@dataclass(frozen=True)
class Unsubscribe:
    subscription: Subscription
    echo: dict[str, Any]


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Post:
    """``{"method":"post","id":N,"request":{"type":"info"|"action","payload":{...}}}``: an HTTP request over the socket."""

    id: int
    kind: str  # "info" or "action"
    payload: dict[str, Any]


ClientRequest = Union[Subscribe, Unsubscribe, Ping, Post]


def parse_client_frame(text: str | bytes, *, allow_unknown: bool = False) -> ClientRequest:
    """Parse a client's request; ``ProtocolError`` carries the sentence the server answers with."""
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"Error parsing JSON into valid websocket request: {_text(text)[:200]}") from None
    if not isinstance(request, dict) or request.get("method") not in ("subscribe", "unsubscribe", "ping", "post"):
        raise ProtocolError(f"Error parsing JSON into valid websocket request: {_text(text)[:200]}")
    if request["method"] == "ping":
        return Ping()
    if request["method"] == "post":
        return _parse_post(request, text)
    raw_sub = request.get("subscription")
    try:
        subscription = parse_subscription(raw_sub, allow_unknown=allow_unknown)  # type: ignore[arg-type]
    except SubscriptionError:
        raise ProtocolError(f"Invalid subscription {orjson.dumps(raw_sub).decode()}") from None
    echo = normalised_echo(subscription)
    if request["method"] == "subscribe":
        return Subscribe(subscription, echo)
    return Unsubscribe(subscription, echo)


def _parse_post(request: dict[str, Any], text: str | bytes) -> Post:
    inner = request.get("request")
    post_id = request.get("id")
    if (
        not isinstance(post_id, int)
        or isinstance(post_id, bool)
        or not isinstance(inner, dict)
        or inner.get("type") not in ("info", "action")
        or not isinstance(inner.get("payload"), dict)
    ):
        raise ProtocolError(f"Error parsing JSON into valid websocket request: {_text(text)[:200]}")
    return Post(post_id, inner["type"], inner["payload"])


def post_frame(post_id: int, kind: str, payload: Mapping[str, Any]) -> str:
    """A client's post request (``kind`` "info" or "action")."""
    return orjson.dumps({"method": "post", "id": post_id, "request": {"type": kind, "payload": payload}}).decode()


def normalised_echo(subscription: Subscription) -> dict[str, Any]:
    """The subscription as Hyperliquid echoes it: l2Book always carries ``nSigFigs`` and ``mantissa``."""
    echo = subscription.to_dict()
    if subscription.type == "l2Book":
        echo = {"type": "l2Book", "coin": subscription.coin, "nSigFigs": subscription.n_sig_figs, "mantissa": subscription.mantissa}
    return echo


def _text(text: str | bytes) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else text


# --- server -> client -------------------------------------------------------------------------


def greeting_frame() -> str:
    return GREETING


def subscription_response_frame(method: str, echo: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"channel": "subscriptionResponse", "data": {"method": method, "subscription": echo}})


def pong_frame() -> bytes:
    return b'{"channel":"pong"}'


def error_frame(sentence: str) -> bytes:
    return orjson.dumps({"channel": "error", "data": sentence})


def post_response_frame(post_id: int, kind: str, data: Any, *, info_type: str | None = None) -> bytes:
    """The answer to a post: ``info`` answers carry ``{"type": <info type>, "data": ...}``, actions
    the ``/exchange`` response, errors the sentence."""
    if kind == "info":
        payload: Any = {"type": info_type, "data": data}
    else:
        payload = data
    return orjson.dumps({"channel": "post", "data": {"id": post_id, "response": {"type": kind, "payload": payload}}})


def data_frame(channel: str, data: Any) -> bytes:
    return orjson.dumps({"channel": channel, "data": data})


@dataclass(frozen=True)
class Greeting:
    text: str


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class SubscriptionResponse:
    method: str
    subscription: dict[str, Any]


@dataclass(frozen=True)
class ServerError:
    message: str


@dataclass(frozen=True)
class DataFrame:
    channel: str
    message: dict[str, Any]  # the whole frame, as received


@dataclass(frozen=True)
class Malformed:
    text: str
    reason: str


ServerFrame = Union[Greeting, Pong, SubscriptionResponse, ServerError, DataFrame, Malformed]


def parse_server_frame(text: str | bytes) -> ServerFrame:
    """Classify a frame from the server. Never raises: a frame that makes no sense is ``Malformed``."""
    if text == GREETING or text == GREETING.encode():
        return Greeting(GREETING)
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return Malformed(_text(text), f"not JSON: {exc}")
    if not isinstance(message, dict) or not isinstance(message.get("channel"), str):
        return Malformed(_text(text), "not an object with a 'channel' string")
    channel = message["channel"]
    if channel == "pong":
        return Pong()
    if channel == "error":
        return ServerError(str(message.get("data")))
    if channel == "subscriptionResponse":
        data = message.get("data")
        if isinstance(data, dict) and isinstance(data.get("subscription"), dict):
            return SubscriptionResponse(str(data.get("method")), data["subscription"])
        return Malformed(_text(text), "subscriptionResponse without a subscription")
    if "data" not in message:
        return Malformed(_text(text), f"{channel} frame without 'data'")
    return DataFrame(channel, message)


# --- routing a data frame without parsing it -----------------------------------------------------

_CHANNEL_PREFIX = b'{"channel":"'
_DATA_KEY = b'","data":'
# the hot channels, as the exchange orders their keys: what follows "data": up to the coin
_COIN_FIRST = {b"l2Book": b'{"coin":"', b"bbo": b'{"coin":"', b"activeAssetCtx": b'{"coin":"', b"trades": b'[{"coin":"'}


def route_data_frame(payload: bytes) -> tuple[str, str] | None:
    """``(channel, SDK identifier)`` of a hot-channel data frame, read from its first bytes only.

    A recorder that journals frames as bytes needs only this to file a frame; parsing a 40-level
    book to learn its coin costs more than receiving it. ``None`` where the bytes do not show it
    plainly (another channel, another key order, an escape in the coin): parse the frame then.
    The frame's body is not checked here: whoever parses it later finds it malformed, if it is.
    """
    if not payload.startswith(_CHANNEL_PREFIX) or payload[-1:] != b"}":
        return None
    end = payload.find(b'"', 12)
    if end < 0 or not payload.startswith(_DATA_KEY, end):
        return None
    channel = payload[12:end]
    start = end + len(_DATA_KEY)
    if channel == b"allMids":
        return "allMids", "allMids"
    coin_key = _COIN_FIRST.get(channel)
    if coin_key is None or not payload.startswith(coin_key, start):
        return None
    start += len(coin_key)
    stop = payload.find(b'"', start)
    coin = payload[start:stop]
    if stop < 0 or b"\\" in coin:
        return None
    try:
        name = channel.decode()
        return name, f"{name}:{coin.decode().lower()}"
    except UnicodeDecodeError:
        return None

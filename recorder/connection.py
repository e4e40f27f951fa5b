"""One websocket connection to Hyperliquid, kept alive: subscribe, ping, detect stalls, reconnect.

Everything it sees goes to a sink: data frames with their receive time, and events (connect,
subscribed, server error, malformed frame, stall, disconnect, reconnect) so gaps are visible.

Frames are handed to the sink as websockets' sans-I/O protocol parses them, inside the transport's
``data_received``: no queue, future or task switch per frame (those cost more than the parsing).
The socket's handshake, pings, close and TLS stay websockets' own.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode

from schemas.protocol import (
    DataFrame,
    Greeting,
    Malformed,
    Pong,
    ServerError,
    SubscriptionResponse,
    parse_server_frame,
    ping_frame,
    route_data_frame,
    subscribe_frame,
    unsubscribe_frame,
)
from schemas.subscriptions import Subscription, frame_identifier

MAINNET_URL = "wss://api.hyperliquid.xyz/ws"
TESTNET_URL = "wss://api.hyperliquid-testnet.xyz/ws"


@dataclass(frozen=True)
class ConnectionConfig:
    ping_interval_s: float = 50.0  # Hyperliquid closes connections silent for 60 s
    stall_s: float = 65.0  # no frame at all (not even a pong) for this long: reconnect
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    open_timeout_s: float = 10.0


class Sink(Protocol):
    def on_data(self, connection: int, channel: str, payload: bytes, recv_ns: int, sub: Subscription | None) -> None: ...

    def on_event(self, kind: str, connection: int, detail: dict[str, Any] | None = None, text: str | None = None) -> None: ...


class DirectConnection(ClientConnection):
    """A client connection that hands each whole message to ``deliver`` as soon as it is parsed.

    Messages that arrive before ``deliver`` is set (the server's greeting can share a read with the
    handshake) wait in a list and are delivered first, in order.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deliver: Callable[[bytes], None] | None = None
        self._early: list[bytes] = []
        self._fragments: list[bytes] = []

    def deliver_to(self, deliver: Callable[[bytes], None]) -> None:
        early, self._early = self._early, []
        for message in early:
            deliver(message)
        self._deliver = deliver

    def process_event(self, event: Any) -> None:
        if self.response is None or type(event) is not Frame:
            super().process_event(event)  # the handshake response
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not event.fin:
                self._fragments = [event.data]
                return
            message = event.data
        elif opcode is Opcode.CONT:
            self._fragments.append(event.data)
            if not event.fin:
                return
            message, self._fragments = b"".join(self._fragments), []
        else:
            super().process_event(event)  # ping, pong, close: websockets answers them
            return
        if type(message) is not bytes:
            message = bytes(message)  # the parser hands out a bytearray at times
        if self._deliver is None:
            self._early.append(message)
        else:
            self._deliver(message)


def backoff_s(attempt: int, config: ConnectionConfig, rng: random.Random) -> float:
    """Capped exponential backoff with jitter (half to full of the step), so reconnects do not stampede."""
    step = min(config.backoff_cap_s, config.backoff_base_s * (2**attempt))
    return step * (0.5 + rng.random() / 2)


class Connection:
    """Carries a fixed set of subscriptions over one socket, reconnecting and resubscribing as needed.

    The subscriptions of one connection never share an SDK identifier, so each frame's subscription
    is known exactly (``user`` frames carry no user; l2Book frames carry no aggregation).
    """

    def __init__(self, number: int, url: str, subscriptions: list[Subscription], sink: Sink, config: ConnectionConfig, seed: int | None = None) -> None:
        self.number = number
        self.url = url
        self.subscriptions = subscriptions
        self.by_identifier = {s.identifier: s for s in subscriptions}
        self.sink = sink
        self.config = config
        self.rng = random.Random(seed)
        self.connects = 0
        self.frames = 0
        self._ws: ClientConnection | None = None
        self.last_frame = time.monotonic()
        self._sends: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def has_room_for(self, sub: Subscription, max_per_connection: int) -> bool:
        return len(self.subscriptions) < max_per_connection and sub.identifier not in self.by_identifier

    def add(self, sub: Subscription) -> None:
        """Subscribe now if connected; every reconnect subscribes the current set."""
        self.subscriptions.append(sub)
        self.by_identifier[sub.identifier] = sub
        self._send_now(subscribe_frame(sub))

    def remove(self, streams: set[str]) -> None:
        gone = [s for s in self.subscriptions if s.stream in streams]
        self.subscriptions = [s for s in self.subscriptions if s.stream not in streams]
        for sub in gone:
            self.by_identifier.pop(sub.identifier, None)
            self._send_now(unsubscribe_frame(sub))

    def _send_now(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            return

        async def send() -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(text)

        task = asyncio.create_task(send())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                ws = await asyncio.wait_for(
                    connect(self.url, ping_interval=None, max_size=None, open_timeout=None, compression=None, create_connection=DirectConnection),
                    self.config.open_timeout_s,
                )
            except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
                detail: dict[str, Any] = {"url": self.url, "error": _describe(exc)}
                if isinstance(exc, InvalidStatus):
                    detail["status"] = exc.response.status_code
                self.sink.on_event("connect_failed", self.number, detail)
            else:
                attempt = 0
                self.connects += 1
                self.sink.on_event("connect", self.number, {"url": self.url, "attempt": self.connects})
                reason = await self._session(ws, stop)
                self.sink.on_event("disconnect", self.number, reason)
            if stop.is_set():
                break
            delay = backoff_s(attempt, self.config, self.rng)
            attempt += 1
            self.sink.on_event("reconnect_wait", self.number, {"delay_s": round(delay, 3), "attempt": attempt})
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _session(self, ws: DirectConnection, stop: asyncio.Event) -> dict[str, Any]:
        self._ws = ws
        self.last_frame = time.monotonic()
        watchdog = asyncio.create_task(self._watchdog(ws, stop))
        reason: dict[str, Any] = {}
        try:
            for sub in self.subscriptions:
                await ws.send(subscribe_frame(sub))
            await self._receive(ws)
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            try:
                reason = await watchdog
            except asyncio.CancelledError:
                pass
            await ws.close()
            self._ws = None
        code = ws.close_code
        reason = {**reason, "code": code, "reason": ws.close_reason or ""}
        if stop.is_set():
            reason["stopping"] = True
        return reason

    async def _receive(self, ws: DirectConnection) -> None:
        ws.deliver_to(self._on_message)
        await ws.wait_closed()

    def _on_message(self, payload: bytes) -> None:
        """One message from the server (runs inside the transport's read callback: must not raise)."""
        recv_ns = time.time_ns()
        self.last_frame = time.monotonic()
        route = route_data_frame(payload)
        if route is not None:  # a hot channel's frame, filed from its first bytes: the archiver parses it
            self.frames += 1
            subs = self.subscriptions
            self.sink.on_data(self.number, route[0], payload, recv_ns, subs[0] if len(subs) == 1 else self.by_identifier.get(route[1]))
            return
        frame = parse_server_frame(payload)
        if type(frame) is DataFrame:
            self.frames += 1
            subs = self.subscriptions
            sub = subs[0] if len(subs) == 1 else self.by_identifier.get(frame_identifier(frame.message) or "")
            self.sink.on_data(self.number, frame.channel, payload, recv_ns, sub)
        elif isinstance(frame, (Pong, Greeting)):
            return
        elif isinstance(frame, SubscriptionResponse):
            self.sink.on_event("subscribed" if frame.method == "subscribe" else "unsubscribed", self.number, {"subscription": frame.subscription})
        elif isinstance(frame, ServerError):
            self.sink.on_event("server_error", self.number, {"error": frame.message})
        elif isinstance(frame, Malformed):
            self.sink.on_event("malformed", self.number, {"reason": frame.reason}, text=frame.text)

    async def _watchdog(self, ws: ClientConnection, stop: asyncio.Event) -> dict[str, Any]:
        """Ping on schedule; close on a stall or on stop. Returns why it closed the connection."""
        config = self.config
        next_ping = time.monotonic() + config.ping_interval_s
        tick = min(0.25, config.ping_interval_s / 4, config.stall_s / 4)
        while True:
            if stop.is_set():
                await ws.close(1000, "recorder stopping")
                return {"by": "recorder"}
            now = time.monotonic()
            if now - self.last_frame > config.stall_s:
                self.sink.on_event("stall", self.number, {"silent_s": round(now - self.last_frame, 3)})
                ws.transport.abort()
                return {"by": "stall"}
            if now >= next_ping:
                next_ping = now + config.ping_interval_s
                try:
                    await ws.send(ping_frame())
                except ConnectionClosed:
                    return {}
            await asyncio.sleep(tick)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out opening the connection"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def plan_connections(subscriptions: list[Subscription], max_per_connection: int) -> list[list[Subscription]]:
    """Spread subscriptions over connections: at most ``max_per_connection`` each, and never two with
    the same SDK identifier on one connection (their frames could not be told apart)."""
    groups: list[list[Subscription]] = []
    identifiers: list[set[str]] = []
    for sub in subscriptions:
        for group, ids in zip(groups, identifiers):
            if len(group) < max_per_connection and sub.identifier not in ids:
                group.append(sub)
                ids.add(sub.identifier)
                break
        else:
            groups.append([sub])
            identifiers.append({sub.identifier})
    return groups

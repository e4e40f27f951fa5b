"""A local Hyperliquid: an asyncio websocket server at ``/ws`` speaking Hyperliquid's protocol.

The frames come from a pluggable *message source* (the synthetic market, or an archive), so the
same server is the simulator and the replay server. Faults can be injected per connection, and
every frame sent can be logged, so tests can check an archive against exactly what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Protocol

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from schemas.protocol import (
    GREETING,
    Ping,
    ProtocolError,
    Subscribe,
    error_frame,
    parse_client_frame,
    pong_frame,
    subscription_response_frame,
)
from schemas.subscriptions import Subscription


class MessageSource(Protocol):
    """Where a server's frames come from."""

    def check(self, sub: Subscription) -> str | None:
        """``None`` if ``sub`` can be served, else the sentence of the error frame to send."""

    def frames(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        """The frames of ``sub`` in order (a snapshot first, where Hyperliquid sends one)."""


class TimedSource(MessageSource, Protocol):
    def timed_frames(self, sub: Subscription, clock_start_ns: int) -> Iterator[tuple[float, dict[str, Any]]]:
        """``(seconds after the connection's replay clock started, frame)``: the source paces itself."""


@dataclass(frozen=True)
class Limits:
    """Hyperliquid's per-IP limits (docs: "Rate limits and user limits") and its idle timeout."""

    max_connections: int = 100
    max_subscriptions: int = 1000
    max_users: int = 10
    max_messages_per_minute: int = 2000
    idle_timeout_s: float = 60.0
    send_timeout_s: float = 10.0  # a client that reads nothing for this long is dropped, not buffered for


@dataclass(frozen=True)
class Faults:
    """Bad days on demand. Counts are data frames sent on one connection."""

    drop_after_frames: int | None = None
    drop_after_s: float | None = None
    stall_after_frames: int | None = None
    malformed_every: int | None = None
    error_every: int | None = None
    refuse_for_s: float = 0.0  # refuse connections for this long after the server starts
    refuse_after_drop_s: float = 0.0  # and for this long after each injected drop
    connections: frozenset[int] | None = None  # which connections (1, 2, ...) get the faults; None: all

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> Faults:
        """From CLI words like ``drop-after-frames=100`` or ``connections=1,3``."""
        known = {f.name.replace("_", "-"): f for f in fields(cls)}
        values: dict[str, Any] = {}
        for spec in specs:
            name, _, value = spec.partition("=")
            f = known.get(name.strip())
            if f is None or not value:
                raise ValueError(f"bad fault {spec!r}: use NAME=VALUE with NAME one of {', '.join(sorted(known))}")
            try:
                if f.name == "connections":
                    values[f.name] = frozenset(int(v) for v in value.split(","))
                elif "int" in str(f.type):
                    values[f.name] = int(value)
                else:
                    values[f.name] = float(value)
            except ValueError:
                raise ValueError(f"bad fault {spec!r}: {value!r} is not a number") from None
        return cls(**values)

    def applies_to(self, connection: int) -> bool:
        return self.connections is None or connection in self.connections


MALFORMED_TEXT = '{"channel":"trades","data":[{"coin":'  # cut off mid-frame


@dataclass
class _Client:
    """One connection's state."""

    id: int
    ip: str
    ws: ServerConnection
    faults: Faults
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    data_sent: int = 0
    stalled: bool = False
    last_heard: float = field(default_factory=time.monotonic)
    sending_since: float | None = None
    clock_start_ns: int | None = None


class HyperliquidServer:
    """Serve ``source`` over Hyperliquid's websocket protocol on ``host:port`` (port 0: any free port)."""

    def __init__(
        self,
        source: MessageSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float | None = 10.0,
        limits: Limits = Limits(),
        faults: Faults = Faults(),
        fault_schedule: Callable[[int], Faults] | None = None,
        sent_log: str | Path | IO[str] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        prerender: int = 0,
    ) -> None:
        self.source = source
        self.prerender = prerender  # >0: each stream cycles through its first N frames, encoded once
        self.host = host
        self.port = port
        self.rate = rate
        self.limits = limits
        self.faults = faults
        self.fault_schedule = fault_schedule  # faults per connection number: a soak test's script
        self.clock_ns = clock_ns
        self._sent_log_arg = sent_log
        self._sent_log: IO[str] | None = None
        self._server: Server | None = None
        self._clients: dict[int, _Client] = {}
        self._next_id = 0
        self._refuse_until = 0.0
        self._quiet = False
        self._per_ip_messages: dict[str, list[float]] = {}
        self.stats: Counter[str] = Counter()

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self) -> HyperliquidServer:
        if isinstance(self._sent_log_arg, (str, Path)):
            self._sent_log = open(self._sent_log_arg, "a", encoding="utf-8", buffering=1 << 16)
        elif self._sent_log_arg is not None:
            self._sent_log = self._sent_log_arg
        self._refuse_until = time.monotonic() + self.faults.refuse_for_s
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            ping_interval=None,  # Hyperliquid relies on the client's {"method":"ping"}
            max_size=2**20,
        )
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self.port
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._sent_log is not None:
            self._sent_log.flush()
            if isinstance(self._sent_log_arg, (str, Path)):
                self._sent_log.close()
            self._sent_log = None

    async def __aenter__(self) -> HyperliquidServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def base_url(self) -> str:
        """The HTTP base URL the SDK takes (it derives the ws URL by replacing http with ws, adding /ws)."""
        return f"http://{self.host}:{self.port}"

    def refuse_connections(self, seconds: float) -> None:
        self._refuse_until = max(self._refuse_until, time.monotonic() + seconds)

    def quiesce(self) -> None:
        """Stop sending data frames on every connection (pongs still flow): a feed that has ended."""
        self._quiet = True

    def drop_all(self) -> None:
        """Cut every connection without a close frame, as a network failure would."""
        for client in list(self._clients.values()):
            client.ws.transport.abort()

    # --- HTTP ------------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?")[0] != "/ws":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Hyperliquid's websocket is at /ws\n")
        if time.monotonic() < self._refuse_until:
            self.stats["refused"] += 1
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Refusing connections for now\n")
        ip = _ip(connection)
        if sum(1 for c in self._clients.values() if c.ip == ip) >= self.limits.max_connections:
            return connection.respond(http.HTTPStatus.TOO_MANY_REQUESTS, "Too many connections\n")
        return None

    # --- one connection --------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self._next_id += 1
        if self.fault_schedule is not None:
            faults = self.fault_schedule(self._next_id)
        else:
            faults = self.faults if self.faults.applies_to(self._next_id) else Faults()
        client = _Client(self._next_id, _ip(ws), ws, faults)
        self._clients[client.id] = client
        self.stats["connections"] += 1
        watchdog = asyncio.create_task(self._watchdog(client))
        try:
            await self._send(client, GREETING)
            async for text in ws:
                client.last_heard = time.monotonic()
                await self._on_request(client, text)
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            for task in client.tasks.values():
                task.cancel()
            await asyncio.gather(watchdog, *client.tasks.values(), return_exceptions=True)
            del self._clients[client.id]

    async def _watchdog(self, client: _Client) -> None:
        """Close a connection idle past the limit; apply time-based faults."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if now - client.last_heard > self.limits.idle_timeout_s:
                await client.ws.close(1000, "idle timeout")
                return
            if client.sending_since is not None and now - client.sending_since > self.limits.send_timeout_s:
                self.stats["slow_consumers_dropped"] += 1  # it reads nothing: drop it, buffer nothing
                client.ws.transport.abort()
                return
            if client.faults.drop_after_s is not None and now - started >= client.faults.drop_after_s:
                await self._drop(client)
                return

    async def _drop(self, client: _Client) -> None:
        """Cut the connection without a close frame, once what the sent log calls sent has left
        (aborting discards the transport's buffer: those frames would be logged but never sent)."""
        self.stats["dropped"] += 1
        client.stalled = True  # nothing more goes out
        if client.faults.refuse_after_drop_s:
            self.refuse_connections(client.faults.refuse_after_drop_s)
        transport = client.ws.transport
        for _ in range(200):
            if transport.is_closing() or transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.005)
        transport.abort()

    def _rate_limited(self, client: _Client) -> bool:
        now = time.monotonic()
        window = [t for t in self._per_ip_messages.get(client.ip, []) if now - t < 60.0]
        window.append(now)
        self._per_ip_messages[client.ip] = window
        return len(window) > self.limits.max_messages_per_minute

    async def _on_request(self, client: _Client, text: str | bytes) -> None:
        if self._rate_limited(client):
            await self._send(client, error_frame("Too many messages: at most 2000 a minute per IP"))
            return
        try:
            request = parse_client_frame(text)
        except ProtocolError as exc:
            await self._send(client, error_frame(str(exc)))
            return
        if isinstance(request, Ping):
            await self._send(client, pong_frame())
            return
        sub = request.subscription
        key = sub.stream
        if isinstance(request, Subscribe):
            problem = self.source.check(sub) or self._limit_problem(client, sub)
            if problem:
                await self._send(client, error_frame(problem))
                return
            if key in client.subscriptions:
                await self._send(client, error_frame(f"Already subscribed: {orjson.dumps(request.echo).decode()}"))
                return
            client.subscriptions[key] = sub
            await self._send(client, subscription_response_frame("subscribe", request.echo))
            if client.clock_start_ns is None:
                client.clock_start_ns = self.clock_ns()
            client.tasks[key] = asyncio.create_task(self._stream(client, sub))
        else:
            if key not in client.subscriptions:
                await self._send(client, error_frame(f"Already unsubscribed: {orjson.dumps(request.echo).decode()}"))
                return
            del client.subscriptions[key]
            task = client.tasks.pop(key)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self._send(client, subscription_response_frame("unsubscribe", request.echo))

    def _limit_problem(self, client: _Client, sub: Subscription) -> str | None:
        same_ip = [c for c in self._clients.values() if c.ip == client.ip]
        if sum(len(c.subscriptions) for c in same_ip) >= self.limits.max_subscriptions:
            return f"Cannot track more than {self.limits.max_subscriptions} total subscriptions"
        if sub.user is not None:
            users = {s.user.lower() for c in same_ip for s in c.subscriptions.values() if s.user}
            if sub.user.lower() not in users and len(users) >= self.limits.max_users:
                return f"Cannot track more than {self.limits.max_users} total users"
        return None

    async def _stream(self, client: _Client, sub: Subscription) -> None:
        """Send one subscription's frames, paced by the rate (or by the source's own times)."""
        start = time.monotonic()
        timed = getattr(self.source, "timed_frames", None)
        if timed is not None:
            items: Iterator[tuple[float | None, dict[str, Any]]] = timed(sub, client.clock_start_ns or self.clock_ns())
        elif self.prerender:
            rate = self.rate
            encoded = [orjson.dumps(f) for f in itertools.islice(self.source.frames(sub), self.prerender)]
            items = (((i / rate) if rate else None, frame) for i, frame in enumerate(itertools.cycle(encoded)))
        else:
            rate = self.rate
            items = (((i / rate) if rate else None, frame) for i, frame in enumerate(self.source.frames(sub)))
        sent_since_yield = 0
        try:
            for due, frame in items:
                if due is not None:
                    wait = start + due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        sent_since_yield = 0
                if sent_since_yield >= 64:  # as fast as possible must still let the reader answer pings
                    await asyncio.sleep(0)
                    sent_since_yield = 0
                await self._send_data(client, frame if type(frame) is bytes else orjson.dumps(frame))
                sent_since_yield += 1
        except ConnectionClosed:
            return

    async def _send_data(self, client: _Client, payload: bytes) -> None:
        faults = client.faults
        if self._quiet:
            await asyncio.Event().wait()
        client.data_sent += 1
        n = client.data_sent
        if faults.stall_after_frames is not None and n > faults.stall_after_frames:
            client.stalled = True
            await asyncio.Event().wait()  # never sends again; the connection stays open
        if faults.malformed_every and n % faults.malformed_every == 0:
            await self._send(client, MALFORMED_TEXT)
        if faults.error_every and n % faults.error_every == 0:
            await self._send(client, error_frame("Internal server error (injected)"))
        await self._send(client, payload)
        if faults.drop_after_frames is not None and n >= faults.drop_after_frames:
            await self._drop(client)
            raise ConnectionClosed(None, None)

    async def _send(self, client: _Client, payload: str | bytes) -> None:
        """Send a text frame; a client that does not read within the send timeout is dropped."""
        if client.stalled:
            return
        client.sending_since = time.monotonic()  # the watchdog drops a client stuck here too long
        await client.ws.send(payload, text=True)
        client.sending_since = None
        self.stats["frames_sent"] += 1
        if self._sent_log is not None:
            text = payload.decode() if isinstance(payload, bytes) else payload
            self._sent_log.write(f'{{"conn":{client.id},"t_ns":{self.clock_ns()},"frame":{orjson.dumps(text).decode()}}}\n')


def _ip(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if address else "?"


class ServerThread:
    """Runs a server on its own event loop in a background thread: for sync code and tests."""

    def __init__(self, make: Callable[[], HyperliquidServer]) -> None:
        self._make = make
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="hl-server")
        self.server: HyperliquidServer | None = None

    def __enter__(self) -> HyperliquidServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.server = future.result(timeout=10)
        return self.server

    async def _start(self) -> HyperliquidServer:
        return await self._make().start()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop (its state is not thread-safe) and return its result."""
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


__all__ = ["Faults", "HyperliquidServer", "Limits", "MessageSource", "ServerThread", "TimedSource"]

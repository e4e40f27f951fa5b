"""A local Hyperliquid on one port: the websocket at ``/ws`` and ``POST /info``, as the exchange serves them.

The frames and answers come from a pluggable *message source* (the synthetic market, or an archive),
so the same server is the simulator and the replay server. Faults can be injected per connection,
and every frame sent can be logged, so tests can check an archive against exactly what was sent.

The HTTP server is uvicorn (an ASGI server): ``websockets`` alone cannot read a request body, and
uvicorn runs the socket on ``websockets``' own sans-I/O protocol (``ws="websockets-sansio"``), so
frames on the wire are framed by the same library as before. The app below is plain ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import uvicorn

from schemas.info import BODY_LIMIT_BYTES, InfoError, check_info_request, parse_exchange_body, parse_info_body
from schemas.protocol import (
    GREETING,
    Ping,
    Post,
    ProtocolError,
    Subscribe,
    error_frame,
    parse_client_frame,
    pong_frame,
    post_response_frame,
    subscription_response_frame,
)
from schemas.subscriptions import Subscription

from ..paper.session import PAPER_INFO, PaperSession
from .faults import GARBLED_TEXT, MALFORMED_TEXT, Faults, Limits

PAPER_POLL_S = 0.05  # how often a paper account's streams look for new events
# /info types that say what exists, not where the market stands: a client's setup (the SDK asks them
# when it is made) does not start the paper clock
STATIC_INFO = ("meta", "spotMeta", "perpDexs", "exchangeStatus")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class MessageSource(Protocol):
    """Where a server's frames come from."""

    def check(self, sub: Subscription) -> str | None:
        """``None`` if ``sub`` can be served, else the sentence of the error frame to send."""

    def frames(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        """The frames of ``sub`` in order (a snapshot first, where Hyperliquid sends one)."""


class TimedSource(MessageSource, Protocol):
    def timed_frames(self, sub: Subscription, clock_start_ns: int) -> Iterator[tuple[float | None, dict[str, Any]]]:
        """``(seconds after the stream started, frame)``: the source paces itself."""


class _Closed(Exception):
    """The connection is gone (closed, dropped or aborted): the stream that sent stops."""


class _Socket:
    """An accepted websocket under uvicorn, with what this server needs of it: text frames out, a
    close frame, and the transport itself, to cut the connection without a close frame (a fault)
    and to see a client that stopped reading."""

    __slots__ = ("_send", "remote_address", "transport")

    def __init__(self, scope: Scope, send: Send) -> None:
        self._send = send
        # uvicorn's protocol object is the owner of the ``send`` it hands the app
        self.transport: asyncio.Transport | None = getattr(getattr(send, "__self__", None), "transport", None)
        self.remote_address = scope.get("client")

    async def send(self, payload: str | bytes) -> None:
        if self.transport is not None and self.transport.is_closing():
            raise _Closed()
        try:
            await self._send({"type": "websocket.send", "text": payload if type(payload) is str else payload.decode()})
        except (OSError, RuntimeError):
            raise _Closed() from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(OSError, RuntimeError):
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


@dataclass
class _Client:
    """One connection's state."""

    id: int
    ip: str
    ws: _Socket
    faults: Faults
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    data_sent: int = 0
    stalled: bool = False
    last_heard: float = field(default_factory=time.monotonic)
    sending_since: float | None = None
    clock_start_ns: int | None = None


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: the CLI (or the test) that owns the loop owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HyperliquidServer:
    """Serve ``source`` over Hyperliquid's protocol on ``host:port`` (port 0: any free port)."""

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
        paper: PaperSession | None = None,
    ) -> None:
        self.source = source
        self.paper = paper  # POST /exchange, and the paper accounts' /info answers and wallet streams
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
        self._uvicorn: _Uvicorn | None = None
        self._serving: asyncio.Task[None] | None = None
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
        bind = getattr(self.source, "bind_clock", None)
        if bind is not None:  # the synthetic market's tick 0 is now
            bind(self.clock_ns(), None if self.prerender else self.rate)
        # proto IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on sockets that say so, and without it
        # a response's headers and body (two writes) wait out the client's 40 ms delayed ACK
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            ws="websockets-sansio",
            http="h11",
            interface="asgi3",
            lifespan="off",
            ws_ping_interval=None,  # Hyperliquid relies on the client's {"method":"ping"}
            ws_max_size=2**20,
            ws_per_message_deflate=False,
            log_level=logging.WARNING,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=2,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self._uvicorn = _Uvicorn(config)
        self._serving = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._serving.done():
                self._serving.result()  # raises what stopped it
                raise OSError("the HTTP server stopped while starting")
            await asyncio.sleep(0.005)
        return self

    async def stop(self) -> None:
        if self._uvicorn is not None and self._serving is not None:
            self._uvicorn.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._serving, timeout=10)
            self._uvicorn = None
            self._serving = None
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
            client.ws.abort()

    # --- ASGI -----------------------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/info":
            ip = _client_ip(scope)
            await self._post(scope, receive, send, "info", "a JSON body", lambda body: self._answer_info(parse_info_body(body), ip, None))
        elif path == "/exchange":
            await self._post(scope, receive, send, "exchange", "a signed action", lambda body: self._answer_exchange(parse_exchange_body(body)))
        elif path == "/ws":
            await _respond(send, 426, "Upgrade Required: Hyperliquid's websocket is at /ws\n")
        else:
            await _respond(send, 404, "Not Found: Hyperliquid's websocket is at /ws, its info endpoint at POST /info and paper trading at POST /exchange\n")

    async def _post(self, scope: Scope, receive: Receive, send: Send, name: str, takes: str, answer: Callable[[bytes], Awaitable[Any]]) -> None:
        """``POST /<name>``: the body (bounded), the answer as JSON, or the exchange's error status."""
        if scope["method"] != "POST":
            await _respond(send, 405, f"Method Not Allowed: use POST /{name} with {takes}\n")
            return
        body = await _read_body(scope, receive)
        self.stats[f"{name}_requests"] += 1
        try:
            if body is None:
                raise InfoError(413, "Failed to buffer the request body: length limit exceeded")
            data = await answer(body)
        except InfoError as exc:
            self.stats[f"{name}_errors"] += 1
            await _respond(send, exc.status, exc.text)
            return
        await _respond(send, 200, orjson.dumps(data), "application/json")

    def _paper_now_ns(self) -> int:
        """Where the paper market's clock stands (the source says; the wall clock otherwise)."""
        clock = getattr(self.source, "paper_clock_ns", None)
        return clock(self.clock_ns()) if clock is not None else self.clock_ns()

    async def _answer_exchange(self, request: dict[str, Any]) -> Any:
        paper = self.paper
        if paper is None:
            raise InfoError(404, "this server does not take exchange actions: run `hlarchive serve --paper` (simulate always does)")
        answer = await self._off_loop(paper.exchange, request, self._paper_now_ns(), self.clock_ns() // 1_000_000)
        if paper.latency_ns:  # the answer leaves once the market clock has reached the action's arrival
            speed = getattr(self.source, "speed", None) or 1.0  # serve's paper clock counts "as fast as possible" as real time
            await asyncio.sleep(paper.latency_ns / 1e9 / speed)
        return answer

    async def _off_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, in a thread when the source reads files (an archive), so streams keep flowing."""
        if getattr(self.source, "info_blocks", False):
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    def _clock_start_ns(self) -> int:
        """Where a connection's replay clock starts. With paper trading, every connection, ``/info``
        and the matching engine read one market at one clock: the paper clock's."""
        if self.paper is not None and hasattr(self.source, "paper_started_ns"):
            self._paper_now_ns()  # starts it, if nothing has yet
            started = getattr(self.source, "paper_started_ns", None)
            if started is not None:
                return int(started)
        return self.clock_ns()

    def _paper_user(self, request: dict[str, Any]) -> bool:
        """A user-state query of a paper account (any address that is not one of the market's users)."""
        user = request.get("user")
        if self.paper is None or request.get("type") not in PAPER_INFO or not isinstance(user, str) or not self.paper.is_paper(user):
            return False
        self.paper.open_account(user)
        return True

    async def _answer_info(self, request: dict[str, Any], ip: str, client: _Client | None) -> Any:
        """Ask the source, as of the replay clock of ``client`` (or of the newest connection from ``ip``)."""
        if self._paper_user(request):
            assert self.paper is not None
            return await self._off_loop(self.paper.info, request, self._paper_now_ns())
        if self.paper is not None and request.get("type") == "l2Book" and request.get("nSigFigs") is None and request.get("mantissa") is None:
            # the book the matching engine holds now: what the client sees is what its order meets
            book = await self._off_loop(self.paper.l2_book, str(request.get("coin")), self._paper_now_ns())
            if book is not None:
                return book
        info = getattr(self.source, "info", None)
        if info is None:
            raise InfoError(404, "this server does not answer /info")
        if self.paper is not None and request.get("type") in STATIC_INFO:
            clock_start: int | None = getattr(self.source, "paper_started_ns", None)  # asking what exists starts no clock
        elif self.paper is not None:
            clock_start = self._clock_start_ns()  # one clock for everyone: the paper market's
        elif client is None:
            clocks = [c.clock_start_ns for c in self._clients.values() if c.ip == ip and c.clock_start_ns is not None]
            clock_start = max(clocks) if clocks else None
        else:
            clock_start = client.clock_start_ns
        now = self.clock_ns()
        try:
            return await self._off_loop(info, request, now, clock_start)
        except InfoError as exc:
            # an archive without meta snapshots (imported history): the paper exchange's own assets
            if exc.status == 404 and self.paper is not None and not request.get("dex"):
                if request["type"] in ("meta", "spotMeta"):
                    return self.paper.meta(request["type"])
                if request["type"] == "allMids":  # the SDK's market_open prices from it
                    return await self._off_loop(self.paper.all_mids, self._paper_now_ns())
            raise

    # --- one connection --------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        refusal = self._refusal(scope)
        if refusal is not None:
            status, text = refusal
            await send({"type": "websocket.http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "websocket.http.response.body", "body": text.encode()})
            return
        await send({"type": "websocket.accept"})
        self._next_id += 1
        if self.fault_schedule is not None:
            faults = self.fault_schedule(self._next_id)
        else:
            faults = self.faults if self.faults.applies_to(self._next_id) else Faults()
        client = _Client(self._next_id, _client_ip(scope), _Socket(scope, send), faults)
        self._clients[client.id] = client
        self.stats["connections"] += 1
        watchdog = asyncio.create_task(self._watchdog(client))
        try:
            await self._send(client, GREETING)
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    break
                client.last_heard = time.monotonic()
                text = message.get("text")
                await self._on_request(client, text if text is not None else message.get("bytes", b""))
        except _Closed:
            pass
        finally:
            watchdog.cancel()
            for task in client.tasks.values():
                task.cancel()
            await asyncio.gather(watchdog, *client.tasks.values(), return_exceptions=True)
            del self._clients[client.id]

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        if scope["path"] != "/ws":
            return 404, "Hyperliquid's websocket is at /ws\n"
        if time.monotonic() < self._refuse_until:
            self.stats["refused"] += 1
            return 503, "Refusing connections for now\n"
        ip = _client_ip(scope)
        if sum(1 for c in self._clients.values() if c.ip == ip) >= self.limits.max_connections:
            return 429, "Too many connections\n"
        return None

    async def _watchdog(self, client: _Client) -> None:
        """Close a connection idle past the limit; apply time-based faults."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if now - client.last_heard > self.limits.idle_timeout_s:
                client.stalled = True
                await client.ws.close(1000, "idle timeout")
                return
            if client.sending_since is not None and now - client.sending_since > self.limits.send_timeout_s:
                self.stats["slow_consumers_dropped"] += 1  # it reads nothing: drop it, buffer nothing
                client.stalled = True
                client.ws.abort()
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
            if transport is None or transport.is_closing() or transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.005)
        client.ws.abort()

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
        if isinstance(request, Post):
            await self._on_post(client, request)
            return
        sub = request.subscription
        key = sub.stream
        if isinstance(request, Subscribe):
            list_due = getattr(self.source, "list_due", None)
            if list_due is not None:  # markets listed since (simulate --list-every)
                list_due(self.clock_ns())
            paper = self.paper
            # a paper account's wallet streams come from the paper exchange, whatever the source holds
            wallet = paper is not None and sub.user is not None and paper.is_paper(sub.user)
            problem = (paper.wallet_problem(sub) if wallet and paper is not None else self.source.check(sub)) or self._limit_problem(client, sub)
            if problem:
                await self._send(client, error_frame(problem))
                return
            if key in client.subscriptions:
                await self._send(client, error_frame(f"Already subscribed: {orjson.dumps(request.echo).decode()}"))
                return
            client.subscriptions[key] = sub
            await self._send(client, subscription_response_frame("subscribe", request.echo))
            if client.clock_start_ns is None:
                client.clock_start_ns = self._clock_start_ns()
            if wallet and paper is not None:  # a paper account's streams carry only what it does, from its first sight
                client.tasks[key] = asyncio.create_task(self._paper_stream(client, sub, paper))
            else:
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

    async def _on_post(self, client: _Client, post: Post) -> None:
        """An HTTP request over the socket: answered on it, with its id."""
        if post.kind == "action":
            try:
                answer = await self._answer_exchange(post.payload)
            except InfoError as exc:
                await self._send(client, post_response_frame(post.id, "error", exc.text))
                return
            await self._send(client, post_response_frame(post.id, "action", answer))
            return
        try:
            request = check_info_request(post.payload)
            data = await self._answer_info(request, client.ip, client)
        except InfoError as exc:
            await self._send(client, post_response_frame(post.id, "error", exc.text))
            return
        await self._send(client, post_response_frame(post.id, "info", data, info_type=request["type"]))

    def _limit_problem(self, client: _Client, sub: Subscription) -> str | None:
        same_ip = [c for c in self._clients.values() if c.ip == client.ip]
        if sum(len(c.subscriptions) for c in same_ip) >= self.limits.max_subscriptions:
            return f"Cannot track more than {self.limits.max_subscriptions} total subscriptions"
        if sub.user is not None:
            users = {s.user.lower() for c in same_ip for s in c.subscriptions.values() if s.user}
            if sub.user.lower() not in users and len(users) >= self.limits.max_users:
                return f"Cannot track more than {self.limits.max_users} total users"
        return None

    def _items(self, client: _Client, sub: Subscription) -> Iterator[tuple[float | None, Any]]:
        """``(seconds after the stream starts, frame)``: paced by the source's own clock, the shared
        synthetic market, or the rate; frames already encoded when prerendered."""
        timed = getattr(self.source, "timed_frames", None)
        if timed is not None:
            return timed(sub, client.clock_start_ns or self.clock_ns())
        rate = self.rate
        if self.prerender:
            encoded = [f if type(f) is bytes else orjson.dumps(f) for f in itertools.islice(self.source.frames(sub), self.prerender)]
            return (((i / rate) if rate else None, frame) for i, frame in enumerate(itertools.cycle(encoded)))
        live = getattr(self.source, "live_frames", None)
        if live is not None and rate:
            return live(sub, self.clock_ns())
        return (((i / rate) if rate else None, frame) for i, frame in enumerate(self.source.frames(sub)))

    async def _stream(self, client: _Client, sub: Subscription) -> None:
        """Send one subscription's frames at their due times."""
        start = time.monotonic()
        sent_since_yield = 0
        try:
            for due, frame in self._items(client, sub):
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
        except _Closed:
            return

    async def _paper_stream(self, client: _Client, sub: Subscription, paper: PaperSession) -> None:
        """A paper account's wallet stream: what the exchange sends on subscription, then the frames
        of the account's events as the market clock reaches them (``replay.paper.streams``)."""
        assert sub.user is not None
        try:
            cursor, stream, first = await self._off_loop(paper.open_stream, sub, self._paper_now_ns())
            for frame in first:
                await self._send_data(client, orjson.dumps(frame))
            while True:
                await asyncio.sleep(PAPER_POLL_S)
                cursor, frames = await self._off_loop(paper.stream_frames, stream, cursor, self._paper_now_ns())
                for frame in frames:
                    await self._send_data(client, orjson.dumps(frame))
        except _Closed:
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
        if faults.garbled_every and n % faults.garbled_every == 0:
            await self._send(client, GARBLED_TEXT)
        if faults.error_every and n % faults.error_every == 0:
            await self._send(client, error_frame("Internal server error (injected)"))
        await self._send(client, payload)
        if faults.drop_after_frames is not None and n >= faults.drop_after_frames:
            await self._drop(client)
            raise _Closed()

    async def _send(self, client: _Client, payload: str | bytes) -> None:
        """Send a text frame; a client that does not read within the send timeout is dropped."""
        if client.stalled:
            return
        client.sending_since = time.monotonic()  # the watchdog drops a client stuck here too long
        await client.ws.send(payload)
        client.sending_since = None
        self.stats["frames_sent"] += 1
        if self._sent_log is not None:
            text = payload.decode() if isinstance(payload, bytes) else payload
            self._sent_log.write(f'{{"conn":{client.id},"t_ns":{self.clock_ns()},"frame":{orjson.dumps(text).decode()}}}\n')


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The request body, or ``None`` past ``BODY_LIMIT_BYTES`` (read no further: never buffered without bound)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > BODY_LIMIT_BYTES:
            return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > BODY_LIMIT_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8") -> None:
    data = body.encode() if isinstance(body, str) else body
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


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

"""The ``hlarchive`` command: one click group; sub-commands of other packages join through entry points.

The recorder's ``record`` registers itself under the ``hlarchive.commands`` entry point group, so
this package never imports the recorder. User mistakes end as one line on stderr and exit code 2.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import click

from schemas import __version__
from schemas.layout import ArchiveError
from schemas.protocol import FrameError, ProtocolError
from schemas.subscriptions import SubscriptionError

if TYPE_CHECKING:
    from .serving.server import HyperliquidServer

USER_ERRORS: tuple[type[BaseException], ...] = (ArchiveError, SubscriptionError, ProtocolError, FrameError)


class Group(click.Group):
    """Loads plugin commands lazily and turns known errors into one line, exit 2 (``--debug``: traceback)."""

    def _plugins(self) -> dict[str, Any]:
        found = {}
        for ep in entry_points(group="hlarchive.commands"):
            found[ep.name] = ep
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._plugins():
            command = self._plugins()[name].load()
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="hlarchive")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Record Hyperliquid websocket data to Parquet, query it with SQL, replay it through the SDK's callbacks."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())


async def _listen(server: HyperliquidServer) -> None:
    """Start a server; a port in use is the user's to change, not a traceback."""
    try:
        await server.start()
    except OSError as exc:
        raise ArchiveError(f"cannot listen on {server.host}:{server.port}: {exc.strerror}; pick another --port (0: any free one)") from None


@main.command()
@click.option("--host", default="127.0.0.1", help="Interface to listen on (loopback by default).")
@click.option("--port", default=8765, type=int, help="Port (0: any free port).")
@click.option("--seed", default=0, type=int, help="Seed of the synthetic market: same seed, same frames.")
@click.option("--rate", default=10.0, type=float, help="Frames per second per subscription (0: as fast as possible).")
@click.option("--coins", default=",".join(["BTC", "ETH", "SOL", "kPEPE", "xyz:HOOD", "@1", "PURR/USDC"]), help="Comma-separated coins to simulate.")
@click.option("--tick-ms", default=100, type=int, help="Market time between two frames of a stream, in ms.")
@click.option("--start", default="2026-01-01T00:00:00Z", help="Market time of the first tick (ISO-8601 or epoch ms), or 'now'. Fixed by default, so a seed always gives the same frames.")
@click.option("--fault", "faults", multiple=True, metavar="NAME=VALUE", help="Inject a fault, e.g. drop-after-frames=100, stall-after-frames=50, malformed-every=20, error-every=30, drop-after-s=5, refuse-for-s=3, refuse-after-drop-s=2, connections=1,2.")
@click.option("--sent-log", type=click.Path(dir_okay=False), default=None, help="Write every frame sent, with connection id and time, as JSON lines.")
@click.option("--max-subscriptions", default=1000, type=int, help="Per-IP subscription limit (Hyperliquid: 1000).")
@click.option("--prerender", default=0, type=int, help="Cycle through each stream's first N frames, encoded once (for load tests: frames repeat).")
@click.option("--balance", default=100_000.0, type=float, help="USDC every address holds (POST /info clearinghouseState).")
@click.option("--list-every", "list_every", default=None, type=click.FloatRange(min=0.1), help="List a new market this often, in seconds (perp NEW1, spot @302, ...), to test recorders that follow listings.")
@click.option("--account", "accounts", multiple=True, metavar="ADDRESS", help="A paper trading account (repeat). Given any, only these may trade (others are refused as the exchange refuses an unknown signer); their wallet streams are paper from the first subscription.")
def simulate(host: str, port: int, seed: int, rate: float, coins: str, tick_ms: int, start: str, faults: tuple[str, ...], sent_log: str | None, max_subscriptions: int, prerender: int, balance: float, list_every: float | None, accounts: tuple[str, ...]) -> None:
    """Run a local Hyperliquid (websocket at /ws, POST /info, paper trading at POST /exchange) over a synthetic market, in the foreground (Ctrl-C stops it).

    Every stream and every /info answer reads one shared market: tick N is due N/--rate seconds
    after start, and never before its exchange time, so exchange time never runs ahead of the clock."""
    import asyncio
    import signal

    from .paper.session import synthetic_session
    from .serving.server import Faults, HyperliquidServer, Limits
    from .serving.synthetic import SyntheticMarket

    try:
        fault_plan = Faults.parse(list(faults))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    import time

    from .replay import to_ns

    start_ms = int(time.time() * 1000) if start == "now" else (to_ns(start, "--start") or 0) // 1_000_000
    coin_list = [c.strip() for c in coins.split(",") if c.strip()]
    if not coin_list:
        raise click.BadParameter("give at least one coin", param_hint="--coins")

    async def serve_until_stopped() -> None:
        market = SyntheticMarket(seed=seed, coins=coin_list, tick_ms=tick_ms, start_ms=start_ms, balance=balance, list_every_s=list_every)
        paper = synthetic_session(market, accounts=_accounts(accounts))
        server = HyperliquidServer(
            market,
            host=host,
            port=port,
            rate=rate or None,
            limits=Limits(max_subscriptions=max_subscriptions),
            faults=fault_plan,
            sent_log=sent_log,
            prerender=prerender,
            paper=paper,
        )
        await _listen(server)
        click.echo(f"ws URL:   {server.ws_url}")
        click.echo(f"base URL: {server.base_url}   (Info(base_url) and Exchange(wallet, base_url) as is: /ws, POST /info and POST /exchange on one port)")
        click.echo(f"coins: {', '.join(coin_list)}; seed {seed}; {rate or 'unlimited'} frames/s per subscription. Ctrl-C stops.", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()
        click.echo(f"stopped: {server.stats['connections']} connections, {server.stats['frames_sent']} frames sent", err=True)

    asyncio.run(serve_until_stopped())


def _accounts(addresses: tuple[str, ...]) -> set[str] | None:
    import re

    for address in addresses:
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
            raise click.BadParameter(f"{address!r} is not an address (0x and 40 hex digits)", param_hint="--account")
    return {a.lower() for a in addresses} or None


def _subscriptions_option(subs: tuple[str, ...], coins: tuple[str, ...], channels: tuple[str, ...]) -> list[Any]:
    """``--sub JSON`` exactly, plus ``--coin`` x ``--channel`` filters, as subscription models."""
    import orjson

    from schemas.subscriptions import COIN_TYPES, parse_subscription

    out = []
    for raw in subs:
        try:
            out.append(parse_subscription(orjson.loads(raw), allow_unknown=True))
        except orjson.JSONDecodeError:
            raise click.BadParameter(f"{raw!r} is not JSON", param_hint="--sub") from None
    for channel in channels:
        for coin in coins if channel in COIN_TYPES else [None]:
            out.append(parse_subscription({"type": channel, **({"coin": coin} if coin else {})}, allow_unknown=True))
    if coins and not channels:
        raise click.UsageError("--coin needs --channel (or give --sub)")
    return out


@main.command("replay")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--sub", "subs", multiple=True, metavar="JSON", help="A subscription to replay (repeat); default: every frame.")
@click.option("--coin", "coins", multiple=True, help="With --channel: replay these coins.")
@click.option("--channel", "channels", multiple=True, help="A subscription type to replay (with --coin for per-coin types).")
@click.option("--from", "start", default=None, help="Start: ISO-8601 time or epoch ms.")
@click.option("--to", "end", default=None, help="End (inclusive): ISO-8601 time or epoch ms.")
@click.option("--speed", default=None, type=float, help="1.0 = real time, 10 = ten times faster; default: as fast as possible.")
@click.option("--order", type=click.Choice(["recv", "exchange"]), default="recv", help="Receipt order or exchange-time order.")
@click.option("--with-ts", is_flag=True, help="Prefix each line with its receive time (epoch ns) and a space (jsonl only).")
@click.option("--format", "output_format", type=click.Choice(["jsonl", "json"]), default="jsonl", help="jsonl: one frame a line (for jq, grep, line tools); json: one JSON array of frames (for tools that read a whole document).")
def replay_command(root: str, subs: tuple[str, ...], coins: tuple[str, ...], channels: tuple[str, ...], start: str | None, end: str | None, speed: float | None, order: str, with_ts: bool, output_format: str) -> None:
    """Print archived frames on stdout, in order, as the exchange sent them (pipe to jq)."""
    from .replay import Replay

    if with_ts and output_format != "jsonl":
        raise click.BadParameter("a receive-time prefix makes lines that are not JSON; use --format jsonl", param_hint="--with-ts")
    if speed is not None and speed <= 0:
        raise click.BadParameter("give a positive factor (1.0 = real time)", param_hint="--speed")
    replay = Replay(root, start, end, order=order)
    for sub in _subscriptions_option(subs, coins, channels):
        replay.subscribe(sub, _noop)
    out = sys.stdout.buffer
    # the frames' text, never built as dicts
    lines: Iterator[bytes] = (
        (b"%d %s" % pair for pair in replay.raw_messages_with_recv_ns(speed)) if with_ts else replay.raw_messages(speed)
    )
    if output_format == "json":  # the same lines, with "[" before, "," between and "]" after
        lines = itertools.chain([b"["], _array_items(lines), [b"]"])
    try:
        if speed is not None:  # paced: each line as it is due
            for line in lines:
                out.write(line + b"\n")
                out.flush()
        else:  # as fast as possible: a write of 512 lines at a time, not one (and a syscall) per few lines
            while chunk := list(itertools.islice(lines, 512)):
                chunk.append(b"")
                out.write(b"\n".join(chunk))
        out.flush()
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        sys.stderr.close()


def _array_items(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Every line but the first gets a leading comma, so the lines between "[" and "]" are one JSON array."""
    for line in lines:
        yield line
        break
    for line in lines:
        yield b"," + line


def _noop(message: Any) -> None:
    pass


@main.command()
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", help="Interface to listen on (loopback by default).")
@click.option("--port", default=8765, type=int, help="Port (0: any free port).")
@click.option("--speed", default=1.0, type=float, help="1.0 = real time; 0 = as fast as the client reads.")
@click.option("--from", "start", default=None, help="Where each connection's replay clock starts (ISO-8601 or epoch ms); default: the archive's start.")
@click.option("--to", "end", default=None, help="Where replay ends (ISO-8601 or epoch ms).")
@click.option("--join-window", default=1.0, type=float, help="Subscriptions within this many seconds of a connection's first all start at --from.")
@click.option("--paper", is_flag=True, help="Take orders at POST /exchange: paper trading against the archived books and trades.")
@click.option("--balance", default=100_000.0, type=float, help="With --paper: USDC every paper account starts with.")
@click.option("--account", "accounts", multiple=True, metavar="ADDRESS", help="With --paper: a paper account (repeat); given any, only these may trade.")
def serve(root: str, host: str, port: int, speed: float, start: str | None, end: str | None, join_window: float, paper: bool, balance: float, accounts: tuple[str, ...]) -> None:
    """Serve an archive as Hyperliquid does: the websocket at ws://HOST:PORT/ws and POST /info (Ctrl-C stops)."""
    import asyncio
    import signal

    from .serving.archive_source import ArchiveSource
    from .serving.server import HyperliquidServer

    source = ArchiveSource(root, start=start, end=end, speed=speed or None, join_window_s=join_window)
    if not source.available:
        raise ArchiveError(f"the archive at {root!r} holds no frames yet: record into it first")

    session = None
    if paper:
        from .paper.session import archive_session

        session = archive_session(source, balance=balance, accounts=_accounts(accounts))
    elif accounts:
        raise click.UsageError("--account needs --paper")

    async def serve_until_stopped() -> None:
        server = HyperliquidServer(source, host=host, port=port, rate=None, paper=session)
        await _listen(server)
        click.echo(f"ws URL:   {server.ws_url}")
        takes = "Info(base_url) and Exchange(wallet, base_url) as is: /ws, POST /info and POST /exchange" if session else "Info(base_url) as is: /ws and POST /info"
        click.echo(f"base URL: {server.base_url}   ({takes} on one port)")
        click.echo("POST /info answers come from the archive as of each connection's replay clock.", err=True)
        if session is not None:
            click.echo(f"POST /exchange takes paper orders against the archived books and trades; every account starts with {balance:,.0f} USDC.", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(serve_until_stopped())


def _register() -> None:
    from .commands import compact, demo, ls_command, sql, sync_command, verify

    for command in (sql, ls_command, verify, compact, demo, sync_command):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()

"""``simulate`` and ``serve``: a local Hyperliquid on one port, over the synthetic market or an archive."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import click

from schemas.layout import ArchiveError

if TYPE_CHECKING:
    from .server import HyperliquidServer


async def _until_signalled(server: HyperliquidServer) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop the server."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


async def _listen(server: HyperliquidServer) -> None:
    """Start a server; a port in use is the user's to change, not a traceback."""
    try:
        await server.start()
    except OSError as exc:
        raise ArchiveError(f"cannot listen on {server.host}:{server.port}: {exc.strerror}; pick another --port (0: any free one)") from None


@click.command()
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
@click.option("--account", "accounts", multiple=True, metavar="ADDRESS", help="Restrict trading to these addresses (repeat); others are refused as the exchange refuses an unknown signer. Default: any address trades.")
@click.option("--latency-ms", default=50, type=click.IntRange(min=0), help="Market time between a paper action's sending and its arrival at the matching engine (the response comes after).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None, help="When stopped, write the paper report of the accounts that traded to this HTML file.")
@click.option("--sample-user", "sample_users", multiple=True, metavar="ADDRESS", help="An address whose user streams carry the synthetic market's sample traffic (repeat), for recording. Every other address is a clean paper account: its streams show only what it does.")
@click.option("--node-data", "node_data", default=None, type=click.Path(file_okay=False), help="Also act as a node: write every block's order statuses, book diffs and fills under this directory in a node's hourly files, and answer fileSnapshot at POST /info.")
@click.option("--node-lag-blocks", default=0, type=click.IntRange(min=0), help="With --node-data: write the book diffs this many blocks behind the order statuses (to test a reader's join).")
def simulate(host: str, port: int, seed: int, rate: float, coins: str, tick_ms: int, start: str, faults: tuple[str, ...], sent_log: str | None, max_subscriptions: int, prerender: int, balance: float, list_every: float | None, accounts: tuple[str, ...], latency_ms: int, report_file: str | None, sample_users: tuple[str, ...], node_data: str | None, node_lag_blocks: int) -> None:
    """Run a local Hyperliquid (websocket at /ws, POST /info, paper trading at POST /exchange) over a synthetic market, in the foreground (Ctrl-C stops it).

    Every stream and every /info answer reads one shared market: tick N is due N/--rate seconds
    after start, and never before its exchange time, so exchange time never runs ahead of the clock."""

    from ..paper.session import synthetic_session
    from .server import Faults, HyperliquidServer, Limits
    from .synthetic_source import SyntheticSource

    try:
        fault_plan = Faults.parse(list(faults))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    import time

    from ..replay import to_ns

    start_ms = int(time.time() * 1000) if start == "now" else (to_ns(start, "--start") or 0) // 1_000_000
    coin_list = [c.strip() for c in coins.split(",") if c.strip()]
    if not coin_list:
        raise click.BadParameter("give at least one coin", param_hint="--coins")

    async def serve_until_stopped() -> None:
        market = SyntheticSource(seed=seed, coins=coin_list, tick_ms=tick_ms, start_ms=start_ms, balance=balance, list_every_s=list_every)
        paper = synthetic_session(market, accounts=_accounts(accounts), sample_users=_accounts(sample_users, "--sample-user"), latency_ms=latency_ms)
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
        node_task = None
        if node_data:
            from ..simulator.node_files import NodeFiles

            market.node_files = NodeFiles(market.tapes, coin_list, node_data, {c: market.coins[c].sz_decimals for c in coin_list}, lag_blocks=node_lag_blocks)
            node_task = asyncio.create_task(_write_node_files(market))
            click.echo(f"node files: {node_data} (a block every {tick_ms} ms of market time" + (f", diffs {node_lag_blocks} blocks behind" if node_lag_blocks else "") + "); fileSnapshot at POST /info", err=True)
        click.echo(f"ws URL:   {server.ws_url}")
        click.echo(f"base URL: {server.base_url}   (Info(base_url) and Exchange(wallet, base_url) as is: /ws, POST /info and POST /exchange on one port)")
        click.echo(f"coins: {', '.join(coin_list)}; seed {seed}; {rate or 'unlimited'} frames/s per subscription. Ctrl-C stops.", err=True)
        await _until_signalled(server)
        if node_task is not None:
            node_task.cancel()
            await asyncio.gather(node_task, return_exceptions=True)
            with market.tapes.lock:
                market.node_files.close()
        click.echo(f"stopped: {server.stats['connections']} connections, {server.stats['frames_sent']} frames sent", err=True)
        _write_report(paper, report_file)

    asyncio.run(serve_until_stopped())


async def _write_node_files(market: Any) -> None:
    """Write the node files up to the market's current tick, a tick at a time."""
    import time

    files = market.node_files
    while True:
        now = time.time_ns()
        tick = market.tick_at(now)
        # a few blocks at a time: a stop waits for one short step at most
        if await asyncio.get_running_loop().run_in_executor(None, files.write_through, tick, 5) == 5:
            continue  # behind the clock: catch up before sleeping
        clock = market.clock
        due = clock.due_ns(tick + 1) if clock is not None else now + market.tick_ms * 1_000_000
        await asyncio.sleep(max(0.001, (due - time.time_ns()) / 1e9))


def _accounts(addresses: tuple[str, ...], option: str = "--account") -> set[str] | None:
    import re

    for address in addresses:
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
            raise click.BadParameter(f"{address!r} is not an address (0x and 40 hex digits)", param_hint=option)
    return {a.lower() for a in addresses} or None


@click.command()
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", help="Interface to listen on (loopback by default).")
@click.option("--port", default=8765, type=int, help="Port (0: any free port).")
@click.option("--speed", default=1.0, type=float, help="1.0 = real time; 0 = as fast as the client reads.")
@click.option("--from", "start", default=None, help="Where each connection's replay clock starts (ISO-8601 or epoch ms); default: the archive's start.")
@click.option("--to", "end", default=None, help="Where replay ends (ISO-8601 or epoch ms).")
@click.option("--join-window", default=1.0, type=float, help="Subscriptions within this many seconds of a connection's first all start at --from.")
@click.option("--paper", is_flag=True, help="Take orders at POST /exchange: paper trading against the archived books and trades.")
@click.option("--balance", default=100_000.0, type=float, help="With --paper: USDC every paper account starts with.")
@click.option("--latency-ms", default=50, type=click.IntRange(min=0), help="With --paper: market time between an action's sending and its arrival at the matching engine.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None, help="With --paper: when stopped, write the paper report of the accounts that traded to this HTML file.")
@click.option("--account", "accounts", multiple=True, metavar="ADDRESS", help="With --paper: restrict trading to these addresses (repeat). The archive's recorded users keep their recorded streams; every other address is a clean paper account.")
def serve(root: str, host: str, port: int, speed: float, start: str | None, end: str | None, join_window: float, paper: bool, balance: float, latency_ms: int, report_file: str | None, accounts: tuple[str, ...]) -> None:
    """Serve an archive as Hyperliquid does: the websocket at ws://HOST:PORT/ws and POST /info (Ctrl-C stops)."""

    from .archive_source import ArchiveSource
    from .server import HyperliquidServer

    source = ArchiveSource(root, start=start, end=end, speed=speed or None, join_window_s=join_window)
    if not source.available:
        raise ArchiveError(f"the archive at {root!r} holds no frames yet: record into it first")

    session = None
    if paper:
        from ..paper.session import archive_session

        session = archive_session(source, balance=balance, accounts=_accounts(accounts), latency_ms=latency_ms)
    elif accounts or report_file:
        raise click.UsageError(f"{'--account' if accounts else '--report'} needs --paper")

    async def serve_until_stopped() -> None:
        server = HyperliquidServer(source, host=host, port=port, rate=None, paper=session)
        await _listen(server)
        click.echo(f"ws URL:   {server.ws_url}")
        takes = "Info(base_url) and Exchange(wallet, base_url) as is: /ws, POST /info and POST /exchange" if session else "Info(base_url) as is: /ws and POST /info"
        click.echo(f"base URL: {server.base_url}   ({takes} on one port)")
        click.echo("POST /info answers come from the archive as of each connection's replay clock.", err=True)
        if session is not None:
            click.echo(f"POST /exchange takes paper orders against the archived books and trades; every account starts with {balance:,.0f} USDC.", err=True)
        await _until_signalled(server)
        if session is not None:
            _write_report(session, report_file)

    asyncio.run(serve_until_stopped())


def _write_report(session: Any, path: str | None) -> None:
    """The paper report of the accounts that traded, written when the server stops."""
    if path is None:
        return
    traders = session.traders()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(session.report_html(traders))
    click.echo(f"wrote the paper report of {len(traders)} account(s) to {path}", err=True)

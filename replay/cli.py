"""The ``hlarchive`` command: one click group; sub-commands of other packages join through entry points.

The recorder's ``record`` registers itself under the ``hlarchive.commands`` entry point group, so
this package never imports the recorder. User mistakes end as one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import click

from schemas import __version__
from schemas.layout import ArchiveError
from schemas.protocol import ProtocolError
from schemas.rows import FrameError
from schemas.subscriptions import SubscriptionError

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


@main.command()
@click.option("--host", default="127.0.0.1", help="Interface to listen on (loopback by default).")
@click.option("--port", default=8765, type=int, help="Port (0: any free port).")
@click.option("--seed", default=0, type=int, help="Seed of the synthetic market: same seed, same frames.")
@click.option("--rate", default=10.0, type=float, help="Frames per second per subscription (0: as fast as possible).")
@click.option("--coins", default=",".join(["BTC", "ETH", "SOL", "kPEPE", "xyz:HOOD", "@1", "PURR/USDC"]), help="Comma-separated coins to simulate.")
@click.option("--tick-ms", default=100, type=int, help="Market time between two frames of a stream, in ms.")
@click.option("--fault", "faults", multiple=True, metavar="NAME=VALUE", help="Inject a fault, e.g. drop-after-frames=100, stall-after-frames=50, malformed-every=20, error-every=30, drop-after-s=5, refuse-for-s=3, refuse-after-drop-s=2, connections=1,2.")
@click.option("--sent-log", type=click.Path(dir_okay=False), default=None, help="Write every frame sent, with connection id and time, as JSON lines.")
@click.option("--max-subscriptions", default=1000, type=int, help="Per-IP subscription limit (Hyperliquid: 1000).")
def simulate(host: str, port: int, seed: int, rate: float, coins: str, tick_ms: int, faults: tuple[str, ...], sent_log: str | None, max_subscriptions: int) -> None:
    """Run a local Hyperliquid websocket server with a synthetic market, in the foreground (Ctrl-C stops it)."""
    import asyncio
    import signal

    from .server import Faults, HyperliquidServer, Limits
    from .synthetic import SyntheticMarket

    try:
        fault_plan = Faults.parse(list(faults))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    coin_list = [c.strip() for c in coins.split(",") if c.strip()]
    if not coin_list:
        raise click.BadParameter("give at least one coin", param_hint="--coins")

    async def serve_until_stopped() -> None:
        market = SyntheticMarket(seed=seed, coins=coin_list, tick_ms=tick_ms)
        server = HyperliquidServer(
            market,
            host=host,
            port=port,
            rate=rate or None,
            limits=Limits(max_subscriptions=max_subscriptions),
            faults=fault_plan,
            sent_log=sent_log,
        )
        try:
            await server.start()
        except OSError as exc:
            raise ArchiveError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port (0: any free one)") from None
        click.echo(f"ws URL:   {server.ws_url}")
        click.echo(f"base URL: {server.base_url}   (Info(base_url=...) / WebsocketManager(base_url))")
        click.echo(f"coins: {', '.join(coin_list)}; seed {seed}; {rate or 'unlimited'} frames/s per subscription. Ctrl-C stops.", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()
        click.echo(f"stopped: {server.stats['connections']} connections, {server.stats['frames_sent']} frames sent", err=True)

    asyncio.run(serve_until_stopped())


if __name__ == "__main__":
    main()

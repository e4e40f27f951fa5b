"""The ``hlarchive`` command: one click group; sub-commands of other packages join through entry points.

The recorder's ``record`` registers itself under the ``hlarchive.commands`` entry point group, so
this package never imports the recorder. User mistakes end as one line on stderr and exit code 2.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import click

from schemas import __version__
from schemas.layout import ArchiveError
from schemas.protocol import FrameError, ProtocolError
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
@click.option("--on-gap", type=click.Choice(["mark", "fail", "ignore"]), default="mark", help="mark: list the replayed streams' gaps on stderr at the end; fail: stop where the first begins, exit 3; ignore: say nothing.")
def replay_command(root: str, subs: tuple[str, ...], coins: tuple[str, ...], channels: tuple[str, ...], start: str | None, end: str | None, speed: float | None, order: str, with_ts: bool, output_format: str, on_gap: str) -> None:
    """Print archived frames on stdout, in order, as the exchange sent them (pipe to jq)."""
    from .gaps import GapError
    from .replay import Replay

    if with_ts and output_format != "jsonl":
        raise click.BadParameter("a receive-time prefix makes lines that are not JSON; use --format jsonl", param_hint="--with-ts")
    if speed is not None and speed <= 0:
        raise click.BadParameter("give a positive factor (1.0 = real time)", param_hint="--speed")
    replay = Replay(root, start, end, order=order, on_gap={"fail": "raise"}.get(on_gap, on_gap))
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
        return
    except GapError as exc:
        out.flush()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(3)
    if on_gap == "mark":
        found = replay.gaps()
        if found:
            click.echo(f"{len(found)} gap(s) in the replayed streams (--on-gap fail stops at the first):", err=True)
            for gap in found[:20]:
                click.echo(f"  {gap.describe()}", err=True)
            if len(found) > 20:
                click.echo(f"  ... and {len(found) - 20} more (hlarchive coverage lists them all)", err=True)


def _array_items(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Every line but the first gets a leading comma, so the lines between "[" and "]" are one JSON array."""
    for line in lines:
        yield line
        break
    for line in lines:
        yield b"," + line


def _noop(message: Any) -> None:
    pass


DEMO_COINS = ("BTC", "ETH", "@1", "PURR/USDC")
DEMO_QUERY = (
    "select coin, count(*) as trades, round(vwap(px, sz), 4) as vwap, round(avg(px), 4) as avg_px, "
    "min(time) as first, max(time) as last from trades group by 1 order by 1"
)


@main.command()
@click.option("--seconds", default=20.0, type=float, help="How long to record.")
@click.option("--out", default="./demo-archive", type=click.Path(file_okay=False), help="Archive directory.")
@click.option("--rate", default=20.0, type=float, help="Frames per second per subscription from the simulator.")
@click.pass_context
def demo(ctx: click.Context, seconds: float, out: str, rate: float) -> None:
    """The offline tour: a simulated Hyperliquid on loopback, every channel recorded, then ls, SQL and replay."""
    import time

    import orjson

    from .analysis.cli import ls_command, sql
    from .serving.server import HyperliquidServer, ServerThread
    from .serving.synthetic_source import SyntheticSource
    from .simulator.coins import DEFAULT_USERS

    group = ctx.find_root().command
    assert isinstance(group, click.Group)
    record = group.get_command(ctx.find_root(), "record")  # the recorder's command, joined by entry point
    if record is None:
        raise ArchiveError("the record command is not installed: reinstall hlarchive (pip install -e .)")
    user = DEFAULT_USERS[0]
    args = ["--out", out, "--duration", str(seconds), "--status-seconds", "2", "--interval", "1m", "--user", user]
    for coin in DEMO_COINS:
        args += ["--coin", coin]
    for channel in ("l2Book", "trades", "bbo", "candle", "activeAssetCtx"):
        args += ["--channel", channel]
    for channel in ("userEvents", "userFills", "orderUpdates", "userFundings", "userNonFundingLedgerUpdates", "webData2", "notification", "userTwapSliceFills", "userTwapHistory"):
        args += ["--sub", orjson.dumps({"type": channel, "user": user}).decode()]
    args += ["--sub", '{"type":"allMids"}', "--sub", orjson.dumps({"type": "activeAssetData", "user": user, "coin": "BTC"}).decode()]
    now_ms = int(time.time() * 1000)  # market time follows the wall clock: a tick of 1/rate s, never ahead of it
    tick_ms = max(1, round(1000 / rate)) if rate else 100
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=7, start_ms=now_ms, tick_ms=tick_ms), rate=rate)) as server:
        click.echo(f"1. a simulated Hyperliquid is listening at {server.ws_url} (hlarchive simulate runs one on its own)", err=True)
        click.echo(f"2. recording every channel for {seconds:g} s into {out} ...", err=True)
        record.main(["--url", server.ws_url, *args], prog_name="hlarchive record", standalone_mode=False)
    click.echo("\n3. what was recorded (hlarchive ls):\n", err=True)
    ctx.invoke(ls_command, root=out, as_json=False)
    click.echo(f'\n4. a query (hlarchive sql {out} "{DEMO_QUERY}"):\n', err=True)
    ctx.invoke(sql, root=out, query=DEMO_QUERY, fmt="table", output=None)
    click.echo("\n5. next:", err=True)
    click.echo(f"   hlarchive replay {out} --coin BTC --channel trades | head      # the frames, as JSON lines", err=True)
    click.echo(f"   hlarchive serve {out}                                          # a local Hyperliquid (/ws, POST /info) replaying them", err=True)
    click.echo(f"   python -c \"from replay import Replay; r = Replay('{out}'); r.subscribe({{'type': 'l2Book', 'coin': 'BTC'}}, print); r.run()\"", err=True)
    click.echo("   hlarchive record --coin BTC --channel l2Book --channel trades  # the real thing, from Hyperliquid mainnet", err=True)



def _register() -> None:
    from .analysis.cli import (
        catalog_command,
        checkpoint_command,
        compact,
        coverage_command,
        ls_command,
        sql,
        sync_command,
        verify,
    )
    from .exports.cli import export_command
    from .serving.cli import serve, simulate

    for command in (simulate, serve, sql, ls_command, coverage_command, verify, compact, checkpoint_command, catalog_command, sync_command, export_command):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()

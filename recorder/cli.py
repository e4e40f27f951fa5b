"""``hlarchive record`` and ``hlarchive recover``: joined to the ``hlarchive`` group by entry points."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from schemas.layout import ArchiveError
from schemas.subscriptions import (
    COIN_TYPES,
    USER_TYPES,
    Subscription,
    SubscriptionError,
    check_user,
    parse_subscription,
)

from .connection import MAINNET_URL, TESTNET_URL, ConnectionConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CHANNELS = ("l2Book", "trades", "bbo")
DEFAULT_USER_CHANNELS = ("userFills", "orderUpdates", "userFundings")


def expand(
    coins: list[str], channels: list[str], users: list[str], subs: list[Any], interval: str
) -> list[Subscription]:
    """``--coin`` x ``--channel`` (and ``--user`` x user channels) plus exact ``--sub``s, deduplicated."""
    out: dict[str, Subscription] = {}

    def add(raw: dict[str, Any], allow_unknown: bool = False) -> None:
        sub = parse_subscription(raw, allow_unknown=allow_unknown)
        out.setdefault(sub.stream, sub)

    for user in users:
        check_user(user)
    channels = list(channels)
    if not channels and coins:
        channels = list(DEFAULT_CHANNELS)
    if users and not any(c in USER_TYPES for c in channels):
        channels += DEFAULT_USER_CHANNELS
    for channel in channels:
        needs_coin, needs_user = channel in COIN_TYPES, channel in USER_TYPES
        if channel not in COIN_TYPES | USER_TYPES:
            add({"type": channel})  # allMids, allDexsAssetCtxs; unknown names get the validator's error
            continue
        if needs_coin and not coins:
            raise SubscriptionError(f"--channel {channel} needs at least one --coin")
        if needs_user and not users:
            raise SubscriptionError(f"--channel {channel} needs at least one --user ADDRESS")
        for coin in coins if needs_coin else [None]:
            for user in users if needs_user else [None]:
                raw: dict[str, Any] = {"type": channel}
                if user is not None:
                    raw["user"] = user
                if coin is not None:
                    raw["coin"] = coin
                if channel == "candle":
                    raw["interval"] = interval
                add(raw)
    for raw in subs:
        if isinstance(raw, str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise SubscriptionError(f"--sub {raw!r} is not JSON: give e.g. '{{\"type\": \"l2Book\", \"coin\": \"BTC\", \"nSigFigs\": 5}}'") from None
        add(raw, allow_unknown=True)
    return list(out.values())


def load_config(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ArchiveError(f"cannot read config {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ArchiveError(f"config {path!r} is not valid TOML: {exc}") from None


@click.command()
@click.option("--out", "out", default=None, type=click.Path(file_okay=False), help="Archive directory.  [default: ./archive]")
@click.option("--url", default=None, help=f"Websocket URL.  [default: {MAINNET_URL}]")
@click.option("--testnet", is_flag=True, help=f"Record from testnet ({TESTNET_URL}).")
@click.option("--coin", "coins", multiple=True, help="A coin: BTC, kPEPE, @107, PURR/USDC, xyz:HOOD. Repeat for more.")
@click.option("--channel", "channels", multiple=True, help="A subscription type for every --coin (or --user). Default: l2Book, trades, bbo.")
@click.option("--interval", default="1m", show_default=True, help="Candle interval for --channel candle.")
@click.option("--user", "users", multiple=True, help="A user address for user channels (default userFills, orderUpdates, userFundings).")
@click.option("--sub", "subs", multiple=True, metavar="JSON", help='An exact subscription, e.g. \'{"type":"l2Book","coin":"BTC","nSigFigs":5}\'.')
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False), help="A TOML file with the same settings (coins, channels, users, subs, out, url...).")
@click.option("--duration", default=None, type=float, help="Stop after this many seconds (default: run until Ctrl-C / SIGTERM).")
@click.option("--flush-seconds", default=60.0, show_default=True, type=float, help="Commit parts and trim the journal at least this often.")
@click.option("--no-meta", is_flag=True, help="Do not snapshot the info endpoint's meta and spotMeta.")
@click.option("--per-connection", default=200, show_default=True, type=int, help="At most this many subscriptions per websocket connection.")
@click.option("--ping-seconds", default=50.0, show_default=True, type=float, help="Ping interval (Hyperliquid drops connections silent for 60 s).")
@click.option("--stall-seconds", default=65.0, show_default=True, type=float, help="Reconnect when a connection is silent this long.")
@click.option("--status-seconds", default=5.0, show_default=True, type=float, help="Status line interval on stderr.")
@click.option("--quiet", is_flag=True, help="No status line.")
def record(
    out: str | None, url: str | None, testnet: bool, coins: tuple[str, ...], channels: tuple[str, ...], interval: str,
    users: tuple[str, ...], subs: tuple[str, ...], config_path: str | None, duration: float | None, flush_seconds: float,
    no_meta: bool, per_connection: int, ping_seconds: float, stall_seconds: float, status_seconds: float, quiet: bool,
) -> None:
    """Record Hyperliquid websocket subscriptions into a Parquet archive, through disconnects and crashes."""
    from .live import Recorder

    config = load_config(config_path) if config_path else {}
    out = out or config.get("out") or "./archive"
    if url and testnet:
        raise click.UsageError("give --url or --testnet, not both")
    url = url or (TESTNET_URL if testnet or config.get("testnet") else config.get("url") or MAINNET_URL)
    subscriptions = expand(
        list(coins) or list(config.get("coins", [])),
        list(channels) or list(config.get("channels", [])),
        list(users) or list(config.get("users", [])),
        list(config.get("subs", [])) + list(subs),
        interval if interval != "1m" else config.get("interval", "1m"),
    )
    recorder = Recorder(
        Path(out),
        subscriptions,
        url=url,
        max_per_connection=per_connection,
        flush_seconds=config.get("flush_seconds", flush_seconds),
        meta=not (no_meta or config.get("no_meta", False)),
        connection_config=ConnectionConfig(ping_interval_s=ping_seconds, stall_s=stall_seconds),
        status_s=None if quiet else status_seconds,
    )
    if recorder.recovered:
        click.echo(f"recovered from a previous crash: {orjson.dumps(recorder.recovered).decode()}", err=True)
    if not quiet:
        click.echo(
            f"recording {len(subscriptions)} subscriptions over {len(recorder.plan)} connection(s) from {url} into {out} "
            f"(session {recorder.session})",
            err=True,
        )

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, recorder.stop)
        return await recorder.run(duration_s=duration or config.get("duration"))

    status = asyncio.run(main())
    if not quiet:
        click.echo(f"stopped: {sum(status.frames.values()):,} frames, {recorder.writer.stats.parts} parts written, {status.reconnects} reconnects", err=True)


@click.command()
@click.argument("root", type=click.Path(file_okay=False))
def recover_command(root: str) -> None:
    """Turn journals left by a crashed recorder into parts (skipping frames already committed)."""
    from .recovery import recover

    if not Path(root).is_dir():
        raise ArchiveError(f"no archive at {root!r}: give the directory you recorded into")
    report = recover(root)
    if not report:
        click.echo("nothing to recover", err=True)
    for entry in report:
        click.echo(f"session {entry['session']}: {entry['frames']} frames recovered, {entry['skipped']} already committed")


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--root", required=True, type=click.Path(file_okay=False), help="The archive to import into.")
@click.option("--start", default=None, help="Receive time of a first line that has none (ISO-8601 or epoch ms).")
def import_command(files: tuple[str, ...], root: str, start: str | None) -> None:
    """Import JSON lines of websocket frames (optionally after a timestamp; gzip or not) into an archive."""
    from schemas.jsonlines import LineError, parse_timestamp_ns

    from .importer import import_files

    start_ns = None
    if start is not None:
        try:
            start_ns = parse_timestamp_ns(start)
        except LineError as exc:
            raise click.BadParameter(str(exc), param_hint="--start") from None

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\rimporting: {done / max(total, 1):.0%}", err=True, nl=done >= total)

    report = import_files(list(files), root, start_ns=start_ns, progress=progress)
    click.echo(f"imported {report.frames:,} frames from {report.files} file(s)" + (f"; {report.bad_lines} bad line(s) kept as malformed events" if report.bad_lines else ""))

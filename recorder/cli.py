"""``hlarchive record`` and ``hlarchive recover``: joined to the ``hlarchive`` group by entry points."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson

from schemas.imports.history import DATASETS
from schemas.layout import ArchiveError

from .connection import MAINNET_URL, TESTNET_URL, ConnectionConfig
from .metrics import parse_address
from .planning.markets import MARKET_WORDS, MarketsError, Selection
from .planning.plan import DEFAULT_CHANNELS, MarketPlan, expand

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
@click.option("--coin", "coins", multiple=True, help="A coin: BTC, kPEPE, @107, PURR/USDC, xyz:HOOD; or all, all-perps, all-spot (resolved from /info, listings followed). Repeat for more.")
@click.option("--dex", "dexes", multiple=True, help="With --coin all/all-perps: also this builder dex's perps (or 'all' of them). Default: the main dex only.")
@click.option("--top", default=None, type=click.IntRange(min=1), help="With --coin all...: only the N most traded markets by 24 h notional volume.")
@click.option("--exclude", "excludes", multiple=True, help="With --coin all...: leave this coin out. Repeat for more.")
@click.option("--meta-seconds", default=300.0, show_default=True, type=click.FloatRange(min=1), help="With --coin all...: how often the market list is read again to follow listings and delistings.")
@click.option("--channel", "channels", multiple=True, help="A subscription type for every --coin (or --user). Default: l2Book, trades, bbo.")
@click.option("--interval", default="1m", show_default=True, help="Candle interval for --channel candle.")
@click.option("--user", "users", multiple=True, help="A user address for user channels (default userFills, orderUpdates, userFundings).")
@click.option("--sub", "subs", multiple=True, metavar="JSON", help='An exact subscription, e.g. \'{"type":"l2Book","coin":"BTC","nSigFigs":5}\'.')
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False), help="A TOML file with the same settings (coins, channels, users, subs, out, url...).")
@click.option("--duration", default=None, type=float, help="Stop after this many seconds (default: run until Ctrl-C / SIGTERM).")
@click.option("--flush-seconds", default=60.0, show_default=True, type=float, help="Commit parts and trim the journal at least this often.")
@click.option("--compact-every", default="1h", show_default=True, help="Merge each partition's parts of every span this long into one, behind the recording (30s, 10m, 1h...; 0: off).")
@click.option("--compact-after", default="10m", show_default=True, help="How long past a span's end its compaction waits (late parts).")
@click.option("--no-meta", is_flag=True, help="Do not snapshot the info endpoint's meta and spotMeta.")
@click.option("--per-connection", default=200, show_default=True, type=int, help="At most this many subscriptions per websocket connection.")
@click.option("--ping-seconds", default=50.0, show_default=True, type=float, help="Ping interval (Hyperliquid drops connections silent for 60 s).")
@click.option("--stall-seconds", default=65.0, show_default=True, type=float, help="Reconnect when a connection is silent this long.")
@click.option("--status-seconds", default=5.0, show_default=True, type=float, help="Status line interval on stderr.")
@click.option("--quiet", is_flag=True, help="No status line.")
@click.option("--upload", "upload_url", default=None, metavar="URL", help="Copy each committed part to this store (s3://bucket/prefix) in the background; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, endpoint from AWS_ENDPOINT_URL.")
@click.option("--metrics", "metrics_at", default=None, metavar="HOST:PORT", help="Serve Prometheus metrics at http://HOST:PORT/metrics (and /healthz).")
@click.option("--health", "health_at", default=None, metavar="HOST:PORT", help="Serve /healthz alone: 200 while every connection receives, 503 with the reason.")
@click.option("--keep-local-days", default=None, type=click.FloatRange(min=0), help="With --upload: remove a local part once uploaded and its day is this many days old (0: at once).")
@click.option("--node-data", "node_data", default=None, type=click.Path(file_okay=False), help="Follow a node's L4 files instead of a websocket: its data root (holding node_order_statuses_by_block/, node_raw_book_diffs_by_block/, node_fills_by_block/).")
@click.option("--node-info", default="http://127.0.0.1:3001", show_default=True, help="With --node-data: the node's local info server, asked for full L4 snapshots (fileSnapshot).")
@click.option("--snapshot-every", default=3600.0, show_default=True, type=click.FloatRange(min=1), help="With --node-data: seconds between two L4 snapshots asked of the node.")
@click.option("--node-max-wait", default=5.0, show_default=True, type=click.FloatRange(min=0.01), help="With --node-data: seconds a lagging stream is waited for before a node_stream_lag event (the wait goes on).")
@click.option("--checkpoint-every", default="5m", show_default=True, help="With --node-data: write the L4 book every this much time (30s, 5m, 1h; 0: none), behind the follower, so seeks start near their instant.")
def record(
    node_data: str | None, node_info: str, snapshot_every: float, node_max_wait: float, checkpoint_every: str,
    out: str | None, url: str | None, testnet: bool, coins: tuple[str, ...], dexes: tuple[str, ...], top: int | None,
    excludes: tuple[str, ...], meta_seconds: float, channels: tuple[str, ...], interval: str,
    users: tuple[str, ...], subs: tuple[str, ...], config_path: str | None, duration: float | None, flush_seconds: float,
    compact_every: str, compact_after: str, no_meta: bool, per_connection: int, ping_seconds: float, stall_seconds: float, status_seconds: float, quiet: bool,
    upload_url: str | None, keep_local_days: float | None, metrics_at: str | None, health_at: str | None,
) -> None:
    """Record Hyperliquid websocket subscriptions into a Parquet archive, through disconnects and crashes;
    or, with --node-data, a node's order-level (L4) files as they grow."""
    if node_data:
        if subs or channels or users or url or testnet:
            raise click.UsageError("--node-data follows a node's files: --coin filters them; --sub, --channel, --user and --url are for websockets")
        every_s = _duration(checkpoint_every, "--checkpoint-every")
        compact = (_duration(compact_every, "--compact-every"), _duration(compact_after, "--compact-after"))
        _follow_node(node_data, out or "./archive", coins, node_info, snapshot_every, node_max_wait, flush_seconds, duration, None if quiet else status_seconds, metrics_at, every_s, compact)
        return
    from .live import Recorder

    config = load_config(config_path) if config_path else {}
    out = out or config.get("out") or "./archive"
    if keep_local_days is not None and not (upload_url or config.get("upload")):
        raise click.UsageError("--keep-local-days goes with --upload URL")
    if url and testnet:
        raise click.UsageError("give --url or --testnet, not both")
    url = url or (TESTNET_URL if testnet or config.get("testnet") else config.get("url") or MAINNET_URL)
    coin_words = list(coins) or list(config.get("coins", []))
    channel_list = list(channels) or list(config.get("channels", []))
    user_list = list(users) or list(config.get("users", []))
    sub_list = list(config.get("subs", [])) + list(subs)
    interval = interval if interval != "1m" else config.get("interval", "1m")
    selection = Selection(
        tuple(coin_words),
        tuple(dexes) or tuple(config.get("dex", [])),
        top or config.get("top"),
        tuple(excludes) or tuple(config.get("exclude", [])),
    )
    market_plan = None
    if selection.follows_listings:
        market_plan = MarketPlan(
            selection, channel_list or list(DEFAULT_CHANNELS), user_list, sub_list, interval,
            _info_fetcher(url), per_connection,
        )
        subscriptions = market_plan.resolve_at_start()
    else:
        if selection.top or selection.exclude or selection.dexes:
            raise click.UsageError(f"--top, --exclude and --dex go with --coin {'/'.join(MARKET_WORDS)}")
        subscriptions = expand(coin_words, channel_list, user_list, sub_list, interval)
    recorder = Recorder(
        Path(out),
        subscriptions,
        url=url,
        max_per_connection=per_connection,
        flush_seconds=config.get("flush_seconds", flush_seconds),
        meta=not (no_meta or config.get("no_meta", False)),
        connection_config=ConnectionConfig(ping_interval_s=ping_seconds, stall_s=stall_seconds),
        status_s=None if quiet else status_seconds,
        market_plan=market_plan,
        market_refresh_s=config.get("meta_seconds", meta_seconds),
        upload_url=upload_url or config.get("upload"),
        keep_local_days=keep_local_days if keep_local_days is not None else config.get("keep_local_days"),
        metrics_address=parse_address(metrics_at or config["metrics"], "--metrics") if (metrics_at or config.get("metrics")) else None,
        health_address=parse_address(health_at or config["health"], "--health") if (health_at or config.get("health")) else None,
        compact_every_s=_duration(config.get("compact_every", compact_every) if compact_every == "1h" else compact_every, "--compact-every"),
        compact_after_s=_duration(config.get("compact_after", compact_after) if compact_after == "10m" else compact_after, "--compact-after"),
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
        click.echo(f"stopped: {sum(status.frames.values()):,} frames, {recorder.archiver.stats.parts} parts written, {status.reconnects} reconnects", err=True)


def _info_fetcher(ws_url: str) -> Any:
    """A POST to the info endpoint beside ``ws_url``; a failure is one line naming the way out."""
    from .meta import fetch_info, info_url

    url = info_url(ws_url)

    def fetch(request: dict[str, Any]) -> Any:
        try:
            return fetch_info(url, request)
        except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MarketsError(
                f"cannot list markets from {url} ({reason}): name the coins instead (--coin BTC --coin ETH ...) "
                f"or point --url at a server that answers POST /info"
            ) from None

    return fetch


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


def _follow_node(node_data: str, out: str, coins: tuple[str, ...], node_info: str, snapshot_every: float, max_wait: float, flush_seconds: float, duration: float | None, status_seconds: float | None, metrics_at: str | None, checkpoint_every_s: float = 0.0,
                 compact: tuple[float, float] = (0.0, 0.0)) -> None:
    import signal
    import threading

    from .node.follow import NodeFollower, status_line

    if Path(out).is_dir():
        from .parts.catalog import catch_up

        catch_up(out)  # a crash between a part and its catalog entry
    follower = NodeFollower(node_data, out, coins=coins or None, node_info=node_info or None, snapshot_every_s=snapshot_every, max_wait_s=max_wait, flush_seconds=min(flush_seconds, 60.0))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = None
    if metrics_at:
        from .node.metrics import serve_node_metrics

        server = serve_node_metrics(follower.status, parse_address(metrics_at, "--metrics"))
    start = follower.out.cursor
    click.echo(f"following {node_data} into {out}" + (f", after block {start}" if start is not None else ", from its oldest file") + (f"; coins {', '.join(coins)}" if coins else "; every coin") + ". Ctrl-C stops.", err=True)
    checkpoints = None
    if checkpoint_every_s:
        from .node.checkpoints import BackgroundCheckpoints

        checkpoints = BackgroundCheckpoints(out, checkpoint_every_s)
        checkpoints.start()
    compactor = None
    if compact[0]:  # a part every --flush-seconds a coin and stream: merged behind the follower, as `record` does
        from .parts.compactor import BackgroundCompactor

        compactor = BackgroundCompactor(Path(out), compact[0], compact[1])
        compactor.start()
    status = follower.run(stop, duration, on_status=(lambda s: click.echo(status_line(s), err=True)) if status_seconds else None, status_s=status_seconds or 5.0)
    if compactor is not None:
        compactor.stop()
        if compactor.error:
            click.echo(f"compaction behind the follower failed: {compactor.error}; the parts stay as written (`hlarchive compact {out}` merges them)", err=True)
    if server is not None:
        server.shutdown()
    click.echo(status_line(status), err=True)
    if checkpoints is not None:
        checkpoints.stop()
        _last_checkpoints(out, checkpoint_every_s)


def _last_checkpoints(root: str, every_s: float) -> None:
    """The checkpoints of what was just written (a follower stopping, an import ending)."""
    from .node.checkpoints import write_checkpoints

    try:
        written = write_checkpoints(root, every_s)
    except ValueError as exc:
        click.echo(f"warning: L4 checkpoints not written ({exc}); `hlarchive checkpoint {root}` writes them", err=True)
        return
    if written:
        click.echo(f"{written} L4 checkpoint(s) written", err=True)


@click.command("import")
@click.argument("sources", nargs=-1, required=True)
@click.option("--root", required=True, type=click.Path(file_okay=False), help="The archive to import into.")
@click.option("--dataset", type=click.Choice(["jsonl", *DATASETS]), default=None, help="What the sources are; default: told by their key layout (market_data/…/l2Book, asset_ctxs/, node_fills_by_block/, node_fills/, node_trades/, .lz4) or JSON lines.")
@click.option("--start", default=None, help="JSON lines: receive time of a first line that has none (ISO-8601 or epoch ms).")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="History files imported at once, each by its own process; a node's files: threads parsing them (default: one a core). The archive is the same whatever the number.")
@click.option("--spark", "spark_master", default=None, metavar="MASTER", help="Run the import as a Spark job (local[2], spark://host:7077, yarn...): one task a file; needs the spark extra on the driver and the executors.")
@click.option("--silent", is_flag=True, help="No progress on stderr.")
@click.option("--checkpoint-every", default="5m", show_default=True, help="A node's L4 data: then write the book every this much block time (30s, 5m, 1h; 0: none), so seeks start near their instant.")
def import_command(sources: tuple[str, ...], root: str, dataset: str | None, start: str | None, jobs: int | None, spark_master: str | None, silent: bool, checkpoint_every: str) -> None:
    """Import Hyperliquid's published history (L2 snapshots, asset contexts, node fills, node trades:
    a directory in the buckets' layout, .lz4 files, or s3:// prefixes, requester-pays), or JSON lines
    of websocket frames from other collectors (gzip or not); or a node's L4 data root (its
    node_order_statuses_by_block/, node_raw_book_diffs_by_block/, node_fills_by_block/, plain or .lz4).
    Importing the same file twice adds nothing."""
    if "://" not in root and Path(root).is_dir():
        from .parts.catalog import catch_up

        catch_up(root)  # an earlier import that died between a part and its catalog entry
    node_roots = [s for s in sources if (Path(s) / "node_order_statuses_by_block").is_dir() or (Path(s) / "node_raw_book_diffs_by_block").is_dir()]
    if node_roots:
        if len(node_roots) != len(sources) or spark_master or dataset:
            raise click.UsageError("import node L4 data roots on their own (no --dataset, --spark or other sources in the same command)")
        from .imports.workers import default_jobs

        _import_node(node_roots, root, silent, _duration(checkpoint_every, "--checkpoint-every"), jobs or default_jobs())
        return
    if dataset == "jsonl" or (dataset is None and not any(_is_history(s) for s in sources)):
        if spark_master:
            raise click.UsageError("--spark imports Hyperliquid's history files (.lz4), not JSON lines")
        _import_json_lines(sources, root, start, silent)
        return
    from .imports.history import list_sources
    from .imports.workers import default_jobs

    if spark_master and jobs:
        raise click.UsageError("--jobs is for a local import; with --spark, Spark's executors set the parallelism")
    n_files = len(list_sources(list(sources), dataset))

    def progress(report: Any, total: int) -> None:
        if silent:
            return
        seconds = max(time.monotonic() - began, 1e-9)
        rows = report.rows + report.rows_in_flight
        click.echo(
            f"\rimporting: {report.files + report.skipped}/{n_files} file(s), {report.bytes_read / 1e6:,.1f}/{total / 1e6:,.1f} MB "
            f"({report.bytes_read / 1e6 / seconds:,.1f} MB/s), {rows:,} rows ({rows / seconds:,.0f}/s)"
            + (f", {report.workers} at work" if report.workers > 1 else "") + "   ",
            err=True, nl=False,
        )

    began = time.monotonic()
    try:
        if spark_master:
            from .imports.spark import import_with_spark

            def tasks(done: int, total: int, running: int, failed: int) -> None:
                if not silent:
                    click.echo(f"\rspark: {done}/{total} file(s) done, {running} running" + (f", {failed} failed attempt(s) retried" if failed else "") + "   ", err=True, nl=False)

            report = import_with_spark(list(sources), root, spark_master, dataset=dataset, on_tasks=tasks)
        else:
            from .imports.history import import_history

            report = import_history(list(sources), root, dataset=dataset, progress=progress, jobs=jobs or default_jobs())
    except KeyboardInterrupt:
        click.echo("\ninterrupted: files imported whole stay, the ones being imported left nothing behind; run the same command again to finish", err=True)
        sys.exit(130)
    if not silent:
        click.echo("", err=True)
    parts = ", ".join(f"{n:,} {d}" for d, n in sorted(report.by_dataset.items()))
    click.echo(
        f"imported {report.rows:,} rows ({parts or 'nothing new'}) and {report.trades:,} trades frames from {report.files} file(s)"
        + (f"; {report.skipped} file(s) imported before, skipped" if report.skipped else "")
        + (f"; {report.unpaired_fills} fill(s) without their other side (import the neighbouring hours in the same command)" if report.unpaired_fills else "")
    )


def _import_node(node_roots: list[str], root: str, silent: bool, checkpoint_every_s: float = 300.0, jobs: int = 2) -> None:
    from .node.follow import import_node_data, status_line

    for node_root in node_roots:
        status = import_node_data(node_root, root, jobs=jobs, progress=None if silent else (lambda s: click.echo("\rimporting: " + status_line(s) + "   ", err=True, nl=False)))
        if not silent:
            click.echo("", err=True)
        click.echo(f"imported {node_root}: {status.blocks:,} blocks, {status.events:,} events" + (f"; {status.skipped:,} already in the archive, skipped" if status.skipped else "") + (f"; {status.bad_lines} bad line(s) kept as node_bad_line events" if status.bad_lines else ""))
    if checkpoint_every_s:
        _last_checkpoints(root, checkpoint_every_s)


def _is_history(source: str) -> bool:
    return source.startswith("s3://") or source.endswith(".lz4") or Path(source).is_dir()


def _import_json_lines(files: tuple[str, ...], root: str, start: str | None, silent: bool) -> None:
    from schemas.imports.jsonlines import LineError, parse_timestamp_ns

    from .imports.jsonlines import import_files

    start_ns = None
    if start is not None:
        try:
            start_ns = parse_timestamp_ns(start)
        except LineError as exc:
            raise click.BadParameter(str(exc), param_hint="--start") from None

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty() and not silent:
            click.echo(f"\rimporting: {done / max(total, 1):.0%}", err=True, nl=done >= total)

    report = import_files(list(files), root, start_ns=start_ns, progress=progress)
    click.echo(f"imported {report.frames:,} frames from {report.files} file(s)" + (f"; {report.bad_lines} bad line(s) kept as malformed events" if report.bad_lines else ""))


def _duration(value: str | float, option: str) -> float:
    from .parts.compactor import parse_duration

    try:
        seconds = parse_duration(value, option)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if 0 < seconds < 1:
        raise click.BadParameter(f"{option} {value!r}: at least 1s (or 0: off)")
    return seconds

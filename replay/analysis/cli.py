"""The archive commands: ``sql``, ``ls``, ``verify``, ``compact``, ``sync``: parse, call the Python API, print."""

from __future__ import annotations

import csv
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, TextIO

import click
import orjson

from schemas.layout import ArchiveError

if TYPE_CHECKING:  # DuckDB is loaded by the commands that query, not by every hlarchive command
    import duckdb


def progress_line(label: str) -> Callable[[int, int], None]:
    """A progress callback that rewrites one stderr line, at most a few times a second."""
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.25 and done != total:
            return
        last[0] = now
        if sys.stderr.isatty():
            end = "\n" if done == total else ""
            click.echo(f"\r{label}: {done}/{total}", err=True, nl=False)
            if end:
                click.echo("", err=True)

    return show


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def print_table(columns: list[str], rows: list[tuple[Any, ...]], out: TextIO) -> None:
    cells = [columns] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def run_query(con: duckdb.DuckDBPyConnection, query: str, fmt: str, output: str | None) -> None:
    import duckdb

    try:
        relation = con.sql(query)
        if relation is None:  # a statement with no result (CREATE, SET...)
            return
        if fmt == "parquet":
            if not output:
                raise click.UsageError("--format parquet needs -o FILE")
            relation.write_parquet(output)
            click.echo(f"wrote {output}", err=True)
            return
        columns, rows = relation.columns, relation.fetchall()
    except duckdb.Error as exc:
        raise ArchiveError(f"SQL: {str(exc).splitlines()[0]}") from None
    handle: TextIO = open(output, "w", newline="") if output else sys.stdout
    try:
        if fmt == "table":
            print_table(columns, rows, handle)
        elif fmt == "csv":
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        elif fmt == "json":  # one array, as DuckDB's CLI and sqlite-utils write it
            handle.write(orjson.dumps([dict(zip(columns, row)) for row in rows], default=str).decode() + "\n")
        else:
            for row in rows:
                handle.write(orjson.dumps(dict(zip(columns, row)), default=str).decode() + "\n")
    finally:
        if output:
            handle.close()


@click.command()
@click.argument("root", type=click.Path(file_okay=False))
@click.argument("query", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "jsonl", "parquet"]), default="table", help="Output format (json: one array; jsonl: one object a line).")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--coin", "coins", multiple=True, help="Keep only this coin's rows in the views (repeat for more); only its parts are listed.")
@click.option("--start", default=None, help="Keep only rows received at or after this time (ISO-8601 or epoch ms).")
@click.option("--end", default=None, help="Keep only rows received at or before this time (ISO-8601 or epoch ms).")
def sql(root: str, query: str | None, fmt: str, output: str | None, coins: tuple[str, ...], start: str | None, end: str | None) -> None:
    """Query the archive (a path, or a URL like s3://bucket/prefix) with DuckDB SQL; with no QUERY,
    read statements from stdin (end each with ;).

    Views: trades, l2book, l2book_levels, bbo, candles, all_mids, asset_ctx, fills, order_updates,
    fundings, ledger, events, meta, and archive_<channel> for the stored columns. Macros: vwap(px, sz),
    bucket(ts, '1 minute'), ns_to_time(ns), ms_to_time(ms).

    --coin, --start and --end narrow every view to those rows before the query runs, and list only
    the parts that may hold them: a coin-hour of a month of the whole market opens in a fraction of
    a second.
    """
    from ..replay import to_ns
    from .views import open_archive, partitions_of

    to_ns(start, "--start"), to_ns(end, "--end")  # a mistake named as the user typed it
    con = open_archive(root, partitions=partitions_of(query) if query is not None else None, coins=coins or None, start=start, end=end)
    if query is not None:
        run_query(con, query, fmt, output)
        return
    interactive = sys.stdin.isatty()
    buffer: list[str] = []
    while True:
        if interactive:
            click.echo("hlarchive> " if not buffer else "       ..> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            break
        buffer.append(line)
        statement = "".join(buffer).strip()
        if statement.endswith(";"):
            buffer = []
            try:
                run_query(con, statement, fmt, output)
            except ArchiveError as exc:
                if not interactive:
                    raise
                click.echo(f"Error: {exc}", err=True)
    if buffer and "".join(buffer).strip():
        run_query(con, "".join(buffer), fmt, output)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns / 1e9))


@click.command("ls")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ls_command(root: str, as_json: bool) -> None:
    """What the archive holds: channels, coins, dates, parts, rows, bytes, time span, gaps."""
    from .inventory import summarize

    summary = summarize(root)
    if as_json:
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    rows = [
        (p["channel"], p["coin"], f"{p['first_date']}..{p['last_date']}" if p["days"] > 1 else p["first_date"], p["parts"], f"{p['rows']:,}", _human_bytes(p["bytes"]), _time(p["first_recv_ns"]), _time(p["last_recv_ns"]), p["verdict"])
        for p in summary["partitions"]
    ]
    print_table(["channel", "coin", "dates", "parts", "rows", "bytes", "first (UTC)", "last (UTC)", "verdict"], rows, sys.stdout)
    total_rows = sum(p["rows"] for p in summary["partitions"])
    total_bytes = sum(p["bytes"] for p in summary["partitions"])
    click.echo(f"total: {total_rows:,} rows in {sum(p['parts'] for p in summary['partitions'])} parts, {_human_bytes(total_bytes)}")
    if summary["gaps"]:
        click.echo("gaps and trouble (from _events): " + ", ".join(f"{g['kind']} x{g['count']} (session {g['session']})" for g in summary["gaps"]))
    for journal in summary["journals"]:
        state = "being recorded" if journal["live"] else "NOT in parts: run `hlarchive recover`"
        click.echo(f"journal of session {journal['session']}: {journal['segments']} segments, {_human_bytes(journal['bytes'])}, {state}")


@click.command("coverage")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--coin", "coins", multiple=True, help="Only these coins (repeat).")
@click.option("--channel", "channels", multiple=True, help="Only these channels (subscription types; repeat).")
@click.option("--from", "start", default=None, help="Window start: ISO-8601 time or epoch ms (default: the first frame).")
@click.option("--to", "end", default=None, help="Window end, inclusive (default: the last frame).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="table: the verdict, the gaps and the hours with gaps; json: everything, for tools.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), default=None, help="Also write one self-contained page: a heatmap of coverage (a row a channel and coin, a column an hour) and the table.")
def coverage_command(root: str, coins: tuple[str, ...], channels: tuple[str, ...], start: str | None, end: str | None, fmt: str, html_file: str | None) -> None:
    """Can the archive be trusted for a window? Per channel, coin and hour: frames, gaps, the longest
    gap and the share covered, from the recorder's events; one verdict line. Exit 1 when there are gaps."""
    from ..replay import to_ns
    from .coverage import coverage

    report = coverage(root, coins=list(coins) or None, channels=list(channels) or None, start_ns=to_ns(start, "--from"), end_ns=to_ns(end, "--to"))
    if html_file:
        from .coverage_page import coverage_html

        with open(html_file, "w", encoding="utf-8") as handle:
            handle.write(coverage_html(report, title=f"hlarchive coverage of {root}"))
    if fmt == "json":
        click.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        streams: dict[tuple[str, str], list[Any]] = {}
        for cell in report.cells:
            streams.setdefault((cell.channel, cell.coin), []).append(cell)
        rows = [
            (channel, coin, len(cells), f"{sum(c.frames for c in cells):,}", sum(c.gaps for c in cells), f"{max(c.longest_gap_s for c in cells):,.3f}", f"{min(c.covered for c in cells):.2%}")
            for (channel, coin), cells in sorted(streams.items())
        ]
        print_table(["channel", "coin", "hours", "frames", "gaps", "longest gap (s)", "worst hour"], rows, sys.stdout)
        for gap in report.gaps[:50]:
            click.echo(f"gap: {gap.describe()}")
        if len(report.gaps) > 50:
            click.echo(f"... and {len(report.gaps) - 50} more gaps (--format json lists them all)")
        click.echo(f"verdict: {report.verdict}")
    if html_file:
        click.echo(f"wrote {html_file}", err=True)
    if report.gaps:
        sys.exit(1)


@click.command()
@click.argument("root", type=click.Path(file_okay=False))
def verify(root: str) -> None:
    """Read every part; check format versions, duplicate (session, seq), leftover journals. Exit 1 on a problem."""
    from .inventory import verify as verify_archive

    result = verify_archive(root, progress=progress_line("verifying parts"))
    for note in result.notes:
        click.echo(f"note: {note}")
    for problem in result.problems:
        click.echo(f"PROBLEM: {problem}")
    click.echo(f"{result.parts} parts, {result.rows:,} rows read: " + ("OK" if result.ok else f"{len(result.problems)} problem(s)"))
    if not result.ok:
        sys.exit(1)


@click.command()
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--channel", "channels", multiple=True, help="Only these channels (subscription types).")
@click.option("--date", "dates", multiple=True, help="Only these UTC dates (YYYY-MM-DD).")
@click.option("--target-rows", default=1_000_000, show_default=True, type=int, help="Rows per compacted part at most.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Partitions compacted at once, each by its own process (default: one a core).")
@click.option("--into", type=click.Choice(["day", "hour"]), default="day", show_default=True, help="One part a partition and day (merging a recorder's hourly parts), or a part an hour.")
@click.option("--checkpoint-every", default="5m", show_default=True, help="L4 archives: write the book every this much block time (30s, 5m, 1h; 0: none), after the last checkpoint.")
def compact(root: str, channels: tuple[str, ...], dates: tuple[str, ...], target_rows: int, jobs: int | None, into: str, checkpoint_every: str) -> None:
    """Merge each partition's small parts into large ones, atomically and in order. A recorder
    compacts behind itself (record --compact-every); this is for archives written without it, and
    for merging its hours into days. An archive with L4 rows also gets its checkpoints (the book
    every few minutes of blocks, where a seek starts)."""
    import os

    from .compaction import compact as compact_archive

    every_ms = checkpoint_ms(checkpoint_every)

    jobs = jobs or len(os.sched_getaffinity(0))
    report = compact_archive(root, channels=list(channels) or None, dates=list(dates) or None, target_rows=target_rows, progress=progress_line("compacting partitions"), jobs=jobs, into=into)
    if report.finished_interrupted:
        click.echo(f"finished {report.finished_interrupted} interrupted compaction(s)")
    click.echo(f"{report.partitions} partitions: {report.parts_before} parts -> {report.parts_after}, {report.rows:,} rows")
    if every_ms:
        from ..l4.checkpoints import write_checkpoints

        written = write_checkpoints(root, every_ms=every_ms, say=lambda line: click.echo(f"checkpoints: {line}", err=True))
        if written:
            click.echo(f"{written} L4 checkpoint(s) written")


def checkpoint_ms(text: str, option: str = "--checkpoint-every") -> int:
    """A checkpoint spacing in milliseconds (0: off): 30s, 5m, 1h or seconds."""
    from recorder.parts.compactor import parse_duration  # the one duration syntax, as record takes it

    try:
        seconds = parse_duration(text, option)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if 0 < seconds < 1:
        raise click.BadParameter("at least 1s (or 0: none)", param_hint=option)
    return int(seconds * 1000)


@click.command("checkpoint")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--every", default="5m", show_default=True, help="Block time between two checkpoints (30s, 5m, 1h).")
@click.option("--coin", "coins", multiple=True, help="Only these coins (default: every coin with L4 rows).")
def checkpoint_command(root: str, every: str, coins: tuple[str, ...]) -> None:
    """Write the L4 book every few minutes of blocks as l4Checkpoints rows, after each coin's last
    checkpoint, so a seek (Replay.l4_book, a replay's start, the SQL macros) reads minutes of rows,
    not the hour since the node's last snapshot. compact and import do it too."""
    from ..l4.checkpoints import write_checkpoints

    every_ms = checkpoint_ms(every, "--every")
    if not every_ms:
        raise click.BadParameter("give a duration like 5m", param_hint="--every")
    written = write_checkpoints(root, every_ms=every_ms, coins=list(coins) or None, say=lambda line: click.echo(line, err=True))
    click.echo(f"{written} L4 checkpoint(s) written")


@click.command("catalog")
@click.argument("root")
@click.option("--rebuild", is_flag=True, help="Build the catalog again from the tree (after a crash between a part and its entry, or parts copied in by hand).")
def catalog_command(root: str, rebuild: bool) -> None:
    """The archive's catalog (_catalog/: every part's entry, what readers plan from): its dates,
    parts and rows; with --rebuild, built again from the tree."""
    from ..archive import check_root, walk_parts
    from ..catalog import catalog_dates, is_complete, read_date
    from ..catalog import rebuild as rebuild_catalog

    store = check_root(root)
    if rebuild:
        rebuild_catalog(store, walk_parts(store), say=False)
        click.echo("catalog rebuilt from the tree")
    if not is_complete(store):
        click.echo("no complete catalog: readers build it from the tree the first time they read (or run with --rebuild)")
        return
    rows = []
    for date in catalog_dates(store):
        entries = list(read_date(store, date).values())
        rows.append((date, len(entries), len({(e.channel, e.coin) for e in entries}), f"{sum(e.rows for e in entries):,}", _human_bytes(sum(e.bytes for e in entries))))
    print_table(["date", "parts", "partitions", "rows", "bytes"], rows, sys.stdout)


@click.command("sync")
@click.argument("src")
@click.argument("dst")
@click.option("--delete-source", is_flag=True, help="Remove each source part once its copy is verified (free the local disk).")
@click.option("--silent", is_flag=True, help="No progress on stderr.")
def sync_command(src: str, dst: str, delete_source: bool, silent: bool) -> None:
    """Copy the committed parts of SRC that DST lacks (a path, or a URL like s3://bucket/prefix; credentials
    from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, endpoint from AWS_ENDPOINT_URL). Never the journal,
    never temporaries; each copy verified; a second run copies nothing, an interrupted one continues."""
    from .sync import SyncReport, sync

    def progress(report: SyncReport, total: int) -> None:
        if not silent:
            click.echo(f"\rsync: {report.copied + report.skipped}/{total} parts, {report.copied} copied ({report.bytes_copied / 1e6:,.1f} MB)", err=True, nl=False)

    report = sync(src, dst, delete_source=delete_source, progress=progress)
    if not silent and report.parts:
        click.echo("", err=True)
    click.echo(
        f"{report.copied} part(s) copied ({report.bytes_copied:,} bytes), {report.skipped} already there"
        + (f", {report.deleted} source part(s) removed" if report.deleted else "")
        + f" in {report.seconds:.1f}s"
    )


"""``hlarchive export``: a slice of the archive as another backtester's input."""

from __future__ import annotations

import sys
import time

import click

from . import FORMATS


class _Progress:
    """Rows and MB exported (the rows' size before compression), and MB/s, on one line of a terminal
    (nothing when not on one)."""

    def __init__(self) -> None:
        self.rows = 0
        self.bytes = 0
        self.started = time.monotonic()
        self.shown = sys.stderr.isatty()

    def __call__(self, rows: int, written: int) -> None:
        self.rows += rows
        self.bytes += written
        if self.shown:
            seconds = max(1e-9, time.monotonic() - self.started)
            click.echo(f"\r{self.rows:,} rows, {self.bytes / 1e6:,.1f} MB, {self.bytes / 1e6 / seconds:,.1f} MB/s", nl=False, err=True)

    def done(self) -> None:
        if self.shown:
            click.echo("", err=True)


@click.command("export")
@click.argument("root")
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS), help="hftbacktest: .npz event arrays a coin and day; nautilus: a ParquetDataCatalog; tardis: tardis.dev's CSV datasets; freqtrade: its data directory (feather candles, mark, funding, trades).")
@click.option("--coin", "coins", multiple=True, required=True, help="A coin to export (repeat).")
@click.option("--from", "start", default=None, help="Start of the slice (receive time; ISO-8601 or epoch ms). Default: the archive's start.")
@click.option("--to", "end", default=None, help="End of the slice (inclusive). Default: the archive's end.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to write into (new or empty, unless --force).")
@click.option("--force", is_flag=True, help="Write into an --out that already holds files (files of the same name are replaced).")
@click.option("--timeframe", "timeframes", multiple=True, help="freqtrade: a candle timeframe (repeat; default 1m and 5m). Perps also get 1h futures, mark and funding_rate candles.")
@click.option("--trades", is_flag=True, help="freqtrade: also write its -trades.feather files (for order-flow features).")
def export_command(root: str, fmt: str, coins: tuple[str, ...], start: str | None, end: str | None, out: str, force: bool, timeframes: tuple[str, ...], trades: bool) -> None:
    """Write a slice of the archive at ROOT (a directory or s3://...) as FORMAT's own input, under --out.

    For freqtrade, --out is the exchange's data directory: USERDIR/data/hyperliquid."""
    from . import export_with_summary

    progress = _Progress()
    try:
        summary = export_with_summary(root, fmt, coin=list(coins), out=out, start=start, end=end, force=force, progress=progress, timeframes=list(timeframes) or None, trades=trades)
    finally:
        progress.done()
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(summary.line())
    for line in summary.details:
        click.echo(f"  {line}")

"""Export a slice of the archive as the input of another backtester: hftbacktest's event arrays,
NautilusTrader's Parquet data catalog, tardis.dev's CSV datasets (what many tools read), freqtrade's
data directory (candles, mark and funding, trades). One module
a format, over one reader of the archive's slice (``reader``); nothing here writes to the archive,
and nothing half-written is left in the output (files are written under a temporary name and
renamed). Arrow loads on the first export, not on import: ``hlarchive record`` lists this command
without it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .summary import Summary

FORMATS = ("hftbacktest", "nautilus", "tardis", "freqtrade")
EXTRAS = {"hftbacktest": ("numpy", "hftbacktest"), "nautilus": ("nautilus_trader", "nautilus"), "freqtrade": ("numpy", "freqtrade")}  # format -> (module it needs, the extra that brings it)


def export(
    root: str | os.PathLike[str],
    format: str,
    *,
    coin: str | list[str],
    out: str | os.PathLike[str],
    start: Any = None,
    end: Any = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    timeframes: list[str] | None = None,
    trades: bool = False,
) -> list[Path]:
    """Write ``coin``'s slice ``[start, end]`` of the archive at ``root`` as ``format`` under ``out``;
    the paths written. ``progress(rows, bytes_written)`` is called as it goes. freqtrade only:
    ``timeframes`` (default 1m and 5m) and ``trades`` (also its ``-trades.feather`` files)."""
    return export_with_summary(root, format, coin=coin, out=out, start=start, end=end, force=force, progress=progress, timeframes=timeframes, trades=trades).paths


def export_with_summary(
    root: str | os.PathLike[str],
    format: str,
    *,
    coin: str | list[str],
    out: str | os.PathLike[str],
    start: Any = None,
    end: Any = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    timeframes: list[str] | None = None,
    trades: bool = False,
) -> Summary:
    """As :func:`export`, with the summary the CLI prints (events, files, tick and lot sizes)."""
    from schemas.layout import ArchiveError

    from .files import Output
    from .reader import ArchiveSlice
    from .summary import Summary

    if format not in FORMATS:
        raise ArchiveError(f"unknown export format {format!r}: use one of {', '.join(FORMATS)}")
    needs = EXTRAS.get(format)
    if needs is not None:
        try:
            __import__(needs[0])
        except ImportError:
            raise ArchiveError(f"--format {format} needs {needs[0]}: pip install 'hlarchive[{needs[1]}]'") from None
    if format != "freqtrade" and (timeframes or trades):
        raise ArchiveError("--timeframe and --trades are freqtrade's: the other formats carry every event as it came")
    coins = [coin] if isinstance(coin, str) else list(coin)
    options: dict[str, Any] = {}
    source = ArchiveSlice(root, coins, start, end)
    output = Output(Path(out), force=force)
    summary = Summary(format)
    if format == "hftbacktest":
        from .hftbacktest import write_hftbacktest as write
    elif format == "nautilus":
        from .nautilus import write_nautilus as write
    elif format == "tardis":
        from .tardis import write_tardis as write
    else:
        from .freqtrade import check_timeframes
        from .freqtrade import write_freqtrade as write

        options = {"timeframes": check_timeframes(timeframes), "trades": trades}
    try:
        for name in source.coins:
            write(source, name, output, summary, progress, **options)
    except BaseException:
        output.discard()
        raise
    if not summary.paths:
        raise ArchiveError(f"nothing to export: {', '.join(coins)} has no {format} data between {source.describe_window()}")
    return summary


__all__ = ["FORMATS", "export", "export_with_summary"]

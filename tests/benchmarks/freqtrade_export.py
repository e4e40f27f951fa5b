"""``hlarchive export --format freqtrade`` against what a freqtrade user would otherwise run, in one run.

    python -m tests.benchmarks.freqtrade_export [--trades 2000000] [--coins 100] [--days 30] [--runs 3]

- A busy coin's day: 2,000,000 BTC trades (3 a frame, a frame every ~43 ms) as the recorder writes
  them, exported to 1m candles (and the 1h futures candles every perp gets), the whole command: read
  the archive, dedupe, candles, feather files. Trades/s against what ``freqtrade trades-to-ohlcv``
  does with the same trades in its trades file (load, ``trades_to_ohlcv``, store), and against its
  ``trades_to_ohlcv`` alone, the trades already in a DataFrame; target >= 1M trades/s.
- The whole market for a month: 100 perps, 30 days, a trade every ~30 s each (the many quiet coins of
  a whole-market archive: 8.6M trades), each day already one part a coin (as compaction leaves
  older days), exported to 1m candles for all 100; target: within a minute. Peak RSS in a fresh process.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recorder import ArchiveWriter
from replay.exports import export_with_summary
from schemas import parse_subscription
from schemas.channels import channel_spec

from .common import HEADER, Figure, interleaved, machine, round_lines, round_ratios, run_measured, table

T0_MS = 1_767_225_600_000
DAY_MS = 86_400_000


def write_trades(writer: ArchiveWriter, coin: str, n: int, start_ms: int, span_ms: int, seed: int, per_frame: int = 3, price: float = 98_000.0) -> None:
    """``n`` trades of ``coin`` over ``span_ms``, ``per_frame`` a frame, written as the archive's columns."""
    rng = np.random.default_rng(seed)
    time_ms = np.sort(rng.integers(start_ms, start_ms + span_ms, n))
    px = np.round(price * np.exp(np.cumsum(rng.normal(0, 0.0002, n))), 0)
    sz = np.round(rng.uniform(0.00001, 0.5, n), 5)
    tid = (np.arange(n) + seed * 10**10).astype(np.int64)
    trade_type = channel_spec("trades").shape.arrow_type.value_type
    trades = pa.StructArray.from_arrays(
        [
            pa.repeat(pa.scalar(coin), n), pa.array(np.where(rng.random(n) < 0.5, "B", "A")),
            pc.cast(pa.array(px), pa.string()), pc.cast(pa.array(sz), pa.string()), pa.array(time_ms),
            pa.repeat(pa.scalar("0x" + "ab" * 32), n), pa.array(tid),
            pa.repeat(pa.scalar(["0xa", "0xb"], pa.list_(pa.string())), n), pa.nulls(n, pa.string()),
        ],
        fields=list(trade_type),
    )  # fmt: skip
    offsets = np.arange(0, n + per_frame, per_frame).clip(max=n)
    offsets = np.unique(offsets)
    data = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), trades).cast(channel_spec("trades").shape.arrow_type)
    last = time_ms[offsets[1:] - 1]
    recv = pa.array(last * 1_000_000 + 5_000_000)
    writer.write_columns(parse_subscription({"type": "trades", "coin": coin}), recv, pa.array(last), data=data)


def busy_day(root: Path, n: int) -> None:
    with ArchiveWriter(root, session="busy", flush_rows=60_000) as writer:  # a part of ~an hour, as compaction leaves them
        write_trades(writer, "BTC", n, T0_MS, DAY_MS, seed=1)


def whole_market(root: Path, coins: int, days: int, every_s: float = 30.0) -> int:
    total = 0
    per_coin_day = int(86_400 / every_s)
    with ArchiveWriter(root, session="market", flush_rows=10_000_000) as writer:
        for c in range(coins):
            for d in range(days):
                write_trades(writer, f"C{c:03d}", per_coin_day, T0_MS + d * DAY_MS, DAY_MS, seed=1000 + c * 100 + d, per_frame=1, price=10.0 + c)
                total += per_coin_day
            writer.flush()
    return total


def ours(root: Path, coins: list[str], n: int) -> float:
    out = Path(tempfile.mkdtemp())
    try:
        start = time.perf_counter()
        export_with_summary(root, "freqtrade", coin=coins, out=out / "hyperliquid", timeframes=["1m"])
        return n / (time.perf_counter() - start)
    finally:
        shutil.rmtree(out)


def freqtrades_converter(frame, n: int) -> float:  # type: ignore[no-untyped-def]
    from freqtrade.data.converter import trades_to_ohlcv

    start = time.perf_counter()
    trades_to_ohlcv(frame, "1m")
    return n / (time.perf_counter() - start)


def trades_file(root: Path) -> Path:
    """The archive's trades as a freqtrade trades file (what ``freqtrade download-data --dl-trades`` keeps)."""
    out = Path(tempfile.mkdtemp())
    export_with_summary(root, "freqtrade", coin="BTC", out=out, timeframes=["1m"], trades=True)
    return out


def freqtrades_command(datadir: Path, n: int) -> float:
    """What ``freqtrade trades-to-ohlcv`` does: load the trades file, convert, store the candles."""
    from freqtrade.data.converter import trades_to_ohlcv
    from freqtrade.data.history import get_datahandler
    from freqtrade.enums import CandleType, TradingMode

    handler = get_datahandler(datadir, "feather")
    start = time.perf_counter()
    trades = handler.trades_load("BTC/USDC:USDC", TradingMode.FUTURES)
    handler.ohlcv_store("BTC/USDC:USDC", "1m", trades_to_ohlcv(trades, "1m"), CandleType.FUTURES)
    return n / (time.perf_counter() - start)


def trades_frame(datadir: Path):  # type: ignore[no-untyped-def]
    from freqtrade.data.history import get_datahandler
    from freqtrade.enums import TradingMode

    return get_datahandler(datadir, "feather").trades_load("BTC/USDC:USDC", TradingMode.FUTURES)


PEAK_CODE = r"""
import sys, tempfile
from pathlib import Path
from replay.exports import export_with_summary
from tests.benchmarks.common import vm_hwm_mb
export_with_summary(sys.argv[1], "freqtrade", coin=sys.argv[2].split(","), out=Path(tempfile.mkdtemp()) / "x", timeframes=["1m"])
print(f"PEAK_RSS_MB={vm_hwm_mb():.1f}", file=sys.stderr)
"""


def figures(trades: int = 2_000_000, coins: int = 100, days: int = 30, runs: int = 3) -> list[Figure]:
    work = Path(tempfile.mkdtemp())
    try:
        busy = work / "busy"
        busy_day(busy, trades)
        datadir = trades_file(busy)
        frame = trades_frame(datadir)
        ours_rates, command_rates, converter_rates = interleaved(runs, lambda: ours(busy, ["BTC"], trades), lambda: freqtrades_command(datadir, trades), lambda: freqtrades_converter(frame, trades))
        rate = statistics.median(ours_rates)
        name = f"freqtrade export, a busy coin's day ({trades:,} trades) to 1m candles, trades/s"
        out = [
            Figure(name, round(rate), round(statistics.median(command_rates)), "freqtrade trades-to-ohlcv (load, convert, store)", ">= 1,000,000/s", rate >= 1_000_000, round_ratios(ours_rates, command_rates)),
            Figure(name, round(rate), round(statistics.median(converter_rates)), "freqtrade's trades_to_ohlcv, trades in memory", "-", None, round_ratios(ours_rates, converter_rates)),
        ]
        market = work / "market"
        total = whole_market(market, coins, days)
        names = [f"C{c:03d}" for c in range(coins)]
        seconds = statistics.median(total / ours(market, names, total) for _ in range(runs))
        out.append(Figure(f"freqtrade export, {coins} coins x {days} days ({total:,} trades) to 1m candles, seconds", round(seconds, 1), None, "-", "<= 60 s", seconds <= 60))
        _, peak = run_measured("", market.as_posix(), ",".join(names), code=PEAK_CODE)
        out.append(Figure(f"freqtrade export, {coins} coins x {days} days, peak RSS MB", peak, None, "-", "-", None))
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--coins", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = figures(args.trades, args.coins, args.days, args.runs)
    print(f"freqtrade export, median of {args.runs} runs ({machine()})")
    print(table([f.row() for f in results], HEADER))
    print(round_lines(results))


if __name__ == "__main__":
    main()

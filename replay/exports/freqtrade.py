"""freqtrade's data directory (``<userdir>/data/hyperliquid``), in its default format (feather), as
freqtrade 2026.9's ``FeatherDataHandler`` names and reads it:

- perps ``futures/BTC_USDC_USDC-<tf>-futures.feather`` (pair ``BTC/USDC:USDC``), and for futures
  backtests ``-1h-futures`` (freqtrade's mark price source on Hyperliquid), ``-1h-mark`` and
  ``-1h-funding_rate``; spot ``PURR_USDC-<tf>.feather`` (pairs as ccxt names them, ``@N`` resolved
  through the archive's ``spotMeta``);
- candles ``date, open, high, low, close, volume`` (``date`` the UTC open time, volume in the base
  asset): the exchange's own (recorded ``candle`` frames of that interval) where the archive has
  them, else built from trades (recorded, or imported history) by ``ohlcv``;
- ``-trades.feather`` (``timestamp, id, type, side, price, amount, cost``) with ``trades=True``.

Trades are read a chunk at a time (a UTC day, at most ``CHUNK_TRADES``: memory follows the chunk, not
the archive), by a thread while the chunk before is folded; the last minute of each chunk is held
back into the next, so candles and the trades file stay in time order across chunks.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from queue import Full, Queue
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.json as pa_json

from schemas.gaps import utc_text
from schemas.layout import ArchiveError
from schemas.subscriptions import CANDLE_INTERVALS, parse_subscription

from .files import Output
from .ohlcv import (
    TIMEFRAME_MS,
    Candles,
    Piece,
    Recorded,
    Trades,
    candles_of,
    columns_of,
    floats,
    hourly_funding,
    hourly_mark,
    merge,
    recorded_candles,
    trades_of,
)
from .reader import ArchiveSlice
from .summary import Summary

DEFAULT_TIMEFRAMES = ("1m", "5m")  # what `freqtrade download-data` asks for by default
FUTURES_TIMEFRAME = "1h"  # the futures, mark and funding candles a futures backtest on Hyperliquid reads
DAY_NS = 86_400_000_000_000
HOLD_BACK_MS = 60_000
CHUNK_TRADES = 500_000  # trades sorted and folded at once (or a day's, if fewer): the reading thread reads the next meanwhile
TRADE_COLUMNS = ["recv_ns", "raw", "data.time", "data.tid", "data.px", "data.sz", "data.side"]  # not hashes nor users: a tenth of the reading
DISAGREE_REL = 1e-9


def check_timeframes(timeframes: list[str] | tuple[str, ...] | None) -> list[str]:
    chosen = list(dict.fromkeys(timeframes or DEFAULT_TIMEFRAMES))
    unknown = [tf for tf in chosen if tf not in TIMEFRAME_MS]
    if unknown:
        raise ArchiveError(f"unknown timeframe {', '.join(unknown)}: use {', '.join(TIMEFRAME_MS)}")
    return chosen


def pair_of(source: ArchiveSlice, coin: str, sz_decimals: int | None) -> tuple[str, bool]:
    """``(freqtrade's pair, is spot)``: ``BTC/USDC:USDC``; spot as ccxt names it (``PURR/USDC``,
    ``@107`` -> ``HYPE/USDC``, with ccxt's own renames of bridged tokens when ccxt is installed)."""
    if coin.startswith("@"):
        spec = source.asset(coin)  # no fallback: only spotMeta says what @N is
        if not spec.base:
            raise ArchiveError(f"cannot name {coin}: the archive's spotMeta does not list it")
        return f"{_ccxt_token(spec.base)}/{_ccxt_token(spec.quote)}", True
    if "/" in coin:
        base, _, quote = coin.partition("/")
        return f"{_ccxt_token(base)}/{_ccxt_token(quote)}", True
    try:
        spec = source.asset(coin, sz_decimals)
        if spec.spot:
            return f"{_ccxt_token(spec.base)}/{_ccxt_token(spec.quote)}", True
    except ArchiveError:
        pass
    return f"{coin.replace(':', '-')}/USDC:USDC", False


def _ccxt_token(name: str) -> str:
    try:
        import ccxt  # freqtrade's own dependency: its spot names rename some bridged tokens (UBTC -> BTC)
    except ImportError:
        return name
    mapping = ccxt.hyperliquid().options.get("spotCurrencyMapping", {})
    return mapping.get(name, name)


def file_name(pair: str, timeframe: str, candle_type: str) -> str:
    """freqtrade's ``_pair_data_filename``/``_pair_trades_filename`` (``1M`` is ``1Mo`` in names)."""
    stem = pair
    for ch in "/ .@$+:":
        stem = stem.replace(ch, "_")
    if candle_type == "trades-spot":
        return f"{stem}-trades.feather"
    if candle_type == "trades-futures":
        return f"futures/{stem}-trades.feather"
    tf = timeframe.replace("M", "Mo")
    if candle_type == "spot":
        return f"{stem}-{tf}.feather"
    return f"futures/{stem}-{tf}-{candle_type}.feather"


class _Writer:
    def __init__(self, output: Output, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
        self.output, self.summary, self.progress = output, summary, progress

    def table(self, name: str, table: pa.Table) -> None:
        path = self.output.temporary(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        feather.write_feather(table, str(path), compression="lz4")
        final = self.output.commit(name)
        self.summary.paths.append(final)
        self.summary.events += table.num_rows
        if self.progress is not None:
            self.progress(table.num_rows, final.stat().st_size)


class _TradesFile:
    """The ``-trades.feather`` file, written a day at a time (an Arrow IPC file, LZ4)."""

    SCHEMA = pa.schema([("timestamp", pa.int64()), ("id", pa.string()), ("type", pa.string()), ("side", pa.string()), ("price", pa.float64()), ("amount", pa.float64()), ("cost", pa.float64())])

    def __init__(self, writer: _Writer, name: str) -> None:
        self.writer, self.name, self.rows = writer, name, 0
        path = writer.output.temporary(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sink = pa.OSFile(str(path), "wb")
        self.ipc = pa.ipc.new_file(self.sink, self.SCHEMA, options=pa.ipc.IpcWriteOptions(compression="lz4"))

    def write(self, trades: Trades) -> None:
        if not len(trades):
            return
        size = trades.size
        side = pa.array(np.where(trades.buy, "buy", "sell"), pa.string())
        columns = [pa.array(trades.time), pc.cast(pa.array(trades.tid), pa.string()), pa.nulls(len(trades), pa.string()), side, pa.array(trades.px), pa.array(size), pa.array(trades.px * size)]
        self.ipc.write_batch(pa.record_batch(columns, schema=self.SCHEMA))
        self.rows += len(trades)
        if self.writer.progress is not None:
            self.writer.progress(len(trades), 0)

    def close(self) -> None:
        self.ipc.close()
        self.sink.close()
        if not self.rows:
            self.writer.output.temporary(self.name).unlink()
            self.writer.output.forget(self.name)
            return
        self.writer.summary.paths.append(self.writer.output.commit(self.name))
        self.writer.summary.events += self.rows


def write_freqtrade(
    source: ArchiveSlice,
    coin: str,
    output: Output,
    summary: Summary,
    progress: Callable[[int, int], None] | None,
    *,
    timeframes: list[str] | None = None,
    trades: bool = False,
) -> None:
    chosen = check_timeframes(timeframes)
    writer = _Writer(output, summary, progress)
    has_trades = source.has(coin, "trades")
    # the pair's name needs the archive's meta, or the sizes' decimals when it has none
    pair, spot = pair_of(source, coin, None)
    wanted = list(chosen) if spot else list(dict.fromkeys([*chosen, FUTURES_TIMEFRAME]))
    candle_type = "spot" if spot else "futures"

    built: dict[str, list[Candles]] = {tf: [] for tf in wanted}
    dropped = 0
    trades_file = _TradesFile(writer, file_name(pair, "", "trades-spot" if spot else "trades-futures")) if trades and has_trades else None
    try:
        if has_trades:
            dropped = _read_trades(source, coin, wanted, built, trades_file)
    finally:
        if trades_file is not None:
            trades_file.close()
    from_trades = {tf: merge(parts) for tf, parts in built.items()}

    wrote_any = False
    candles_1h: Candles | Recorded | None = None
    for tf in wanted:
        recorded = _recorded(source, coin, tf)
        final, line = _combine(coin, tf, recorded, from_trades[tf])
        if line:
            summary.details.append(line)
        if tf == FUTURES_TIMEFRAME:
            candles_1h = final
        if len(final):
            writer.table(file_name(pair, tf, candle_type), _ohlcv_table(final))
            wrote_any = True
    if not spot and wrote_any:
        _write_mark_and_funding(source, coin, pair, writer, summary, candles_1h)
    if not wrote_any:
        summary.warnings.append(f"{coin}: no trades or candles between {source.describe_window()}: no file written")
        return
    if dropped:
        summary.details.append(f"{coin}: {dropped:,} trades seen twice counted once (same tid)")
    summary.specs[coin] = {"pair": pair}


def _read_trades(source: ArchiveSlice, coin: str, timeframes: list[str], built: dict[str, list[Candles]], trades_file: _TradesFile | None) -> int:
    """Trades a chunk at a time (a UTC day of receive time, at most ``CHUNK_TRADES``) into candle
    parts; the repeats dropped (a tid counts once if its copies are at most a chunk apart). A thread
    reads the parts and takes their columns apart (Parquet and Arrow let go of the GIL) while this
    one sorts and folds the day before: both cores."""
    dropped = 0
    carry: Trades | None = None
    seen: np.ndarray | None = None
    day: int | None = None
    pending: list[Piece] = []

    def flush(last: bool) -> None:
        nonlocal carry, seen, dropped
        chunk, repeats = trades_of(pending, carry, seen)
        pending.clear()
        dropped += repeats
        if last or not len(chunk):
            done, carry = chunk, None
        else:
            done, carry = chunk.split(int(chunk.time[-1]) - HOLD_BACK_MS)
        seen = done.tid
        for tf in timeframes:
            built[tf].append(candles_of(done, tf))
        if trades_file is not None:
            trades_file.write(done)

    rows = 0
    for batch_day, pieces in _prefetched(source.batches("trades", coin, TRADE_COLUMNS)):
        if pending and (batch_day != day or rows >= CHUNK_TRADES):
            flush(False)
            rows = 0
        day = batch_day
        pending.extend(pieces)
        rows += sum(len(p[0]) for p in pieces)
    if pending or (carry is not None and len(carry)):
        flush(True)
    return dropped


def _prefetched(batches: Iterator[pa.RecordBatch], depth: int = 4) -> Iterator[tuple[int, list[Piece]]]:
    """``(UTC day of its first receive time, its columns)`` of each batch, read ahead by a thread."""
    done = object()
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                item = (int(batch.column("recv_ns")[0].as_py()) // DAY_NS, columns_of(batch))
                while not stop.is_set():
                    try:
                        queue.put(item, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(done)
        except BaseException as exc:  # raised again in the reading thread
            queue.put(exc)

    thread = threading.Thread(target=read, name="freqtrade-read", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _recorded(source: ArchiveSlice, coin: str, timeframe: str) -> Recorded | None:
    """The exchange's own candles of ``timeframe`` the archive recorded, if any."""
    if timeframe not in CANDLE_INTERVALS or not source.has(coin, "candle"):
        return None
    stream = parse_subscription({"type": "candle", "coin": coin, "interval": timeframe}).stream
    batches = [b.filter(pc.equal(b.column("stream"), stream)) for b in source.batches("candle", coin, ["recv_ns", "stream", "raw", "data"])]
    recorded = recorded_candles([b for b in batches if b.num_rows])
    return recorded if len(recorded) else None


def _combine(coin: str, tf: str, recorded: Recorded | None, built: Candles) -> tuple[Recorded | Candles, str]:
    """The exchange's candles where recorded, the trades' elsewhere; the summary's line saying which
    came from where and where the two disagree (the trades' first and last candles, partial by
    construction, are not compared)."""
    if recorded is None or not len(recorded):
        if not len(built):
            return built, ""
        return built, f"{coin} {tf}: {len(built):,} candles from trades ({_span(built.t, tf)})"
    if not len(built):
        return recorded, f"{coin} {tf}: {len(recorded):,} candles from candle frames ({_span(recorded.t, tf)})"
    only_built = ~np.isin(built.t, recorded.t)
    t = np.concatenate([recorded.t, built.t[only_built]])
    order = np.argsort(t, kind="stable")
    merged = Recorded(
        t[order],
        *(np.concatenate([getattr(recorded, k), getattr(built, k)[only_built]])[order] for k in ("open", "high", "low", "close")),
        np.concatenate([recorded.volume, built.volume[only_built]])[order],
    )
    inner = built.t[1:-1]
    both = np.intersect1d(inner, recorded.t)
    r = np.searchsorted(recorded.t, both)
    b = np.searchsorted(built.t, both)
    differ = np.zeros(len(both), bool)
    for k in ("open", "high", "low", "close", "volume"):
        x, y = getattr(recorded, k)[r], getattr(built, k)[b]
        differ |= np.abs(x - y) > DISAGREE_REL * np.maximum(np.abs(x), np.abs(y))
    line = f"{coin} {tf}: {len(recorded):,} candles from candle frames ({_span(recorded.t, tf)}), {int(only_built.sum()):,} from trades"
    if only_built.any():
        line += f" ({_span(built.t[only_built], tf)})"
    line += f"; {int(differ.sum()):,} of {len(both):,} compared disagree" + (f" (first {utc_text(int(both[differ][0]) * 1_000_000)})" if differ.any() else "")
    return merged, line


def _span(t: np.ndarray, tf: str) -> str:
    return f"{utc_text(int(t[0]) * 1_000_000)} to {utc_text(int(t[-1]) * 1_000_000)}"


def _ohlcv_table(candles: Recorded | Candles) -> pa.Table:
    return pa.table({
        "date": pa.array(candles.t, pa.timestamp("ms", tz="UTC")),
        "open": pa.array(candles.open, pa.float64()),
        "high": pa.array(candles.high, pa.float64()),
        "low": pa.array(candles.low, pa.float64()),
        "close": pa.array(candles.close, pa.float64()),
        "volume": pa.array(candles.volume, pa.float64()),
    })


def _write_mark_and_funding(source: ArchiveSlice, coin: str, pair: str, writer: _Writer, summary: Summary, candles_1h: Candles | Recorded | None) -> None:
    """``-1h-mark`` from the asset contexts' mark price (else the 1h candles, said), ``-1h-funding_rate``
    from their funding (else a warning: freqtrade then counts no funding)."""
    time_ns, mark, funding = _contexts(source, coin)
    marks = hourly_mark(time_ns, mark)
    if len(marks):
        writer.table(file_name(pair, FUTURES_TIMEFRAME, "mark"), _ohlcv_table(marks))
        summary.details.append(f"{coin} 1h mark: {len(marks):,} from asset contexts' markPx ({_span(marks.t, '1h')})")
    elif candles_1h is not None and len(candles_1h):
        writer.table(file_name(pair, FUTURES_TIMEFRAME, "mark"), _ohlcv_table(candles_1h))
        summary.details.append(f"{coin} 1h mark: no asset contexts in the archive, the 1h trade candles stand in")
    dates, rates = hourly_funding(time_ns, funding)
    if len(dates):
        table = pa.table({"date": pa.array(dates, pa.timestamp("ms", tz="UTC")), "funding_rate": pa.array(rates, pa.float64())})
        writer.table(file_name(pair, FUTURES_TIMEFRAME, "funding_rate"), table)
        summary.details.append(f"{coin} 1h funding_rate: {len(dates):,} hours from asset contexts ({_span(dates, '1h')})")
    else:
        summary.warnings.append(f"{coin}: no funding rates in the archive (record activeAssetCtx, or import asset_ctxs): freqtrade will count no funding")


def _contexts(source: ArchiveSlice, coin: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(time ns, mark, funding)`` of every asset context the archive holds for ``coin``: recorded
    ``activeAssetCtx`` (at receive time) and imported ``assetCtxs`` (at their own time)."""
    times, marks, rates = [], [], []
    for channel, mark_key, rate_key in (("activeAssetCtx", "markPx", "funding"), ("assetCtxs", "mark_px", "funding")):
        if not source.has(coin, channel):
            continue
        for batch in source.batches(channel, coin, ["recv_ns", "raw", "data"]):
            for recv, data in _data_of(batch):
                fields = data.field("ctx") if channel == "activeAssetCtx" else data
                names = {f.name for f in fields.type}
                if mark_key in names and rate_key in names:
                    times.append(recv)
                    marks.append(floats(fields.field(mark_key)))
                    rates.append(floats(fields.field(rate_key)))
    if not times:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    return np.concatenate(times), np.concatenate(marks), np.concatenate(rates)


def _data_of(batch: pa.RecordBatch) -> list[tuple[np.ndarray, pa.StructArray]]:
    """``(recv_ns, data)`` of a batch's rows: its typed rows, and its rows kept as text (an imported
    history's asset contexts are all text) through Arrow's JSON reader, a batch at once."""
    out = []
    raw = batch.column("raw") if "raw" in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
    if "data" in batch.schema.names:
        typed = batch.filter(pc.and_(pc.is_null(raw), pc.is_valid(batch.column("data"))))
        if typed.num_rows:
            out.append((typed.column("recv_ns").to_numpy(), typed.column("data")))
    texts = batch.filter(pc.is_valid(raw))
    if texts.num_rows:
        text = "\n".join(texts.column("raw").to_pylist()).encode()
        parsed = pa_json.read_json(io.BytesIO(text), read_options=pa_json.ReadOptions(block_size=max(1 << 20, len(text) + 1)))
        if "data" in parsed.column_names:
            out.append((texts.column("recv_ns").to_numpy(), parsed.column("data").combine_chunks()))
    return out


__all__ = ["DEFAULT_TIMEFRAMES", "check_timeframes", "file_name", "pair_of", "write_freqtrade"]

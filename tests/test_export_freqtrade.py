"""``hlarchive export --format freqtrade``: freqtrade's own readers (``load_pair_history``, its trades
loader and ``trades_to_ohlcv``) read back what the archive's trades say, and ``freqtrade backtesting``
runs offline over the export, with markets from our simulator through ccxt, funding included; from
a recorded archive and from one made by ``hlarchive import`` of the exchange's history files."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.feather as feather
import pytest
from click.testing import CliRunner
from freqtrade.data.converter import trades_to_ohlcv  # the test extra brings freqtrade: its own readers check ours
from freqtrade.data.history import get_datahandler, load_pair_history
from freqtrade.enums import CandleType, TradingMode
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder import ArchiveWriter
from replay import Replay
from replay.cli import main
from replay.exports import export_with_summary
from replay.serving.server import HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource
from replay.simulator.info import meta, spot_meta
from replay.simulator.market import SyntheticMarket
from schemas import parse_subscription

from .history_files import ASSET_HEADER, USERS, block_line, fill, iso, write_lz4
from .market_history import DAY_MS, write_market

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
PAIR = "ETH/USDC:USDC"
SPANS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}
STRATEGY = '''
from freqtrade.strategy import IStrategy
import talib.abstract as ta


class SmaCross(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    can_short = True
    minimal_roi = {"0": 0.02}
    stoploss = -0.03
    startup_candle_count = 30

    def populate_indicators(self, dataframe, metadata):
        dataframe["fast"] = ta.SMA(dataframe, timeperiod=5)
        dataframe["slow"] = ta.SMA(dataframe, timeperiod=20)
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        dataframe.loc[dataframe["fast"] > dataframe["slow"], "enter_long"] = 1
        dataframe.loc[dataframe["fast"] < dataframe["slow"], "enter_short"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe.loc[dataframe["fast"] < dataframe["slow"], "exit_long"] = 1
        dataframe.loc[dataframe["fast"] > dataframe["slow"], "exit_short"] = 1
        return dataframe
'''


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, list[tuple[int, dict[str, Any]]]]:
    """Two days of ETH: trades, the exchange's 1m candles on the second day only, a context a minute;
    a second recorder session that wrote hours 10 and 11 of the first day again (each trade twice in
    the archive); PURR/USDC and the spot pair @1 (named only by spotMeta) for six hours."""
    root = tmp_path_factory.mktemp("freqtrade-history")
    written = write_market(root, "ETH", T0_MS, 48, candles=("1m", T0_MS + DAY_MS))
    with ArchiveWriter(root, session="s2") as writer:
        sub = parse_subscription({"type": "trades", "coin": "ETH"})
        for recv_ns, frame in written:
            if T0_MS + 10 * 3_600_000 <= recv_ns // 1_000_000 < T0_MS + 12 * 3_600_000:
                writer.write(frame, recv_ns + 40_000_000, sub)
        market = SyntheticMarket()
        writer.write_meta("meta", meta(market), recv_ns=T0_MS * 1_000_000)
        writer.write_meta("spotMeta", spot_meta(market), recv_ns=T0_MS * 1_000_000)
    write_market(root, "PURR/USDC", T0_MS, 6, session="s3", seed=2, price=0.067, sz_decimals=0, px_decimals=5, contexts=False)
    write_market(root, "@1", T0_MS, 6, session="s4", seed=3, price=0.065, sz_decimals=0, px_decimals=5, contexts=False)
    return root, written


def candles_from(trades: list[dict[str, Any]], span: int) -> list[tuple[int, float, float, float, float, float]]:
    """Candles the plain way: trades in time order (ties: as received), each tid once, exact volume."""
    seen, rows = set(), []
    for position, trade in enumerate(trades):
        if trade["tid"] not in seen:
            seen.add(trade["tid"])
            rows.append((trade["time"], position, trade))
    rows.sort(key=lambda r: (r[0], r[1]))
    out: dict[int, list[Any]] = {}
    for time, _, trade in rows:
        t = time - time % span
        px = Decimal(trade["px"])
        if t not in out:
            out[t] = [px, px, px, px, Decimal(0)]
        c = out[t]
        c[1], c[2], c[3] = max(c[1], px), min(c[2], px), px
        c[4] += Decimal(trade["sz"])
    return [(t, float(o), float(h), float(lo), float(c), float(v)) for t, (o, h, lo, c, v) in sorted(out.items())]


def archived_trades(root: Path, coin: str) -> list[dict[str, Any]]:
    replay = Replay(root)
    replay.subscribe({"type": "trades", "coin": coin}, lambda m: None)
    return [trade for item in replay.items() if item.stream is not None for trade in item.message["data"]]


def rows(frame: Any) -> list[tuple[int, float, float, float, float, float]]:
    return [(int(d.timestamp() * 1000), o, h, lo, c, v) for d, o, h, lo, c, v in frame[["date", "open", "high", "low", "close", "volume"]].itertuples(index=False)]


def test_freqtrade_reads_back_the_candles_of_the_archives_trades(history, tmp_path):
    root, written = history
    out = tmp_path / "user" / "data" / "hyperliquid"
    summary = export_with_summary(root, "freqtrade", coin="ETH", out=out, timeframes=["1m", "5m", "1h"])
    names = sorted(p.relative_to(out).as_posix() for p in summary.paths)
    assert names == [f"futures/ETH_USDC_USDC-{s}.feather" for s in ("1h-funding_rate", "1h-futures", "1h-mark", "1m-futures", "5m-futures")]
    truth = [trade for _, frame in written for trade in frame["data"]]  # what the market traded, once each
    trades = archived_trades(root, "ETH")
    assert len(trades) > len(truth)  # the second session's copies are in the archive
    for tf, span in SPANS.items():
        expected = candles_from(trades, span)
        assert expected == candles_from(truth, span)
        got = load_pair_history(pair=PAIR, timeframe=tf, datadir=out, candle_type=CandleType.FUTURES, fill_up_missing=False)
        assert rows(got) == expected, tf
    # where each came from, and that the exchange's candles and the trades' agree
    text = "\n".join(summary.details)
    assert "ETH 1m: 1,440 candles from candle frames (2026-01-02 00:00:00.000 to 2026-01-02 23:59:00.000), 1,440 from trades (2026-01-01 00:00:00.000 to 2026-01-01 23:59:00.000); 0 of 1,439 compared disagree" in text
    assert "ETH 5m: 576 candles from trades" in text
    repeats = sum(len(f["data"]) for r, f in written if T0_MS + 10 * 3_600_000 <= r // 1_000_000 < T0_MS + 12 * 3_600_000)
    assert f"ETH: {repeats:,} trades seen twice counted once (same tid)" in text


def test_funding_and_mark_candles(history, tmp_path):
    root, _ = history
    out = tmp_path / "hyperliquid"
    export_with_summary(root, "freqtrade", coin="ETH", out=out, timeframes=["5m"])
    funding = load_pair_history(pair=PAIR, timeframe="1h", datadir=out, candle_type=CandleType.FUNDING_RATE, fill_up_missing=False)
    ctxs = Replay(root)
    ctxs.subscribe({"type": "activeAssetCtx", "coin": "ETH"}, lambda m: None)
    shown = [(item.recv_ns // 1_000_000, item.message["data"]["ctx"]) for item in ctxs.items() if item.stream is not None]
    last_of_hour: dict[int, str] = {}
    marks: dict[int, list[float]] = {}
    for t, ctx in shown:
        hour = t - t % 3_600_000
        last_of_hour[hour + 3_600_000] = ctx["funding"]  # paid at the hour's end
        marks.setdefault(hour, []).append(float(ctx["markPx"]))
    assert [(int(d.timestamp() * 1000), r) for d, r in funding[["date", "funding_rate"]].itertuples(index=False)] == [(t, float(r)) for t, r in sorted(last_of_hour.items())]
    mark = load_pair_history(pair=PAIR, timeframe="1h", datadir=out, candle_type=CandleType.MARK, fill_up_missing=False)
    assert rows(mark) == [(h, m[0], max(m), min(m), m[-1], 0.0) for h, m in sorted(marks.items())]


def test_trades_file_is_freqtrades_and_its_converter_agrees(history, tmp_path):
    root, written = history
    out = tmp_path / "hyperliquid"
    summary = export_with_summary(root, "freqtrade", coin="ETH", out=out, timeframes=["1m"], trades=True)
    assert out / "futures" / "ETH_USDC_USDC-trades.feather" in summary.paths
    loaded = get_datahandler(out, "feather").trades_load(PAIR, TradingMode.FUTURES)
    truth = sorted((t for _, f in written for t in f["data"]), key=lambda t: t["time"])
    assert feather.read_table(out / "futures" / "ETH_USDC_USDC-trades.feather").column_names == ["timestamp", "id", "type", "side", "price", "amount", "cost"]
    assert loaded["timestamp"].is_monotonic_increasing
    assert sorted(loaded["id"].astype(int)) == sorted(t["tid"] for t in truth)
    assert list(loaded["side"]) == ["buy" if t["side"] == "B" else "sell" for t in truth]
    assert np.allclose(loaded["cost"], loaded["price"] * loaded["amount"])
    # freqtrade's own converter over our trades file gives our candles (its volume a float sum)
    theirs = trades_to_ohlcv(loaded, "1m")
    ours = load_pair_history(pair=PAIR, timeframe="1m", datadir=out, candle_type=CandleType.FUTURES, fill_up_missing=False)
    assert len(theirs) == len(ours)
    assert np.array_equal(theirs[["open", "high", "low", "close"]].to_numpy(), ours[["open", "high", "low", "close"]].to_numpy())
    assert np.allclose(theirs["volume"], ours["volume"], rtol=1e-12)


def test_spot_pairs_are_named_as_ccxt_names_them(history, tmp_path):
    root, _ = history
    out = tmp_path / "hyperliquid"
    summary = export_with_summary(root, "freqtrade", coin=["PURR/USDC", "@1"], out=out, timeframes=["5m"])
    token = spot_meta(SyntheticMarket())["tokens"][next(p for p in spot_meta(SyntheticMarket())["universe"] if p["name"] == "@1")["tokens"][0]]["name"]
    assert sorted(p.name for p in summary.paths) == sorted(["PURR_USDC-5m.feather", f"{token}_USDC-5m.feather"])
    for pair, coin in (("PURR/USDC", "PURR/USDC"), (f"{token}/USDC", "@1")):
        got = load_pair_history(pair=pair, timeframe="5m", datadir=out, candle_type=CandleType.SPOT, fill_up_missing=False)
        assert rows(got) == candles_from(archived_trades(root, coin), 300_000)
    assert not (out / "futures").exists()  # spot: no mark, no funding


def test_cli_warns_for_a_coin_without_data_and_refuses_bad_input(history, tmp_path):
    root, _ = history
    out = tmp_path / "hyperliquid"
    window = ["--from", "2026-01-01T03:00:00Z", "--to", "2026-01-01T05:00:00Z"]
    result = CliRunner().invoke(main, ["export", str(root), "--format", "freqtrade", "--coin", "ETH", "--coin", "PURR/USDC", "--timeframe", "15m", "--out", str(out), *window])
    assert result.exit_code == 0, result.output
    assert "freqtrade: " in result.output and "ETH 15m: 8 candles from trades (2026-01-01 03:00:00.000 to 2026-01-01 04:45:00.000)" in result.output
    got = load_pair_history(pair=PAIR, timeframe="15m", datadir=out, candle_type=CandleType.FUTURES, fill_up_missing=False)
    assert len(got) == 8
    # PURR/USDC traded then too; a window with none of it gets a warning and no file
    late = ["--from", "2026-01-01T20:00:00Z", "--to", "2026-01-01T21:00:00Z"]
    result = CliRunner().invoke(main, ["export", str(root), "--format", "freqtrade", "--coin", "ETH", "--coin", "PURR/USDC", "--out", str(tmp_path / "late"), *late])
    assert result.exit_code == 0, result.output
    assert "warning: PURR/USDC: no trades or candles between 2026-01-01 20:00:00.000 and 2026-01-01 21:00:00.000: no file written" in result.output
    assert not list((tmp_path / "late").glob("PURR*"))
    for args, message in (
        (["--timeframe", "7m"], "unknown timeframe 7m"),
        (["--format", "tardis", "--timeframe", "1m"], "--timeframe and --trades are freqtrade's"),
    ):
        fmt = [] if "--format" in args else ["--format", "freqtrade"]
        result = CliRunner().invoke(main, ["export", str(root), *fmt, "--coin", "ETH", "--out", str(tmp_path / "bad"), *args])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output
        assert not (tmp_path / "bad").exists()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 600_000), st.integers(1, 500), st.integers(1, 10**6), st.booleans(), st.integers(0, 3)), min_size=1, max_size=60))
def test_property_trades_to_candles_round_trip(tmp_path_factory, draws):
    """Any trades, in frames received in any order (some twice, some kept as text), become the candles
    of the plain rule."""
    root = tmp_path_factory.mktemp("prop")
    sub = parse_subscription({"type": "trades", "coin": "ETH"})
    frames = []
    for i, (offset, cents, size, buy, copies) in enumerate(draws):
        trade = {"coin": "ETH", "side": "B" if buy else "A", "px": f"{2000 + cents / 100:.2f}", "sz": f"{size / 10_000:.4f}".rstrip("0").rstrip("."), "time": T0_MS + offset, "hash": "0x0", "tid": 1000 + i, "users": ["0xa", "0xb"]}
        if copies == 2:
            trade["newField"] = {"x": i}  # a shape the archive keeps as text: the reader's other path
        for copy in range(1 + (copies == 3)):
            frames.append((T0_MS * 1_000_000 + offset * 1_000_000 + (i % 5) * 1_000_000_000 + copy, trade))
    frames.sort(key=lambda f: f[0])
    with ArchiveWriter(root, session="p") as writer:
        for recv_ns, trade in frames:
            writer.write({"channel": "trades", "data": [trade]}, recv_ns, sub)
    out = root / "out"
    export_with_summary(root, "freqtrade", coin="ETH", out=out, timeframes=["1m"])
    table = feather.read_table(out / "futures" / "ETH_USDC_USDC-1m-futures.feather").to_pylist()
    got = [(int(r["date"].timestamp() * 1000), r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in table]
    assert got == candles_from([t for _, t in frames], 60_000)


# --- freqtrade backtesting, offline ---------------------------------------------------------------


@pytest.fixture(scope="module")
def markets() -> Iterator[str]:
    """`hlarchive simulate`'s server: where ccxt loads Hyperliquid's markets from."""
    with ServerThread(lambda: HyperliquidServer(SyntheticSource(seed=3), rate=10)) as server:
        yield server.ws_url.replace("ws://", "http://").rsplit("/ws", 1)[0]


def backtest(userdir: Path, url: str, timerange: str) -> tuple[str, Any]:
    """``freqtrade backtesting`` of a 5m SMA cross, long and short, on ETH perps, with the README's
    offline config; its log and its trades."""
    (userdir / "strategies").mkdir(parents=True, exist_ok=True)
    (userdir / "strategies" / "sma_cross.py").write_text(STRATEGY)
    config = {
        "max_open_trades": 1, "stake_currency": "USDC", "stake_amount": 100, "dry_run": True, "dry_run_wallet": 1000,
        "trading_mode": "futures", "margin_mode": "isolated", "timeframe": "5m",
        "exchange": {
            "name": "hyperliquid", "pair_whitelist": [PAIR],
            "ccxt_config": {"urls": {"api": {"public": url, "private": url}}},
            "ccxt_async_config": {"urls": {"api": {"public": url, "private": url}}},
        },
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same"}, "exit_pricing": {"price_side": "same"},
    }  # fmt: skip
    (userdir / "config.json").write_text(json.dumps(config))
    results = userdir / "results"
    results.mkdir(exist_ok=True)
    freqtrade = str(Path(sys.executable).with_name("freqtrade"))
    done = subprocess.run(
        [freqtrade, "backtesting", "--config", str(userdir / "config.json"), "--userdir", str(userdir), "--strategy", "SmaCross",
         "--timerange", timerange, "--export", "trades", "--backtest-directory", str(results), "--cache", "none"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    from freqtrade.data.btanalysis import load_backtest_data

    return log, load_backtest_data(results)


def check_funding(log: str, trades: Any) -> None:
    assert "No history for" not in log and "No data found" not in log, log[-3000:]
    assert len(trades) > 5
    crossing = [int(t.open_date.timestamp()) // 3600 < int(t.close_date.timestamp()) // 3600 and t.open_date.minute != 0 and t.close_date.minute != 0 for t in trades.itertuples()]
    inside = [int(t.open_date.timestamp()) // 3600 == int(t.close_date.timestamp()) // 3600 and t.open_date.minute != 0 for t in trades.itertuples()]
    fees = trades["funding_fees"].to_numpy()
    assert any(crossing) and all(fees[np.array(crossing)] != 0), "a trade held over an hour's end paid or got no funding"
    assert all(fees[np.array(inside)] == 0)


def test_freqtrade_backtests_a_recorded_archive_offline(history, markets, tmp_path):
    root, _ = history
    userdir = tmp_path / "user"
    result = CliRunner().invoke(main, ["export", str(root), "--format", "freqtrade", "--coin", "ETH", "--timeframe", "5m", "--out", str(userdir / "data" / "hyperliquid")])
    assert result.exit_code == 0, result.output
    log, trades = backtest(userdir, markets, "20260101-20260103")
    assert set(trades["pair"]) == {PAIR}
    check_funding(log, trades)


def bucket_history(root: Path, hours: int, seed: int = 5) -> None:
    """A day of ETH in the exchange's buckets' layout: fills by block, a trade every ~20 s, and the
    day's asset contexts a minute."""
    rng = random.Random(seed)
    start_ms = T0_MS
    px = 2300.0
    by_hour: dict[int, list[bytes]] = {}
    t, i = start_ms, 0
    while t < start_ms + hours * 3_600_000:
        px *= 1 + rng.gauss(0, 0.001)
        text, sz = f"{px:.1f}", f"{rng.uniform(0.01, 2):.4f}"
        taker_buys = rng.random() < 0.5
        h = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
        buy = fill("ETH", text, sz, "B", t, 10**14 + i, h, 2 * i, taker_buys)
        sell = fill("ETH", text, sz, "A", t, 10**14 + i, h, 2 * i + 1, not taker_buys)
        by_hour.setdefault((t - start_ms) // 3_600_000, []).append(block_line(600_000_000 + i, t * 1_000_000, [(USERS[0], buy), (USERS[1], sell)]))
        t += rng.randint(5_000, 35_000)
        i += 1
    for hour, lines in by_hour.items():
        write_lz4(root / "node_fills_by_block" / "hourly" / "20260101" / f"{hour}.lz4", lines)
    ctx = [ASSET_HEADER]
    for minute in range(hours * 60):
        funding = f"{0.00001 * (minute // 60 % 5 - 2) + 0.0000001 * (minute % 60):.10f}"
        ctx.append(f"{iso((start_ms + minute * 60_000) * 1_000_000, 'Z')},ETH,{funding},1000.5,2300.0,1000000.0,0.0001,2300.0,{2300 + minute % 17:.1f},2300.0,2299.9,2300.1")
    write_lz4(root / "asset_ctxs" / "20260101.csv.lz4", ctx)


def test_freqtrade_backtests_an_imported_history_offline(markets, tmp_path):
    buckets, root = tmp_path / "buckets", tmp_path / "archive"
    bucket_history(buckets, 24)
    result = CliRunner().invoke(main, ["import", str(buckets), "--root", str(root), "--silent"])
    assert result.exit_code == 0, result.output
    userdir = tmp_path / "user"
    out = userdir / "data" / "hyperliquid"
    summary = export_with_summary(root, "freqtrade", coin="ETH", out=out, timeframes=["5m"])
    assert any("1h funding_rate: 24 hours from asset contexts" in line for line in summary.details), summary.details
    got = load_pair_history(pair=PAIR, timeframe="5m", datadir=out, candle_type=CandleType.FUTURES, fill_up_missing=False)
    assert rows(got) == candles_from(archived_trades(root, "ETH"), 300_000)
    log, trades = backtest(userdir, markets, "20260101-20260102")
    check_funding(log, trades)


def test_an_s3_archive_exports_to_freqtrade(s3, history, tmp_path):
    from replay.analysis.sync import sync

    from .test_object_storage import fresh_prefix

    root, _ = history
    url = fresh_prefix()
    sync(root, url)
    out = tmp_path / "hyperliquid"
    export_with_summary(url, "freqtrade", coin="ETH", out=out, timeframes=["1h"], start="2026-01-01T00:00:00Z", end="2026-01-01T05:59:59Z")
    got = load_pair_history(pair=PAIR, timeframe="1h", datadir=out, candle_type=CandleType.FUTURES, fill_up_missing=False)
    assert rows(got) == candles_from([t for t in archived_trades(root, "ETH") if t["time"] < T0_MS + 6 * 3_600_000], 3_600_000)
    assert len(got) == 6


def test_small_chunks_give_the_same_files(history, tmp_path, monkeypatch):
    """Trades folded a few hundred at a time (the reading thread well ahead, candles and repeats across
    chunk edges) write the same candles and trades file as a day at a time."""
    import replay.exports.freqtrade as freqtrade

    root, _ = history
    whole = export_with_summary(root, "freqtrade", coin="ETH", out=tmp_path / "whole", timeframes=["1m", "1h"], trades=True)
    monkeypatch.setattr(freqtrade, "CHUNK_TRADES", 300)
    small = export_with_summary(root, "freqtrade", coin="ETH", out=tmp_path / "small", timeframes=["1m", "1h"], trades=True)
    assert [p.name for p in small.paths] == [p.name for p in whole.paths]
    for a, b in zip(whole.paths, small.paths):
        assert feather.read_table(a).equals(feather.read_table(b)), a.name
    assert small.details == whole.details


def test_interval_open_times():
    from datetime import datetime, timezone

    from replay.exports.ohlcv import open_time

    def ms(text: str) -> int:
        return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)

    times = np.array([ms("2026-02-15T13:45:10"), ms("2026-03-01T00:00:00"), ms("2024-02-29T23:59:59")])
    assert list(open_time(times, "1M")) == [ms("2026-02-01T00:00:00"), ms("2026-03-01T00:00:00"), ms("2024-02-01T00:00:00")]
    assert list(open_time(times, "1w")) == [ms("2026-02-12T00:00:00"), ms("2026-02-26T00:00:00"), ms("2024-02-29T00:00:00")]  # Thursdays
    assert list(open_time(times, "4h")) == [ms("2026-02-15T12:00:00"), ms("2026-03-01T00:00:00"), ms("2024-02-29T20:00:00")]

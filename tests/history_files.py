"""Files in the shapes of Hyperliquid's published history (``shared/hyperliquid-history.md``), made up:
several coins, both CSV time formats, trimmed decimals, liquidation fills, a fill pair split over an
hour's edge, empty optional CSV fields."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lz4.frame
import orjson

USERS = [f"0x{i:040x}" for i in range(1, 9)]


def write_lz4(path: Path, lines: list[bytes] | list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    path.write_bytes(lz4.frame.compress(data))
    return path


def iso(ns: int, zone: str = "") -> str:
    from datetime import datetime, timezone

    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}" + zone


HOUR9_NS = 1_741_683_600_000_000_000  # 2025-03-11T09:00:00Z


def l2book_lines(coin: str, n: int, rng: random.Random, start_ns: int = HOUR9_NS) -> list[bytes]:
    lines = []
    for i in range(n):
        t_ns = start_ns + i * 500_000_000 + rng.randrange(1_000_000)
        mid = 124.0 + rng.uniform(-1, 1)
        bids = [{"px": f"{mid - 0.01 * (k + 1):.2f}".rstrip("0").rstrip("."), "sz": f"{rng.uniform(1, 500):.2f}", "n": rng.randint(1, 30)} for k in range(3)]
        asks = [{"px": f"{mid + 0.01 * (k + 1):.2f}".rstrip("0").rstrip("."), "sz": f"{rng.uniform(1, 500):.1f}", "n": rng.randint(1, 30)} for k in range(3)]
        raw = {"channel": "l2Book", "data": {"coin": coin, "time": t_ns // 1_000_000 - 300, "levels": [bids, asks]}}
        lines.append(orjson.dumps({"time": iso(t_ns), "ver_num": 1, "raw": raw}))
    return lines


def fill(coin: str, px: str, sz: str, side: str, time_ms: int, tid: int, hash_: str, oid: int, crossed: bool, **extra: Any) -> dict[str, Any]:
    out = {
        "coin": coin, "px": px, "sz": sz, "side": side, "time": time_ms, "startPosition": "0.0",
        "dir": "Open Long" if side == "B" else "Open Short", "closedPnl": "0.0", "hash": hash_, "oid": oid,
        "crossed": crossed, "fee": "0.01", "tid": tid, "feeToken": "USDC",
    }
    out.update(extra)
    return out


def trade_pairs(n: int, rng: random.Random, start_ms: int, coins: tuple[str, ...] = ("BTC", "ETH")) -> list[tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]]:
    """``n`` trades, each as its (buyer, seller) fills; every fifth a liquidation."""
    pairs = []
    for i in range(n):
        coin = coins[i % len(coins)]
        t = start_ms + i * 1000
        tid = 10**14 + start_ms // 1000 + i
        h = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
        taker_buys = rng.random() < 0.5
        buyer, seller = rng.sample(USERS, 2)
        px, sz = (f"{82131 + i}.0", "0.02") if coin == "BTC" else (f"{1900 + i * 0.1:.1f}", "1.5")
        extra: dict[str, Any] = {}
        if i % 5 == 4:
            extra = {"liquidation": {"liquidatedUser": seller, "markPx": px, "method": "market"}}
        buy = fill(coin, px, sz, "B", t, tid, h, 1000 + 2 * i, taker_buys)
        sell = fill(coin, px, sz, "A", t, tid, h, 1001 + 2 * i, not taker_buys, **extra)
        pairs.append(((buyer, buy), (seller, sell)))
    return pairs


def block_line(number: int, t_ns: int, events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return orjson.dumps({"local_time": iso(t_ns + 123_456), "block_time": iso(t_ns), "block_number": number, "events": [list(e) for e in events]})


def node_trade_line(coin: str, side: str, t_ns: int, px: str, sz: str, buyer: str, seller: str, rng: random.Random) -> bytes:
    return orjson.dumps({
        "coin": coin, "side": side, "time": iso(t_ns), "px": px, "sz": sz,
        "hash": "0x" + rng.getrandbits(256).to_bytes(32, "big").hex(), "trade_dir_override": "Na",
        "side_info": [
            {"user": buyer, "start_pos": "-153.07", "oid": rng.randrange(10**11), "twap_id": None, "cloid": "0x" + "ab" * 16},
            {"user": seller, "start_pos": "12.5", "oid": rng.randrange(10**11), "twap_id": None, "cloid": None},
        ],
    })


ASSET_HEADER = "time,coin,funding,open_interest,prev_day_px,day_ntl_vlm,premium,oracle_px,mark_px,mid_px,impact_bid_px,impact_ask_px"


def asset_ctx_lines(minutes: int) -> list[str]:
    lines = [ASSET_HEADER]
    for m in range(minutes):
        stamp = f"2025-03-11T00:{m:02d}:00Z" if m % 2 == 0 else f"2025-03-11 00:{m:02d}:00"  # both formats, as seen
        lines.append(f"{stamp},SOL,0.0000125,314537.09,124.00,61407594.51,-0.0002,124.000,124.050,124.020,123.900,124.100")
        lines.append(f"{stamp},BTC,0.00001,1000.5,82000.0,1000000.0,,82010.0,82011.0,,,")  # empty optional fields
    return lines


def make_history(root: Path, seed: int = 1) -> dict[str, Any]:
    """A small day in the buckets' layout under ``root``; returns what it wrote, for checks."""
    rng = random.Random(seed)
    books = {coin: l2book_lines(coin, 40, rng) for coin in ("SOL", "BTC")}
    for coin, lines in books.items():
        write_lz4(root / "market_data" / "20250311" / "9" / "l2Book" / f"{coin}.lz4", lines)
    write_lz4(root / "asset_ctxs" / "20250311.csv.lz4", asset_ctx_lines(5))
    # fills by block, hours 9 and 10; the last trade of hour 9 has its seller's fill in hour 10's file
    start_ms = HOUR9_NS // 1_000_000 + 3_600_000 - 10_000
    pairs = trade_pairs(12, rng, start_ms)
    hour9, hour10 = [], []
    for i, (buy, sell) in enumerate(pairs):
        t_ns = buy[1]["time"] * 1_000_000
        if i == 9:  # the edge pair: buyer's fill in hour 9, seller's processed after the hour
            hour9.append(block_line(560_000_000 + i, t_ns, [buy]))
            hour10.append(block_line(560_000_100 + i, HOUR9_NS + 3_600_000_000_000 + 5_000_000, [sell]))
        elif t_ns < HOUR9_NS + 3_600_000_000_000:
            hour9.append(block_line(560_000_000 + i, t_ns, [buy, sell]))
        else:
            hour10.append(block_line(560_000_000 + i, t_ns, [buy, sell]))
    write_lz4(root / "node_fills_by_block" / "hourly" / "20250311" / "9.lz4", hour9)
    write_lz4(root / "node_fills_by_block" / "hourly" / "20250311" / "10.lz4", hour10)
    # the older one-fill-a-line dataset
    old_pairs = trade_pairs(6, rng, 1_748_736_000_000, coins=("SOL",))
    write_lz4(root / "node_fills" / "hourly" / "20250601" / "0.lz4", [orjson.dumps([u, f]) for pair in old_pairs for u, f in pair])
    trades = [node_trade_line("AAVE", "B" if i % 2 else "A", 1_748_181_599_000_000_000 + i * 7_000_000, f"264.{50 + i}", "0.06", USERS[0], USERS[1], rng) for i in range(8)]
    write_lz4(root / "node_trades" / "hourly" / "20250525" / "13.lz4", trades)
    return {"books": books, "pairs": pairs, "old_pairs": old_pairs, "node_trades": trades}

"""Hyperliquid's published history, sans I/O: which dataset a key is, and each record as frames.

Formats: ``shared/hyperliquid-history.md``. Every record becomes a frame that keeps it whole
(``l2Book``: exactly the record's ``raw``; fills, node trades and asset contexts: a frame of their
own channel holding the record's fields exactly), plus websocket-shaped ``trades`` frames built from
the fills or node trades, so ``Replay`` and the ``trades`` view cover imported history. A record of
an unknown shape raises ``HistoryError``: the importer names the file and line and imports nothing
of that file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

DATASETS = ("l2Book", "asset_ctxs", "node_fills_by_block", "node_fills", "node_trades")
NODE_FILLS, NODE_TRADES, ASSET_CTXS = "nodeFills", "nodeTrades", "assetCtxs"  # their archive channels
ASSET_CTX_HEADER = (
    "time,coin,funding,open_interest,prev_day_px,day_ntl_vlm,premium,oracle_px,mark_px,mid_px,impact_bid_px,impact_ask_px"
)


class HistoryError(ValueError):
    """A record this importer cannot read exactly; the message says what, the caller adds where."""


def detect_dataset(key: str) -> str | None:
    """The dataset of a bucket key (or a local path holding the bucket's layout), by its prefixes."""
    parts = key.replace("\\", "/").split("/")
    if "node_fills_by_block" in parts:
        return "node_fills_by_block"
    if "node_fills" in parts:
        return "node_fills"
    if "node_trades" in parts:
        return "node_trades"
    if "asset_ctxs" in parts or parts[-1].endswith(".csv.lz4"):
        return "asset_ctxs"
    if "l2Book" in parts or "market_data" in parts:
        return "l2Book"
    return None


def iso_ns(text: Any) -> int:
    """UTC nanoseconds of ``2025-03-11T09:00:00.830233071`` (no zone: UTC), ``...Z`` or ``2025-03-11 00:01:00``."""
    if not isinstance(text, str) or len(text) < 19:
        raise HistoryError(f"bad time {text!r}: expected an ISO-8601 UTC time")
    body = text.rstrip("Z").replace(" ", "T", 1)
    base, _, fraction = body.partition(".")
    try:
        whole = datetime.fromisoformat(base).replace(tzinfo=timezone.utc)
    except ValueError:
        raise HistoryError(f"bad time {text!r}: expected an ISO-8601 UTC time") from None
    if fraction and not fraction.isdigit():
        raise HistoryError(f"bad time {text!r}: expected an ISO-8601 UTC time")
    return int(whole.timestamp()) * 1_000_000_000 + int((fraction + "000000000")[:9] if fraction else 0)


def _loads(line: bytes | str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise HistoryError(f"not JSON ({exc})") from None


# --- l2Book snapshots -----------------------------------------------------------------------------------


def l2book_record(line: bytes | str) -> tuple[int, dict[str, Any]]:
    """``(recv_ns from the outer time, the record's raw frame exactly)``."""
    record = _loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("raw"), dict):
        raise HistoryError("not an l2Book snapshot record (an object with 'time' and 'raw')")
    raw = record["raw"]
    data = raw.get("data")
    if raw.get("channel") != "l2Book" or not isinstance(data, dict) or not isinstance(data.get("levels"), list):
        raise HistoryError("its 'raw' is not an l2Book frame (channel l2Book, data with levels)")
    return iso_ns(record.get("time")), raw


# --- fills ------------------------------------------------------------------------------------------------

_FILL_KEYS = ("coin", "px", "sz", "side", "time", "hash", "tid")


def _check_fill(pair: Any) -> tuple[str, dict[str, Any]]:
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], dict)):
        raise HistoryError("a fill is not a [user, fill] pair")
    user, fill = pair
    missing = [k for k in _FILL_KEYS if k not in fill]
    if missing:
        raise HistoryError(f"a fill lacks {', '.join(missing)}")
    if fill["side"] not in ("A", "B") or not isinstance(fill["time"], int):
        raise HistoryError(f"a fill has side {fill['side']!r} or time {fill['time']!r} of an unknown kind")
    return user, fill


def node_fill_frame(user: str, fill: dict[str, Any], block: dict[str, Any] | None = None) -> dict[str, Any]:
    """One fill, whole, with its user (and its block's number and times): a ``nodeFills`` frame."""
    data: dict[str, Any] = {"user": user, "fill": fill}
    if block is not None:
        for key in ("block_number", "block_time", "local_time"):
            if key in block:
                data[key] = block[key]
    return {"channel": NODE_FILLS, "data": data}


def fills_of_line(line: bytes | str, dataset: str) -> list[tuple[int, str, dict[str, Any], dict[str, Any]]]:
    """``(recv_ns, user, fill, nodeFills frame)`` for each fill of a line of ``node_fills`` or ``node_fills_by_block``."""
    record = _loads(line)
    if dataset == "node_fills":
        user, fill = _check_fill(record)
        return [(fill["time"] * 1_000_000, user, fill, node_fill_frame(user, fill))]
    if not isinstance(record, dict) or not isinstance(record.get("events"), list):
        raise HistoryError("not a node_fills_by_block record (an object with 'events')")
    recv_ns = iso_ns(record.get("local_time") or record.get("block_time"))
    out = []
    for pair in record["events"]:
        user, fill = _check_fill(pair)
        out.append((recv_ns, user, fill, node_fill_frame(user, fill, record)))
    return out


@dataclass
class FillPairer:
    """Pairs the two fills of a trade (same coin and ``tid``) into one websocket-shaped trade.

    Fills wait here until their other side arrives, across files: a block processed after the hour
    lands in the next hour's file."""

    pending: dict[tuple[str, int], tuple[int, str, dict[str, Any]]] = field(default_factory=dict)

    def add(self, recv_ns: int, user: str, fill: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        key = (fill["coin"], fill["tid"])
        other = self.pending.pop(key, None)
        if other is None:
            self.pending[key] = (recv_ns, user, fill)
            return None
        other_ns, other_user, other_fill = other
        if other_fill["side"] == fill["side"]:
            raise HistoryError(f"two {fill['side']} fills for trade {fill['tid']} of {fill['coin']}")
        buyer, seller = (other_user, user) if other_fill["side"] == "B" else (user, other_user)
        taker = fill if fill.get("crossed") and not other_fill.get("crossed") else other_fill if other_fill.get("crossed") else fill
        trade = {
            "coin": fill["coin"],
            "side": taker["side"],
            "px": fill["px"],
            "sz": fill["sz"],
            "time": max(fill["time"], other_fill["time"]),
            "hash": fill["hash"],
            "tid": fill["tid"],
            "users": [buyer, seller],
        }
        return max(recv_ns, other_ns), {"channel": "trades", "data": [trade]}


# --- node trades -----------------------------------------------------------------------------------------


def node_trade_tid(record: dict[str, Any]) -> int:
    """No ``tid`` in this dataset: a trade is identified by its hash, coin, time, price, size and parties;
    the ``tid`` of its trades frame is a 63-bit hash of those (stable across imports)."""
    key = orjson.dumps([record.get("hash"), record.get("coin"), record.get("time"), record.get("px"), record.get("sz"), [s.get("user") for s in record["side_info"]]])
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


def node_trade(line: bytes | str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """``(recv_ns, nodeTrades frame holding the record whole, websocket-shaped trades frame)``.

    ``side_info`` is [buyer, seller] (index 0 buys); ``side`` is the taker's side, so the taker is
    ``side_info[0]`` when ``side`` is ``B``."""
    record = _loads(line)
    if not isinstance(record, dict):
        raise HistoryError("not a node_trades record (an object)")
    missing = [k for k in ("coin", "side", "time", "px", "sz", "hash", "side_info") if k not in record]
    if missing:
        raise HistoryError(f"a node_trades record lacks {', '.join(missing)}")
    info = record["side_info"]
    if not (isinstance(info, list) and len(info) == 2 and all(isinstance(s, dict) and isinstance(s.get("user"), str) for s in info)):
        raise HistoryError("side_info is not two parties with a user each")
    if record["side"] not in ("A", "B"):
        raise HistoryError(f"unknown side {record['side']!r}")
    recv_ns = iso_ns(record["time"])
    trade = {
        "coin": record["coin"],
        "side": record["side"],
        "px": record["px"],
        "sz": record["sz"],
        "time": recv_ns // 1_000_000,
        "hash": record["hash"],
        "tid": node_trade_tid(record),
        "users": [info[0]["user"], info[1]["user"]],
    }
    return recv_ns, {"channel": NODE_TRADES, "data": record}, {"channel": "trades", "data": [trade]}


# --- asset contexts ------------------------------------------------------------------------------------

ASSET_CTX_FIELDS = tuple(ASSET_CTX_HEADER.split(","))


def check_asset_ctx_header(line: str) -> None:
    if line.strip().lstrip("\ufeff") != ASSET_CTX_HEADER:
        raise HistoryError(f"header {line.strip()[:120]!r} is not the asset context header {ASSET_CTX_HEADER!r}: refusing to read it by position")


def asset_ctx_row(line: str) -> tuple[int, str, dict[str, Any]]:
    """``(recv_ns, coin, assetCtxs frame)``: the row's values exactly, as text (empty stays empty)."""
    values = line.rstrip("\r\n").split(",")
    if len(values) != len(ASSET_CTX_FIELDS):
        raise HistoryError(f"{len(values)} values, the header has {len(ASSET_CTX_FIELDS)}")
    row = dict(zip(ASSET_CTX_FIELDS, values))
    if not row["coin"]:
        raise HistoryError("a row without a coin")
    return iso_ns(row["time"]), row["coin"], {"channel": ASSET_CTXS, "data": row}

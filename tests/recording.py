"""Helpers for recorder tests: what the simulator logged as sent vs what the archive holds."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import orjson

from recorder.connection import ConnectionConfig
from recorder.live import Recorder
from replay import Replay
from schemas import frame_identifier, parse_subscription
from schemas.protocol import DataFrame, parse_server_frame

USER = "0xe746435d136c4714383a64ee28e35c8bdb8d5cb1"
# one subscription of every type the simulator serves, with l2Book aggregation and a spot pair
EVERY_CHANNEL = [
    {"type": "allMids"},
    {"type": "l2Book", "coin": "BTC"},
    {"type": "l2Book", "coin": "ETH", "nSigFigs": 5, "mantissa": 2},
    {"type": "trades", "coin": "ETH"},
    {"type": "bbo", "coin": "@1"},
    {"type": "candle", "coin": "PURR/USDC", "interval": "1m"},
    {"type": "activeAssetCtx", "coin": "BTC"},
    {"type": "activeAssetCtx", "coin": "@1"},
    {"type": "activeAssetData", "user": USER, "coin": "BTC"},
    *({"type": t, "user": USER} for t in (
        "userEvents", "userFills", "orderUpdates", "userFundings", "userNonFundingLedgerUpdates", "webData2",
        "notification", "userTwapSliceFills", "userTwapHistory",
    )),
]


def stream_of(msg: dict[str, Any]) -> str:
    return f"{msg['channel']}|{frame_identifier(msg)}"


def sent_data(log: Path, connections: set[int] | None = None, before_ns: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Data frames the server logged as sent, per stream, in sending order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in log.read_bytes().splitlines():
        entry = orjson.loads(line)
        if connections is not None and entry["conn"] not in connections:
            continue
        if before_ns is not None and entry["t_ns"] >= before_ns:
            continue
        frame = parse_server_frame(entry["frame"])
        if isinstance(frame, DataFrame):
            out[stream_of(frame.message)].append(frame.message)
    return dict(out)


def archived(root: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for msg in Replay(root).messages():
        out[stream_of(msg)].append(msg)
    return dict(out)


def events(root: Path) -> list[tuple[str, int | None, dict[str, Any] | None, str | None]]:
    rows = duckdb.sql(
        f"select kind, connection, detail, text from read_parquet('{root}/channel=_events/*/*/*.parquet') order by recv_ns, seq"
    ).fetchall()
    return [(k, c, orjson.loads(d) if d else None, t) for k, c, d, t in rows]


def record(root: Path, url: str, subs: list[dict[str, Any]], seconds: float, **kw: Any) -> Recorder:
    kw.setdefault("meta", False)
    kw.setdefault("status_s", None)
    kw.setdefault("connection_config", ConnectionConfig(ping_interval_s=0.5, stall_s=30, backoff_base_s=0.05, backoff_cap_s=0.2))
    recorder = Recorder(root, [parse_subscription(s, allow_unknown=True) for s in subs], url=url, **kw)
    asyncio.run(recorder.run(duration_s=seconds))
    return recorder

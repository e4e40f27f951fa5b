"""DuckDB views over the archive: one typed, analysis-ready view per channel.

Base views (``archive_<channel>``) read the hive-partitioned parts as stored, so filters on
``coin`` and ``date`` prune partitions. Typed views on top unnest lists, turn decimal strings into
DOUBLE (the exact strings stay available as ``*_text``) and times into TIMESTAMP (UTC). A channel
with no parts yet still has its views, empty and typed, so SQL written today runs tomorrow.

Frames kept whole as ``raw`` text (a shape the typed columns could not hold exactly) are in the base
views' ``raw`` column; the typed views cover the typed rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Collection

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from schemas.channels import channel_spec
from schemas.layout import EVENTS_CHANNEL, META_CHANNEL, escape
from schemas.rows import EVENT_SCHEMA, META_SCHEMA, data_schema

from ..archive import check_root
from ..storage import Store

# partition (subscription type) -> the wire channel whose shape its typed columns have
BASES = {
    "trades": "trades",
    "l2Book": "l2Book",
    "bbo": "bbo",
    "candle": "candle",
    "allMids": "allMids",
    "activeAssetCtx": "activeAssetCtx",
    "userFills": "userFills",
    "userEvents": "user",
    "orderUpdates": "orderUpdates",
    "userFundings": "userFundings",
    "userNonFundingLedgerUpdates": "userNonFundingLedgerUpdates",
    "activeAssetData": "activeAssetData",
    "webData2": "webData2",
    # Hyperliquid's published history (hlarchive import): kept whole as JSON in `raw`
    "nodeFills": None,
    "nodeTrades": None,
    "assetCtxs": None,
    # the order-level book (a node's files, the book server's websocket)
    "l4Statuses": "l4Statuses",
    "l4Diffs": "l4Diffs",
    "l4Snapshots": "l4Snapshots",
    "l4Checkpoints": "l4Checkpoints",  # this archive's own books every few minutes of blocks (where l4_book starts)
}

_TS = "make_timestamp(({ms})::BIGINT * 1000)"  # epoch ms -> TIMESTAMP
_RECV = "make_timestamp(recv_ns // 1000) AS recv_time"

_LEVELS = "list_transform({levels}, lambda x: {{'px': x.px::DOUBLE, 'sz': x.sz::DOUBLE, 'n': x.n}})"

_FILL_COLUMNS = """
    f.coin, {ts} AS time, f.px::DOUBLE AS px, f.sz::DOUBLE AS sz, f.side, f.dir, f.closedPnl::DOUBLE AS closed_pnl,
    f.fee::DOUBLE AS fee, f.feeToken AS fee_token, f.oid, f.tid, f.hash, f.crossed, f.cloid, f.startPosition::DOUBLE AS start_position,
    f.px AS px_text, f.sz AS sz_text""".format(ts=_TS.format(ms="f.time"))

TYPED_VIEWS = {
    "trades": f"""
        SELECT coin, {_TS.format(ms="t.time")} AS time, t.px::DOUBLE AS px, t.sz::DOUBLE AS sz, t.side, t.tid, t.hash,
               coalesce(t.users[1], CASE WHEN t.side = 'B' THEN t."user" END) AS buyer,
               coalesce(t.users[2], CASE WHEN t.side = 'A' THEN t."user" END) AS seller,
               t.px AS px_text, t.sz AS sz_text, recv_ns, {_RECV}, session, seq, date
        FROM (SELECT coin, recv_ns, session, seq, date, unnest(data) AS t FROM archive_trades WHERE data IS NOT NULL)""",
    "l2book": f"""
        SELECT coin, time, exch_ms, bids, asks, bids[1].px AS best_bid, asks[1].px AS best_ask,
               (bids[1].px + asks[1].px) / 2 AS mid, asks[1].px - bids[1].px AS spread,
               stream, recv_ns, {_RECV}, session, seq, date
        FROM (SELECT coin, {_TS.format(ms="data.time")} AS time, exch_ms,
                     {_LEVELS.format(levels="data.levels[1]")} AS bids, {_LEVELS.format(levels="data.levels[2]")} AS asks,
                     stream, recv_ns, session, seq, date
              FROM archive_l2Book WHERE data IS NOT NULL)""",
    "l2book_levels": f"""
        SELECT coin, {_TS.format(ms="time_ms")} AS time, CASE WHEN side = 1 THEN 'bid' ELSE 'ask' END AS side,
               level, lv.px::DOUBLE AS px, lv.sz::DOUBLE AS sz, lv.n, lv.px AS px_text, lv.sz AS sz_text,
               stream, recv_ns, session, seq, date
        FROM (SELECT coin, time_ms, side, generate_subscripts(levels, 1) AS level, unnest(levels) AS lv,
                     stream, recv_ns, session, seq, date
              FROM (SELECT coin, data.time AS time_ms, generate_subscripts(data.levels, 1) AS side,
                           unnest(data.levels) AS levels, stream, recv_ns, session, seq, date
                    FROM archive_l2Book WHERE data IS NOT NULL))""",
    "bbo": f"""
        SELECT coin, {_TS.format(ms="data.time")} AS time, data.bbo[1].px::DOUBLE AS bid_px, data.bbo[1].sz::DOUBLE AS bid_sz,
               data.bbo[1].n AS bid_n, data.bbo[2].px::DOUBLE AS ask_px, data.bbo[2].sz::DOUBLE AS ask_sz, data.bbo[2].n AS ask_n,
               (data.bbo[1].px::DOUBLE + data.bbo[2].px::DOUBLE) / 2 AS mid, data.bbo[2].px::DOUBLE - data.bbo[1].px::DOUBLE AS spread,
               recv_ns, {_RECV}, session, seq, date
        FROM archive_bbo WHERE data IS NOT NULL""",
    "candles": f"""
        SELECT data.s AS coin, data.i AS interval, {_TS.format(ms="data.t")} AS open_time, {_TS.format(ms="data.T")} AS close_time,
               data.o::DOUBLE AS open, data.h::DOUBLE AS high, data.l::DOUBLE AS low, data.c::DOUBLE AS close,
               data.v::DOUBLE AS volume, data.n AS trades, recv_ns, {_RECV}, session, seq, date
        FROM archive_candle WHERE data IS NOT NULL""",
    "all_mids": f"""
        SELECT {_RECV}, m.key AS coin, m.value::DOUBLE AS mid, m.value AS mid_text, recv_ns, session, seq, date
        FROM (SELECT recv_ns, session, seq, date, unnest(map_entries(data.mids)) AS m FROM archive_allMids WHERE data IS NOT NULL)""",
    "asset_ctx": f"""
        SELECT coin, wire_channel = 'activeSpotAssetCtx' AS is_spot, {_RECV},
               data.ctx.funding::DOUBLE AS funding, data.ctx.openInterest::DOUBLE AS open_interest,
               data.ctx.oraclePx::DOUBLE AS oracle_px, data.ctx.markPx::DOUBLE AS mark_px, data.ctx.midPx::DOUBLE AS mid_px,
               data.ctx.premium::DOUBLE AS premium, data.ctx.prevDayPx::DOUBLE AS prev_day_px,
               data.ctx.dayNtlVlm::DOUBLE AS day_ntl_vlm, data.ctx.dayBaseVlm::DOUBLE AS day_base_vlm,
               recv_ns, session, seq, date
        FROM archive_activeAssetCtx WHERE data IS NOT NULL""",
    "fills": f"""
        SELECT "user", is_snapshot, {_FILL_COLUMNS}, recv_ns, session, seq, date, source
        FROM (SELECT "user", coalesce(data.isSnapshot, false) AS is_snapshot, unnest(data.fills) AS f, recv_ns, session, seq, date,
                     'userFills' AS source FROM archive_userFills WHERE data IS NOT NULL
              UNION ALL BY NAME
              SELECT "user", false AS is_snapshot, unnest(data.fills) AS f, recv_ns, session, seq, date,
                     'userEvents' AS source FROM archive_userEvents WHERE data.fills IS NOT NULL)""",
    "order_updates": f"""
        SELECT "user", u."order".coin AS coin, u."order".side AS side, u."order".limitPx::DOUBLE AS limit_px,
               u."order".sz::DOUBLE AS sz, u."order".origSz::DOUBLE AS orig_sz, u."order".oid AS oid,
               {_TS.format(ms='u."order".timestamp')} AS order_time, u.status, {_TS.format(ms="u.statusTimestamp")} AS status_time,
               recv_ns, session, seq, date
        FROM (SELECT "user", unnest(data) AS u, recv_ns, session, seq, date FROM archive_orderUpdates WHERE data IS NOT NULL)""",
    "fundings": f"""
        SELECT "user", coalesce(is_snapshot, false) AS is_snapshot, f.coin, {_TS.format(ms="f.time")} AS time, f.usdc::DOUBLE AS usdc,
               f.szi::DOUBLE AS szi, f.fundingRate::DOUBLE AS funding_rate, recv_ns, session, seq, date
        FROM (SELECT "user", data.isSnapshot AS is_snapshot, unnest(data.fundings) AS f, recv_ns, session, seq, date
              FROM archive_userFundings WHERE data IS NOT NULL)""",
    "ledger": f"""
        SELECT "user", coalesce(is_snapshot, false) AS is_snapshot, {_TS.format(ms="u.time")} AS time, u.hash,
               json_extract_string(u.delta, '$.type') AS type, TRY_CAST(json_extract_string(u.delta, '$.usdc') AS DOUBLE) AS usdc,
               u.delta, recv_ns, session, seq, date
        FROM (SELECT "user", data.isSnapshot AS is_snapshot, unnest(data.nonFundingLedgerUpdates) AS u, recv_ns, session, seq, date
              FROM archive_userNonFundingLedgerUpdates WHERE data IS NOT NULL)""",
    "node_fills": f"""
        SELECT coin, "user", {_TS.format(ms="(fill->>'time')::BIGINT")} AS time, (fill->>'px')::DOUBLE AS px,
               (fill->>'sz')::DOUBLE AS sz, fill->>'side' AS side, fill->>'dir' AS dir, (fill->>'closedPnl')::DOUBLE AS closed_pnl,
               (fill->>'fee')::DOUBLE AS fee, fill->>'feeToken' AS fee_token, (fill->>'oid')::UBIGINT AS oid,
               (fill->>'tid')::UBIGINT AS tid, fill->>'hash' AS hash, (fill->>'crossed')::BOOLEAN AS crossed, fill->>'cloid' AS cloid,
               (fill->>'startPosition')::DOUBLE AS start_position, fill->'liquidation' AS liquidation,
               block_number, block_time, fill->>'px' AS px_text, fill->>'sz' AS sz_text, fill, recv_ns, {_RECV}, session, seq, date
        FROM (SELECT coin, raw::JSON->'data'->'fill' AS fill, raw::JSON->'data'->>'user' AS "user",
                     (raw::JSON->'data'->>'block_number')::UBIGINT AS block_number, raw::JSON->'data'->>'block_time' AS block_time,
                     recv_ns, session, seq, date
              FROM archive_nodeFills)""",
    "node_trades": """
        SELECT coin, make_timestamp(recv_ns // 1000) AS time, (t->>'px')::DOUBLE AS px, (t->>'sz')::DOUBLE AS sz, t->>'side' AS side,
               t->>'hash' AS hash, t->>'trade_dir_override' AS trade_dir_override,
               t->'side_info'->0->>'user' AS buyer, t->'side_info'->1->>'user' AS seller, t->'side_info' AS side_info,
               t->>'px' AS px_text, t->>'sz' AS sz_text, recv_ns, session, seq, date
        FROM (SELECT coin, raw::JSON->'data' AS t, recv_ns, session, seq, date FROM archive_nodeTrades)""",
    "asset_ctxs": """
        SELECT coin, make_timestamp(recv_ns // 1000) AS time, TRY_CAST(c->>'funding' AS DOUBLE) AS funding,
               TRY_CAST(c->>'open_interest' AS DOUBLE) AS open_interest, TRY_CAST(c->>'prev_day_px' AS DOUBLE) AS prev_day_px,
               TRY_CAST(c->>'day_ntl_vlm' AS DOUBLE) AS day_ntl_vlm, TRY_CAST(c->>'premium' AS DOUBLE) AS premium,
               TRY_CAST(c->>'oracle_px' AS DOUBLE) AS oracle_px, TRY_CAST(c->>'mark_px' AS DOUBLE) AS mark_px,
               TRY_CAST(c->>'mid_px' AS DOUBLE) AS mid_px, TRY_CAST(c->>'impact_bid_px' AS DOUBLE) AS impact_bid_px,
               TRY_CAST(c->>'impact_ask_px' AS DOUBLE) AS impact_ask_px, c->>'time' AS time_text, recv_ns, session, seq, date
        FROM (SELECT coin, raw::JSON->'data' AS c, recv_ns, session, seq, date FROM archive_assetCtxs)""",
    "l4_statuses": f"""
        SELECT coin, data.block AS block, {_TS.format(ms="data.block_ms")} AS block_time, data.block_ms AS block_ms,
               data."user" AS "user", data.status AS status, o.oid, o.side, o.limitPx::DOUBLE AS px, o.sz::DOUBLE AS sz,
               o.origSz::DOUBLE AS orig_sz, {_TS.format(ms="o.timestamp")} AS order_time, o.orderType AS order_type, o.tif,
               o.reduceOnly AS reduce_only, o.isTrigger AS is_trigger, o.triggerPx::DOUBLE AS trigger_px, o.triggerCondition AS trigger_condition,
               o.isPositionTpsl AS is_position_tpsl, o.cloid, o.limitPx AS px_text, o.sz AS sz_text, o.origSz AS orig_sz_text,
               data.time AS status_time_text, recv_ns, {_RECV}, session, seq, date
        FROM (SELECT coin, data, data."order" AS o, recv_ns, session, seq, date FROM archive_l4Statuses WHERE data IS NOT NULL)""",
    "l4_diffs": f"""
        SELECT coin, data.block AS block, {_TS.format(ms="data.block_ms")} AS block_time, data.block_ms AS block_ms,
               data."user" AS "user", data.oid AS oid, data.side AS side, data.px::DOUBLE AS px,
               CASE WHEN json_valid(d) AND d::JSON->>'$' = 'remove' THEN 'remove' ELSE json_keys(d::JSON)[1] END AS kind,
               coalesce(d::JSON->'new'->>'sz', d::JSON->'modified'->>'sz', d::JSON->'update'->>'newSz') AS sz_text,
               d::JSON->'update'->>'origSz' AS orig_sz_text,
               TRY_CAST(coalesce(d::JSON->'new'->>'sz', d::JSON->'modified'->>'sz', d::JSON->'update'->>'newSz', CASE WHEN d = '"remove"' THEN '0' END) AS DOUBLE) AS sz,
               TRY_CAST(d::JSON->'update'->>'origSz' AS DOUBLE) AS orig_sz,
               data.px AS px_text, d AS raw_book_diff, recv_ns, {_RECV}, session, seq, date
        FROM (SELECT coin, data, data.raw_book_diff AS d, recv_ns, session, seq, date FROM archive_l4Diffs WHERE data IS NOT NULL)""",
    "l4_snapshots": f"""
        SELECT coin, data.block AS block, {_TS.format(ms="data.block_ms")} AS block_time, data.block_ms AS block_ms, data.height AS height,
               len(data.levels[1]) AS bid_orders, len(data.levels[2]) AS ask_orders,
               data.levels[1][1].limitPx::DOUBLE AS best_bid, data.levels[2][1].limitPx::DOUBLE AS best_ask,
               data.levels AS levels, recv_ns, {_RECV}, session, seq, date
        FROM archive_l4Snapshots WHERE data IS NOT NULL""",
    "events": f"""
        SELECT {_RECV}, kind, connection, detail, text, recv_ns, session, seq, date FROM archive__events""",
    "meta": f"""
        SELECT {_RECV}, kind, payload, recv_ns, session, seq, date FROM archive__meta""",
}

MACROS = {
    "vwap": "(px, sz) AS sum(px * sz) / sum(sz)",
    "ns_to_time": "(ns) AS make_timestamp(ns // 1000)",
    "ms_to_time": "(ms) AS make_timestamp(ms * 1000)",
    "bucket": "(ts, width) AS time_bucket(CAST(width AS INTERVAL), ts)",
    # the order-level book at receive time ts: the last node snapshot at or before it, then the diffs
    # after its height (the rules of schemas/l4/book.py: a diff's size replaces the order's, `remove`
    # or a zero size takes it out, price-time priority within a level)
    "l4_book": """(c, ts) AS TABLE
        WITH snap AS (  -- the node's last snapshot or this archive's last checkpoint (a snapshot first at one block)
            SELECT height, levels FROM (
                SELECT data.height AS height, data.levels AS levels, recv_ns, 1 AS rank FROM archive_l4Snapshots
                WHERE coin = c AND data IS NOT NULL AND recv_ns <= epoch_ns(CAST(ts AS TIMESTAMP))
                UNION ALL
                SELECT data.height, data.levels, recv_ns, 0 FROM archive_l4Checkpoints
                WHERE coin = c AND data IS NOT NULL AND recv_ns <= epoch_ns(CAST(ts AS TIMESTAMP)))
            ORDER BY recv_ns DESC, height DESC, rank DESC LIMIT 1),
        base AS (
            SELECT o.oid AS oid, o."user" AS "user", side, o.limitPx AS px_text, o.sz AS sz_text, pos AS arrival
            FROM (SELECT 'B' AS side, unnest(levels[1]) AS o, generate_subscripts(levels[1], 1) AS pos FROM snap
                  UNION ALL SELECT 'A', unnest(levels[2]), generate_subscripts(levels[2], 1) FROM snap)),
        d AS (
            SELECT oid, "user", side, px_text, kind, sz_text, seq FROM l4_diffs
            WHERE coin = c AND recv_ns <= epoch_ns(CAST(ts AS TIMESTAMP)) AND block > coalesce((SELECT max(height) FROM snap), -1)),
        last AS (SELECT oid, arg_max(kind, seq) AS kind, arg_max(sz_text, seq) AS sz_text FROM d GROUP BY oid),
        born AS (SELECT oid, arg_min("user", seq) AS "user", arg_min(side, seq) AS side, arg_min(px_text, seq) AS px_text, min(seq) AS arrival
                 FROM d WHERE kind = 'new' GROUP BY oid),
        orders AS (
            SELECT b.oid, b."user", b.side, b.px_text, coalesce(l.sz_text, b.sz_text) AS sz_text, 0 AS origin, b.arrival, l.kind AS last_kind
            FROM base b LEFT JOIN last l ON l.oid = b.oid
            UNION ALL
            SELECT n.oid, n."user", n.side, n.px_text, l.sz_text, 1, n.arrival, l.kind
            FROM born n JOIN last l ON l.oid = n.oid WHERE n.oid NOT IN (SELECT oid FROM base))
        SELECT side, px_text::DOUBLE AS px, sz_text::DOUBLE AS sz, oid, "user",
               row_number() OVER (PARTITION BY side, px_text::DECIMAL(38, 18) ORDER BY origin, arrival) AS priority,
               px_text, sz_text
        FROM orders WHERE coalesce(last_kind, 'new') != 'remove' AND sz_text::DECIMAL(38, 18) != 0
        ORDER BY side DESC, CASE WHEN side = 'B' THEN -px_text::DECIMAL(38, 18) ELSE px_text::DECIMAL(38, 18) END, priority""",
    # its levels, summed exactly: the `levels` best prices a side, with their order count
    "l4_depth": """(c, ts, n_levels) AS TABLE
        SELECT side, level, px, sum(sz_text::DECIMAL(38, 18)) AS sz, count(*) AS n, px_text
        FROM (SELECT *, dense_rank() OVER (PARTITION BY side ORDER BY CASE WHEN side = 'B' THEN -px_text::DECIMAL(38, 18) ELSE px_text::DECIMAL(38, 18) END) AS level
              FROM l4_book(c, ts))
        WHERE level <= n_levels
        GROUP BY side, level, px, px_text
        ORDER BY side DESC, level""",
}


def _source(store: Store, partition: str, con: duckdb.DuckDBPyConnection | None = None, planned: pa.Table | None = None) -> str | None:
    """A local archive's parts, read by DuckDB's own Parquet reader (hive partitions pruned).

    With the catalog (``planned``: its entries), the parts are listed from it, one list per schema
    its entries name: DuckDB then reads one footer a list when the view is made, where a glob with
    ``union_by_name`` reads every part's (seconds on a month of the whole market)."""
    if planned is not None and con is not None:
        return _cataloged_source(store, partition, con, planned)
    root = Path(store.root)
    if not any((root / f"channel={escape(partition)}").glob("coin=*/date=*/part-*.parquet")):
        return None
    glob = (root / f"channel={escape(partition)}" / "*" / "*" / "*.parquet").as_posix().replace("'", "''")
    return f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"


def _cataloged_source(store: Store, partition: str, con: duckdb.DuckDBPyConnection, planned: pa.Table) -> str | None:
    groups: dict[str, list[str]] = {}
    mine = planned.filter(pc.equal(planned.column("channel"), partition))
    for path, schema_id in zip(mine.column("path").to_pylist(), mine.column("schema").to_pylist()):
        groups.setdefault(schema_id or "", []).append(store.path(path))
    if not groups:
        return None
    reads = []
    for n, (schema_id, paths) in enumerate(sorted(groups.items())):
        variable = f"hlarchive_{escape(partition).replace('%', '_')}_{n}"
        con.execute(f"SET VARIABLE {variable} = ?", [sorted(paths)])
        union = "false" if schema_id else "true"  # entries from before fingerprints: compare them all
        reads.append(f"SELECT * FROM read_parquet(getvariable('{variable}'), hive_partitioning = true, union_by_name = {union})")
    return reads[0].removeprefix("SELECT * FROM ") if len(reads) == 1 else "(" + " UNION ALL BY NAME ".join(reads) + ")"


_PARTITIONING = ds.partitioning(pa.schema([("coin", pa.string()), ("date", pa.date32())]), flavor="hive")


def _remote_source(con: duckdb.DuckDBPyConnection, store: Store, partition: str, schema: pa.Schema, entries: pa.Table | None = None) -> str | None:
    """An object store's parts as an Arrow dataset registered in DuckDB: DuckDB pushes its filters
    into the dataset's scan, so ``coin``/``date`` filters prune parts before any is read (the
    ``httpfs`` extension, which ``read_parquet('s3://...')`` needs, cannot be downloaded offline)."""
    base = store.path(f"channel={escape(partition)}")
    if entries is not None:  # the catalog's parts: the bucket is not listed
        paths = sorted(store.path(p) for p in entries.filter(pc.equal(entries.column("channel"), partition)).column("path").to_pylist())
        if not paths:
            return None
        source: str | list[str] = paths
    elif not store.is_dir(base):
        return None
    else:
        source = base
    if "coin" not in schema.names:
        schema = schema.append(pa.field("coin", pa.string()))
    dataset = ds.dataset(source, filesystem=store.fs, format="parquet", partitioning=_PARTITIONING, partition_base_dir=base, schema=schema.append(pa.field("date", pa.date32())))
    name = f"remote_{partition}"
    con.register(name, dataset)
    return f"(SELECT *, '{partition}' AS channel FROM {name})"


def _empty(schema: pa.Schema) -> pa.Table:
    schema = schema.append(pa.field("channel", pa.string())).append(pa.field("date", pa.date32()))
    if "coin" not in schema.names:
        schema = schema.append(pa.field("coin", pa.string()))
    return schema.empty_table()


def _planned(store: Store, window: Window | None = None) -> pa.Table | None:
    """Every part of the catalog (of ``window``'s dates, coins and receive times, when given): its
    path, channel and schema (``None``: no catalog, the views glob the tree)."""
    from ..archive import planned, utc_date
    from ..catalog import catalog_dates, date_table, schema, select

    if planned(store, dates=()) is None:
        return None
    first = utc_date(window.start_ns) if window is not None and window.start_ns is not None else ""
    last = utc_date(window.end_ns) if window is not None and window.end_ns is not None else "9999"
    tables = []
    for day in catalog_dates(store):
        if not first <= day <= last:
            continue
        if window is None:
            tables.append(date_table(store, day).select(["path", "channel", "schema"]))
            continue
        narrow = window.coins if window.coins is not None and len(window.coins) <= 8 else None
        table = date_table(store, day, narrow)
        timed = select(table, start_ns=window.start_ns, end_ns=window.end_ns)
        special = pc.starts_with(timed.column("channel"), "_")  # the session's events and meta: no coin
        coined = select(timed, coins=window.coins) if window.coins is not None else timed
        tables += [timed.filter(special).select(["path", "channel", "schema"]), coined.filter(pc.invert(pc.starts_with(coined.column("channel"), "_"))).select(["path", "channel", "schema"])]
    return pa.concat_tables(tables) if tables else schema().empty_table().select(["path", "channel", "schema"])


@dataclass(frozen=True)
class Window:
    """What ``open_archive(coins=, start=, end=)`` keeps: the views hold only these rows, and only
    the parts that may hold them are listed (from the catalog: a coin-hour of a month of the whole
    market opens in a fraction of a second, where all of it takes seconds)."""

    coins: tuple[str, ...] | None = None
    start_ns: int | None = None
    end_ns: int | None = None

    def where(self, partition: str) -> str:
        conditions = []
        if self.start_ns is not None:
            conditions.append(f"recv_ns >= {int(self.start_ns)}")
        if self.end_ns is not None:
            conditions.append(f"recv_ns <= {int(self.end_ns)}")
        if self.coins is not None and not partition.startswith("_"):
            conditions.append("coin IN (" + ", ".join("'" + c.replace("'", "''") + "'" for c in self.coins) + ")")
        return " WHERE " + " AND ".join(conditions) if conditions else ""


def partitions_of(query: str) -> set[str]:
    """The base partitions a query's views read (views are named in it): an object store lists only those."""
    lowered = query.lower()
    expanded: set[str] = set()
    while True:  # a macro reads the views (and macros) its body names
        more = [name for name in MACROS if name.lower() in lowered and name not in expanded]
        if not more:
            break
        for name in more:
            expanded.add(name)
            lowered += " " + MACROS[name].lower()
    wanted = {p for p in (*BASES, EVENTS_CHANNEL, META_CHANNEL) if f"archive_{p}".lower() in lowered}
    for name, body in TYPED_VIEWS.items():
        if name in lowered:
            wanted |= {p for p in (*BASES, EVENTS_CHANNEL, META_CHANNEL) if f"archive_{p}" in body}
    return wanted


def open_archive(
    root: str | os.PathLike[str],
    connection: duckdb.DuckDBPyConnection | None = None,
    *,
    partitions: Collection[str] | None = None,
    coins: Collection[str] | None = None,
    start: datetime | date | str | float | None = None,
    end: datetime | date | str | float | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the archive's views (``trades``, ``l2book``, ``events``...) and macros.

    ``root`` is a local path or an object-store URL (``s3://bucket/prefix``). ``partitions`` (e.g.
    ``partitions_of(query)``, what ``hlarchive sql`` passes) limits which channels' parts are listed
    up front (on an object store; and locally, from the catalog: DuckDB takes about 45 µs a part to
    make a view); the others' views are empty.

    ``coins``, ``start`` and ``end`` (a datetime, ISO-8601 text or epoch milliseconds, as ``Replay``
    takes them; receive times, inclusive) keep only those rows in every view, and list only the
    parts that may hold them: the way to query a coin-hour of a long archive quickly."""
    from ..replay import to_ns

    store = check_root(root)
    window = None
    if coins is not None or start is not None or end is not None:
        window = Window(tuple(coins) if coins is not None else None, to_ns(start, "start"), to_ns(end, "end"))
    con = connection or duckdb.connect()
    bases = {**BASES, EVENTS_CHANNEL: None, META_CHANNEL: None}
    statements = []
    planned = _planned(store, window)
    for partition, wire in bases.items():
        schema = {EVENTS_CHANNEL: EVENT_SCHEMA, META_CHANNEL: META_SCHEMA}.get(partition) or data_schema(channel_spec(wire or ""))
        if store.local and (partitions is None or partition in partitions or planned is None):
            source = _source(store, partition, con, planned)
        elif partitions is None or partition in partitions:
            source = _remote_source(con, store, partition, schema, planned)
        else:
            source = None
        if source is None:
            name = f"empty_{partition}"
            con.register(name, _empty(schema))
            source = name
        where = window.where(partition) if window is not None else ""
        statements.append(f'CREATE OR REPLACE VIEW "archive_{partition}" AS SELECT * FROM {source}{where}')
    statements += [f'CREATE OR REPLACE VIEW "{name}" AS {body}' for name, body in TYPED_VIEWS.items()]
    statements += [f"CREATE OR REPLACE MACRO {name}{body}" for name, body in MACROS.items()]
    con.execute(";\n".join(statements))  # one round trip: opening an archive is a few milliseconds
    return con


VIEW_NAMES = tuple(TYPED_VIEWS)

"""NautilusTrader's input: a ``ParquetDataCatalog`` at ``--out``, written with nautilus's own writer.

- Instruments from the archive's ``meta``/``spotMeta``, named as nautilus's Hyperliquid adapter names
  them (``ETH-USD-PERP.HYPERLIQUID``, ``PURR-USDC-SPOT.HYPERLIQUID``): perps as ``CryptoPerpetual``,
  spot as ``CurrencyPair``. Price precision is the coin's largest number of price decimals
  (6 - szDecimals for perps, 8 - for spot), size precision its ``szDecimals``.
- With the coin's order-level (L4) book: L3 ``OrderBookDelta``s, ``order_id`` = oid (a snapshot as a
  clear and every order, then each block's diffs). Else ``OrderBookDelta``s from ``l2Book``: a ``CLEAR`` and the levels flagged ``F_SNAPSHOT`` at each day,
  session and gap (the book starts again there), between them the levels that changed (``ADD``,
  ``UPDATE``, ``DELETE``); the last delta of each frame flagged ``F_LAST``.
- ``TradeTick`` (trade id from ``tid``, the taker's side), ``QuoteTick`` from ``bbo``, and
  ``FundingRateUpdate`` from ``activeAssetCtx`` each time the rate changes, where the installed
  version's catalog can store it (1.221's has no Arrow serializer for it: left out, said in the
  summary; the tardis export's ``derivative_ticker`` carries funding).
- ``ts_event`` is the exchange's time, ``ts_init`` ours (``recv_ns``); a context frame has no
  exchange time, so its ``ts_event`` is the receive time.

Written in chunks at frame boundaries (memory does not grow with the archive) into a staging folder,
then moved into place: an export that fails leaves no half-written file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from schemas.layout import ArchiveError

from .files import Output
from .levels import LevelDiff
from .reader import ArchiveSlice, stream_of
from .summary import Summary

VENUE = "HYPERLIQUID"
CHUNK = 200_000  # objects handed to the catalog's writer at once
HOUR_NS = 3_600_000_000_000
NO_META_DECIMALS = 8
STAGING = ".nautilus-staging"


def instrument_id_text(spec: Any) -> str:
    """As nautilus's Hyperliquid adapter names it: ``ETH-USD-PERP``, ``PURR-USDC-SPOT`` (then ``.HYPERLIQUID``)."""
    if spec.spot:
        return f"{spec.base}-{spec.quote}-SPOT.{VENUE}"
    return f"{spec.coin}-USD-PERP.{VENUE}"


def make_instrument(spec: Any, ts_ns: int, px_decimals: int, sz_decimals: int) -> Any:
    from nautilus_trader.model.currencies import USDC
    from nautilus_trader.model.enums import CurrencyType
    from nautilus_trader.model.identifiers import InstrumentId, Symbol
    from nautilus_trader.model.instruments import CryptoPerpetual, CurrencyPair
    from nautilus_trader.model.objects import Currency, Price, Quantity

    def currency(code: str) -> Any:
        try:
            return Currency.from_str(code)
        except (ValueError, KeyError):
            return Currency(code, 8, 0, code, CurrencyType.CRYPTO)

    instrument_id = InstrumentId.from_str(instrument_id_text(spec))
    common = {
        "instrument_id": instrument_id,
        "raw_symbol": Symbol(spec.coin),
        "price_precision": px_decimals,
        "size_precision": sz_decimals,
        "price_increment": Price(10.0**-px_decimals, px_decimals),
        "size_increment": Quantity(10.0**-sz_decimals, sz_decimals),
        "ts_event": ts_ns,
        "ts_init": ts_ns,
        "maker_fee": Decimal("0.00015") if not spec.spot else Decimal("0.0004"),
        "taker_fee": Decimal("0.00045") if not spec.spot else Decimal("0.0007"),
    }
    if spec.spot:
        return CurrencyPair(base_currency=currency(spec.base), quote_currency=currency(spec.quote), **common)
    margin = Decimal(1) / Decimal(max(1, spec.max_leverage))
    return CryptoPerpetual(
        base_currency=currency(spec.coin.split(":")[-1]),
        quote_currency=USDC,
        settlement_currency=USDC,
        is_inverse=False,
        margin_init=margin,
        margin_maint=margin / 2,
        **common,
    )


def funding_storable() -> bool:
    """Whether the installed nautilus_trader's catalog can write ``FundingRateUpdate``."""
    from nautilus_trader.model.data import FundingRateUpdate
    from nautilus_trader.serialization.arrow import serializer

    return FundingRateUpdate in serializer._ARROW_ENCODERS or FundingRateUpdate in serializer.RUST_SERIALIZERS


def write_nautilus(source: ArchiveSlice, coin: str, output: Output, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
    from nautilus_trader.model.data import BookOrder, FundingRateUpdate, OrderBookDelta, QuoteTick, TradeTick
    from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.objects import Price, Quantity
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    try:
        spec = source.asset(coin)
        px_decimals, sz_decimals = spec.max_px_decimals, spec.sz_decimals
    except ArchiveError:  # no meta (an imported node archive): precisions wide enough for any price and size
        spec = source.asset(coin, sz_decimals=NO_META_DECIMALS)
        px_decimals = sz_decimals = NO_META_DECIMALS
        summary.notes.append(f"{coin}: no meta in the archive, so prices and sizes carry {NO_META_DECIMALS} decimals")
    l3 = source.has_l4(coin)
    staging = output.staging(STAGING)
    catalog = ParquetDataCatalog(str(staging))
    with_funding = funding_storable()
    if not with_funding and not spec.spot and "funding" not in " ".join(summary.notes):
        summary.notes.append("funding left out: this nautilus_trader's catalog cannot store FundingRateUpdate")
    channels = ("l4Book" if l3 else "l2Book", "trades", "bbo", "activeAssetCtx")
    items, gaps = source.items(coin, channels)
    streams = {stream_of(channel, coin): channel for channel in channels}
    levels_of = LevelDiff(sorted(g.start_ns for g in gaps if g.stream == stream_of("l2Book", coin)))
    pending: list[Any] = []
    written = 0
    instrument = None
    first_px: float | None = None
    funding: str | None = None
    sequence = 0

    def price(text: str) -> Any:
        return Price(float(text), px_decimals)

    def size(text: str) -> Any:
        return Quantity(float(text), sz_decimals)

    def flush() -> None:
        nonlocal pending, written
        if pending:
            catalog.write_data(pending)
            written += len(pending)
            if progress is not None:
                progress(len(pending), 0)
            pending = []

    for item in items:
        recv = item.recv_ns
        if instrument is None:
            instrument = make_instrument(spec, recv, px_decimals, sz_decimals)
            catalog.write_data([instrument])
        levels_of.moved_to(recv, item.session)
        if len(pending) >= CHUNK:
            flush()  # between frames: each chunk's times are disjoint from the next one's
        channel = streams.get(item.stream or "")
        data = item.message["data"]
        iid = instrument.id
        if channel == "trades":
            for trade in data:
                side = AggressorSide.BUYER if trade["side"] == "B" else AggressorSide.SELLER
                pending.append(TradeTick(iid, price(trade["px"]), size(trade["sz"]), side, TradeId(str(trade["tid"])), int(trade["time"]) * 1_000_000, recv))
        elif channel == "l2Book":
            exch = int(data["time"]) * 1_000_000
            if first_px is None and data["levels"][0]:
                first_px = float(data["levels"][0][0]["px"])
            snapshot, changes = levels_of.frame(data["levels"])
            sequence += 1
            deltas = []
            if snapshot:
                deltas.append(OrderBookDelta.clear(iid, sequence, exch, recv))
            shown = levels_of.shown_before
            for side, px, sz in changes:
                book_side = OrderSide.SELL if side else OrderSide.BUY
                if snapshot:
                    action = BookAction.ADD
                elif sz == "0":
                    action = BookAction.DELETE
                else:
                    action = BookAction.UPDATE if shown is not None and px in shown[side] else BookAction.ADD
                order = BookOrder(book_side, price(px), size(sz) if sz != "0" else Quantity(0, sz_decimals), 0)
                deltas.append((action, order))
            out = []
            for index, entry in enumerate(deltas):
                last = index == len(deltas) - 1
                if isinstance(entry, OrderBookDelta):
                    flags = RecordFlag.F_SNAPSHOT | (RecordFlag.F_LAST if last else 0)
                    out.append(OrderBookDelta(iid, BookAction.CLEAR, entry.order, flags, sequence, exch, recv))
                    continue
                action, order = entry
                flags = (RecordFlag.F_SNAPSHOT if snapshot else 0) | (RecordFlag.F_LAST if last else 0)
                out.append(OrderBookDelta(iid, action, order, flags, sequence, exch, recv))
            pending.extend(out)
        elif channel == "l4Book":
            sequence += 1
            pending.extend(l3_deltas(iid, data, sequence, recv, price, size, sz_decimals))
            if first_px is None and "Snapshot" in data and data["Snapshot"]["levels"][0]:
                first_px = float(data["Snapshot"]["levels"][0][0]["limitPx"])
        elif channel == "bbo":
            bid, ask = data["bbo"]
            if bid and ask:
                pending.append(QuoteTick(iid, price(bid["px"]), price(ask["px"]), size(bid["sz"]), size(ask["sz"]), int(data["time"]) * 1_000_000, recv))
        elif channel == "activeAssetCtx" and with_funding and not spec.spot:
            rate = data.get("ctx", {}).get("funding")
            if rate is not None and rate != funding:
                funding = rate
                pending.append(FundingRateUpdate(iid, Decimal(rate), recv, recv, next_funding_ns=(recv // HOUR_NS + 1) * HOUR_NS))
    flush()
    if instrument is None:
        shutil.rmtree(staging, ignore_errors=True)
        return
    summary.events += written
    summary.paths.extend(output.adopt(STAGING))
    summary.specs[coin] = {"coin": coin, "price_precision": px_decimals, "size_precision": sz_decimals, "book": "L3 (order ids from the L4 book)" if l3 else "L2", "instrument_id": instrument_id_text(spec)}
    if first_px is not None:
        summary.specs[coin] |= {"tick_size": 10.0**-px_decimals, "lot_size": 10.0**-sz_decimals}


def l3_deltas(iid: Any, data: dict[str, Any], sequence: int, recv: int, price: Callable[[str], Any], size: Callable[[str], Any], sz_decimals: int) -> list[Any]:
    """An ``l4Book`` frame as L3 deltas: a ``Snapshot`` as a clear and every order (``F_SNAPSHOT``), an
    ``Updates`` block as its diffs; ``order_id`` = oid, the last delta flagged ``F_LAST``."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta
    from nautilus_trader.model.enums import BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.objects import Quantity

    out: list[tuple[Any, Any, int]] = []  # (action, order, flags)
    if "Snapshot" in data:
        snapshot = data["Snapshot"]
        exch = int(snapshot["time"]) * 1_000_000
        clear = OrderBookDelta.clear(iid, sequence, exch, recv)
        out.append((BookAction.CLEAR, clear.order, RecordFlag.F_SNAPSHOT))
        for side, orders in zip((OrderSide.BUY, OrderSide.SELL), snapshot["levels"]):
            out.extend((BookAction.ADD, BookOrder(side, price(o["limitPx"]), size(o["sz"]), int(o["oid"])), RecordFlag.F_SNAPSHOT) for o in orders)
    else:
        update = data.get("Updates")
        if update is None:
            return []
        exch = int(update["time"]) * 1_000_000
        for diff in update["book_diffs"]:
            change = diff["raw_book_diff"]
            side = OrderSide.BUY if diff.get("side") == "B" else OrderSide.SELL
            oid, px = int(diff["oid"]), price(diff["px"])
            if change == "remove":
                out.append((BookAction.DELETE, BookOrder(side, px, Quantity(0, sz_decimals), oid), 0))
            elif isinstance(change, dict) and "new" in change:
                out.append((BookAction.ADD, BookOrder(side, px, size(change["new"]["sz"]), oid), 0))
            elif isinstance(change, dict) and ("update" in change or "modified" in change):
                new = change["update"]["newSz"] if "update" in change else change["modified"]["sz"]
                action = BookAction.DELETE if float(new) == 0 else BookAction.UPDATE
                out.append((action, BookOrder(side, px, size(new), oid), 0))
    return [
        OrderBookDelta(iid, action, order, flags | (RecordFlag.F_LAST if i == len(out) - 1 else 0), sequence, exch, recv)
        for i, (action, order, flags) in enumerate(out)
    ]


__all__ = ["instrument_id_text", "make_instrument", "write_nautilus"]

"""The archive's slice an export reads: which coins it has, the window, each coin's frames in receive
order (streamed part by part: memory does not grow with the archive), where sessions start and
where each stream has a gap (a book must start again from a snapshot there), and its lot and tick."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

from schemas.layout import ArchiveError
from schemas.subscriptions import parse_subscription

from ..archive import check_root, find_parts
from ..merge import Item
from ..replay import Replay, to_ns

BATCH_ROWS = 8_192  # frames read at once: a busy book's batch is a few MB of rows, whatever the archive's length


class ArchiveSlice:
    def __init__(self, root: str | os.PathLike[str], coins: list[str], start: Any = None, end: Any = None) -> None:
        self.store = check_root(root)
        self.start_ns = to_ns(start, "--from")
        self.end_ns = to_ns(end, "--to")
        if self.start_ns is not None and self.end_ns is not None and self.end_ns < self.start_ns:
            raise ArchiveError(f"an empty range: --to {end} is before --from {start}")
        parts = find_parts(self.store)
        self.available = sorted({p.coin for p in parts if p.coin})
        unknown = [c for c in coins if c not in self.available]
        if unknown:
            raise ArchiveError(f"no data for {', '.join(unknown)} in the archive: it has {', '.join(self.available) or 'no coin'}")
        if not coins:
            raise ArchiveError("say which coins to export: --coin COIN (repeat)")
        self.coins = coins
        self._assets: dict[str, Any] | None = None

    def describe_window(self) -> str:
        from schemas.gaps import utc_text

        start = utc_text(self.start_ns) if self.start_ns is not None else "the archive's start"
        end = utc_text(self.end_ns) if self.end_ns is not None else "its end"
        return f"{start} and {end}"

    def items(self, coin: str, channels: tuple[str, ...]) -> tuple[Iterator[Item], list[Any]]:
        """``coin``'s frames of ``channels`` in receive order, and the gaps of those streams."""
        replay = Replay(self.store, start=_ms(self.start_ns), end=_ms(self.end_ns), on_gap="mark")
        subscribed = 0
        for channel in channels:
            try:
                replay.subscribe({"type": channel, "coin": coin}, _ignore)
                subscribed += 1
            except ArchiveError:
                continue
        if not subscribed:
            return iter(()), []
        return (item for item in replay.items() if item.stream is not None), replay.gaps()

    def gaps(self, coin: str, channels: tuple[str, ...]) -> list[Any]:
        """The gaps of ``coin``'s streams of ``channels`` in the window."""
        return self.items(coin, channels)[1]

    def batches(self, channel: str, coin: str, columns: list[str], batch_size: int = BATCH_ROWS) -> Iterator[Any]:
        """``coin``'s Arrow batches of ``channel`` in the window, part by part in time order."""
        replay = Replay(self.store, start=_ms(self.start_ns), end=_ms(self.end_ns))
        return replay.batches(channel, coin=coin, columns=columns, batch_size=batch_size)

    def has(self, coin: str, channel: str) -> bool:
        return bool(find_parts(self.store, channels=[channel], coins=[coin], start_ns=self.start_ns, end_ns=self.end_ns))

    def has_l4(self, coin: str) -> bool:
        """Whether the archive holds ``coin``'s order-level book (a node's rows)."""
        from ..l4 import has_l4

        return has_l4(self.store, coin)

    def asset(self, coin: str, sz_decimals: int | None = None) -> Any:
        """The coin's ``AssetSpec`` (lot, price decimals, leverage; spot base and quote), from the meta;
        without one, from ``sz_decimals`` (the most decimals its sizes were seen with)."""
        if self._assets is None:
            from ..paper.feeds import archive_assets

            self._assets = {spec.coin: spec for spec in archive_assets(self.store).values()}
        spec = self._assets.get(coin)
        if spec is None and sz_decimals is not None:
            from ..paper.assets import AssetSpec

            spot = coin.startswith("@") or "/" in coin
            base, _, quote = coin.partition("/")
            return AssetSpec(-1, coin, sz_decimals, 20, spot, base=base if spot else "", quote=quote or "USDC")
        if spec is None:
            raise ArchiveError(f"no szDecimals for {coin} in the archive's meta: record without --no-meta")
        return spec

    def spec(self, coin: str, price: float | None, *, sz_decimals: int | None = None) -> dict[str, Any]:
        """Lot and tick of ``coin``: the lot from ``szDecimals``; the tick from Hyperliquid's price rule
        (5 significant figures, at most 6 - szDecimals decimals for perps, 8 - for spot) at ``price``."""
        spec = self.asset(coin, sz_decimals)
        decimals = spec.max_px_decimals
        tick = 10.0 ** -decimals
        if price:
            tick = max(tick, 10.0 ** (math.floor(math.log10(abs(price))) - 4))
        return {
            "coin": coin,
            "tick_size": float(f"{tick:.10g}"),
            "lot_size": float(f"{10.0 ** -spec.sz_decimals:.10g}"),
            "sz_decimals": spec.sz_decimals,
            "max_price_decimals": decimals,
            "price_at": price,
            "rule": "tick: 5 significant figures at price_at, at most max_price_decimals decimals; it changes with the price's magnitude",
        }


def stream_of(channel: str, coin: str) -> str:
    return parse_subscription({"type": channel, "coin": coin}).stream


def _ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1_000_000


def _ignore(message: Any) -> None:
    pass


__all__ = ["ArchiveSlice", "stream_of"]

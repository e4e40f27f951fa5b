"""Where the paper exchange's market comes from: an archive's frames or the simulator's ticks, and
the assets each can trade (from ``meta`` snapshots, or read from the recorded books)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Protocol

import orjson

from schemas.layout import ArchiveError

from ..archive import check_root
from ..meta import MetaSnapshots
from .assets import AssetSpec, assets_from_meta


class Feed(Protocol):
    def frames(self, coin: str, from_ns: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(time_ns, frame)`` of one coin in time order: its state at ``from_ns`` first (the last book
        at or before it), then every frame after."""


class ArchiveFeed:
    """Frames of an archive: each coin from the archive's start (an action at ``from_ns`` must see the
    book in force then, which may be far back), read lazily."""

    def __init__(self, root: Any, start_ns: int | None = None, end_ns: int | None = None) -> None:
        self.root = root
        self.start_ns = start_ns
        self.end_ns = end_ns

    def frames(self, coin: str, from_ns: int) -> Iterator[tuple[int, dict[str, Any]]]:
        from ..replay import Replay

        replay = Replay(self.root, start=None if self.start_ns is None else self.start_ns / 1e6, end=None if self.end_ns is None else self.end_ns / 1e6)
        subscribed = 0
        for kind in ("l2Book", "trades", "activeAssetCtx"):
            try:
                replay.subscribe({"type": kind, "coin": coin}, _ignore)
                subscribed += 1
            except ArchiveError:
                continue
        if not subscribed:
            return iter(())
        return ((item.recv_ns, item.message) for item in replay.items() if item.stream is not None)


class SyntheticFeed:
    """Frames of the simulator's market: a coin joins at the tick of ``from_ns`` (its state then is exact)."""

    def __init__(self, market: Any) -> None:
        self.market = market

    def frames(self, coin: str, from_ns: int) -> Iterator[tuple[int, dict[str, Any]]]:
        from ..simulator.payloads import funding_rate, hour_of, l2_book

        market = self.market
        if coin not in market.coins:
            return
        n = max(0, (from_ns // 1_000_000 - market.start_ms) // market.tick_ms)
        m = market.timeline.market_at(coin, n)
        spot = "/" in coin or coin.startswith("@")
        hour = None
        while True:
            t_ns = m.time_ms * 1_000_000
            if not spot and hour_of(m.time_ms) != hour:
                hour = hour_of(m.time_ms)
                ctx = {"funding": funding_rate(market.seed, coin, hour + 1)}
                yield t_ns, {"channel": "activeAssetCtx", "data": {"coin": coin, "ctx": ctx}}
            if m.n != n:
                trades = m.trades()
                if trades:
                    yield t_ns, {"channel": "trades", "data": trades}
            yield t_ns, {"channel": "l2Book", "data": l2_book(m)}
            m.advance()


def _ignore(message: Any) -> None:
    pass


# --- assets ----------------------------------------------------------------------------------------------


def archive_assets(root: Any) -> dict[int, AssetSpec]:
    """The assets of an archive's ``_meta`` snapshots (the first of each kind); without them, perps
    numbered by name with lot sizes read from the recorded books."""
    info = MetaSnapshots(root)
    snapshots = {kind: info.of_kind(kind) for kind in ("meta", "spotMeta", "perpDexs")}
    if snapshots["meta"]:
        meta = orjson.loads(snapshots["meta"][0][1])
        spot = orjson.loads(snapshots["spotMeta"][0][1]) if snapshots["spotMeta"] else None
        dexes = []
        if snapshots["perpDexs"]:
            for index, dex in enumerate(orjson.loads(snapshots["perpDexs"][0][1])):
                if dex and info.of_kind(f"meta:{dex['name']}"):
                    dexes.append((index, dex["name"], orjson.loads(info.of_kind(f"meta:{dex['name']}")[0][1])))
        return assets_from_meta(meta, spot, dexes)
    return inferred_assets(root)


def inferred_assets(root: Any) -> dict[int, AssetSpec]:
    from ..archive import find_parts
    from ..replay import Replay

    coins = sorted({p.coin for p in find_parts(root, channels=["l2Book", "trades"]) if p.coin})
    assets: dict[int, AssetSpec] = {}
    for index, coin in enumerate(c for c in coins if not (c.startswith("@") or "/" in c)):
        replay = Replay(root)
        decimals = 0
        try:
            replay.subscribe({"type": "l2Book", "coin": coin}, _ignore)
            for frame in itertools.islice(replay.messages(), 20):
                for side in frame["data"]["levels"]:
                    for level in side:
                        decimals = max(decimals, len(level["sz"].partition(".")[2].rstrip("0")))
        except ArchiveError:
            decimals = 4
        assets[index] = AssetSpec(index, coin, decimals, 20, False)
    return assets


def recorded_users(root: Any) -> set[str]:
    """The addresses an archive recorded user streams of (from its sessions' subscriptions)."""
    from ..gaps import event_rows

    users = set()
    for event in event_rows(check_root(root)):
        if event["kind"] in ("session_start", "subscribed") and event["detail"]:
            detail = orjson.loads(event["detail"])
            for sub in detail.get("subscriptions") or [detail.get("subscription")]:
                if isinstance(sub, dict) and isinstance(sub.get("user"), str):
                    users.add(sub["user"].lower())
    return users


def synthetic_assets(market: Any) -> dict[int, AssetSpec]:
    from ..simulator.info import answer, perp_dexs

    meta = answer(market, {"type": "meta"}, 0)
    spot = answer(market, {"type": "spotMeta"}, 0)
    dexes = [(i, d["name"], answer(market, {"type": "meta", "dex": d["name"]}, 0)) for i, d in enumerate(perp_dexs(market)) if d]
    return assets_from_meta(meta, spot, dexes)


__all__ = ["ArchiveFeed", "Feed", "SyntheticFeed", "archive_assets", "inferred_assets", "synthetic_assets"]

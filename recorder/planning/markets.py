"""Which markets exist, from the info endpoint's answers, and which of them to record.

``--coin all`` (or ``all-perps``, ``all-spot``) is resolved from ``perpDexs``, ``metaAndAssetCtxs``
(per dex) and ``spotMetaAndAssetCtxs``; ``--top N`` keeps the N with the largest 24 h notional
volume; delisted markets are skipped. The selection is pure: the answers are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from schemas.layout import ArchiveError

MARKET_WORDS = ("all", "all-perps", "all-spot")


class MarketsError(ArchiveError):
    """The market list could not be had or makes no sense."""


@dataclass(frozen=True)
class Market:
    coin: str  # as subscriptions name it: BTC, xyz:HOOD, PURR/USDC, @107
    kind: str  # "perp" or "spot"
    dex: str  # "" for the main perp dex and for spot
    volume: float  # 24 h notional (dayNtlVlm)


def perp_dex_names(perp_dexs: Any) -> list[str]:
    """``""`` (the main dex) then every builder dex named in a ``perpDexs`` answer."""
    return [""] + [d["name"] for d in perp_dexs or [] if isinstance(d, dict) and isinstance(d.get("name"), str)]


def perp_markets(meta_and_ctxs: Any, dex: str) -> list[Market]:
    meta, ctxs = meta_and_ctxs
    out = []
    for asset, ctx in zip(meta["universe"], ctxs):
        if asset.get("isDelisted"):
            continue
        out.append(Market(asset["name"], "perp", dex, _volume(ctx)))
    return out


def spot_markets(spot_meta_and_ctxs: Any) -> list[Market]:
    meta, ctxs = spot_meta_and_ctxs
    by_coin = {ctx.get("coin"): ctx for ctx in ctxs if isinstance(ctx, dict)}
    out = []
    for i, pair in enumerate(meta["universe"]):
        if pair.get("isDelisted"):
            continue
        ctx = by_coin.get(pair["name"]) or (ctxs[i] if i < len(ctxs) else {})
        out.append(Market(pair["name"], "spot", "", _volume(ctx)))
    return out


def _volume(ctx: Any) -> float:
    try:
        return float(ctx.get("dayNtlVlm") or 0.0)
    except (AttributeError, TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class Selection:
    """What ``--coin`` words, ``--dex``, ``--top`` and ``--exclude`` ask for."""

    words: tuple[str, ...]  # the --coin values: market words and plain coins
    dexes: tuple[str, ...] = ()  # builder dexs to include with all/all-perps; ("all",) for every one
    top: int | None = None
    exclude: tuple[str, ...] = ()

    @property
    def follows_listings(self) -> bool:
        return any(w in MARKET_WORDS for w in self.words)

    def dex_wanted(self, dex: str) -> bool:
        return dex == "" or "all" in self.dexes or dex in self.dexes

    def choose(self, markets: list[Market]) -> list[str]:
        """The coins asked for: those named, then the listed markets the words take, most traded first."""
        perps = "all" in self.words or "all-perps" in self.words
        spot = "all" in self.words or "all-spot" in self.words
        taken: dict[str, Market] = {}
        for market in sorted(markets, key=lambda m: (-m.volume, m.coin)):
            if market.coin in self.exclude or market.coin in taken:
                continue
            if (market.kind == "perp" and perps and self.dex_wanted(market.dex)) or (market.kind == "spot" and spot):
                taken[market.coin] = market
        chosen = list(taken)[: self.top] if self.top is not None else list(taken)
        named = [w for w in self.words if w not in MARKET_WORDS and w not in self.exclude]
        return list(dict.fromkeys(named + chosen))


def list_markets(fetch: Callable[[dict[str, Any]], Any], selection: Selection) -> list[Market]:
    """Every listed market the selection may need, asked through ``fetch`` (a POST to /info)."""
    words = set(selection.words)
    out: list[Market] = []
    if words & {"all", "all-perps"}:
        for dex in perp_dex_names(fetch({"type": "perpDexs"})):
            if selection.dex_wanted(dex):
                request = {"type": "metaAndAssetCtxs", **({"dex": dex} if dex else {})}
                out.extend(perp_markets(fetch(request), dex))
    if words & {"all", "all-spot"}:
        out.extend(spot_markets(fetch({"type": "spotMetaAndAssetCtxs"})))
    return out

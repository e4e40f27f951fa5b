"""What can be traded and in which steps: assets by the exchange's numbering, and its tick and lot rules.

Asset numbers are the exchange's: a perp's index in ``meta.universe``; ``10000 + index`` for a spot
pair of ``spotMeta.universe``; ``100000 + dex * 10000 + index`` for a builder-deployed perp. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from schemas.info import wire_number

PERP_MAX_DECIMALS = 6
SPOT_MAX_DECIMALS = 8
MAX_SIG_FIGS = 5


@dataclass(frozen=True)
class AssetSpec:
    asset: int
    coin: str  # as streams name it: "BTC", "@107", "PURR/USDC", "xyz:XYZ100"
    sz_decimals: int
    max_leverage: int
    spot: bool
    base: str = ""  # spot: the token bought; perps: unused
    quote: str = "USDC"
    base_index: int = 0  # spot: the token's index in spotMeta.tokens

    @property
    def max_px_decimals(self) -> int:
        return (SPOT_MAX_DECIMALS if self.spot else PERP_MAX_DECIMALS) - self.sz_decimals


def assets_from_meta(
    meta: dict[str, Any] | None,
    spot_meta: dict[str, Any] | None = None,
    dex_metas: Iterable[tuple[int, str, dict[str, Any]]] = (),
) -> dict[int, AssetSpec]:
    """The tradable assets of ``meta``/``spotMeta`` answers (and ``(dex index, dex name, meta)`` of builder dexes)."""
    assets: dict[int, AssetSpec] = {}
    for index, entry in enumerate((meta or {}).get("universe", [])):
        assets[index] = AssetSpec(index, entry["name"], int(entry["szDecimals"]), int(entry.get("maxLeverage") or 20), False)
    for dex_index, dex_name, dex_meta in dex_metas:
        for index, entry in enumerate(dex_meta.get("universe", [])):
            asset = 100_000 + dex_index * 10_000 + index
            name = entry["name"] if ":" in entry["name"] else f"{dex_name}:{entry['name']}"
            assets[asset] = AssetSpec(asset, name, int(entry["szDecimals"]), int(entry.get("maxLeverage") or 20), False)
    if spot_meta:
        tokens = {t["index"]: t for t in spot_meta.get("tokens", [])}
        for pair in spot_meta.get("universe", []):
            base, quote = (tokens.get(i, {}) for i in pair["tokens"])
            assets[10_000 + pair["index"]] = AssetSpec(
                10_000 + pair["index"],
                pair["name"],
                int(base.get("szDecimals", 2)),
                1,
                True,
                base.get("name", pair["name"]),
                quote.get("name", "USDC"),
                int(pair["tokens"][0]),
            )
    return assets


class WireNumber(NamedTuple):
    """A price or size as posted (``"124.10"``): its value, its text without trailing zeros, its
    decimals and significant figures (what the tick and lot rules count)."""

    value: float
    text: str
    decimals: int
    sig_figs: int


_NUMBER = re.compile(r"(\d+)(?:\.(\d*))?")


def wire_decimal(text: Any) -> WireNumber | None:
    """Parse a wire number; None when it is not a finite number string."""
    if not isinstance(text, str):
        return None
    match = _NUMBER.fullmatch(text)
    if match is None:  # exponents, signs: the rare forms go through Decimal
        try:
            value = Decimal(text)
        except InvalidOperation:
            return None
        if not value.is_finite():
            return None
        plain = format(value.normalize(), "f")
        match = _NUMBER.fullmatch(plain)
        if match is None:
            return WireNumber(float(value), plain, 0, 0)  # negative: the rules refuse it by value
    whole = match.group(1).lstrip("0") or "0"
    frac = (match.group(2) or "").rstrip("0")
    digits = (whole if whole != "0" else "") + frac
    return WireNumber(float(text), whole + ("." + frac if frac else ""), len(frac), len(digits.lstrip("0")))


def price_ok(spec: AssetSpec, px: WireNumber) -> bool:
    """The exchange's tick rule: an integer price always; else at most 5 significant figures and
    ``max_px_decimals`` decimals."""
    if px.value <= 0:
        return False
    if px.decimals == 0:
        return True
    return px.sig_figs <= MAX_SIG_FIGS and px.decimals <= spec.max_px_decimals


def size_ok(spec: AssetSpec, sz: WireNumber) -> bool:
    return sz.value > 0 and sz.decimals <= spec.sz_decimals


__all__ = ["AssetSpec", "WireNumber", "assets_from_meta", "price_ok", "size_ok", "wire_decimal", "wire_number"]

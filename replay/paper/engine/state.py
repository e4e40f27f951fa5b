"""What every part of the paper engine shares: its books, accounts and clock, the event list its
streams read, and the number formats of fills. Pure."""

from __future__ import annotations

import hashlib
from typing import Any

from schemas.l4.book import L4Book

from ..assets import AssetSpec
from .accounts import Account, Order
from .book import Book

EPS = 1e-12

Event = tuple[str, str, Any]  # (user, channel, data): what the wallet's streams carry


class ActionError(ValueError):
    """A request the exchange refuses as a whole: ``{"status": "err", "response": <sentence>}``."""


class EngineState:
    """The state the engine's parts move (each part is a mixin over it; ``PaperEngine`` joins them)."""

    def __init__(self, assets: dict[int, AssetSpec], *, balance: float = 100_000.0, seed: int = 0) -> None:
        self.assets = assets
        self.by_coin = {spec.coin: spec for spec in assets.values()}
        self.balance = balance
        self.seed = seed
        self.books: dict[str, Book] = {}
        self.l4_books: dict[str, L4Book] = {}  # coins whose order-level book feeds the engine: exact queues
        self._l4_held: dict[str, dict[str, Any]] = {}  # coin -> the newest blocks' updates, applied after their trades
        self.last_trade_px: dict[str, float] = {}
        self.funding_rates: dict[str, float] = {}
        self.mark_px: dict[str, float] = {}  # the recorded activeAssetCtx markPx: what triggers fire on
        self.mark_text: dict[str, str] = {}  # and its text, the price a liquidation fills at
        self.prices: dict[str, list[tuple[int, float]]] = {}  # (time ms, mark) of traded coins, for the report
        self._next_sample_ms = 0
        self.accounts: dict[str, Account] = {}
        self.time_ms = 0  # the latest time seen (frames, actions, the clock)
        self.event_ms = 0  # the time of what is being processed: a fill's or a status's time
        self._hour: int | None = None
        self._by_coin: dict[str, tuple[list[Order], list[Order]]] = {}  # resting orders, sorted, per coin
        self._next_oid = 1_000_000_001
        self._next_tid = 500_000_000_000_001
        self.events: list[Event] = []

    def account(self, user: str) -> Account:
        """The paper account of ``user``: every address starts funded."""
        user = user.lower()
        acc = self.accounts.get(user)
        if acc is None:
            acc = self.accounts[user] = Account(user, self.balance)
        return acc

    def mark(self, coin: str) -> float | None:
        """The mid of the last book, else the last trade price."""
        book = self.books.get(coin)
        if book is not None:
            bid, ask = book.best(False), book.best(True)
            if bid is not None and ask is not None:
                return (bid + ask) / 2
        return self.last_trade_px.get(coin)

    def _oid(self) -> int:
        self._next_oid += 1
        return self._next_oid - 1

    def drain(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    def has_account(self, user: str) -> bool:
        return user.lower() in self.accounts


def round_to(value: float, decimals: int) -> float:
    return round(value + 0.0, decimals)


def avg_px(notional: float, size: float) -> str:
    return significant(notional / size) if size else "0.0"


def significant(value: float) -> str:
    """A price with at most 6 significant figures, trailing zeros trimmed (``avgPx``, ``entryPx``)."""
    text = f"{value:.6g}"
    if "e" in text:
        text = f"{value:.10f}".rstrip("0")
    if "." not in text:
        text += ".0"
    return text


def position_direction(start: float, new: float) -> str:
    if start >= 0 and new > start:
        return "Open Long"
    if start <= 0 and new < start:
        return "Open Short"
    if start > 0 and new < 0:
        return "Long > Short"
    if start < 0 and new > 0:
        return "Short > Long"
    return "Close Long" if start > 0 else "Close Short"


def fill_hash(seed: int, tid: int) -> str:
    return "0x" + hashlib.blake2b(f"paper {seed} {tid}".encode(), digest_size=32).hexdigest()


__all__ = ["EPS", "ActionError", "EngineState", "Event", "avg_px", "fill_hash", "position_direction", "round_to", "significant"]

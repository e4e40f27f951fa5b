"""One synthetic coin's market, tick by tick: its spec, its book shapes and trades, and the
decimal text they are printed in. Deterministic for ``(seed, coin, tick)``; knows nothing of
subscriptions, servers or ``/info``."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from schemas.info import wire_number
from schemas.subscriptions import is_spot_coin


@dataclass(frozen=True)
class CoinSpec:
    name: str
    start_px: float
    tick: float  # price increment
    px_decimals: int
    sz_decimals: int
    max_leverage: int = 0  # perps only; spot has none


DEFAULT_COINS: dict[str, CoinSpec] = {
    c.name: c
    for c in (
        CoinSpec("BTC", 98_450.0, 1.0, 1, 5, 40),
        CoinSpec("ETH", 2_296.4, 0.1, 1, 4, 25),
        CoinSpec("SOL", 94.87, 0.01, 2, 2, 20),
        CoinSpec("kPEPE", 0.012345, 0.000001, 6, 0, 10),
        CoinSpec("xyz:HOOD", 91.25, 0.01, 2, 3, 10),
        CoinSpec("@1", 0.065431, 0.000001, 6, 0),
        CoinSpec("PURR/USDC", 0.067131, 0.000001, 6, 0),
    )
}

DEFAULT_USERS = (
    "0xe746435d136c4714383a64ee28e35c8bdb8d5cb1",
    "0xcc0a3b6e3267c84361e91d8230868eea53431e4b",
)

# resting liquidity comes from a few hundred market makers, not from a new address per trade
MAKERS = tuple("0x" + hashlib.blake2b(f"maker {i}".encode(), digest_size=20).hexdigest() for i in range(256))

LEVELS = 20


def seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def random_hex(rng: random.Random, nbytes: int) -> str:
    return "0x" + rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def fmt(value: float, decimals: int) -> str:
    """Hyperliquid-style decimal text: fixed decimals for prices, at least one decimal."""
    return f"{value:.{max(decimals, 1)}f}"


def fmt_sz(value: float, decimals: int) -> str:
    return wire_number(value, decimals)


def lots_of(text: str, decimals: int) -> int:
    """A size as a whole number of its smallest step (``szDecimals``)."""
    return round(float(text) * 10**decimals)


def lots_text(lots: int, decimals: int) -> str:
    return wire_number(lots / 10**decimals, decimals)


def split_lots(lots: int, n: int) -> list[int]:
    """A level's size as its ``n`` orders hold it, front first: uneven, every order at least one lot,
    and the same for the same ``(lots, n)`` (so the book after a trade follows from the level alone)."""
    n = max(1, min(n, lots))
    weights = [(j * 7 + lots) % 5 + 1 for j in range(n)]
    total = sum(weights)
    sizes = [max(1, lots * w // total) for w in weights]
    sizes[0] += lots - sum(sizes)
    if sizes[0] < 1:
        base = lots // n
        sizes = [base + (lots - base * n if j == 0 else 0) for j in range(n)]
    return sizes


def take_front(sizes: list[int], lots: int) -> list[int]:
    """The sizes left in a queue after ``lots`` are taken from its front."""
    left = list(sizes)
    while lots > 0 and left:
        if left[0] <= lots:
            lots -= left.pop(0)
        else:
            left[0] -= lots
            lots = 0
    return left


@dataclass(frozen=True)
class _BookShape:
    """Where the levels sit relative to the touch, and their sizes: a coin has a few dozen of these."""

    bid_offsets: tuple[int, ...]
    ask_offsets: tuple[int, ...]
    bid_sizes: tuple[tuple[str, int], ...]
    ask_sizes: tuple[tuple[str, int], ...]


_SHAPES = 64


class CoinMarket:
    """One coin's market, advanced tick by tick.

    Every random draw of a tick happens in ``advance`` from one sequential generator, so a tick's
    book and trades are the same whichever frames are built from them, and building them is cheap.
    """

    def __init__(self, spec: CoinSpec, seed: int, start_ms: int, tick_ms: int) -> None:
        self.spec = spec
        self.seed = seed
        self.start_ms = start_ms
        self.tick_ms = tick_ms
        self.n = 0
        self._rng = random.Random(seed_of(seed, spec.name, "walk"))
        self.mid_ticks = round(spec.start_px / spec.tick)
        self.tid = seed_of(seed, spec.name, "tid") % 10**14
        self.day_ntl = 0.0
        self.day_base = 0.0
        self._shapes = _book_shapes(spec, seed)
        self._shape = self._shapes[0]
        self._trade_draws: list[tuple[float, ...]] = []
        self._px_cache: dict[int, str] = {}
        self._book: tuple[int, list[dict[str, Any]], list[dict[str, Any]]] | None = None
        self._pre_book: tuple[int, list[dict[str, Any]], list[dict[str, Any]]] | None = None
        self._taken: dict[tuple[int, int], int] = {}  # (side, level) -> lots this tick's trades took
        self._trades: tuple[int, list[dict[str, Any]]] | None = None

    @property
    def time_ms(self) -> int:
        return self.start_ms + self.n * self.tick_ms

    @property
    def mid(self) -> float:
        return (self.mid_ticks + 0.5) * self.spec.tick

    def advance(self) -> None:
        rng = self._rng
        self.n += 1
        self.mid_ticks = max(10, self.mid_ticks + round(rng.gauss(0, 3)))
        self._shape = self._shapes[int(rng.random() * _SHAPES)]
        count = (0, 1, 1, 2, 3)[int(rng.random() * 5)]
        self._trade_draws = [(rng.random(), rng.random(), rng.random(), rng.random(), rng.getrandbits(256)) for _ in range(count)]

    def step(self) -> None:
        """Advance one tick and print its trades: the state every timeline is kept in, so a clone
        taken at tick n and a market walked to tick n agree on trade ids and volumes."""
        self.advance()
        self.trades()

    def clone(self) -> CoinMarket:
        twin = object.__new__(CoinMarket)
        twin.__dict__.update(self.__dict__)
        twin._rng = random.Random()
        twin._rng.setstate(self._rng.getstate())
        twin._px_cache = {}
        return twin

    def px(self, ticks: int) -> str:
        text = self._px_cache.get(ticks)
        if text is None:
            if len(self._px_cache) > 4096:
                self._px_cache.clear()
            text = self._px_cache[ticks] = fmt(ticks * self.spec.tick, self.spec.px_decimals)
        return text

    def pre_book(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """This tick's 20 levels a side before its trades: where the resting orders stand (each level
        ``n`` orders splitting its size, ``split_lots``) when the tick's market orders arrive."""
        if self._pre_book is None or self._pre_book[0] != self.n:
            shape, mid, px = self._shape, self.mid_ticks, self.px
            bids = [{"px": px(mid - off), "sz": sz, "n": n} for off, (sz, n) in zip(shape.bid_offsets, shape.bid_sizes)]
            asks = [{"px": px(mid + off), "sz": sz, "n": n} for off, (sz, n) in zip(shape.ask_offsets, shape.ask_sizes)]
            self._pre_book = (self.n, bids, asks)
        return self._pre_book[1], self._pre_book[2]

    def book(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """This tick's book as it stands after its trades (``levels[0]`` bids, best first; asks): what
        ``l2Book``, ``bbo`` and ``/info`` show. A trade takes its size from the front of its level's
        queue, so a level loses the orders it fills (and vanishes when all are filled)."""
        if self._book is None or self._book[0] != self.n:
            bids, asks = self.pre_book()
            self.trades()
            if self._taken:
                sides = [list(bids), list(asks)]
                decimals = self.spec.sz_decimals
                for (index, at), taken in sorted(self._taken.items(), key=lambda item: -item[0][1]):
                    level = sides[index][at]
                    left = take_front(split_lots(lots_of(level["sz"], decimals), level["n"]), taken)
                    if left:
                        sides[index][at] = {"px": level["px"], "sz": lots_text(sum(left), decimals), "n": len(left)}
                    else:
                        del sides[index][at]
                bids, asks = sides
            self._book = (self.n, bids, asks)
        return self._book[1], self._book[2]

    def trades(self, users: tuple[str, ...] = DEFAULT_USERS) -> list[dict[str, Any]]:
        """This tick's trades: market orders taking liquidity at the touch or a level or two deeper,
        never more than the level holds."""
        if self._trades is None or self._trades[0] != self.n:
            bids, asks = self.pre_book()
            out = []
            decimals = self.spec.sz_decimals
            self._taken = taken = {}
            for side_draw, depth_draw, size_draw, who_draw, bits in self._trade_draws:
                side = "A" if side_draw < 0.5 else "B"  # A: a seller hits bids; B: a buyer lifts asks
                key = (0 if side == "A" else 1, (0, 0, 0, 1, 2)[int(depth_draw * 5)])
                level = (bids if side == "A" else asks)[key[1]]
                self.tid += 1 + int(size_draw * 1000)
                held = lots_of(level["sz"], decimals) - taken.get(key, 0)
                lots = min(held, max(1, round(float(level["sz"]) * (0.05 + 0.95 * size_draw) * 10**decimals)))
                if lots <= 0:
                    continue  # the level is gone: nothing left to take
                taken[key] = taken.get(key, 0) + lots
                sz = lots_text(lots, decimals)
                hash_ = "0x" + bits.to_bytes(32, "big").hex()
                taker = users[int(who_draw * len(users))]
                maker = MAKERS[(bits >> 8) % len(MAKERS)]
                buyer, seller = (taker, maker) if side == "B" else (maker, taker)
                self.day_ntl += float(sz) * float(level["px"])
                self.day_base += float(sz)
                out.append(
                    {
                        "coin": self.spec.name,
                        "side": side,
                        "px": level["px"],
                        "sz": sz,
                        "time": self.time_ms,
                        "hash": hash_,
                        "tid": self.tid,
                        "users": [buyer, seller],
                    }
                )
            self._trades = (self.n, out)
        return self._trades[1]


def _book_shapes(spec: CoinSpec, seed: int) -> list[_BookShape]:
    rng = random.Random(seed_of(seed, spec.name, "shapes"))
    unit = 20_000.0 / max(spec.start_px, 1e-9) / 10

    def side(first: int) -> tuple[tuple[int, ...], tuple[tuple[str, int], ...]]:
        offsets, sizes, offset = [], [], first
        for _ in range(LEVELS):
            offsets.append(offset)
            size = max(10.0**-spec.sz_decimals, rng.lognormvariate(0, 1) * unit)
            text = fmt_sz(size, spec.sz_decimals)
            sizes.append((text, min(rng.randint(1, 6), lots_of(text, spec.sz_decimals))))  # every order holds a lot at least
            offset += rng.randint(1, 3)
        return tuple(offsets), tuple(sizes)

    shapes = []
    for _ in range(_SHAPES):
        bid_offsets, bid_sizes = side(0)
        ask_offsets, ask_sizes = side(1)
        shapes.append(_BookShape(bid_offsets, ask_offsets, bid_sizes, ask_sizes))
    return shapes



def guess_spec(coin: str) -> CoinSpec:
    rng = random.Random(seed_of(coin))
    return CoinSpec(coin, round(rng.uniform(1, 100), 2), 0.01, 2, 2, 0 if is_spot_coin(coin) else 10)

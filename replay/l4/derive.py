"""Frames derived from the L4 rows as a replay moves: the book server's ``l4Book`` (a ``Snapshot``,
then one ``Updates`` a block) and ``l2Book`` of any depth, a block at a time, in time order with
everything else. Row by row: for the paths that need every row (``l4Book``, the rows themselves
subscribed); an ``l2Book``-only replay takes ``columns``' block path instead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from schemas.subscriptions import Subscription

from ..merge import Item
from .state import CoinBook, _Block, book_frame, row_subscriptions


class Deriver:
    """Turns the L4 rows of a replay's items into ``l4Book`` and ``l2Book`` frames, in time order."""

    def __init__(self, derived: dict[str, Subscription], passthrough: set[str], books: dict[str, CoinBook], decode: str) -> None:
        self.by_coin: dict[str, list[Subscription]] = {}
        # l4Book first: whoever reads both (a paper account) has a block's book before its l2Book
        for sub in sorted(derived.values(), key=lambda s: s.type != "l4Book"):
            self.by_coin.setdefault(sub.coin or "", []).append(sub)
        self.books = books
        self.passthrough = passthrough  # L4 row streams subscribed to as themselves
        self.row_streams = {s.stream: coin for coin in self.by_coin for s in row_subscriptions(coin).values()}
        self.decode = decode
        self.started: set[str] = set()  # l4Book streams that sent their Snapshot
        self.shown: dict[str, Any] = {}  # bbo stream -> its last best levels sent

    def run(self, items: Iterator[Item]) -> Iterator[Item]:
        waiting: list[CoinBook] = []
        for item in items:
            if waiting:  # a later row: the blocks pending before it are whole
                for state in waiting:
                    if state.pending is not None and state.pending.recv_ns < item.recv_ns:
                        yield from self._frames(state, state.finish())
                waiting = [state for state in waiting if state.pending is not None]
            coin = self.row_streams.get(item.stream) if item.stream is not None else None
            if coin is None:
                yield item
                continue
            state = self.books[coin]
            message = item.message if self.decode == "dicts" else orjson.loads(item.message)
            yield from self._frames(state, state.take(message, item.recv_ns, item.session, item.seq))
            if state.pending is not None and state not in waiting:
                waiting.append(state)
            if item.stream in self.passthrough:
                yield item
        for state in self.books.values():
            yield from self._frames(state, state.finish())

    def _frames(self, state: CoinBook, blocks: list[_Block]) -> Iterator[Item]:
        book = state.book
        for block in blocks:
            for sub in self.by_coin.get(state.coin, ()):
                if sub.type == "l4Book":
                    if sub.stream in self.started:
                        data: dict[str, Any] = {"Updates": {"time": block.block_ms, "height": block.height, "order_statuses": block.statuses, "book_diffs": block.diffs}}
                    else:
                        self.started.add(sub.stream)
                        data = {"Snapshot": book.snapshot()}
                    frame = {"channel": "l4Book", "data": data}
                else:
                    made = book_frame(book, sub, self.shown)
                    if made is None:
                        continue
                    frame = made
                message: Any = frame if self.decode == "dicts" else orjson.dumps(frame)
                yield Item(block.recv_ns, block.session, block.seq, block.block_ms, sub.stream, message)

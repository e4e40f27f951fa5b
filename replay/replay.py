"""Replay: an archive through the SDK's ``subscribe(subscription, callback)`` interface, in order.

Order is ``(recv_ns, session, seq)``: the exact order frames were received, across every part,
channel and session. The merge streams part by part, so memory does not grow with the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import os
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from schemas.gaps import Gap
from schemas.layout import EVENTS_CHANNEL, ArchiveError
from schemas.subscriptions import COIN_TYPES, Subscription, parse_subscription

from .archive import (
    Part,
    any_part,
    check_root,
    find_parts,
    last_recv_ns,
    list_dates,
    open_part,
    part_batches,
    read_footer,
)
from .batch_merge import Merged, merge_batches, single_stream
from .gaps import GapError, archive_gaps, check_policy, gaps_in
from .l4 import CoinBook, Deriver, derivable, l4_snapshot, l4_state, row_subscriptions
from .l4 import columns as block_path
from .merge import ORDERS, Item, _filtered, decode_batch, merge

if TYPE_CHECKING:
    import pyarrow.parquet as pq

Callback = Callable[[Any], None]


class Clock(Protocol):
    """Where replay gets the time and waits: the wall clock, or a simulated one in tests."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class Attachment(Protocol):
    """What rides along a run beside the callbacks (a paper account): see :meth:`Replay.attach`."""

    def owns(self, sub: Subscription) -> bool: ...

    def subscribe(self, sub: Subscription, callback: Callback) -> None: ...

    def before(self, item: Item) -> None: ...

    def after(self) -> None: ...


class WallClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def to_ns(value: datetime | date | str | float | None, name: str) -> int | None:
    """A bound as UTC nanoseconds: a datetime, an ISO-8601 string, or epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ArchiveError(f"bad {name} {value!r}: give a datetime, an ISO-8601 time or epoch milliseconds")
    if isinstance(value, (int, float)):
        return int(value * 1_000_000)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text) * 1_000_000
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ArchiveError(f"bad {name} {text!r}: give an ISO-8601 time like 2026-01-31T12:00:00Z or epoch milliseconds") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
    raise ArchiveError(f"bad {name} {value!r}: give a datetime, an ISO-8601 time or epoch milliseconds")


@dataclass
class Summary:
    """What a run delivered: frames per subscription stream, and the first and last receive times."""

    frames: Counter[str] = field(default_factory=Counter)
    first_recv_ns: int | None = None
    last_recv_ns: int | None = None
    gaps: list[Gap] = field(default_factory=list)  # on_gap="mark": the holes of the replayed streams in the window

    @property
    def total(self) -> int:
        return sum(self.frames.values())


class Replay:
    """Replays the archive at ``root``: ``subscribe`` callbacks, then ``run``; or iterate ``messages()``.

    ``start``/``end`` bound the receive time (datetime, ISO-8601 text or epoch ms; ``end`` inclusive).
    ``order="exchange"`` sorts by the exchange time frames carry. ``on_event`` receives the
    recorder's connection events (disconnects, reconnects, stalls...) in order with the frames, so a
    strategy can see gaps. ``on_gap``: ``"mark"`` lists the replayed streams' gaps (``gaps()``, and
    ``run()``'s summary), ``"raise"`` stops with a ``GapError`` where the first begins, ``"ignore"``
    does neither. ``clock`` is where real-time replay waits: tests pass a simulated one.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        start: datetime | str | int | None = None,
        end: datetime | str | int | None = None,
        *,
        order: str = "recv",
        clock: Clock | None = None,
        on_event: Callback | None = None,
        on_gap: str = "mark",
    ) -> None:
        if order not in ORDERS:
            raise ArchiveError(f"bad order {order!r}: use 'recv' (receipt order) or 'exchange' (exchange time)")
        self.root = root
        self.start_ns = to_ns(start, "start")
        self.end_ns = to_ns(end, "end")
        if self.start_ns is not None and self.end_ns is not None and self.end_ns < self.start_ns:
            raise ArchiveError("end is before start: swap them")
        self.order = order
        self.clock = clock or WallClock()
        self.on_event = on_event
        self.on_gap = check_policy(on_gap)
        self._gaps: list[Gap] | None = None
        # stream -> (subscription, (id, callback) pairs): a tuple, replaced on change, so a run
        # iterates it without a copy per frame and a callback may unsubscribe safely
        self._subscriptions: dict[str, tuple[Subscription, tuple[tuple[int, Callback], ...]]] = {}
        self._next_id = 0
        self.parts_opened: list[Part] = []
        self._store = check_root(root)  # checks the root exists now, not at the first message
        self._attached: Attachment | None = None
        self._derived: dict[str, Subscription] = {}  # stream -> l4Book / l2Book subscription served from L4 rows
        self.l4_rows_read = 0  # rows the last seek (``l4_book``, a start) read
        self._desyncs: list[Any] = []

    # --- the SDK's interface --------------------------------------------------------------------

    def subscribe(self, subscription: Mapping[str, Any] | Subscription, callback: Callback) -> int:
        sub = _subscription(subscription)
        if self._attached is not None and self._attached.owns(sub):  # e.g. a paper account's own streams
            self._attached.subscribe(sub, callback)
            self._next_id += 1
            return self._next_id
        coins = [sub.coin] if sub.type in COIN_TYPES and sub.coin else None
        if derivable(self._store, sub):  # from the L4 rows: the book server's frames, or a deeper l2Book
            self._derived[sub.stream] = sub
        elif not any_part(self._store, channels=[sub.type], coins=coins):
            raise ArchiveError(f"the archive has no data for {sub}: it has {self._describe()}")
        self._next_id += 1
        registered = self._subscriptions.get(sub.stream, (sub, ()))[1]
        self._subscriptions[sub.stream] = (sub, (*registered, (self._next_id, callback)))
        return self._next_id

    def unsubscribe(self, subscription: Mapping[str, Any] | Subscription, subscription_id: int) -> bool:
        sub = _subscription(subscription)
        entry = self._subscriptions.get(sub.stream)
        if entry is None:
            return False
        registered = tuple((i, cb) for i, cb in entry[1] if i != subscription_id)
        if registered:
            self._subscriptions[sub.stream] = (sub, registered)
        else:
            del self._subscriptions[sub.stream]
        return len(registered) != len(entry[1])

    def paper(self, address: str | None = None, **options: Any) -> Any:
        """A paper account trading on this replay (the SDK ``Exchange``'s methods): orders placed from
        callbacks fill against the archived book and trades, as ``serve --paper`` fills them.

        The same as ``replay.paper.PaperExchange(replay, address, ...)``; found through the
        ``hlarchive.replay`` entry point, so the reader never imports paper trading."""
        (entry,) = entry_points(group="hlarchive.replay", name="paper")
        return entry.load()(self, address, **options)

    def attach(self, attachment: Attachment) -> None:
        """Let ``attachment`` ride along the run (a paper account attaches itself): it takes the
        subscriptions it ``owns``, sees each item before its callbacks and acts after them."""
        self._attached = attachment  # one at a time: a second paper account replaces the first

    def _describe(self) -> str:
        found = defaultdict(set)
        for part in find_parts(self._store):
            found[part.channel].add(part.coin)
        if not found:
            return "nothing yet"
        return "; ".join(f"{ch} ({', '.join(sorted(coins))})" for ch, coins in sorted(found.items()))

    # --- reading --------------------------------------------------------------------------------

    def _selection(self, derived_rows: bool = True) -> tuple[dict[str, Any], set[str] | None]:
        """Which partitions to read (``find_parts`` filters) and which streams to keep."""
        if not self._subscriptions:
            return {"channels": None, "coins": None}, None
        subs = [sub for sub, _ in self._subscriptions.values() if sub.stream not in self._derived]
        for derived in self._derived.values() if derived_rows else ():  # read the rows they are made from instead
            subs += row_subscriptions(derived.coin or "").values()
        coins = None
        if all((s.type in COIN_TYPES or not s.known) and s.coin for s in subs):
            coins = {s.coin for s in subs if s.coin}
        return {"channels": {s.type for s in subs}, "coins": coins}, {s.stream for s in subs}

    def _merged(self, decode: str = "dicts") -> Iterator[Item]:
        """Day by day (a part never spans two UTC dates), so only one day's parts are ever listed."""
        selection, streams = self._selection()
        bounds = {"start_ns": self.start_ns, "end_ns": self.end_ns}
        dates = list_dates(self._store, **selection, **bounds)
        if self.on_event is not None:
            dates = sorted(set(dates) | set(list_dates(self._store, channels=[EVENTS_CHANNEL], include_special=True, **bounds)))
        if self._derived:
            passthrough = set(self._subscriptions) - set(self._derived)
            if self.order == "recv" and block_path.usable(self._derived, passthrough, _row_streams(self._derived)):
                yield from self._block_path(bounds, decode)
                return
            yield from Deriver(self._derived, passthrough, self._books(), decode).run(self._days(dates, selection, streams, bounds, decode))
            return
        yield from self._days(dates, selection, streams, bounds, decode)

    def _block_path(self, bounds: dict[str, Any], decode: str) -> Iterator[Item]:
        """``l2Book`` derived a block at a time from the rows' columns (no item per row), merged with
        the other streams: a block's frames after every row received at its time, as the row path
        sends them."""
        books = self._books()
        by_coin: dict[str, list[Subscription]] = {}
        for sub in self._derived.values():
            by_coin.setdefault(sub.coin or "", []).append(sub)
        sources: list[Iterator[tuple[tuple[Any, ...], Item]]] = [
            block_path.frames(self._store, books[coin], subs, self.start_ns, self.end_ns, decode) for coin, subs in by_coin.items()
        ]
        if len(self._subscriptions) > len(self._derived) or self.on_event is not None:
            selection, streams = self._selection(derived_rows=False)
            dates = list_dates(self._store, **selection, **bounds)
            if self.on_event is not None:
                dates = sorted(set(dates) | set(list_dates(self._store, channels=[EVENTS_CHANNEL], include_special=True, **bounds)))
            sources.append(((item.recv_ns, 0, item.session, item.seq), item) for item in self._days(dates, selection, streams, bounds, decode))
        if len(sources) == 1:
            yield from (item for _, item in sources[0])
            return
        for _, item in heapq.merge(*sources, key=lambda pair: pair[0]):
            yield item

    def _books(self) -> dict[str, CoinBook]:
        """The L4 books the derived streams read, each seeked to where the replay starts."""
        books = {}
        for sub in self._derived.values():
            coin = sub.coin or ""
            if coin not in books:
                books[coin] = l4_state(self._store, coin, self.start_ns - 1, goes_on=True) if self.start_ns is not None else CoinBook(coin)
                self.l4_rows_read += books[coin].rows
        for state in books.values():
            self._desyncs += state.desyncs
            state.desyncs = self._desyncs  # one list: what the run meets adds to it
        return books

    def _days(self, dates: list[str], selection: dict[str, Any], streams: set[str] | None, bounds: dict[str, Any], decode: str) -> Iterator[Item]:
        for day in dates:
            parts = find_parts(self._store, **selection, **bounds, dates=[day])
            if self.on_event is not None:
                parts += find_parts(self._store, channels=[EVENTS_CHANNEL], include_special=True, dates=[day], **bounds)
            self.parts_opened = parts
            yield from merge(parts, streams=streams, order=self.order, decode=decode, **bounds)

    def gaps(self) -> list[Gap]:
        """The gaps of the subscribed streams (of every stream when none is) that overlap the window,
        read from the recorder's events: each with its stream, start, end, cause and what resumes it."""
        if self._gaps is None:
            self._gaps = archive_gaps(self._store)
        return gaps_in(self._gaps, set(self._subscriptions) or None, self.start_ns, self.end_ns)

    def l4_desyncs(self) -> list[dict[str, Any]]:
        """The L4 books' inconsistencies met so far (by ``run``, ``messages``, ``l4_book``): coin, height,
        oid, what was expected and what was found. The book stays unsafe until the next snapshot."""
        return [d.as_event() for d in self._desyncs]

    def l4_book(self, coin: str, at: datetime | str | float) -> dict[str, Any]:
        """The whole order book of ``coin`` at ``at`` (as ``Replay`` takes times), in the book server's
        ``Snapshot`` shape plus ``safe`` (False when no snapshot vouches for it yet, or after a desync):
        the last snapshot at or before ``at``, then only the blocks after it."""
        at_ns = to_ns(at, "at")
        assert at_ns is not None
        with quiet_gc(off=True):  # a seek makes a dict per order, none in a cycle: the cyclic collector would rescan them all
            shown, self.l4_rows_read, desyncs = l4_snapshot(self._store, coin, at_ns)
            self._desyncs += desyncs
            if not self.l4_rows_read:
                raise ArchiveError(f"the archive has no L4 rows of {coin} at or before {at}: record them with `record --node-data` or `import` a node's files")
            return shown

    def _first_gap_ns(self) -> tuple[int, Gap] | None:
        """With ``on_gap="raise"``: where the replay must stop, and the gap there."""
        if self.on_gap != "raise":
            return None
        found = self.gaps()
        if not found:
            return None
        first = min(found, key=lambda g: g.start_ns)
        return max(first.start_ns, self.start_ns or first.start_ns), first

    def items(self, speed: float | None = None, *, decode: str = "dicts") -> Iterator[Item]:
        """Frames (and, with ``on_event``, events) in order, with their keys; ``speed`` paces them
        against the receive times (1.0 = real time) on ``clock``. ``decode="bytes"``: frames as their
        JSON text (events stay dicts)."""
        stop = self._first_gap_ns()
        if stop is not None:
            if self.start_ns is not None and stop[0] <= self.start_ns:
                raise GapError(stop[1])
            yield from _until(self._paced(speed, decode), stop)
            return
        yield from self._paced(speed, decode)

    def _paced(self, speed: float | None, decode: str) -> Iterator[Item]:
        if speed is None:
            with quiet_gc():
                yield from self._merged(decode)
            return
        pacer = _Pacer(speed, self.clock)
        with quiet_gc():
            for item in self._merged(decode):
                if item.stream is not None:
                    wait = pacer.wait_s(item.recv_ns)
                    if wait > 0:
                        self.clock.sleep(wait)
                yield item

    def messages(self, speed: float | None = None) -> Iterator[dict[str, Any]]:
        """The archived frames in order: those subscribed, or all when nothing is subscribed."""
        if speed is None and self._direct_ok():
            for merged in self._direct("dicts", with_recv=False):
                yield from merged.messages
            return
        for item in self.items(speed):
            if item.stream is not None:
                yield item.message

    def raw_messages(self, speed: float | None = None) -> Iterator[bytes]:
        """The frames of ``messages()`` as JSON bytes, never built as dicts: for tools that parse
        themselves, pipes and servers. Each is exactly ``orjson.dumps`` of the frame received."""
        if speed is None and self._direct_ok():
            for merged in self._direct("bytes", with_recv=False):
                yield from merged.messages
            return
        for item in self.items(speed, decode="bytes"):
            if item.stream is not None:
                yield item.message

    def raw_messages_with_recv_ns(self, speed: float | None = None) -> Iterator[tuple[int, bytes]]:
        """``(recv_ns, frame bytes)`` pairs of ``raw_messages()``: what ``hlarchive replay --with-ts`` prints."""
        if speed is None and self._direct_ok():
            for merged in self._direct("bytes"):
                yield from zip(merged.recv_ns.to_pylist(), merged.messages)
            return
        for item in self.items(speed, decode="bytes"):
            if item.stream is not None:
                yield item.recv_ns, item.message

    # --- the direct path: parts that do not overlap in time need no merge -------------------------

    def _direct_ok(self) -> bool:
        return not self._derived and self.on_event is None and self.order == "recv" and self._attached is None and self._store.local and self.on_gap != "raise"

    def _direct(self, decode: str, *, with_recv: bool = True, with_streams: bool = False) -> Iterator[Merged]:
        """Frames in receive order, a batch at a time (``Merged``: receive times, streams, frames). A
        day whose parts do not overlap in time (one stream) is read part after part; a day whose parts
        overlap (many streams) goes through the batch merge. No item is made per row either way."""
        selection, streams = self._selection()
        value_set = pa.array(sorted(streams), pa.string()) if streams is not None else None
        bounds = {"start_ns": self.start_ns, "end_ns": self.end_ns}
        bounded = self.start_ns is not None or self.end_ns is not None
        with quiet_gc():
            for day in list_dates(self._store, **selection, **bounds):
                parts = find_parts(self._store, **selection, **bounds, dates=[day])
                self.parts_opened = parts
                ordered = _disjoint(parts)
                if ordered is None:
                    yield from merge_batches(parts, streams=streams, decode=decode, with_streams=with_streams, **bounds)
                    continue
                for part, footer in ordered:
                    # a column read costs its decoding: the stream only when the part may hold
                    # others, receive times only when asked for or bounded
                    single = single_stream(footer)
                    only_wanted = (streams is None and not with_streams) or (single is not None and (streams is None or single in streams))
                    skipped = {"stream"} if only_wanted else set()
                    if not (with_recv or bounded):
                        skipped.add("recv_ns")
                    columns = [c for c in _DIRECT_COLUMNS if c not in skipped]
                    for batch in part_batches(part, footer, columns):
                        batch = _filtered(batch, None if only_wanted else value_set, self.start_ns, self.end_ns)
                        if batch.num_rows:
                            names = None
                            if with_streams:
                                names = [single] * batch.num_rows if only_wanted else batch.column("stream").to_pylist()
                            yield Merged(batch.column("recv_ns") if with_recv else None, names, decode_batch(batch, decode))

    def _run_batches(self, summary: Summary) -> Summary:
        """``run()`` without pacing, events or a paper account: callbacks per frame, no item per row."""
        subscriptions = self._subscriptions
        counts: Counter[str] = Counter()
        for merged in self._direct("dicts", with_streams=True):
            assert merged.streams is not None
            for stream, message in zip(merged.streams, merged.messages):
                entry = subscriptions.get(stream)  # a callback may unsubscribe
                if entry is None:
                    continue
                for _id, callback in entry[1]:
                    callback(message)
                counts[stream] += 1
            recv = merged.recv_ns
            if recv is not None and len(recv):
                if summary.first_recv_ns is None:
                    summary.first_recv_ns = recv[0].as_py()
                summary.last_recv_ns = recv[len(recv) - 1].as_py()
        summary.frames.update(counts)
        return summary

    def run(self, speed: float | None = None) -> Summary:
        """Deliver every subscribed frame to its callbacks on this thread; ``speed`` 1.0 is real time."""
        summary = Summary()
        if self.on_gap == "mark":
            summary.gaps = self.gaps()
        if speed is None and self._subscriptions and self._direct_ok():
            return self._run_batches(summary)
        counts: dict[str, int] = {}
        subscriptions, on_event, paper = self._subscriptions, self.on_event, self._attached
        for item in self.items(speed):
            stream = item.stream
            if paper is not None:
                paper.before(item)
            if stream is None:
                if on_event is not None:
                    on_event(item.message)
                continue
            entry = subscriptions.get(stream)
            if entry is None:
                continue
            for _id, callback in entry[1]:
                callback(item.message)
            if paper is not None:
                paper.after()
            counts[stream] = counts.get(stream, 0) + 1
            if summary.first_recv_ns is None:
                summary.first_recv_ns = item.recv_ns
            summary.last_recv_ns = item.recv_ns
        summary.frames.update(counts)
        return summary

    async def stream(self, speed: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """``async for msg in replay.stream()``: the frames of ``messages()``, paced on the event loop."""
        pacer = _Pacer(speed, self.clock)
        for n, item in enumerate(self.items()):
            if item.stream is None or (self._subscriptions and item.stream not in self._subscriptions):
                continue
            wait = pacer.wait_s(item.recv_ns)
            if wait > 0:
                await asyncio.sleep(wait)
            elif n % 256 == 0:
                await asyncio.sleep(0)  # let other tasks run between frames read as fast as possible
            yield item.message

    def batches(
        self, channel: str, *, coin: str | None = None, columns: list[str] | None = None, batch_size: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """The archive's Arrow batches of one channel, part by part in time order, for vectorised work.

        Columns are the typed archive columns (``data`` nested as received, or only some of its
        fields: ``"data.px"``); rows outside
        ``[start, end]`` are dropped. Parts of different coins are not interleaved.
        """
        parts = find_parts(self._store, channels=[channel], coins=[coin] if coin else None, start_ns=self.start_ns, end_ns=self.end_ns)
        parts.sort(key=lambda p: (p.name.first_recv_ns, p.coin))
        for part in parts:
            parquet = open_part(part)
            wanted = None if columns is None else _column_paths(parquet, columns)  # "data.px": one field of data
            for batch in parquet.iter_batches(batch_size=batch_size, columns=_with_recv(wanted)):
                if self.start_ns is not None or self.end_ns is not None:
                    batch = _in_range(batch, self.start_ns, self.end_ns)
                if columns is not None and "recv_ns" not in columns:
                    batch = batch.drop_columns(["recv_ns"])
                if batch.num_rows:
                    yield batch


@contextlib.contextmanager
def quiet_gc(*, off: bool = False) -> Iterator[None]:
    """Replay makes a few Python objects per frame, all acyclic: the cyclic collector rescanning
    them every few hundred allocations costs a third of the time, so it runs rarely meanwhile
    (``off``: not at all, for work that ends, such as a seek)."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    if off:
        gc.disable()
    else:
        gc.set_threshold(max(threshold[0], 100_000), threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if enabled:
            gc.enable()


class _Pacer:
    """Real-time pacing: how long to wait before a frame received at ``recv_ns``."""

    def __init__(self, speed: float | None, clock: Clock) -> None:
        if speed is not None and speed <= 0:
            raise ArchiveError(f"bad speed {speed!r}: give a positive factor (1.0 = real time) or None for as fast as possible")
        self.speed = speed
        self.clock = clock
        self.recv_start: int | None = None
        self.wall_start = 0.0

    def wait_s(self, recv_ns: int) -> float:
        if self.speed is None:
            return 0.0
        if self.recv_start is None:
            self.recv_start, self.wall_start = recv_ns, self.clock.monotonic()
        due = self.wall_start + (recv_ns - self.recv_start) / 1e9 / self.speed
        return due - self.clock.monotonic()


# what the direct path reads: the filters' columns and the frame's (a part's other columns, strings
# repeated on every row, would cost as much to read as the frame's text costs to render)
_DIRECT_COLUMNS = ("recv_ns", "stream", "wire_channel", "data", "raw")


def _until(items: Iterator[Item], stop: tuple[int, Gap]) -> Iterator[Item]:
    """``items`` up to where the gap begins; there, a ``GapError``."""
    at, gap = stop
    for item in items:
        if item.recv_ns >= at:
            raise GapError(gap)
        yield item
    raise GapError(gap)  # the gap is in the window: the stream ended in it


def _disjoint(parts: list[Part]) -> list[tuple[Part, Any]] | None:
    """``(part, its footer)`` in receive order when no two parts overlap in receive time, else None.
    The footers are kept: opening the parts then reads them no second time."""
    ordered = []
    previous = None
    for part in sorted(parts, key=lambda p: (p.name.first_recv_ns, p.path)):
        if previous is not None and part.name.first_recv_ns <= previous:
            return None
        footer = read_footer(part)
        previous = last_recv_ns(footer)
        if previous is None:
            return None
        ordered.append((part, footer))
    return ordered


def _subscription(subscription: Mapping[str, Any] | Subscription) -> Subscription:
    return subscription if isinstance(subscription, Subscription) else parse_subscription(subscription, allow_unknown=True)


def _column_paths(parquet: pq.ParquetFile, columns: list[str]) -> list[str]:
    """The part's column paths of ``columns``: top-level names it has, and ``data.px`` as the path
    Parquet gives a field of ``data`` (``data.list.element.px`` when ``data`` is a list of objects,
    as ``trades`` is). A field the part lacks is left out, as a column is."""
    paths = {parquet.schema.column(i).path for i in range(len(parquet.schema))}
    wanted = []
    for column in columns:
        top, _, rest = column.partition(".")
        if not rest:
            if top in parquet.schema_arrow.names:
                wanted.append(column)
            continue
        for path in (column, f"{top}.list.element.{rest}", f"{top}.list.item.{rest}"):
            if path in paths or any(p.startswith(path + ".") for p in paths):
                wanted.append(path)
                break
    return wanted


def _with_recv(columns: list[str] | None) -> list[str] | None:
    return None if columns is None else (columns if "recv_ns" in columns else [*columns, "recv_ns"])


def _in_range(batch: pa.RecordBatch, start_ns: int | None, end_ns: int | None) -> pa.RecordBatch:
    recv = batch.column("recv_ns")
    mask = None
    if start_ns is not None:
        mask = pc.greater_equal(recv, start_ns)
    if end_ns is not None:
        before = pc.less_equal(recv, end_ns)
        mask = before if mask is None else pc.and_(mask, before)
    return batch.filter(mask)


def _row_streams(derived: dict[str, Subscription]) -> dict[str, str]:
    """The L4 row streams of the derived streams' coins: stream -> coin."""
    return {s.stream: coin for coin in {sub.coin or "" for sub in derived.values()} for s in row_subscriptions(coin).values()}


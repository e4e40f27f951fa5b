"""A paper engine kept in step with a market: what ``simulate`` and ``serve --paper`` trade against.

The market is a *feed*: per coin, its ``l2Book``, ``trades`` and ``activeAssetCtx`` frames in time
order. A coin's feed is opened the first time an action names it and read up to the clock before
any action applies, so an action sees every frame up to its own time and none after. Events the
engine emits are kept in one log that every wallet stream reads from its own cursor.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from schemas.info import PAPER_ACCOUNT_INFO, InfoError, field
from schemas.subscriptions import Subscription

from .engine import Event, PaperEngine
from .feeds import ArchiveFeed, Feed, SyntheticFeed, archive_assets, recorded_users, synthetic_assets
from .report import account_report
from .report_page import report_html
from .signing import NonceBook, SignatureError, recover_signer
from .streams import WalletStream, of_user, wallet_problem

# every user query the SDK's Info makes of an account, answered for a paper account from the engine
PAPER_INFO = ("clearinghouseState", "spotClearinghouseState", "openOrders", "frontendOpenOrders", "orderStatus", "userFills", "userFillsByTime", *PAPER_ACCOUNT_INFO)
FIRST_BOOK_LOOKAHEAD = 10_000  # frames read past a clock before a coin's start, looking for its first book
EVENT_LOG_KEPT = 200_000  # events kept for streams that subscribe late; older ones are dropped


class PaperSession:
    """One engine, its feeds, its nonces and its event log; thread-safe (``serve`` answers off its loop)."""

    def __init__(
        self,
        engine: PaperEngine,
        feed: Feed,
        *,
        accounts: set[str] | None = None,
        market_users: set[str] | None = None,
        mainnet: bool = False,
        latency_ms: int = 0,
    ) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms must be 0 or more")
        self.engine = engine
        # an action reaches the matching engine this long (market time) after it was sent
        self.latency_ns = latency_ms * 1_000_000
        self.feed = feed
        self.accounts = {a.lower() for a in accounts} if accounts else None  # who may trade (None: every signer)
        # addresses whose streams come from the market (simulate's sample users, serve's recorded
        # ones); every other address is a clean paper account from the moment it is first seen
        self.market_users = {a.lower() for a in market_users or ()}
        self.mainnet = mainnet
        self.nonces = NonceBook()
        self.lock = threading.RLock()
        self._heap: list[tuple[int, int, str, dict[str, Any], Iterator[tuple[int, dict[str, Any]]]]] = []
        self._seq = itertools.count()
        self._opened: set[str] = set()
        self.log: list[Event] = []
        self.log_offset = 0  # index of log[0] in the whole history
        self.now_ns = 0
        for user in self.accounts or ():
            engine.account(user)

    # --- the market ----------------------------------------------------------------------------------

    def open_coin(self, coin: str, at_ns: int) -> None:
        """Start feeding ``coin``. A clock before the coin's first book sees that first book (the rule
        ``/info`` answers by too): the market a client was shown is the one its order meets."""
        if coin in self._opened:
            return
        self._opened.add(coin)
        frames = self.feed.frames(coin, at_ns)
        first = next(frames, None)
        if first is None:
            return
        ahead = [first]
        if first[0] > at_ns:  # the clock is before the coin's first frame: its first book is in force
            ahead = []
            for item in itertools.islice(itertools.chain([first], frames), FIRST_BOOK_LOOKAHEAD):
                if item[1].get("channel") == "l2Book":
                    self.engine.on_frame(item[1])
                    break
                ahead.append(item)
        self._push(coin, itertools.chain(ahead, frames))

    def _push(self, coin: str, frames: Iterator[tuple[int, dict[str, Any]]]) -> None:
        for t, frame in frames:
            heapq.heappush(self._heap, (t, next(self._seq), coin, frame, frames))
            return

    def advance(self, now_ns: int) -> None:
        """Feed the engine every frame up to ``now_ns``."""
        with self.lock:
            heap, engine = self._heap, self.engine
            while heap and heap[0][0] <= now_ns:
                _, _, coin, frame, frames = heapq.heappop(heap)
                engine.on_frame(frame)
                self._push(coin, frames)
            self.now_ns = max(self.now_ns, now_ns)
            engine.advance_time(now_ns // 1_000_000)
            self._collect()

    def _collect(self) -> None:
        events = self.engine.drain()
        if events:
            self.log.extend(events)
            if len(self.log) > EVENT_LOG_KEPT:
                cut = len(self.log) - EVENT_LOG_KEPT
                del self.log[:cut]
                self.log_offset += cut

    def forget(self) -> None:
        """Drop the events read so far (a session with one reader: in-process)."""
        with self.lock:
            self.log_offset += len(self.log)
            self.log.clear()

    def cursor(self) -> int:
        with self.lock:
            return self.log_offset + len(self.log)

    def events_of(self, cursor: int, user: str) -> tuple[int, list[tuple[str, Any]]]:
        """``user``'s events after ``cursor`` as (channel, data), and the next cursor."""
        with self.lock:
            start = max(0, cursor - self.log_offset)
            return self.log_offset + len(self.log), of_user(self.log[start:], user.lower())

    def stream_frames(self, stream: WalletStream, cursor: int, now_ns: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """The market moved to ``now_ns``, then the frames ``stream`` sends for its account's events
        after ``cursor``, and the next cursor (under the lock: the state streams read the engine)."""
        with self.lock:
            if now_ns is not None:
                self.advance(max(now_ns, self.now_ns))
            cursor, events = self.events_of(cursor, stream.user)
            return cursor, stream.frames_for(events)

    def wallet_problem(self, sub: Subscription) -> str | None:
        return wallet_problem(self.engine, sub)

    def open_stream(self, sub: Subscription, now_ns: int | None = None) -> tuple[int, WalletStream, list[dict[str, Any]]]:
        """A paper account's wallet stream: the cursor its events start after, the stream, and the
        frames the exchange sends on subscription (one state: taken under the lock)."""
        with self.lock:
            assert sub.user is not None
            self.engine.account(sub.user)
            if sub.type == "activeAssetData" and sub.coin is not None and now_ns is not None:
                self.open_coin(sub.coin, now_ns)  # its mark
                self.advance(max(now_ns, self.now_ns))
            stream = WalletStream(self.engine, sub)
            return self.cursor(), stream, stream.first_frames()

    # --- actions --------------------------------------------------------------------------------------

    def is_account(self, user: str) -> bool:
        with self.lock:
            return self.engine.has_account(user)

    def is_paper(self, user: str) -> bool:
        """Whether ``user``'s streams and state are the paper account's (everyone but the market's users)."""
        return user.lower() not in self.market_users

    def open_account(self, user: str) -> None:
        """The paper account of ``user``, funded, with no history: from its first subscription or query."""
        with self.lock:
            self.engine.account(user.lower())

    def exchange(self, request: dict[str, Any], now_ns: int, wall_ms: int) -> dict[str, Any]:
        """``POST /exchange``: verify, then apply at ``now_ns`` (the market's clock). ``wall_ms`` is the
        time nonces are checked against (the SDK makes them from the wall clock)."""
        try:
            signer = recover_signer(request, mainnet=self.mainnet)
            if self.accounts is not None and signer not in self.accounts:
                return {"status": "err", "response": f"User or API Wallet {signer} does not exist."}
            if request.get("vaultAddress") is not None:
                return {"status": "err", "response": "Vault trading is not supported by the paper exchange: drop vaultAddress."}
            expires = request.get("expiresAfter")
            if isinstance(expires, int) and expires < wall_ms:
                return {"status": "err", "response": f"Action expired: expiresAfter {expires} is before the current time {wall_ms}"}
            with self.lock:
                self.nonces.use(signer, request["nonce"], wall_ms)
        except SignatureError as exc:
            return {"status": "err", "response": str(exc)}
        return self.act(signer, request["action"], now_ns)

    def act(self, user: str, action: dict[str, Any], now_ns: int) -> dict[str, Any]:
        """Apply an already verified action of ``user``, sent at ``now_ns``: it reaches the engine
        ``latency_ms`` later, after every market frame up to then (in-process clients skip signing)."""
        with self.lock:
            now_ns += self.latency_ns
            for coin in self._coins_of(action):
                self.open_coin(coin, now_ns)
            self.advance(max(now_ns, self.now_ns))
            response = self.engine.act(user, action, self.now_ns // 1_000_000)
            self._collect()
            return response

    def _coins_of(self, action: Any) -> list[str]:
        if not isinstance(action, dict):
            return []
        assets: list[Any] = []
        for key in ("orders", "cancels", "modifies"):
            for entry in action.get(key) or []:
                if isinstance(entry, dict):
                    order = entry.get("order") if isinstance(entry.get("order"), dict) else entry
                    assets.append(order.get("a", entry.get("asset")))
        if isinstance(action.get("order"), dict):
            assets.append(action["order"].get("a"))
        assets.append(action.get("asset"))
        coins = []
        for asset in assets:
            spec = self.engine.assets.get(asset) if isinstance(asset, int) else None
            if spec is not None:
                coins.append(spec.coin)
        return coins

    # --- what /info and the streams show ------------------------------------------------------------

    def info(self, request: dict[str, Any], now_ns: int) -> Any:
        """A user-state ``/info`` answer of a paper account (``PAPER_INFO`` types)."""
        engine, user, kind = self.engine, request["user"], request["type"]
        with self.lock:
            if kind == "activeAssetData":
                self.open_coin(field(request, "coin"), max(now_ns, self.now_ns))
            self.advance(max(now_ns, self.now_ns))
            if kind == "clearinghouseState":
                return engine.clearinghouse_state(user)
            if kind == "spotClearinghouseState":
                return engine.spot_clearinghouse_state(user)
            if kind in ("openOrders", "frontendOpenOrders"):
                return engine.open_orders(user, frontend=kind == "frontendOpenOrders")
            if kind == "orderStatus":
                return engine.order_status(user, field(request, "oid", (int, str)))
            if kind == "userFills":
                return engine.user_fills(user)
            if kind == "historicalOrders":
                return engine.historical_orders(user)
            if kind == "userFees":
                return engine.user_fees(user)
            if kind == "userRateLimit":
                return engine.user_rate_limit(user)
            if kind == "portfolio":
                return engine.portfolio(user)
            if kind == "activeAssetData":
                try:
                    return engine.active_asset_data(user, field(request, "coin"))
                except ValueError as exc:
                    raise InfoError(422, str(exc)) from None
            start, end = field(request, "startTime", int), field(request, "endTime", int, optional=True)
            if kind == "userFunding":
                return engine.user_funding(user, start, end)
            if kind == "userNonFundingLedgerUpdates":
                return []  # a paper account has no deposits, transfers or withdrawals
            return engine.user_fills_by_time(user, start, end)

    def l2_book(self, coin: str, now_ns: int) -> dict[str, Any] | None:
        """``/info`` ``l2Book`` as the matching engine holds it at ``now_ns`` (None: it has no book of
        ``coin``): what a client is shown is what its next order meets."""
        if coin not in self.engine.by_coin:
            return None
        with self.lock:
            self.open_coin(coin, now_ns)
            self.advance(max(now_ns, self.now_ns))
            book = self.engine.books.get(coin)
            if book is None:
                return None
            return {"coin": coin, "time": book.time_ms, "levels": book.raw}

    def meta(self, kind: str) -> dict[str, Any]:
        """``meta`` or ``spotMeta`` of the assets the engine trades: for archives that hold no snapshot."""
        assets = sorted(self.engine.assets.values(), key=lambda a: a.asset)
        if kind == "meta":
            universe = [{"name": a.coin, "szDecimals": a.sz_decimals, "maxLeverage": a.max_leverage} for a in assets if a.asset < 10_000]
            return {"universe": universe, "marginTables": []}
        tokens = {"USDC": {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0, "tokenId": "0x" + "00" * 16, "isCanonical": True}}
        universe = []
        for a in assets:
            if not a.spot:
                continue
            tokens.setdefault(a.base, {"name": a.base, "szDecimals": a.sz_decimals, "weiDecimals": 8, "index": a.base_index, "tokenId": "0x" + "00" * 16, "isCanonical": False})
            universe.append({"tokens": [a.base_index, 0], "name": a.coin, "index": a.asset - 10_000, "isCanonical": False})
        return {"tokens": list(tokens.values()), "universe": universe}

    def all_mids(self, now_ns: int) -> dict[str, str]:
        """``allMids`` from the books of every tradable coin at ``now_ns``: for archives without that stream."""
        with self.lock:
            for spec in self.engine.assets.values():
                self.open_coin(spec.coin, now_ns)
            self.advance(max(now_ns, self.now_ns))
            mids = {}
            for spec in sorted(self.engine.assets.values(), key=lambda a: a.asset):
                book = self.engine.books.get(spec.coin)
                if book is not None and book.raw[0] and book.raw[1]:
                    mid = (Decimal(book.raw[0][0]["px"]) + Decimal(book.raw[1][0]["px"])) / 2
                    mids[spec.coin] = format(mid.normalize(), "f")
            return mids

    # --- the result of a run ------------------------------------------------------------------------

    def report(self, user: str) -> dict[str, Any]:
        """The run's figures for ``user`` (see ``report.account_report``)."""
        with self.lock:
            engine = self.engine
            acc = engine.account(user)
            marks = {coin: engine.trigger_mark(coin) for coin in acc.positions}
            report = account_report(acc, marks, end_ms=engine.time_ms or None, value_now=engine.account_value(acc) if acc.equity else None)
            coins = sorted({f["coin"] for f in acc.fills} | {o.spec.coin for o in acc.orders.values()} | set(acc.positions))
            report["queue_model"] = {coin: engine.queue_model(coin) for coin in coins}  # exact (L4) or from L2 sizes
            return report

    def traders(self) -> list[str]:
        """The accounts that traded, in address order."""
        with self.lock:
            return sorted(user for user, acc in self.engine.accounts.items() if acc.fills)

    def report_html(self, users: list[str] | None = None, title: str = "hlarchive paper report") -> str:
        """One self-contained page for ``users`` (default: every account that traded)."""
        with self.lock:
            users = [u.lower() for u in users] if users is not None else self.traders()
            reports = [self.report(u) for u in users]
            curves = {}
            for user in users:
                acc = self.engine.account(user)
                coins = {f["coin"] for f in acc.fills}
                curves[user] = {"equity": list(acc.equity), "held": list(acc.held), "fills": list(acc.fills), "prices": {c: list(self.engine.prices.get(c, [])) for c in coins}}
        return report_html(reports, curves, title)


def synthetic_session(market: Any, *, accounts: set[str] | None = None, sample_users: set[str] | None = None, latency_ms: int = 0) -> PaperSession:
    """``simulate``'s paper exchange: the synthetic market's books and trades, its funding each hour.
    ``sample_users`` get the market's synthetic user traffic; every other address is a paper account."""
    engine = PaperEngine(synthetic_assets(market), balance=market.balance, seed=market.seed)
    return PaperSession(engine, SyntheticFeed(market), accounts=accounts, market_users=sample_users, latency_ms=latency_ms)


def archive_session(source: Any, *, balance: float = 100_000.0, accounts: set[str] | None = None, latency_ms: int = 0) -> PaperSession:
    """``serve --paper``'s paper exchange over an archive source (``ArchiveSource``): the users the
    archive recorded keep their recorded streams; every other address is a paper account."""
    engine = PaperEngine(archive_assets(source.root), balance=balance)
    feed = ArchiveFeed(source.root, source.start_ns, source.end_ns)
    return PaperSession(engine, feed, accounts=accounts, market_users=recorded_users(source.root), latency_ms=latency_ms)


__all__ = ["PAPER_INFO", "PaperSession", "archive_session", "synthetic_session"]

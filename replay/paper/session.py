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

from schemas.info import field

from .engine import Event, PaperEngine
from .feeds import ArchiveFeed, Feed, SyntheticFeed, archive_assets, recorded_users, synthetic_assets
from .report import account_report
from .report_page import report_html
from .signing import NonceBook, SignatureError, recover_signer

PAPER_STREAMS = ("userFills", "orderUpdates", "userEvents", "userFundings", "webData2")
PAPER_INFO = ("clearinghouseState", "spotClearinghouseState", "openOrders", "frontendOpenOrders", "orderStatus", "userFills", "userFillsByTime")
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
        if coin in self._opened:
            return
        self._opened.add(coin)
        self._push(coin, self.feed.frames(coin, at_ns))

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

    def events_since(self, cursor: int, user: str, channel: str | None) -> tuple[int, list[Any]]:
        """The events of ``user`` on ``channel`` (None: on any) after ``cursor``, and the next cursor."""
        user = user.lower()
        with self.lock:
            start = max(0, cursor - self.log_offset)
            out = [data for u, ch, data in self.log[start:] if u == user and (channel is None or ch == channel)]
            return self.log_offset + len(self.log), out

    def forget(self) -> None:
        """Drop the events read so far (a session with one reader: in-process)."""
        with self.lock:
            self.log_offset += len(self.log)
            self.log.clear()

    def cursor(self) -> int:
        with self.lock:
            return self.log_offset + len(self.log)

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
        self.advance(max(now_ns, self.now_ns))
        engine, user, kind = self.engine, request["user"], request["type"]
        with self.lock:
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
            start, end = field(request, "startTime", int), field(request, "endTime", int, optional=True)
            return engine.user_fills_by_time(user, start, end)

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

    def snapshot_frame(self, channel: str, user: str) -> dict[str, Any] | None:
        """The first frame of a wallet stream: ``userFills`` sends its snapshot; ``webData2`` the state."""
        with self.lock:
            if channel == "userFills":
                fills = list(self.engine.account(user).fills)
                return {"channel": "userFills", "data": {"isSnapshot": True, "user": user, "fills": fills}}
            if channel == "webData2":
                return self.web_data(user)
            return None

    def web_data(self, user: str) -> dict[str, Any]:
        engine = self.engine
        return {
            "channel": "webData2",
            "data": {
                "clearinghouseState": engine.clearinghouse_state(user),
                "leadingVaults": [],
                "totalVaultEquity": "0.0",
                "openOrders": engine.open_orders(user, frontend=True),
                "agentAddress": None,
                "agentValidUntil": None,
                "cumLedger": f"{engine.balance:.1f}",
                "serverTime": engine.time_ms,
                "isVault": False,
                "user": user,
                "twapStates": [],
                "spotState": engine.spot_clearinghouse_state(user),
            },
        }


def event_frame(channel: str, user: str, data: Any) -> dict[str, Any]:
    """One engine event as the wallet stream's frame."""
    if channel == "userFills":
        return {"channel": "userFills", "data": {"user": user, "fills": [data]}}
    if channel == "orderUpdates":
        return {"channel": "orderUpdates", "data": [data]}
    if channel == "userFundings":
        return {"channel": "userFundings", "data": {"user": user, "fundings": [data]}}
    if channel == "userEvents":
        return {"channel": "user", "data": data}  # the exchange names userEvents frames "user"
    return {"channel": channel, "data": data}


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


__all__ = ["PAPER_INFO", "PAPER_STREAMS", "PaperSession", "archive_session", "event_frame", "synthetic_session"]

"""Paper trading in-process: the SDK's ``Exchange`` methods against a ``Replay``, without sockets.

``replay.paper(...)`` returns a :class:`PaperExchange`. Its methods take the SDK's arguments and
return the exchange's response bodies; they build the same wire actions the SDK posts and hand them
to the same engine as ``POST /exchange``, so a backtest in-process and a bot over the wire get the
same fills for the same archive and actions. Call them from replay callbacks: an action happens at
the receive time of the frame being delivered, after the engine has seen that frame.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.layout import ArchiveError
from schemas.subscriptions import Subscription, parse_subscription

from ..l4 import has_l4
from .assets import AssetSpec
from .engine import PaperEngine
from .feeds import archive_assets
from .session import PaperSession
from .streams import WALLET_STREAMS, WalletStream

if TYPE_CHECKING:
    from ..replay import Item, Replay

DEFAULT_ADDRESS = "0x00000000000000000000000000000000000a9e12"  # any address will do: accounts are paper
DEFAULT_SLIPPAGE = 0.05  # the SDK's market_open default
FEED_CHANNELS = ("l2Book", "trades", "activeAssetCtx")

Callback = Callable[[Any], None]


class _PushedFeed:
    """In-process, the replay itself pushes the market's frames. Only an action before a coin's first
    book is seen reads that book ahead (``PaperSession.open_coin``'s rule, as on ``serve --paper``)."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.engine: PaperEngine | None = None

    def frames(self, coin: str, from_ns: int) -> Iterator[tuple[int, dict[str, Any]]]:
        if self.engine is None or coin in self.engine.books:
            return iter(())
        from ..replay import Replay

        replay = Replay(self.root, start=from_ns / 1e6)
        try:
            replay.subscribe({"type": "l2Book", "coin": coin}, _ignore)
        except ArchiveError:
            return iter(())
        first = next((item for item in replay.items() if item.stream is not None), None)
        return iter([(first.recv_ns, first.message)] if first is not None else [])


class PaperExchange:
    """A paper account of ``address`` trading ``coins`` on a replay, with the SDK ``Exchange``'s methods."""

    def __init__(
        self,
        replay: Replay,
        address: str | None = DEFAULT_ADDRESS,
        *,
        coins: list[str] | None = None,
        balance: float = 100_000.0,
        assets: dict[int, AssetSpec] | None = None,
        latency_ms: int = 0,
        on_response: Callback | None = None,
    ) -> None:
        self.replay = replay
        self.address = (address or DEFAULT_ADDRESS).lower()
        self.assets = assets if assets is not None else archive_assets(replay.root)
        feed = _PushedFeed(replay.root)
        self.session = PaperSession(PaperEngine(self.assets, balance=balance), feed)
        feed.engine = self.session.engine
        if latency_ms < 0:
            raise ArchiveError("latency_ms must be 0 or more")
        # with a latency, an action waits here until the replay reaches its arrival; its response
        # then goes to on_response (and to self.responses), and its events to the wallet streams
        self.latency_ns = latency_ms * 1_000_000
        self.on_response = on_response
        self.responses: list[Any] = []
        self._in_flight: list[tuple[int, int, dict[str, Any]]] = []
        self._sent = itertools.count()  # ties of arrival keep the order of sending
        self.engine = self.session.engine
        self.engine.account(self.address)
        self.coin_asset = {spec.coin: asset for asset, spec in self.assets.items()}
        if coins is None:
            coins = sorted({s.coin for s, _ in replay._subscriptions.values() if s.coin and s.type in FEED_CHANNELS + ("bbo",)})
        if not coins:
            raise ArchiveError("say which coins the paper account trades: replay.paper(coins=[...]) (or subscribe to their books first)")
        unknown = [c for c in coins if c not in self.coin_asset]
        if unknown:
            raise ArchiveError(f"no asset for {', '.join(unknown)} in the archive's meta: the paper exchange cannot trade it")
        self.coins = set(coins)
        for coin in coins:
            for kind in FEED_CHANNELS:
                try:
                    replay.subscribe({"type": kind, "coin": coin}, _ignore)
                except ArchiveError:
                    if kind == "l2Book":
                        raise ArchiveError(f"the archive has no l2Book for {coin}: paper orders need the book to match against") from None
        # with a coin's order-level book in the archive, queues are exact (``engine.queue_model``)
        self._l4_streams: dict[str, str] = {}
        for coin in coins:
            if has_l4(replay._store, coin):
                sub = parse_subscription({"type": "l4Book", "coin": coin})
                replay.subscribe(sub, _ignore)
                self._l4_streams[sub.stream] = coin
        self._streams: list[tuple[WalletStream, Callback]] = []
        self._cursor = 0
        self._pending_snapshots: list[tuple[WalletStream, Callback]] = []
        self.now_ns = replay.start_ns or 0
        replay.attach(self)

    # --- the replay's side -------------------------------------------------------------------------

    def subscribe(self, sub: Subscription, callback: Callback) -> None:
        """A wallet stream of the paper account: its first frames when the run starts, then its events."""
        problem = self.session.wallet_problem(sub)
        if problem is not None:
            raise ArchiveError(problem)
        stream = WalletStream(self.engine, sub)
        self._streams.append((stream, callback))
        self._pending_snapshots.append((stream, callback))

    def owns(self, sub: Subscription) -> bool:
        return sub.type in WALLET_STREAMS and (sub.user or "").lower() == self.address

    def before(self, item: Item) -> None:
        """Called by ``Replay.run`` for each item before its callbacks: the engine sees the frame first."""
        if self._pending_snapshots:
            for stream, callback in self._pending_snapshots:
                for frame in stream.first_frames():
                    callback(frame)
            self._pending_snapshots.clear()
        while self._in_flight and self._in_flight[0][0] < item.recv_ns:  # arrived before this frame
            due, _, action = heapq.heappop(self._in_flight)
            self._deliver(self.session.act(self.address, action, due))
        self.now_ns = item.recv_ns
        message = item.message
        if item.stream is not None and item.stream in self._l4_streams:
            self.engine.on_frame(message, self._l4_streams[item.stream])
            if self.engine.events:
                self.session._collect()
        elif item.stream is not None and message.get("channel") in FEED_CHANNELS and _coin(message) in self.coins:
            self.engine.on_frame(message)
            if self.engine.events:
                self.session._collect()

    def after(self) -> None:
        """Called after each item's callbacks: the account's new events go to its stream callbacks."""
        if not self._streams:
            if self.session.log:  # nobody listens: keep no history for them
                self.session.forget()
            return
        _, events = self.session.events_of(self._cursor, self.address)
        if events:
            for stream, callback in self._streams:
                for frame in stream.frames_for(events):
                    callback(frame)
        self.session.forget()  # in-process, this is the only reader
        self._cursor = self.session.cursor()

    # --- the result ------------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The run's figures: PnL realised and unrealised by coin, fees, funding, volume, fills, the
        largest drawdown, the time in the market, equity at the start and now."""
        return self.session.report(self.address)

    def report_html(self, path: str | Path) -> Path:
        """Write the run's page (figures, equity curve, positions, fills on the price): one
        self-contained HTML file, nothing fetched when it is opened."""
        target = Path(path)
        target.write_text(self.session.report_html([self.address], title=f"hlarchive paper report: {self.address}"), encoding="utf-8")
        return target

    # --- the SDK's Exchange methods -------------------------------------------------------------------

    def _post(self, action: dict[str, Any]) -> Any:
        if not self.latency_ns:
            return self.session.act(self.address, action, self.now_ns)
        due = self.now_ns + self.latency_ns
        heapq.heappush(self._in_flight, (due, next(self._sent), action))
        return {"status": "ok", "response": {"type": "pending", "data": {"arrivesAt": due // 1_000_000}}}

    def _deliver(self, response: Any) -> None:
        self.responses.append(response)
        if self.session.engine.events:
            self.session._collect()
        if self.on_response is not None:
            self.on_response(response)

    def _asset(self, name: str) -> int:
        asset = self.coin_asset.get(name)
        if asset is None:
            raise ArchiveError(f"unknown coin {name!r}: the paper exchange trades {', '.join(sorted(self.coin_asset))}")
        return asset

    def _wire(self, name: str, is_buy: bool, sz: float, limit_px: float, order_type: Mapping[str, Any], reduce_only: bool, cloid: Any) -> dict[str, Any]:
        if "limit" in order_type:
            kind: dict[str, Any] = {"limit": dict(order_type["limit"])}
        elif "trigger" in order_type:  # as the SDK's order_type_to_wire writes it
            trigger = order_type["trigger"]
            kind = {"trigger": {"isMarket": trigger["isMarket"], "triggerPx": float_to_wire(trigger["triggerPx"]), "tpsl": trigger["tpsl"]}}
        else:
            raise ArchiveError("the paper exchange takes limit orders ({'limit': {'tif': 'Gtc' | 'Alo' | 'Ioc'}}) and trigger orders ({'trigger': {...}})")
        wire: dict[str, Any] = {
            "a": self._asset(name),
            "b": is_buy,
            "p": float_to_wire(limit_px),
            "s": float_to_wire(sz),
            "r": reduce_only,
            "t": kind,
        }
        if cloid is not None:
            wire["c"] = cloid.to_raw() if hasattr(cloid, "to_raw") else str(cloid)
        return wire

    def order(self, name: str, is_buy: bool, sz: float, limit_px: float, order_type: Mapping[str, Any], reduce_only: bool = False, cloid: Any = None, builder: Any = None) -> Any:
        return self.bulk_orders([{"coin": name, "is_buy": is_buy, "sz": sz, "limit_px": limit_px, "order_type": order_type, "reduce_only": reduce_only, "cloid": cloid}])

    def bulk_orders(self, order_requests: list[Mapping[str, Any]], builder: Any = None, grouping: str = "na") -> Any:
        wires = [
            self._wire(o["coin"], o["is_buy"], o["sz"], o["limit_px"], o["order_type"], o.get("reduce_only", False), o.get("cloid"))
            for o in order_requests
        ]
        return self._post({"type": "order", "orders": wires, "grouping": grouping})

    def market_open(self, name: str, is_buy: bool, sz: float, px: float | None = None, slippage: float = DEFAULT_SLIPPAGE, cloid: Any = None, builder: Any = None) -> Any:
        return self.order(name, is_buy, sz, self._slippage_price(name, is_buy, slippage, px), {"limit": {"tif": "Ioc"}}, cloid=cloid)

    def market_close(self, coin: str, sz: float | None = None, px: float | None = None, slippage: float = DEFAULT_SLIPPAGE, cloid: Any = None, builder: Any = None) -> Any:
        pos = self.engine.account(self.address).positions.get(coin)
        if pos is None or not pos.szi:
            return None  # as the SDK: nothing to close
        is_buy = pos.szi < 0
        return self.order(coin, is_buy, sz or abs(pos.szi), self._slippage_price(coin, is_buy, slippage, px), {"limit": {"tif": "Ioc"}}, True, cloid)

    def _slippage_price(self, name: str, is_buy: bool, slippage: float, px: float | None) -> float:
        """As the SDK: the mid (or ``px``) moved by ``slippage``, 5 significant figures."""
        if not px:
            mid = self.engine.mark(name)
            if mid is None:
                raise ArchiveError(f"no book for {name} yet: place market orders from a callback after its first l2Book frame")
            px = mid
        spec = self.assets[self._asset(name)]
        px *= (1 + slippage) if is_buy else (1 - slippage)
        return round(float(f"{px:.5g}"), spec.max_px_decimals)

    def cancel(self, name: str, oid: int) -> Any:
        return self._post({"type": "cancel", "cancels": [{"a": self._asset(name), "o": oid}]})

    def cancel_by_cloid(self, name: str, cloid: Any) -> Any:
        raw = cloid.to_raw() if hasattr(cloid, "to_raw") else str(cloid)
        return self._post({"type": "cancelByCloid", "cancels": [{"asset": self._asset(name), "cloid": raw}]})

    def bulk_cancel(self, cancel_requests: list[Mapping[str, Any]]) -> Any:
        return self._post({"type": "cancel", "cancels": [{"a": self._asset(c["coin"]), "o": c["oid"]} for c in cancel_requests]})

    def modify_order(self, oid: Any, name: str, is_buy: bool, sz: float, limit_px: float, order_type: Mapping[str, Any], reduce_only: bool = False, cloid: Any = None) -> Any:
        return self.bulk_modify_orders_new([{"oid": oid, "order": {"coin": name, "is_buy": is_buy, "sz": sz, "limit_px": limit_px, "order_type": order_type, "reduce_only": reduce_only, "cloid": cloid}}])

    def bulk_modify_orders_new(self, modify_requests: list[Mapping[str, Any]]) -> Any:
        modifies = []
        for m in modify_requests:
            o = m["order"]
            oid = m["oid"].to_raw() if hasattr(m["oid"], "to_raw") else m["oid"]
            modifies.append({"oid": oid, "order": self._wire(o["coin"], o["is_buy"], o["sz"], o["limit_px"], o["order_type"], o.get("reduce_only", False), o.get("cloid"))})
        return self._post({"type": "batchModify", "modifies": modifies})

    def update_leverage(self, leverage: int, name: str, is_cross: bool = True) -> Any:
        return self._post({"type": "updateLeverage", "asset": self._asset(name), "isCross": is_cross, "leverage": leverage})

    def update_isolated_margin(self, amount: float, name: str) -> Any:
        """As the SDK: ``amount`` USDC added to (or, negative, taken from) an isolated position."""
        return self._post({"type": "updateIsolatedMargin", "asset": self._asset(name), "isBuy": True, "ntli": round(amount * 1_000_000)})

    def schedule_cancel(self, time: int | None) -> Any:
        action: dict[str, Any] = {"type": "scheduleCancel"}
        if time is not None:
            action["time"] = time
        return self._post(action)

    # --- the account, as /info shows it -------------------------------------------------------------

    def user_state(self) -> dict[str, Any]:
        return self.engine.clearinghouse_state(self.address)

    def spot_user_state(self) -> dict[str, Any]:
        return self.engine.spot_clearinghouse_state(self.address)

    def open_orders(self) -> list[dict[str, Any]]:
        return self.engine.open_orders(self.address)

    def user_fills(self) -> list[dict[str, Any]]:
        return self.engine.user_fills(self.address)

    def query_order_by_oid(self, oid: int) -> dict[str, Any]:
        return self.engine.order_status(self.address, oid)

    @property
    def fills(self) -> list[dict[str, Any]]:
        """Oldest first."""
        return list(self.engine.account(self.address).fills)

    def equity(self) -> float:
        """Account value: USDC plus unrealised PnL at the mid, plus spot tokens at the mid."""
        acc = self.engine.account(self.address)
        value = float(self.user_state()["marginSummary"]["accountValue"])
        for token, amount in acc.tokens.items():
            coin = next((s.coin for s in self.assets.values() if s.spot and s.base == token), None)
            mark = self.engine.mark(coin) if coin else None
            value += amount * (mark or 0.0)
        return value


def float_to_wire(x: float) -> str:
    """As the SDK's ``float_to_wire``: 8 decimals at most, trailing zeros trimmed."""
    rounded = f"{x:.8f}"
    if abs(float(rounded) - x) >= 1e-12:
        raise ValueError(f"float_to_wire causes rounding: {x}")
    text = rounded.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse(subscription: Mapping[str, Any] | Subscription) -> Subscription:
    return subscription if isinstance(subscription, Subscription) else parse_subscription(dict(subscription))


def _coin(frame: dict[str, Any]) -> str | None:
    data = frame.get("data")
    if isinstance(data, list):
        return data[0].get("coin") if data else None
    return data.get("coin") if isinstance(data, dict) else None


def _ignore(message: Any) -> None:
    pass


__all__ = ["DEFAULT_ADDRESS", "PaperExchange", "float_to_wire"]

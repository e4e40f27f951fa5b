"""A paper account's wallet streams: what the exchange sends when one subscribes, then the frames
each of the account's events makes. One code path for ``simulate``, ``serve --paper`` and a
``PaperExchange`` riding along a ``Replay``, whatever the market's archive recorded. Pure.

- ``userFills``, ``userFundings``, ``userNonFundingLedgerUpdates`` (and the TWAP streams, which a
  paper account never fills) open with an ``isSnapshot`` frame of the account's history;
- ``webData2`` and ``activeAssetData`` open with the account's state and send it again after every
  change to it (a fill, an order, a leverage or margin update, funding);
- ``userEvents`` (on channel ``user``), ``orderUpdates`` and ``notification`` carry the events
  themselves, in the exchange's shapes.
"""

from __future__ import annotations

from typing import Any

from schemas.subscriptions import Subscription

from .engine import PaperEngine
from .engine.state import Event

# the user streams a paper account answers (every other user stream is refused as the exchange refuses it)
WALLET_STREAMS = (
    "userEvents",
    "userFills",
    "orderUpdates",
    "userFundings",
    "userNonFundingLedgerUpdates",
    "webData2",
    "activeAssetData",
    "notification",
    "userTwapSliceFills",
    "userTwapHistory",
)
# the streams whose first frame is an isSnapshot of a list, and that list's key
SNAPSHOT_KEYS = {
    "userFills": "fills",
    "userFundings": "fundings",
    "userNonFundingLedgerUpdates": "nonFundingLedgerUpdates",
    "userTwapSliceFills": "twapSliceFills",
    "userTwapHistory": "history",
}
STATE_STREAMS = ("webData2", "activeAssetData")  # the account's state, sent again when it changes


def wallet_problem(engine: PaperEngine, sub: Subscription) -> str | None:
    """Why a paper account's subscription cannot be served (the error frame's sentence), else None."""
    if sub.type not in WALLET_STREAMS:
        return f"Invalid subscription {sub}: a paper account streams {', '.join(WALLET_STREAMS)}"
    if sub.type == "activeAssetData":
        spec = engine.by_coin.get(sub.coin or "")
        if spec is None or spec.spot:
            perps = ", ".join(sorted(s.coin for s in engine.assets.values() if not s.spot)[:20])
            return f"Invalid subscription {sub}: activeAssetData is for a perp the paper exchange trades ({perps}, ...)"
    return None


class WalletStream:
    """One wallet subscription of a paper account."""

    def __init__(self, engine: PaperEngine, sub: Subscription) -> None:
        assert sub.user is not None
        self.engine = engine
        self.sub = sub
        self.user = sub.user.lower()
        self._last_state: dict[str, Any] | None = None

    def first_frames(self) -> list[dict[str, Any]]:
        """What the exchange sends on subscription: a snapshot, the state, or nothing."""
        kind, sub = self.sub.type, self.sub
        if kind in STATE_STREAMS:
            frame = self._state()
            self._last_state = frame
            return [frame]
        key = SNAPSHOT_KEYS.get(kind)
        if key is None:
            return []
        acc = self.engine.account(self.user)
        history: list[Any] = []
        if kind == "userFills":
            history = list(acc.fills)
        elif kind == "userFundings":
            history = list(acc.fundings)
        return [{"channel": kind, "data": {"isSnapshot": True, "user": sub.user, key: history}}]

    def frames_for(self, events: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        """The frames the account's new events make on this stream (``events``: (channel, data))."""
        kind = self.sub.type
        if kind == "webData2":
            return [self._state()] if events else []
        if kind == "activeAssetData":
            out = []
            for channel, data in events:  # a leverage or margin change: the state as it was then
                if channel == "activeAssetData" and data["coin"] == self.sub.coin:
                    out.append({"channel": "activeAssetData", "data": {**data, "user": self.sub.user}})
            if events:
                frame = self._state()  # and as it is now, after fills and orders, if that differs
                if frame != (out[-1] if out else self._last_state):
                    out.append(frame)
            if out:
                self._last_state = out[-1]
            return out
        return [event_frame(kind, self.sub.user or self.user, data) for channel, data in events if channel == kind]

    def _state(self) -> dict[str, Any]:
        if self.sub.type == "webData2":
            return {"channel": "webData2", "data": web_data(self.engine, self.sub.user or self.user)}
        data = self.engine.active_asset_data(self.user, self.sub.coin or "")
        data["user"] = self.sub.user  # as the subscriber wrote it
        return {"channel": "activeAssetData", "data": data}


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


def web_data(engine: PaperEngine, user: str) -> dict[str, Any]:
    """``webData2``'s data: the account's whole state."""
    return {
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
    }


def of_user(events: list[Event], user: str) -> list[tuple[str, Any]]:
    """The (channel, data) of ``user``'s events."""
    return [(channel, data) for u, channel, data in events if u == user]


__all__ = ["SNAPSHOT_KEYS", "WALLET_STREAMS", "WalletStream", "event_frame", "of_user", "wallet_problem", "web_data"]

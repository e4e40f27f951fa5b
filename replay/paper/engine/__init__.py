"""The paper exchange: paper orders matched against recorded (or synthetic) market data, and the
accounts they move. Pure: market frames and actions go in, responses and stream events come out.

Everything is a function of the frames and actions in order, so a run is repeatable to the byte.
One job a module, each a mixin over the shared state (``state``), joined here:

- ``market``: books, trades and contexts in time order; the clock (funding, scheduled cancels);
- ``queues``: where resting orders stand (L2 sizes, or exactly behind the L4 book's orders);
- ``matching``: fills, order statuses, cancels;
- ``margin``: account value, margin checks, liquidation;
- ``orders``, ``triggers``, ``account_actions``: the actions, in the exchange's words;
- ``views``: what ``/info`` and the wallet streams show.
"""

from __future__ import annotations

from typing import Any

from .account_actions import AccountActions
from .margin import MarginMixin
from .market import MarketMixin
from .matching import MatchingMixin
from .orders import OrderActions
from .queues import QueueMixin
from .state import ActionError, Event
from .triggers import TriggerMixin
from .views import AccountViews

# action type -> the method that takes it, as (self, account, action)
ACTIONS = {
    "order": "_order_action",
    "cancel": "_cancel_action",
    "cancelByCloid": "_cancel_by_cloid_action",
    "modify": "_modify_action",
    "batchModify": "_batch_modify_action",
    "updateLeverage": "_update_leverage",
    "updateIsolatedMargin": "_update_isolated_margin",
    "scheduleCancel": "_schedule_cancel",
}
ACTION_TYPES = tuple(ACTIONS)


class PaperEngine(MarketMixin, QueueMixin, MatchingMixin, MarginMixin, OrderActions, TriggerMixin, AccountActions, AccountViews):
    """One paper exchange: books per coin, accounts per user, and the events their streams carry."""

    def act(self, user: str, action: dict[str, Any], time_ms: int | None = None) -> dict[str, Any]:
        """Apply a verified action of ``user``: the exchange's response body."""
        if time_ms is not None:
            self.advance_time(time_ms)
        acc = self.account(user)
        acc.actions += 1
        kind = action.get("type") if isinstance(action, dict) else None
        name = ACTIONS.get(kind) if isinstance(kind, str) else None
        if name is None:
            return {"status": "err", "response": f"Unsupported action for the paper exchange: {kind!r} (it takes {', '.join(ACTIONS)})"}
        try:
            return getattr(self, name)(acc, action)
        except ActionError as exc:
            return {"status": "err", "response": str(exc)}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return {"status": "err", "response": f"Failed to deserialize the action: {type(exc).__name__} {exc}"}


__all__ = ["ACTION_TYPES", "ActionError", "Event", "PaperEngine"]

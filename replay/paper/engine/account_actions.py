"""The account actions: ``updateLeverage``, ``updateIsolatedMargin`` and ``scheduleCancel``. Pure."""

from __future__ import annotations

from typing import Any

from .accounts import Account
from .state import EPS, ActionError, EngineState

SCHEDULE_CANCEL_MIN_DELAY_MS = 5_000


class AccountActions(EngineState):
    """Leverage, isolated margin and the dead man's switch."""

    def _update_leverage(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        spec = self.assets.get(action["asset"])
        if spec is None or spec.spot:
            raise ActionError(f"Unknown perp asset {action['asset']!r}")
        leverage, is_cross = action["leverage"], bool(action["isCross"])
        if not isinstance(leverage, int) or not 1 <= leverage <= spec.max_leverage:
            raise ActionError(f"Invalid leverage value: {spec.coin} takes 1 to {spec.max_leverage}")
        pos = acc.position(spec)
        if pos.szi and pos.is_cross != is_cross:
            raise ActionError("Cannot switch leverage type with open position.")
        mark = self.mark(spec.coin) or pos.entry_px
        if pos.szi and abs(pos.szi) * mark / leverage > self._available_margin(acc) + self._account_value(acc)[1] + EPS:
            raise ActionError("Insufficient margin to update leverage.")
        pos.leverage, pos.is_cross = leverage, is_cross
        acc.order_margin = sum(o.px * o.sz / acc.position(o.spec).leverage for o in acc.orders.values() if not o.spec.spot and not o.reduce_only)
        if not is_cross and pos.szi:
            pos.isolated_margin = abs(pos.szi) * pos.entry_px / leverage
        self.events.append((acc.user, "activeAssetData", self.active_asset_data(acc.user, spec.coin)))  # the exchange sends it after each change
        return {"status": "ok", "response": {"type": "default"}}

    def _update_isolated_margin(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        """Add margin to an isolated position (``ntli`` > 0, in millionths of USDC, as the SDK sends
        it) or take some out (< 0), as far as the position's initial margin allows."""
        spec = self.assets.get(action["asset"])
        if spec is None or spec.spot:
            raise ActionError(f"Unknown perp asset {action['asset']!r}")
        ntli = action["ntli"]
        if not isinstance(ntli, int) or isinstance(ntli, bool):
            raise ActionError("Invalid isolated margin amount: ntli is an integer of millionths of USDC")
        pos = acc.position(spec)
        if not pos.szi:
            raise ActionError("Cannot update margin for empty position")
        if pos.is_cross:
            raise ActionError("Cannot update isolated margin for cross position")
        amount = ntli / 1_000_000
        if amount > 0 and amount > self._available_margin(acc) + EPS:
            raise ActionError("Insufficient margin to update isolated margin")
        mark = self.mark(spec.coin) or pos.entry_px
        initial = abs(pos.szi) * mark / pos.leverage
        if amount < 0 and pos.isolated_margin + pos.szi * (mark - pos.entry_px) + amount < initial - EPS:
            raise ActionError("Insufficient isolated margin: a position keeps at least its initial margin")
        pos.isolated_margin += amount
        self.events.append((acc.user, "activeAssetData", self.active_asset_data(acc.user, spec.coin)))  # the exchange sends it after each change
        return {"status": "ok", "response": {"type": "default"}}

    def _schedule_cancel(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        at = action.get("time")
        if at is None:
            acc.scheduled_cancel_ms = None
        elif not isinstance(at, int) or at < self.time_ms + SCHEDULE_CANCEL_MIN_DELAY_MS:
            raise ActionError("Scheduled cancel time too early, must be at least 5 seconds after current time.")
        else:
            acc.scheduled_cancel_ms = at
        return {"status": "ok", "response": {"type": "default"}}


__all__ = ["AccountActions", "SCHEDULE_CANCEL_MIN_DELAY_MS"]

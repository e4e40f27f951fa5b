"""The order-level (L4) book read from an archive: its state at any instant (``state``), the frames
derived from it as a replay moves (``derive``, row by row; ``columns``, a block at a time from the
rows' columns). Reads through the reading core; never imports serving, paper trading or the CLI."""

from .derive import Deriver
from .state import (
    DIFFS,
    SNAPSHOTS,
    STATUSES,
    CoinBook,
    book_snapshot,
    derivable,
    has_l4,
    l4_snapshot,
    l4_state,
    row_subscriptions,
)

__all__ = ["DIFFS", "SNAPSHOTS", "STATUSES", "CoinBook", "Deriver", "book_snapshot", "derivable", "has_l4", "l4_snapshot", "l4_state", "row_subscriptions"]

"""The pure core of hlarchive: subscriptions, the ws protocol, channel shapes, rows and the archive layout.

No I/O lives here: the recorder and replay packages are thin shells around it.
"""

from typing import Any

from .layout import (
    ALL,
    EVENTS_CHANNEL,
    FORMAT_VERSION,
    JOURNAL_DIR,
    META_CHANNEL,
    SCHEMA_VERSION,
    ArchiveError,
    ArchiveFormatError,
    PartName,
    escape,
    parse_part_name,
    parse_partition,
    partition_dir,
    unescape,
)
from .protocol import FrameError, ProtocolError, parse_client_frame, parse_server_frame
from .subscriptions import (
    CANDLE_INTERVALS,
    SUBSCRIPTION_TYPES,
    Subscription,
    SubscriptionError,
    frame_identifier,
    frame_subscription,
    parse_subscription,
)

__version__ = "0.1.0"

# Arrow's modules cost a process ~100 MB; the recorder's receiving process needs none of them, so
# the names that need Arrow are imported on first use.
_LAZY = {
    **dict.fromkeys(("CHANNELS", "ChannelSpec", "channel_spec"), "channels"),
    **dict.fromkeys(("Row", "batch_messages", "decode_raw", "encode_raw", "from_row", "rows_to_batch", "to_row"), "rows"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'schemas' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)

__all__ = [
    "ALL",
    "CANDLE_INTERVALS",
    "CHANNELS",
    "EVENTS_CHANNEL",
    "FORMAT_VERSION",
    "JOURNAL_DIR",
    "META_CHANNEL",
    "SCHEMA_VERSION",
    "SUBSCRIPTION_TYPES",
    "ArchiveError",
    "ArchiveFormatError",
    "ChannelSpec",
    "FrameError",
    "PartName",
    "ProtocolError",
    "Row",
    "Subscription",
    "SubscriptionError",
    "batch_messages",
    "channel_spec",
    "decode_raw",
    "encode_raw",
    "escape",
    "frame_identifier",
    "frame_subscription",
    "from_row",
    "parse_client_frame",
    "parse_part_name",
    "parse_partition",
    "parse_server_frame",
    "parse_subscription",
    "partition_dir",
    "rows_to_batch",
    "to_row",
    "unescape",
]

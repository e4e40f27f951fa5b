"""The pure core of hlarchive: subscriptions, the ws protocol, channel shapes, rows and the archive layout.

No I/O lives here: the recorder and replay packages are thin shells around it.
"""

from .channels import CHANNELS, ChannelSpec, channel_spec
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
from .protocol import ProtocolError, parse_client_frame, parse_server_frame
from .rows import FrameError, Row, batch_messages, decode_raw, encode_raw, from_row, rows_to_batch, to_row
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

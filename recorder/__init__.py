"""The recorder: live Hyperliquid websocket client, archive writer, journal and the `record` command."""

from .writer import ArchiveWriter

__all__ = ["ArchiveWriter"]

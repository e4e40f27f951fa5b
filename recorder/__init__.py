"""The recorder: live Hyperliquid websocket client, archive writer, journal and the `record` command."""

from typing import Any

__all__ = ["ArchiveWriter"]


def __getattr__(name: str) -> Any:
    """``ArchiveWriter`` loads Arrow: imported on first use (the receiving process never needs it)."""
    if name == "ArchiveWriter":
        from .writer import ArchiveWriter

        return ArchiveWriter
    raise AttributeError(f"module 'recorder' has no attribute {name!r}")

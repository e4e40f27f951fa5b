"""Reading the archive: ordered replay through the SDK's callback interface, servers and analysis."""

from typing import Any

__all__ = ["Replay", "Summary", "archive_meta"]


def __getattr__(name: str) -> Any:
    """``Replay`` and friends load Arrow and DuckDB: imported on first use, so commands that need
    neither (``hlarchive record``) start without them."""
    if name in __all__:
        from . import replay

        return getattr(replay, name)
    raise AttributeError(f"module 'replay' has no attribute {name!r}")

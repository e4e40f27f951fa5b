"""Reading the archive: the ``Replay`` object (the SDK's callback interface), the ordered merge, parts
and the storage seam; on top of it, each in its own room: ``serving/`` (local servers),
``simulator/`` (the synthetic market), ``paper/`` (paper trading), ``analysis/`` (SQL and upkeep),
``exports/`` (other backtesters' inputs: ``from replay import export``).

The reading core never imports the rooms above it: they use it, it knows nothing of them.
"""

from typing import Any

__all__ = ["Replay", "Summary", "archive_meta", "export", "open_archive"]


def __getattr__(name: str) -> Any:
    """``Replay`` and friends load Arrow and DuckDB: imported on first use, so commands that need
    neither (``hlarchive record``) start without them."""
    if name in ("Replay", "Summary"):
        from . import replay

        return getattr(replay, name)
    if name == "archive_meta":
        from .meta import archive_meta

        return archive_meta
    if name == "export":
        from .exports import export

        return export
    if name == "open_archive":
        from .analysis.views import open_archive

        return open_archive
    raise AttributeError(f"module 'replay' has no attribute {name!r}")

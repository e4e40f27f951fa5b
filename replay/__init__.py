"""Reading the archive: ordered replay through the SDK's callback interface, servers and analysis."""

from .replay import Replay, Summary, archive_meta

__all__ = ["Replay", "Summary", "archive_meta"]

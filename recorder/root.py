"""The archive directory: made and writable before anything is recorded, or a one-line error."""

from __future__ import annotations

import os
from pathlib import Path

from schemas.layout import ArchiveError


def prepare_root(root: str | os.PathLike[str]) -> Path:
    """The archive directory, created; a one-line error when it cannot be made or written."""
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"cannot create archive directory {str(path)!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ArchiveError(f"archive directory {str(path)!r} is not writable: choose another --out")
    return path

"""Where an export writes: an output folder that holds nothing else unless told (``force``), file
names safe for any coin, and whole files only (a temporary name, renamed when complete)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from schemas.layout import ArchiveError

TEMPORARY = ".part"


class Output:
    def __init__(self, root: Path, *, force: bool = False) -> None:
        if root.exists() and not root.is_dir():
            raise ArchiveError(f"--out {str(root)!r} is a file: give a directory")
        if root.is_dir() and any(root.iterdir()) and not force:
            raise ArchiveError(f"--out {str(root)!r} already holds files: give an empty or new directory, or --force to write beside them")
        self.root = root
        self._pending: set[Path] = set()

    def path(self, name: str) -> Path:
        return self.root / name

    def temporary(self, name: str) -> Path:
        """Where to write ``name`` until it is whole (then ``commit``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / (name + TEMPORARY)
        self._pending.add(path)
        return path

    def commit(self, name: str) -> Path:
        final = self.root / name
        os.replace(self.root / (name + TEMPORARY), final)
        self._pending.discard(self.root / (name + TEMPORARY))
        return final

    def forget(self, name: str) -> None:
        """A temporary file removed by its writer: nothing left to clean up."""
        self._pending.discard(self.root / (name + TEMPORARY))

    def staging(self, name: str) -> Path:
        """A folder a library writes into by itself (nautilus's catalog), moved into place by ``adopt``."""
        path = self.root / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        self._pending.add(path)
        return path

    def adopt(self, name: str) -> list[Path]:
        """Move every file of the staging folder ``name`` to the same place under the output; the paths."""
        staging = self.root / name
        moved = []
        for source in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = self.root / source.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            moved.append(target)
        shutil.rmtree(staging)
        self._pending.discard(staging)
        return moved

    def discard(self) -> None:
        """An export that failed leaves no half-written file (the whole ones it finished stay)."""
        for path in self._pending:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._pending.clear()


def safe_name(coin: str) -> str:
    """A coin as a file name: ``PURR/USDC`` -> ``PURR-USDC``, ``xyz:HOOD`` -> ``xyz_HOOD``, ``@107`` kept."""
    return coin.replace("/", "-").replace(":", "_")


__all__ = ["Output", "safe_name"]

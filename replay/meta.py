"""The archive's ``_meta`` snapshots (``meta``, ``spotMeta``, ``perpDexs``...): what resolves ``@N``
coins, size decimals and assets for whoever reads an archive (``serve``'s ``/info``, paper trading)."""

from __future__ import annotations

import os
from typing import Any

import orjson

from schemas.layout import META_CHANNEL

from .archive import find_parts, open_part
from .storage import Store


class MetaSnapshots:
    """Every ``_meta`` snapshot of an archive, read once on first use."""

    def __init__(self, root: str | os.PathLike[str] | Store) -> None:
        self.root = root
        self._rows: list[tuple[int, str, bytes]] | None = None

    def of_kind(self, kind: str) -> list[tuple[int, bytes]]:
        """``(recv_ns, JSON text)`` of every snapshot of ``kind`` (``meta:<dex>`` for a builder dex), in time order."""
        if self._rows is None:
            rows: list[tuple[int, str, bytes]] = []
            for part in find_parts(self.root, channels=[META_CHANNEL], include_special=True):
                table = open_part(part).read(columns=["recv_ns", "kind", "payload"])
                rows.extend(zip(table["recv_ns"].to_pylist(), table["kind"].to_pylist(), table["payload"].to_pylist()))
            self._rows = sorted(rows)
        return [(t, p) for t, k, p in self._rows if k == kind]

    def in_force(self, kind: str, at_ns: int) -> Any | None:
        """The snapshot of ``kind`` in force at ``at_ns`` (the first one, if ``at_ns`` is before it); None without one."""
        matching = self.of_kind(kind)
        if not matching:
            return None
        before = [p for t, p in matching if t <= at_ns]
        return orjson.loads(before[-1] if before else matching[0][1])

    def latest(self) -> dict[str, Any]:
        """The newest snapshot of each kind."""
        if self._rows is None:
            self.of_kind("")
        assert self._rows is not None
        return {kind: orjson.loads(payload) for _, kind, payload in self._rows}


def archive_meta(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The latest ``meta`` and ``spotMeta`` snapshots (``{"meta": ..., "spotMeta": ...}``), e.g. for
    ``Info(base_url, meta=m["meta"], spot_meta=m["spotMeta"])`` against ``hlarchive serve``."""
    return MetaSnapshots(root).latest()

"""The synthetic market as a server's source: ``hlarchive simulate``.

The market model (``replay.simulator``) makes the streams and knows nothing of ``/info``; this
source adds the answers, read from the same ticks its streams show at that wall time.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from schemas.info import InfoError

from ..simulator.info import answer
from ..simulator.market import SyntheticMarket
from ..simulator.node_files import NodeFiles


class SyntheticSource(SyntheticMarket):
    """A :class:`SyntheticMarket` that also answers ``POST /info`` (what ``HyperliquidServer`` asks of a source)."""

    node_files: NodeFiles | None = None  # set by ``simulate --node-data``: this source is also a node

    def info(self, request: dict[str, Any], now_ns: int, clock_start_ns: int | None = None) -> Any:
        if request.get("type") == "fileSnapshot":
            if self.node_files is None:
                raise InfoError(422, "fileSnapshot is a node's request: start simulate with --node-data DIR to act as one")
            return self._file_snapshot(request)
        self.list_due(now_ns)
        return answer(self, request, self.tick_at(now_ns))

    def _file_snapshot(self, request: dict[str, Any]) -> Any:
        """A node's ``fileSnapshot`` of ``l4Snapshots``: the whole book of every coin, written to ``outPath``."""
        assert self.node_files is not None
        inner = request.get("request")
        out_path = request.get("outPath")
        if not isinstance(inner, dict) or inner.get("type") != "l4Snapshots" or not isinstance(out_path, str) or not os.path.isabs(out_path):
            raise InfoError(422, "fileSnapshot takes request {type: l4Snapshots} and an absolute outPath")
        payload = self.node_files.snapshot_payload()
        temporary = out_path + ".part"
        with open(temporary, "wb") as handle:
            handle.write(orjson.dumps(payload if request.get("includeHeightInOutput", True) else payload[1]))
        os.replace(temporary, out_path)
        return None

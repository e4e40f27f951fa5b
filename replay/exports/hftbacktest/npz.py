"""hftbacktest's day files written a chunk at a time: rows are compressed on another core as they come
(``deflate_zip``) and the ``.npy`` header, which holds the final row count, is put in front at the
end, so memory holds one chunk, never a day, and compression costs the exporter no time of its own.

Rows are put in hftbacktest's event order chunk by chunk: rows received in the last ``HOLD_NS``
stay back for the next chunk, so a frame that arrives late is ordered with what came before it. A
row later than that (its exchange time before what was already written) gets the last written
exchange time, counted in the summary. A receive time before the exchange time is raised to it
(a feed latency is never negative)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import Output
from .deflate_zip import DeflateEntry, write_zip

HOLD_NS = 10_000_000_000  # rows held back for the next chunk: 10 s of receive time
HEADER_BYTES = 256  # the .npy header, padded to a fixed size


class DayFile:
    """One ``<coin>_<yyyymmdd>.npz``: ``add`` chunks of rows in receive order, then ``close``."""

    def __init__(self, output: Output, name: str) -> None:
        import numpy as np

        from .events import event_dtype

        self.np = np
        self.dtype = event_dtype()
        self.output, self.name = output, name
        self.body = DeflateEntry(output.temporary(name + ".deflate"))
        self.rows = 0
        self.held: Any = np.zeros(0, self.dtype)
        self.last_exch = -(2**62)
        self.raised = 0  # rows whose exchange time was raised to keep the order (arrived over HOLD_NS late)

    def add(self, rows: Any, *, final: bool = False) -> None:
        """Rows in receive order (without EXCH/LOCAL flags); all but the newest ``HOLD_NS`` are written."""
        np = self.np
        rows = np.concatenate([self.held, rows]) if len(self.held) else rows
        if not len(rows):
            return
        np.maximum(rows["local_ts"], rows["exch_ts"], out=rows["local_ts"])  # a receive time is never before the exchange's
        if final:
            cut = len(rows)
        else:
            bound = int(rows["local_ts"][-1]) - HOLD_NS
            cut = int(np.searchsorted(rows["local_ts"], bound, side="right"))
        ready, self.held = rows[:cut], rows[cut:].copy()
        if not len(ready):
            return
        late = ready["exch_ts"] < self.last_exch
        if late.any():
            self.raised += int(late.sum())
            ready["exch_ts"][late] = self.last_exch
        from .events import EXCH_EVENT, correct_event_order

        ordered = correct_event_order(ready)
        exch_rows = ordered["exch_ts"][(ordered["ev"] & EXCH_EVENT) != 0]
        if len(exch_rows):
            self.last_exch = max(self.last_exch, int(exch_rows.max()))
        self.body.write(memoryview(np.ascontiguousarray(ordered)).cast("B"))
        self.rows += len(ordered)

    def close(self) -> Path:
        np = self.np
        self.add(np.zeros(0, self.dtype), final=True)
        self.body.finish()
        header = np.lib.format.header_data_from_array_1_0(np.zeros(0, self.dtype))
        header["shape"] = (self.rows,)
        magic = b"\x93NUMPY\x01\x00"
        body = repr(header).encode("latin1")
        padding = HEADER_BYTES - len(magic) - 2 - len(body) - 1
        if padding < 0:
            raise ValueError("the .npy header outgrew its room")
        head = magic + (HEADER_BYTES - len(magic) - 2).to_bytes(2, "little") + body + b" " * padding + b"\n"
        write_zip(self.output.temporary(self.name), "data.npy", head, self.body)
        self.body.path.unlink()
        self.output.forget(self.name + ".deflate")
        return self.output.commit(self.name)

    def abandon(self) -> None:
        try:
            self.body.finish()
        except Exception:  # the export is failing already: its own error is the one to show
            pass


__all__ = ["DayFile", "HOLD_NS"]

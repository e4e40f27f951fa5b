"""The archiver's hot path: frames of the busy channels held a block at a time, then written as columns.

One block per partition (subscription type and coin), so a part's rows stay in receipt order. A
block whose every frame comes back byte for byte from Arrow's columns (``schemas.framebulk``) is
written with ``write_columns``; any other block, or one too small to be worth Arrow's call, is written
frame by frame, exactly as the recorder always has. Blocks are written out before the archiver
commits (at each journal rotation) and whenever they hold more than ``max_bytes`` together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from schemas.framebulk import BULK_CHANNELS, typed_block
from schemas.subscriptions import Subscription

from .journal import Record
from .recovery import write_record
from .writer import ArchiveWriter

MIN_BULK_FRAMES = 16  # below this, Arrow's fixed cost per call is more than the frames' own


@dataclass
class _Block:
    subscription: Subscription
    records: list[Record] = field(default_factory=list)
    nbytes: int = 0


class FrameBlocks:
    """Hot-channel frames per partition, written ``block_frames`` at a time."""

    def __init__(self, writer: ArchiveWriter, *, block_frames: int = 512, max_bytes: int = 16 << 20) -> None:
        self.writer = writer
        self.block_frames = block_frames
        self.max_bytes = max_bytes
        self.bulk_frames = 0  # frames written as columns
        self.single_frames = 0  # frames of blocks that went frame by frame
        self.malformed = 0
        self._blocks: dict[tuple[str, str], _Block] = {}
        self._nbytes = 0

    def take(self, record: Record, sub: Subscription | None) -> bool:
        """Hold ``record`` (a data record of ``sub``) for its block; False: not a hot channel's, the
        caller writes it (after ``write_partition``, so that partition keeps its order)."""
        if sub is None or sub.coin is None or sub.channel not in BULK_CHANNELS:
            return False
        key = (sub.type, sub.coin)
        block = self._blocks.get(key)
        if block is not None and block.subscription is not sub and block.subscription != sub:
            self._write(key)  # another stream of the partition (another aggregation): keep receipt order
            block = None
        if block is None:
            block = self._blocks[key] = _Block(sub)
        block.records.append(record)
        block.nbytes += len(record.payload)
        self._nbytes += len(record.payload)
        if len(block.records) >= self.block_frames:
            self._write(key)
        elif self._nbytes > self.max_bytes:
            self._write(max(self._blocks, key=lambda k: self._blocks[k].nbytes))
        return True

    @property
    def pending(self) -> int:
        """Frames held, not yet handed to the writer."""
        return sum(len(block.records) for block in self._blocks.values())

    def write_partition(self, sub: Subscription | None) -> None:
        """Write out the block a frame of ``sub`` would join (every block when it is unknown)."""
        if sub is None:
            self.write_all()
        elif (sub.type, sub.coin) in self._blocks:
            self._write((sub.type, sub.coin))  # type: ignore[arg-type]

    def write_all(self) -> None:
        for key in list(self._blocks):
            self._write(key)

    def _write(self, key: tuple[str, str]) -> None:
        block = self._blocks.pop(key)
        self._nbytes -= block.nbytes
        sub, records = block.subscription, block.records
        columns = typed_block(sub.channel, sub.coin, [r.payload for r in records]) if len(records) >= MIN_BULK_FRAMES else None  # type: ignore[arg-type]
        if columns is not None:
            data, exch_ms = columns
            recv_ns = pa.array([r.recv_ns for r in records], pa.int64())
            seqs = pa.array([r.seq for r in records], pa.int64())
            self.writer.write_columns(sub, recv_ns, exch_ms, data=data, seq=seqs)
            self.bulk_frames += len(records)
            return
        subscriptions = {records[0].sub_id: sub}
        for record in records:
            if write_record(self.writer, record, subscriptions):
                self.single_frames += 1
            else:
                self.malformed += 1

"""l2Book snapshot lines a chunk at a time, sans I/O: Arrow's JSON reader parses a whole chunk of lines
straight into the archive's typed columns, with no Python object per record.

Arrow's reader checks types, refuses unknown and repeated keys, and leaves a missing key null; it
forgets key order. A few counts over the chunk's text prove the order is the shape's in every record,
so the columns restore to frames equal (values and key order) to each record's ``raw``. A chunk that
fails any check gives ``None``, and the importer reads it line by line: that path keeps whatever the
record holds, or refuses it with its line number. The bulk path only ever speeds up, never decides.

Why the counts prove the order: with no backslash in the chunk, every ``"`` opens or closes a string,
so a pattern holding quotes can only match the records' structure, never text inside a value.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .channels import channel_spec

L2BOOK_DATA = channel_spec("l2Book").shape.arrow_type  # type: ignore[union-attr]
L2BOOK_RECORD = pa.schema(
    [
        pa.field("time", pa.string()),
        pa.field("ver_num", pa.int64()),
        pa.field("raw", pa.struct([pa.field("channel", pa.string()), pa.field("data", L2BOOK_DATA)])),
    ]
)
_PARSE = pj.ParseOptions(explicit_schema=L2BOOK_RECORD, unexpected_field_behavior="error", newlines_in_values=False)
_BLOCK_BYTES = 256 * 1024  # Arrow parses blocks in parallel: small blocks keep both cores busy

# Each record has exactly one of these, in the shape's order: raw = {channel, data}, data = {coin, time,
# levels}. ``","time":`` can only be data's time after the coin string (the record's own time is first
# or follows a number or an object).
_ONCE_A_RECORD = (b'"raw":{"channel":"l2Book","data":{"coin":"', b'","time":')
# Each level has exactly one of these: px first, and sz right after a string value (px, the only other
# string), so the order is px, sz, n.
_ONCE_A_LEVEL = (b'{"px":"', b'","sz":"')
_RECORD_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}$"


@dataclass(frozen=True)
class L2BookChunk:
    """A chunk's records as the archive's columns: ``data`` restores to each record's ``raw["data"]``."""

    recv_ns: pa.Array  # int64: the record's outer time
    data: pa.StructArray  # the archive's l2Book data type

    @property
    def exch_ms(self) -> pa.Array:
        return self.data.field("time")

    @property
    def coins(self) -> pa.Array:
        return self.data.field("coin")


def l2book_chunk(chunk: bytes) -> L2BookChunk | None:
    """The records of ``chunk`` (whole lines, each ending in ``\\n``) as columns, or ``None`` when any
    check fails and the chunk must be read line by line."""
    if not chunk.endswith(b"\n") or b"\\" in chunk:
        return None
    try:
        table = pj.read_json(io.BytesIO(chunk), read_options=pj.ReadOptions(block_size=_BLOCK_BYTES), parse_options=_PARSE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    records = table.num_rows
    if records == 0 or records != chunk.count(b"\n"):  # blank lines: line numbers would drift
        return None
    times = table.column("time").combine_chunks()
    raw = table.column("raw").combine_chunks()
    data = raw.field("data")
    sides = data.field("levels")
    levels = sides.flatten().flatten()
    arrays = (times, raw, raw.field("channel"), data, data.field("coin"), data.field("time"), sides, sides.flatten(), levels, *levels.flatten())
    if any(array.null_count for array in arrays):  # a key was missing or null
        return None
    if any(chunk.count(pattern) != records for pattern in _ONCE_A_RECORD):
        return None
    if any(chunk.count(pattern) != len(levels) for pattern in _ONCE_A_LEVEL):
        return None
    if not pc.all(pc.match_substring_regex(times, _RECORD_TIME)).as_py():
        return None
    recv_ns = pc.cast(times, pa.timestamp("ns")).cast(pa.int64())
    return L2BookChunk(recv_ns, data)

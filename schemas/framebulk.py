"""Live frames a block at a time, sans I/O: Arrow's JSON reader parses a block of one stream's frames
straight into the channel's typed column, with no Python object per frame.

Proof of exactness, so that every typed row restores to a frame equal to the received one, values
and key order:
- trades and bbo: every frame's JSON text is rebuilt from the typed column (``jsontext.render``,
  which writes what ``orjson.dumps`` writes) and compared with the bytes received.
- l2Book: rebuilding 40 levels costs as much as parsing them, so the order is proven by counts, as
  ``schemas.imports.historybulk`` does for imported books. Arrow's reader refuses unknown and repeated keys
  and numbers out of the shape; a missing key is a null, which is checked. With no backslash in the
  block every quote is structure, so ``{"px":"`` once a level puts px first, ``","sz":"`` once a level
  puts sz right after it (the only other string), and the per-frame patterns do the same for channel,
  data, coin and time.
A block that fails any check gives ``None``, and the caller converts it frame by frame, which keeps
whatever each frame holds.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .channels import channel_spec
from .jsontext import NotVectorisable, render

# the channels worth it: frequent, and read by Arrow's JSON reader (no maps, no Json texts)
BULK_CHANNELS = ("l2Book", "bbo", "trades")


def _parse_options(channel: str) -> tuple[pj.ParseOptions, pa.DataType]:
    spec = channel_spec(channel)
    assert spec is not None
    schema = pa.schema([pa.field("channel", pa.string()), pa.field("data", spec.shape.arrow_type)])
    unexpected = "error" if channel == "l2Book" else "ignore"  # rendering catches an unknown field; counts do not
    return pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected, newlines_in_values=False), spec.shape.arrow_type


_OPTIONS = {channel: _parse_options(channel) for channel in BULK_CHANNELS}


def typed_block(channel: str, coin: str, frames: list[bytes]) -> tuple[pa.Array, pa.Array] | None:
    """``(data, exch_ms)`` columns of ``frames`` (the exact bytes of ``channel`` frames of ``coin``), or
    ``None`` when any frame would not come back byte for byte and the block must go frame by frame."""
    options = _OPTIONS.get(channel)
    if options is None or not frames:
        return None
    parse, data_type = options
    block = b"\n".join(frames)
    if block.count(b"\n") != len(frames) - 1:  # a newline inside a frame: rows would not line up
        return None
    try:
        table = pj.read_json(io.BytesIO(block), read_options=pj.ReadOptions(use_threads=False, block_size=len(block) + 1), parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(frames):
        return None
    data = table.column("data").combine_chunks()
    if data.type != data_type:
        return None
    if channel == "l2Book":
        if not _l2book_proven(block, table.column("channel").combine_chunks(), data):
            return None
        return (data, data.field("time")) if _same_coin(data.field("coin"), coin) else None
    try:
        body = render(channel_spec(channel).shape, data).fill_null("null")  # type: ignore[union-attr]
    except NotVectorisable:
        return None
    rebuilt = pc.binary_join_element_wise(f'{{"channel":"{channel}","data":', body, "}", "")
    try:
        received = pa.array(frames, pa.binary()).cast(pa.string())  # checks UTF-8, as orjson would
    except pa.ArrowInvalid:
        return None
    if not pc.all(pc.equal(rebuilt, received)).as_py():
        return None
    if channel == "trades":
        if pc.any(pc.equal(pc.list_value_length(data), 0)).as_py():
            return None  # an empty trade list: its coin is the subscription's, and no time (frame by frame)
        coins, exch_ms = data.values.field("coin"), pc.list_element(data, 0).field("time")  # every trade's coin
    else:
        coins, exch_ms = data.field("coin"), data.field("time")
    return (data, exch_ms) if _same_coin(coins, coin) else None


def _same_coin(coins: pa.Array, coin: str) -> bool:
    """Every frame files under the subscription's coin (frame by frame, the frame's coin decides)."""
    return bool(pc.all(pc.equal(coins, coin)).as_py())


_L2BOOK_ONCE_A_FRAME = (b'{"channel":"l2Book","data":{"coin":"', b'","time":')
_L2BOOK_ONCE_A_LEVEL = (b'{"px":"', b'","sz":"')


def _l2book_proven(block: bytes, channels: pa.Array, data: pa.StructArray) -> bool:
    """Whether the parsed books hold every frame exactly: no key missing or null, the shape's key order."""
    if b"\\" in block:
        return False
    try:
        block.decode("utf-8")  # orjson refuses bad UTF-8; Arrow's reader need not
    except UnicodeDecodeError:
        return False
    sides = data.field("levels")
    levels = sides.flatten().flatten()
    arrays = (channels, data, data.field("coin"), data.field("time"), sides, sides.flatten(), levels, *levels.flatten())
    if any(array.null_count for array in arrays):
        return False
    frames = len(data)
    return all(block.count(p) == frames for p in _L2BOOK_ONCE_A_FRAME) and all(block.count(p) == len(levels) for p in _L2BOOK_ONCE_A_LEVEL)

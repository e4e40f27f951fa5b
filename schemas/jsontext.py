"""Frames' JSON text rebuilt from their typed Arrow columns, vectorised: one C++ pass per column.

The text is what ``serve`` sends and ``raw_messages()`` yields, never built as dicts. (Dicts come
faster column by column: ``schemas.shapes.column_values``, measured against orjson over this text.)
The text follows the shapes of ``schemas.shapes``: fields in declared order, an absent optional
field left out, a present null written as ``null``, so it is exactly ``orjson.dumps`` of the frame
that was received, keys in the same order. Pure: no I/O.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .channels import channel_spec
from .rows import batch_messages
from .shapes import Bool, Int, Json, List, Map, Shape, Str, Struct

_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


class NotVectorisable(Exception):
    """A column this module cannot render exactly (a string with control characters, a float):
    the caller falls back to building dicts."""


def _string(values: pa.Array) -> pa.Array:
    """A JSON string literal per value (null stays null)."""
    values = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
    if len(values) and pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        escaped = pc.replace_substring(values, "\\", "\\\\")
        escaped = pc.replace_substring(escaped, '"', '\\"')
        if pc.any(pc.match_substring_regex(escaped, r"[\x00-\x1f]")).as_py():
            raise NotVectorisable("a control character in a string")
        values = escaped
    return pc.binary_join_element_wise('"', values, '"', "")


def _list_texts(array: pa.Array, value_texts: pa.Array, *, null_items: bool) -> pa.Array:
    """``[a,b,...]`` per list, from the texts of ``array.values`` (all of them: offsets index into them)."""
    if null_items:
        value_texts = value_texts.fill_null("null")
    rebuilt = pa.ListArray.from_arrays(array.offsets, value_texts, mask=array.is_null() if array.null_count else None)
    joined = pc.binary_join(rebuilt, ",")
    return pc.binary_join_element_wise("[", joined, "]", "")


def render(shape: Shape, array: pa.Array) -> pa.Array:
    """The JSON text of each element of ``array`` (a column of ``shape``); null where it is null."""
    if isinstance(shape, Str):
        return _string(array)
    if isinstance(shape, Int):
        return array.cast(pa.string())
    if isinstance(shape, Bool):
        return pc.if_else(array, "true", "false")
    if isinstance(shape, Json):
        return array  # kept as its JSON text
    if isinstance(shape, List):
        return _list_texts(array, render(shape.item, array.values), null_items=shape.nullable_items)
    if isinstance(shape, Map):
        keys = _string(array.keys)  # all of them, as the offsets index them
        values = render(shape.value, array.items).fill_null("null")
        return _brace(_list_texts(array, pc.binary_join_element_wise(keys, values, ":"), null_items=False))
    if isinstance(shape, Struct):
        pieces = []
        for f, child in zip(shape.fields, array.flatten()):  # children sliced as the array is
            text = render(f.shape, child)
            if not f.optional:  # present: null is written; absent optional fields are skipped by the join
                text = text.fill_null("null")
            pieces.append(pc.binary_join_element_wise(f'"{f.name}":', text, ",", ""))  # null when absent
        # concatenated with absent pieces as "", then the last comma cut ("skip" mode loses rows
        # when every piece is null: pyarrow returns an empty array)
        joined = pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")
        joined = pc.utf8_slice_codeunits(joined, 0, -1)
        body = pc.binary_join_element_wise("{", joined, "}", "")
        return pc.if_else(array.is_valid(), body, pa.scalar(None, pa.string())) if array.null_count else body
    raise NotVectorisable(f"no vectorised text for {type(shape).__name__}")


def _brace(list_text: pa.Array) -> pa.Array:
    """``[...]`` to ``{...}`` (a map's pairs are rendered as a list first)."""
    inner = pc.utf8_slice_codeunits(list_text, 1, -1)
    return pc.binary_join_element_wise("{", inner, "}", "")


def frame_texts(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """The JSON text of each row's frame: ``raw`` where the row kept it, else rebuilt from ``data``."""
    names = batch.schema.names
    raw = batch.column(names.index("raw"))
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    if "data" not in names or raw.null_count == 0:
        return raw
    channels = batch.column(names.index("wire_channel"))
    if isinstance(channels, pa.ChunkedArray):
        channels = channels.combine_chunks()
    channel = channels[0].as_py()
    if pc.any(pc.not_equal(channels, channel)).as_py():
        raise NotVectorisable("rows of several wire channels in one batch")
    spec = channel_spec(channel)
    if spec is None:
        raise NotVectorisable(f"unknown channel {channel!r}")
    data = batch.column(names.index("data"))
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    body = render(spec.shape, data).fill_null("null")
    built = pc.binary_join_element_wise(f'{{"channel":"{channel}","data":', body, "}", "")
    return pc.if_else(raw.is_valid(), raw, built) if len(raw) - raw.null_count else built


def batch_frame_bytes(batch: pa.RecordBatch | pa.Table) -> list[bytes]:
    """The frames of a batch as JSON bytes, each exactly ``orjson.dumps`` of its frame."""
    try:
        return frame_texts(batch).cast(pa.binary()).to_pylist()
    except NotVectorisable:
        return [orjson.dumps(m) for m in batch_messages(batch)]


__all__ = ["NotVectorisable", "batch_frame_bytes", "frame_texts", "render"]

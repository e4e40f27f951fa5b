"""Frames' JSON text rebuilt from their typed Arrow columns, vectorised: one C++ pass per column.

The text is what ``serve`` sends and ``raw_messages()`` yields, never built as dicts. (Dicts come
faster column by column: ``schemas.shapes.column_values``, measured against orjson over this text.)
The text follows the shapes of ``schemas.shapes``: fields in declared order, an absent optional
field left out, a present null written as ``null``, so it is exactly ``orjson.dumps`` of the frame
that was received, keys in the same order. Pure: no I/O.
"""

from __future__ import annotations

import functools
from typing import Any

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
    """A JSON string literal per value (null stays null). A dictionary column is quoted once per
    distinct value, then taken: a book's prices repeat across its rows."""
    if isinstance(values, pa.DictionaryArray):
        return _string(values.dictionary).take(values.indices)
    values = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
    if len(values) and _may_need_escape(values):
        escaped = pc.replace_substring(values, "\\", "\\\\")
        escaped = pc.replace_substring(escaped, '"', '\\"')
        if pc.any(pc.match_substring_regex(escaped, r"[\x00-\x1f]")).as_py():
            raise NotVectorisable("a control character in a string")
        values = escaped
    return pc.binary_join_element_wise('"', values, '"', "")


_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\'


def _may_need_escape(values: pa.StringArray) -> bool:
    """Whether any byte of the column's text needs escaping: one scan of its data buffer (cheaper
    than a regex per value)."""
    _, offsets_buffer, data = values.buffers()
    if data is None:
        return False
    offsets = memoryview(offsets_buffer).cast("i")  # pa.string(): 32-bit offsets
    start, end = offsets[values.offset], offsets[values.offset + len(values)]
    text = data.slice(start, end - start).to_pybytes()
    return len(text.translate(None, _ESCAPED_BYTES)) != len(text)


def _list_texts(array: pa.Array, value_texts: pa.Array, *, null_items: bool) -> pa.Array:
    """``[a,b,...]`` per list, from the texts of ``array.values`` (all of them: offsets index into them)."""
    if null_items:
        value_texts = value_texts.fill_null("null")
    joined = pc.binary_join(pa.ListArray.from_arrays(array.offsets, value_texts), ",")
    texts = pc.binary_join_element_wise("[", joined, "]", "")
    # nulls applied after (Arrow refuses a mask with the offsets of a sliced array)
    return pc.if_else(array.is_valid(), texts, pa.scalar(None, pa.string())) if array.null_count else texts


def render(shape: Shape, array: pa.Array) -> pa.Array:
    """The JSON text of each element of ``array`` (a column of ``shape``); null where it is null."""
    if isinstance(shape, Str):
        return _string(array)
    if isinstance(shape, Int):
        return array.cast(pa.string())
    if isinstance(shape, Bool):
        return pc.if_else(array, "true", "false")
    if isinstance(shape, Json):  # kept as its JSON text
        return array.dictionary.take(array.indices) if isinstance(array, pa.DictionaryArray) else array
    if isinstance(shape, List):
        return _list_texts(array, render(shape.item, array.values), null_items=shape.nullable_items)
    if isinstance(shape, Map):
        keys = _string(array.keys)  # all of them, as the offsets index them
        values = render(shape.value, array.items).fill_null("null")
        return _brace(_list_texts(array, pc.binary_join_element_wise(keys, values, ":"), null_items=False))
    if isinstance(shape, Struct):
        return _struct_texts(shape, array)
    raise NotVectorisable(f"no vectorised text for {type(shape).__name__}")


def _struct_texts(shape: Struct, array: pa.Array) -> pa.Array:
    """``{"a":..,"b":..}`` per struct. When each optional field is present in every row or in none,
    the keys are the same in every row: one join of each field's ``,"name":value`` piece, where a
    dictionary string or a small integer gets its piece from a table of distinct texts. Otherwise
    each field's ``"name":value,`` piece is joined, an absent one as "", and the last comma cut."""
    present: list[tuple[Any, pa.Array]] = []
    uniform = True
    for f, child in zip(shape.fields, array.flatten()):  # children sliced as the array is, nulls merged in
        if f.optional and len(child) and child.null_count == len(child):
            continue  # absent in every row
        if f.optional and child.null_count:
            uniform = False
        present.append((f, child))
    if not present:
        body = pa.array(["{}"] * len(array), pa.string())
    elif uniform:
        pieces: list[Any] = []
        for i, (f, child) in enumerate(present):
            prefix = ("{" if i == 0 else ",") + f'"{f.name}":'
            suffix = "}" if i == len(present) - 1 else ""
            folded = _piece_from_table(f.shape, child, prefix, suffix)
            pieces += [folded] if folded is not None else [prefix, render(f.shape, child).fill_null("null"), suffix]
        pieces = [p for p in pieces if not isinstance(p, str) or p]
        body = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, "")
    else:
        texts = [(f.name, render(f.shape, child) if f.optional else render(f.shape, child).fill_null("null")) for f, child in present]
        pieces = [pc.binary_join_element_wise(f'"{name}":', text, ",", "") for name, text in texts]  # null when absent
        # concatenated with absent pieces as "", then the last comma cut ("skip" mode loses rows
        # when every piece is null: pyarrow returns an empty array)
        joined = pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")
        body = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 0, -1), "}", "")
    return pc.if_else(array.is_valid(), body, pa.scalar(None, pa.string())) if array.null_count else body


_SMALL_INTS = 4096


def _piece_from_table(shape: Shape, child: pa.Array, prefix: str, suffix: str) -> pa.Array | None:
    """``prefix + text + suffix`` per value, taken from the texts of the distinct values (one pass
    instead of a join per value), or None when the column is not a dictionary string or small ints."""
    if isinstance(shape, Str) and isinstance(child, pa.DictionaryArray):
        out = pc.binary_join_element_wise(prefix, _string(child.dictionary), suffix, "").take(child.indices)
    elif isinstance(shape, Int) and len(child) and not child.null_count:
        low, high = pc.min_max(child).values()
        if low.as_py() < 0 or high.as_py() >= _SMALL_INTS:
            return None
        out = _small_int_texts(prefix, suffix).take(child)
    else:
        return None
    return out.fill_null(f"{prefix}null{suffix}") if out.null_count else out


@functools.lru_cache(maxsize=64)
def _small_int_texts(prefix: str, suffix: str) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(range(_SMALL_INTS), pa.int64()).cast(pa.string()), suffix, "")


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

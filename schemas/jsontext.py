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


class NotVectorisable(Exception):
    """A column this module cannot render exactly (a string with control characters, a float):
    the caller falls back to building dicts."""


def _string(values: pa.Array, prefix: str = "", suffix: str = "") -> pa.Array:
    """``prefix`` + a JSON string literal + ``suffix`` per value (null stays null). A dictionary
    column is quoted once per distinct value, then taken: a book's prices repeat across its rows."""
    if isinstance(values, pa.DictionaryArray):
        return _string(values.dictionary, prefix, suffix).take(values.indices)
    values = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
    if len(values) and _may_need_escape(values):
        escaped = pc.replace_substring(values, "\\", "\\\\")
        escaped = pc.replace_substring(escaped, '"', '\\"')
        if pc.any(pc.match_substring_regex(escaped, r"[\x00-\x1f]")).as_py():
            raise NotVectorisable("a control character in a string")
        values = escaped
    return _affixed(values, prefix + '"', '"' + suffix)


_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\'


def _may_need_escape(values: pa.StringArray) -> bool:
    """Whether any byte of the column's text needs escaping: one scan of its data buffer (cheaper
    than a regex per value)."""
    _, offsets_buffer, data = values.buffers()
    if data is None:
        return False
    offsets = memoryview(offsets_buffer).cast("i")  # pa.string(): 32-bit offsets
    start, end = offsets[values.offset], offsets[values.offset + len(values)]
    text = memoryview(data)[start:end].tobytes()  # memoryview's copy is ~10x faster than to_pybytes
    if text.isalnum():  # hashes, addresses, coins: twice as fast to scan as the general check
        return False
    return len(text.translate(None, _ESCAPED_BYTES)) != len(text)


_NULL = pa.scalar(None, pa.string())
_SMALL_INTS = 4096


def render(shape: Shape, array: pa.Array, prefix: str = "", suffix: str = "") -> pa.Array:
    """``prefix`` + the JSON text + ``suffix`` of each element of ``array`` (a column of ``shape``);
    null where it is null.

    Arrow's joins cost per argument, and a constant argument costs more than a column, so each
    constant text is folded into a column's text where that is free: into the quotes of a string,
    the brackets of a list, the table of a dictionary's distinct values or of small integers."""
    if isinstance(shape, Str):
        return _string(array, prefix, suffix)
    if isinstance(shape, Int):
        if _small_ints(array):
            return _small_int_texts(prefix, suffix).take(array)
        return _affixed(array.cast(pa.string()), prefix, suffix)
    if isinstance(shape, Bool):
        return pc.if_else(array, prefix + "true" + suffix, prefix + "false" + suffix)
    if isinstance(shape, Json):  # kept as its JSON text
        text = array.dictionary.take(array.indices) if isinstance(array, pa.DictionaryArray) else array
        return _affixed(text, prefix, suffix)
    if isinstance(shape, List):
        if _one_item_each(array):  # a live user frame's one fill: the brackets fold into the item's text
            items = render(shape.item, array.values.slice(array.offsets[0].as_py(), len(array)), prefix + "[", "]" + suffix)
            return items.fill_null(prefix + "[null]" + suffix) if items.null_count else items
        items = render(shape.item, array.values)
        return _list_texts(array, items.fill_null("null") if shape.nullable_items else items, prefix + "[", "]" + suffix)
    if isinstance(shape, Map):
        keys = _string(array.keys, "", ":")  # all of them, as the offsets index them
        pairs = pc.binary_join_element_wise(keys, render(shape.value, array.items).fill_null("null"), "")
        return _list_texts(array, pairs, prefix + "{", "}" + suffix)
    if isinstance(shape, Struct):
        return _struct_texts(shape, array, prefix, suffix)
    raise NotVectorisable(f"no vectorised text for {type(shape).__name__}")


def _affixed(texts: pa.Array, prefix: str, suffix: str) -> pa.Array:
    """``prefix + text + suffix``. For short texts a slice replaced at each end costs half a join
    with constants; for long ones (a book's side) the join, which copies each text once, wins."""
    if not (prefix or suffix):
        return texts
    if len(texts) and texts.nbytes > _SHORT_TEXT * len(texts):
        return pc.binary_join_element_wise(prefix, texts, suffix, "")
    if prefix:
        texts = pc.binary_replace_slice(texts, 0, 0, prefix)
    if suffix:
        texts = pc.binary_replace_slice(texts, _END, _END, suffix)
    return texts


_SHORT_TEXT = 128  # bytes a text, offsets included


_END = 1 << 30  # past any text's end: a slice there is the end


def _folds_free(shape: Shape, array: pa.Array) -> bool:
    """Whether ``render`` takes a prefix and suffix for this column at no extra pass."""
    if isinstance(shape, Int):
        return _small_ints(array)
    return isinstance(shape, (Str, Bool, List, Map, Struct))


def _small_ints(array: pa.Array) -> bool:
    """Integers all in ``[0, _SMALL_INTS)``, whose texts can be taken from a table (a level's order count)."""
    if not len(array) or array.null_count:
        return False
    low, high = pc.min_max(array).values()
    return low.as_py() >= 0 and high.as_py() < _SMALL_INTS


@functools.lru_cache(maxsize=256)
def _small_int_texts(prefix: str, suffix: str) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(range(_SMALL_INTS), pa.int64()).cast(pa.string()), suffix, "")


def _one_item_each(array: pa.ListArray) -> bool:
    """Every list holds exactly one item (and none is null): its text is ``[`` + the item's + ``]``,
    with no join of the items and no copy to add the brackets."""
    if not len(array) or array.null_count:
        return False
    return bool(pc.all(pc.equal(pc.list_value_length(array), 1)).as_py())


def _list_texts(array: pa.Array, value_texts: pa.Array, opening: str, closing: str) -> pa.Array:
    """``opening`` + the texts of ``array.values`` (all of them: offsets index into them) joined by
    commas + ``closing``, per list."""
    joined = pc.binary_join(pa.ListArray.from_arrays(array.offsets, value_texts), ",")
    texts = _affixed(joined, opening, closing)
    # nulls applied after (Arrow refuses a mask with the offsets of a sliced array)
    return pc.if_else(array.is_valid(), texts, _NULL) if array.null_count else texts


def _struct_texts(shape: Struct, array: pa.Array, prefix: str, suffix: str) -> pa.Array:
    """``{"a":..,"b":..}`` per struct.

    When each optional field is present in every row or in none, the keys are the same in every
    row: the constant texts between the values (``{"a":``, ``,"b":``, ``}``) are folded into a
    neighbouring value's text where that is free, and the pieces joined once. Otherwise each
    field's ``"name":value,`` piece is joined, an absent one as "", and the last comma cut."""
    present: list[tuple[Any, pa.Array]] = []
    uniform = True
    for f, child in zip(shape.fields, array.flatten()):  # children sliced as the array is, nulls merged in
        if f.optional and len(child) and child.null_count == len(child):
            continue  # absent in every row
        if f.optional and child.null_count:
            uniform = False
        present.append((f, child))
    if not present:
        body = pa.array([prefix + "{}" + suffix] * len(array), pa.string())
    elif uniform:
        body = _uniform_struct_texts(present, prefix, suffix)
    else:
        pieces = []
        for f, child in present:
            text = render(f.shape, child, f'"{f.name}":', ",")  # null when absent
            pieces.append(text if f.optional else text.fill_null(f'"{f.name}":null,'))
        # concatenated with absent pieces as "", then the last comma cut ("skip" mode loses rows
        # when every piece is null: pyarrow returns an empty array)
        joined = pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")
        body = pc.binary_join_element_wise(prefix + "{", pc.binary_slice(joined.cast(pa.binary()), 0, -1).cast(pa.string()), "}" + suffix, "")
    return pc.if_else(array.is_valid(), body, _NULL) if array.null_count else body


def _uniform_struct_texts(present: list[tuple[Any, pa.Array]], prefix: str, suffix: str) -> pa.Array:
    # constants[i] goes before field i; constants[-1] after the last one
    constants = [prefix + "{" + f'"{present[0][0].name}":'] + [f',"{f.name}":' for f, _ in present[1:]] + ["}" + suffix]
    free = [_folds_free(f.shape, child) for f, child in present]
    affixes = [["", ""] for _ in present]
    loose: dict[int, str] = {}  # constants no value can take, by position
    for i, text in enumerate(constants):
        if i < len(present) and free[i]:
            affixes[i][0] = text
        elif i > 0 and free[i - 1]:
            affixes[i - 1][1] = text
        else:
            loose[i] = text
    pieces: list[Any] = []
    for i, (f, child) in enumerate(present):
        if i in loose:
            pieces.append(loose[i])
        before, after = affixes[i]
        text = render(f.shape, child, before, after)
        pieces.append(text.fill_null(before + "null" + after) if text.null_count else text)
    if len(present) in loose:
        pieces.append(loose[len(present)])
    return pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, "")


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
    prefix = f'{{"channel":"{channel}","data":'
    built = render(spec.shape, data, prefix, "}")
    built = built.fill_null(prefix + "null}") if built.null_count else built
    return pc.if_else(raw.is_valid(), raw, built) if len(raw) - raw.null_count else built


def batch_frame_bytes(batch: pa.RecordBatch | pa.Table) -> list[bytes]:
    """The frames of a batch as JSON bytes, each exactly ``orjson.dumps`` of its frame."""
    try:
        return frame_texts(batch).cast(pa.binary()).to_pylist()
    except NotVectorisable:
        return [orjson.dumps(m) for m in batch_messages(batch)]


__all__ = ["NotVectorisable", "batch_frame_bytes", "frame_texts", "render"]

"""Shapes: the exact form of a JSON value that an Arrow type can hold and give back unchanged.

A shape checks a decoded JSON value (same keys, same order, same types) while turning it into what
``pyarrow.array`` takes, and turns what ``to_pylist`` returns back into the identical value. A value
that does not fit raises ``Mismatch``: the caller then keeps the frame's text instead, so a wrong or
outdated shape costs space, never data.

Conventions kept exact: an *optional* field may be absent (stored as null, dropped on the way back)
but not null; a *nullable* field is always present and may be null; ``Json`` holds any value as text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class Mismatch(Exception):
    """The value does not have this shape (cheap to raise: no message)."""


Prepare = Callable[[Any], Any]
Restore = Callable[[Any], Any]


class Shape:
    arrow_type: pa.DataType
    #: whether ``restore`` changes anything; when False, ``to_pylist`` output is already the value
    restores: bool = False

    def prepare(self, value: Any) -> Any:
        """Check ``value`` and return it in the form ``pyarrow.array`` takes; raise ``Mismatch``."""
        raise Mismatch

    def restore(self, value: Any) -> Any:
        return value


class _Leaf(Shape):
    python_type: type

    def prepare(self, value: Any) -> Any:
        if type(value) is not self.python_type:
            raise Mismatch
        return value


class Str(_Leaf):
    arrow_type = pa.string()
    python_type = str


class Bool(_Leaf):
    arrow_type = pa.bool_()
    python_type = bool


class Float(_Leaf):
    arrow_type = pa.float64()
    python_type = float


class Int(Shape):
    arrow_type = pa.int64()

    def prepare(self, value: Any) -> Any:
        if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
            raise Mismatch
        return value


class Json(Shape):
    """Any JSON value, kept as its text: for unions and objects whose keys vary."""

    arrow_type = pa.string()
    restores = True

    def prepare(self, value: Any) -> Any:
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            raise Mismatch from None

    def restore(self, value: Any) -> Any:
        return orjson.loads(value)


@dataclass(frozen=True)
class Field:
    name: str
    shape: Shape
    optional: bool = False  # may be absent (never null when present)
    nullable: bool = False  # always present, may be null


def field(name: str, shape: Shape, *, optional: bool = False, nullable: bool = False) -> Field:
    return Field(name, shape, optional, nullable)


class Struct(Shape):
    def __init__(self, *fields: Field) -> None:
        self.fields = fields
        self.names = tuple(f.name for f in fields)
        self.arrow_type = pa.struct([pa.field(f.name, f.shape.arrow_type) for f in fields])
        self._optional = frozenset(f.name for f in fields if f.optional)
        # a required Json field holds null as a null (it comes back as None either way)
        self._nullable = frozenset(f.name for f in fields if f.nullable or (isinstance(f.shape, Json) and not f.optional))
        self._by_name = {f.name: f.shape for f in fields}
        self._rebuild = any(not _passes_through(f.shape) for f in fields)
        self.restores = bool(self._optional) or any(f.shape.restores for f in fields)
        self._restoring = tuple((f.name, f.shape) for f in fields if f.shape.restores)
        self._optional_order = tuple(f.name for f in fields if f.optional)

    def prepare(self, value: Any) -> Any:
        if type(value) is not dict:
            raise Mismatch
        keys = tuple(value)
        if keys != self.names:
            self._check_subsequence(keys)
        out = {} if self._rebuild else value
        for name, item in value.items():
            if item is None:
                if name not in self._nullable:
                    raise Mismatch
                if self._rebuild:
                    out[name] = None
                continue
            prepared = self._by_name[name].prepare(item)
            if self._rebuild:
                out[name] = prepared
        return out

    def _check_subsequence(self, keys: tuple[str, ...]) -> None:
        """Present keys must keep the declared order; only optional fields may be missing."""
        position = 0
        names = self.names
        for key in keys:
            while position < len(names) and names[position] != key:
                if names[position] not in self._optional:
                    raise Mismatch
                position += 1
            if position == len(names):
                raise Mismatch
            position += 1
        for name in names[position:]:
            if name not in self._optional:
                raise Mismatch

    def restore(self, value: Any) -> Any:
        """In place: the row's dict becomes the frame's (an absent optional field was stored as null)."""
        if value is None:
            return None
        for name in self._optional_order:
            if value.get(name, 0) is None:
                del value[name]
        for name, shape in self._restoring:
            item = value.get(name)
            if item is not None:
                value[name] = shape.restore(item)
        return value


class List(Shape):
    def __init__(self, item: Shape, *, nullable_items: bool = False) -> None:
        self.item = item
        self.nullable_items = nullable_items
        self.arrow_type = pa.list_(item.arrow_type)
        self.restores = item.restores
        self._rebuild = not _passes_through(item)
        self._restores_in_place = isinstance(item, Struct)

    def prepare(self, value: Any) -> Any:
        if type(value) is not list:
            raise Mismatch
        prepare = self.item.prepare
        if self._rebuild:
            return [None if (v is None and self.nullable_items) else prepare(v) for v in value]
        for v in value:
            if v is None and self.nullable_items:
                continue
            prepare(v)
        return value

    def restore(self, value: Any) -> Any:
        if value is None:
            return None
        restore = self.item.restore
        if self._restores_in_place:  # a list from Arrow is ours to change: no second list per frame
            for v in value:
                restore(v)
            return value
        return [restore(v) for v in value]


class Map(Shape):
    """An object whose keys are data (``allMids``' coin -> mid), kept in its order."""

    restores = True

    def __init__(self, value: Shape) -> None:
        self.value = value
        self.arrow_type = pa.map_(pa.string(), value.arrow_type)

    def prepare(self, value: Any) -> Any:
        if type(value) is not dict:
            raise Mismatch
        prepare = self.value.prepare
        return [(k, prepare(v)) for k, v in value.items()]

    def restore(self, value: Any) -> Any:
        if value is None:
            return None
        restore = self.value.restore
        return {k: restore(v) for k, v in value}


def one_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``column`` as one array: its only chunk as it is where it has one. ``combine_chunks`` copies
    even then (a day's struct column of a busy coin's L4 rows: tens of milliseconds)."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def concat_arrays(arrays: list[pa.Array]) -> pa.Array:
    """``pa.concat_arrays``, without its copy of a single array."""
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


def column_values(shape: Shape, array: pa.Array) -> list[Any]:
    """The values of ``array`` (a column of ``shape``), exactly as ``restore`` gives them from
    ``to_pylist``, built column by column: one Python object per value and none per Arrow scalar.

    Arrow's ``to_pylist`` makes a scalar wrapper for every struct, list and string on its way to a
    Python value; here each leaf column converts in one call (a dictionary column converts its
    dictionary once), and each struct's dicts come from one comprehension compiled for its keys.
    An optional field no row has is never a key; one some rows lack is deleted from those rows only."""
    array = one_array(array)
    if isinstance(shape, Struct):
        return _struct_values(shape, array)
    if isinstance(shape, List):
        offsets = array.offsets.to_pylist()
        base = offsets[0]
        items = column_values(shape.item, array.values.slice(base, offsets[-1] - base))
        if base:
            offsets = [o - base for o in offsets]
        out = [items[a:b] for a, b in zip(offsets, offsets[1:])]
        return _with_nulls(out, array)
    if isinstance(shape, Map):
        offsets = array.offsets.to_pylist()
        base = offsets[0]
        keys = array.keys.slice(base, offsets[-1] - base).to_pylist()
        items = column_values(shape.value, array.items.slice(base, offsets[-1] - base))
        out = [dict(zip(keys[a - base : b - base], items[a - base : b - base])) for a, b in zip(offsets, offsets[1:])]
        return _with_nulls(out, array)
    if isinstance(array, pa.DictionaryArray):  # each distinct string made once
        distinct = array.dictionary.to_pylist()
        if array.null_count:
            values = [None if c is None else distinct[c] for c in array.indices.to_pylist()]
        else:
            values = list(map(distinct.__getitem__, _integers(array.indices)))
    elif len(array) and array.null_count == 0 and array.type in _BUFFER_FORMATS:
        values = _integers(array).tolist()
    else:
        values = array.to_pylist()
    if isinstance(shape, Json):
        loads = orjson.loads
        return [None if v is None else loads(v) for v in values]
    return values


_BUFFER_FORMATS = {pa.int64(): "q", pa.int32(): "i"}


def _integers(array: pa.Array) -> Any:
    """An integer column without nulls as a memoryview of its buffer: a list of its values comes
    out of it a third faster than from ``to_pylist`` (a book has 40 order counts and 80 codes)."""
    format_ = _BUFFER_FORMATS.get(array.type)
    if format_ is None or array.null_count or not len(array):
        return array.to_pylist()
    return memoryview(array.buffers()[1]).cast(format_)[array.offset : array.offset + len(array)]


@functools.lru_cache(maxsize=256)
def plain_type(arrow_type: pa.DataType) -> pa.DataType:
    """``arrow_type`` with its dictionary-encoded strings as plain strings (what the shape declares)."""
    if pa.types.is_dictionary(arrow_type):
        return arrow_type.value_type
    if pa.types.is_struct(arrow_type):
        return pa.struct([f.with_type(plain_type(f.type)) for f in arrow_type])
    if pa.types.is_list(arrow_type):
        return pa.list_(arrow_type.value_field.with_type(plain_type(arrow_type.value_type)))
    return arrow_type


def _with_nulls(values: list[Any], array: pa.Array) -> list[Any]:
    if array.null_count:
        for i in pc.indices_nonzero(array.is_null()).to_pylist():
            values[i] = None
    return values


def _struct_values(shape: Struct, array: pa.Array) -> list[Any]:
    names: list[str] = []
    columns: list[Any] = []
    tables: list[list[Any] | None] = []  # a dictionary column's distinct values, indexed by its codes
    partial: list[tuple[str, pa.Array]] = []
    for f, child in zip(shape.fields, array.flatten()):  # children with the parent's nulls merged in
        if f.optional and child.null_count == len(child) and len(child):
            continue  # absent in every row: not even a key
        names.append(f.name)
        column, table = _leaf_codes(f.shape, child)
        if column is None:
            column = column_values(f.shape, child)
        columns.append(column)
        tables.append(table)
        if f.optional and child.null_count:
            partial.append((f.name, child))
    if names:
        # lists, not generators: a generator per struct made traced memory grow with the archive
        # on Python 3.11 (test_memory_stays_bounded_however_many_parts)
        indexed = tuple([table is not None for table in tables])
        rows = _dict_builder(tuple(names), indexed)(*columns, *[t for t in tables if t is not None])
    else:
        rows = [{} for _ in range(len(array))]
    for name, child in partial:  # absent in some rows: their key goes, the others keep their order
        for i in pc.indices_nonzero(child.is_null()).to_pylist():
            del rows[i][name]
    return _with_nulls(rows, array)


def _leaf_codes(shape: Shape, array: pa.Array) -> tuple[Any, list[Any] | None]:
    """A leaf column without nulls as ``(codes, distinct values)`` (a dictionary column) or
    ``(values, None)`` (an integer column, a memoryview): the struct's comprehension iterates the
    buffer and indexes the distinct values itself, with no list of values between (that list cost
    a tenth of a book's dicts). ``(None, None)``: convert with ``column_values``."""
    if isinstance(shape, (Struct, List, Map, Json)) or array.null_count or not len(array):
        return None, None
    if isinstance(array, pa.DictionaryArray):
        codes = array.indices
        if codes.type in _BUFFER_FORMATS:
            return _integers(codes), array.dictionary.to_pylist()
        return None, None
    if array.type in _BUFFER_FORMATS:
        return _integers(array), None
    return None, None


_BUILDERS: dict[tuple[tuple[str, ...], tuple[bool, ...]], Callable[..., list[dict[str, Any]]]] = {}


def _dict_builder(names: tuple[str, ...], indexed: tuple[bool, ...]) -> Callable[..., list[dict[str, Any]]]:
    """``(column, column, ..., table, ...) -> [dict, ...]`` for these keys: one comprehension, keys as
    constants; an ``indexed`` column holds codes into its table (the tables follow the columns)."""
    builder = _BUILDERS.get((names, indexed))
    if builder is None:
        args = [f"c{i}" for i in range(len(names))] + [f"t{i}" for i, x in enumerate(indexed) if x]
        items = ", ".join(f"{name!r}: {f't{i}[v{i}]' if x else f'v{i}'}" for i, (name, x) in enumerate(zip(names, indexed)))
        loop = ", ".join(f"v{i}" for i in range(len(names)))
        columns = ", ".join(f"c{i}" for i in range(len(names)))
        source = f"def build({', '.join(args)}):\n    return [{{{items}}} for {loop}, in zip({columns})]\n"
        namespace: dict[str, Any] = {}
        exec(source, namespace)  # noqa: S102 - source built here from the shape's field names
        builder = _BUILDERS[(names, indexed)] = namespace["build"]
    return builder


def _passes_through(shape: Shape) -> bool:
    """Whether ``prepare`` returns its input unchanged, so containers need not be rebuilt."""
    if isinstance(shape, (Json, Map)):
        return False
    if isinstance(shape, Struct):
        return not shape._rebuild
    if isinstance(shape, List):
        return not shape._rebuild
    return True


# --- compiled checks ----------------------------------------------------------------------------------
#
# ``prepare`` walks a frame with a method call per value: most of a recorder's CPU. For shapes whose
# values pass through unchanged (no Json, no Map), the same checks compile to one Python function
# with the type tests inlined; anything else keeps the generic path. Same contract, same Mismatch.

_ABSENT = object()
_MAX_VARIANTS = 64  # key orders accepted per struct: every subsequence of its optional fields


def compile_prepare(shape: Shape) -> Prepare:
    """A faster ``shape.prepare`` (identical results), or ``shape.prepare`` where not worth it."""
    if not _passes_through(shape) or not _compilable(shape):
        return shape.prepare
    namespace: dict[str, Any] = {"Mismatch": Mismatch, "_ABSENT": _ABSENT, "_MIN": _INT64_MIN, "_MAX": _INT64_MAX}
    lines: list[str] = []
    entry = _emit(shape, namespace, lines, [0])
    exec("\n".join(lines), namespace)  # noqa: S102 - source built here from the shape, no input
    return namespace[entry]  # type: ignore[no-any-return]


def _compilable(shape: Shape) -> bool:
    if isinstance(shape, Struct):
        optional = sum(1 for f in shape.fields if f.optional)
        return 2**optional <= _MAX_VARIANTS and all(_compilable(f.shape) for f in shape.fields)
    if isinstance(shape, List):
        return _compilable(shape.item)
    return isinstance(shape, (Str, Int, Bool, Float))


def _check(shape: Shape, var: str, namespace: dict[str, Any], lines: list[str], counter: list[int]) -> str:
    """A boolean expression that is true when ``var`` does NOT fit ``shape``."""
    if isinstance(shape, Int):
        return f"(type({var}) is not int or not _MIN <= {var} <= _MAX)"
    if isinstance(shape, (Str, Bool, Float)):
        return f"type({var}) is not {shape.python_type.__name__}"  # type: ignore[attr-defined]
    name = _emit(shape, namespace, lines, counter)
    return f"{name}({var}) is None"


def _emit(shape: Shape, namespace: dict[str, Any], lines: list[str], counter: list[int]) -> str:
    counter[0] += 1
    name = f"_prepare_{counter[0]}"
    body: list[str] = []
    if isinstance(shape, List):
        body.append("    if type(value) is not list: raise Mismatch")
        body.append("    for item in value:")
        test = _check(shape.item, "item", namespace, lines, counter)
        if shape.nullable_items:
            body.append(f"        if item is not None and {test}: raise Mismatch")
        else:
            body.append(f"        if {test}: raise Mismatch")
    elif isinstance(shape, Struct):
        variants = _key_orders(shape)
        namespace[f"{name}_keys"] = variants
        body.append(f"    if type(value) is not dict or tuple(value) not in {name}_keys: raise Mismatch")
        for f in shape.fields:
            var = "v"
            get = f"value.get({f.name!r}, _ABSENT)" if f.optional else f"value[{f.name!r}]"
            test = _check(f.shape, var, namespace, lines, counter)
            body.append(f"    v = {get}")
            if f.optional:
                body.append(f"    if v is not _ABSENT and (v is None or {test}): raise Mismatch")
            elif f.nullable:
                body.append(f"    if v is not None and {test}: raise Mismatch")
            else:
                body.append(f"    if {test}: raise Mismatch")
    lines.append(f"def {name}(value):")
    lines.extend(body)
    lines.append("    return value")
    return name


def _key_orders(shape: Struct) -> frozenset[tuple[str, ...]]:
    optional = [f.name for f in shape.fields if f.optional]
    orders = set()
    for mask in range(2 ** len(optional)):
        left_out = {n for i, n in enumerate(optional) if mask >> i & 1}
        orders.add(tuple(f.name for f in shape.fields if f.name not in left_out))
    return frozenset(orders)

"""The archive's on-disk contract (format version 1): partition paths, part names, file metadata.

Pure: builds and parses names; the recorder and replay do the file work.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:  # Arrow is imported where parts are written, not by everything that names a path
    import pyarrow as pa

FORMAT_VERSION = 1
SCHEMA_VERSION = 1
ALL = "_all"  # the coin partition of streams that are not per coin
EVENTS_CHANNEL = "_events"
META_CHANNEL = "_meta"
JOURNAL_DIR = "_journal"
IMPORTS_DIR = "_imports"  # one marker a source file imported whole (and one a set of fills paired across files)

_PART = re.compile(r"part-(?P<first>\d+)-(?P<session>[A-Za-z0-9_]+)-(?P<n>\d+)\.parquet")
_SESSION = re.compile(r"[A-Za-z0-9_]{1,64}")


class ArchiveError(Exception):
    """Something wrong with an archive or a path; the message says what to do."""


class ArchiveFormatError(ArchiveError):
    """A part written by a format this version does not read."""


def escape(value: str) -> str:
    """Percent-encode a partition value so any coin (``PURR/USDC``, ``xyz:HOOD``) is one safe path part."""
    escaped = quote(value, safe="@-_~")
    return escaped.replace(".", "%2E") if escaped.strip(".") == "" else escaped


def unescape(value: str) -> str:
    return unquote(value)


def utc_date(recv_ns: int) -> str:
    return datetime.fromtimestamp(recv_ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%d")


def partition_dir(channel: str, coin: str, date: str) -> str:
    """``channel=<type>/coin=<escaped>/date=<YYYY-MM-DD>``, relative to the archive root."""
    return f"channel={escape(channel)}/coin={escape(coin)}/date={date}"


@dataclass(frozen=True, order=True)
class PartName:
    first_recv_ns: int
    session: str
    n: int

    def __str__(self) -> str:
        return f"part-{self.first_recv_ns:019d}-{self.session}-{self.n:06d}.parquet"

    @property
    def temporary(self) -> str:
        """The name a part has while being written: hidden, and not matched by ``*.parquet``."""
        return f".{self}.tmp"


def parse_part_name(name: str) -> PartName | None:
    match = _PART.fullmatch(name)
    if not match:
        return None
    return PartName(int(match["first"]), match["session"], int(match["n"]))


def parse_partition(relative_dir: str) -> dict[str, str] | None:
    """``{"channel", "coin", "date"}`` from a partition path, unescaped; ``None`` if it is not one."""
    parts = relative_dir.strip("/").split("/")
    if len(parts) != 3:
        return None
    out = {}
    for key, part in zip(("channel", "coin", "date"), parts):
        prefix = f"{key}="
        if not part.startswith(prefix):
            return None
        out[key] = unescape(part[len(prefix) :])
    return out


def session_id(now_ns: int, random_hex: str) -> str:
    """A sortable, path-safe session id: UTC start time and some randomness."""
    stamp = datetime.fromtimestamp(now_ns // 1_000_000_000, tz=timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}_{random_hex}"


def check_session(session: str) -> str:
    if not _SESSION.fullmatch(session):
        raise ArchiveError(f"bad session id {session!r}: use letters, digits and _ only (at most 64)")
    return session


# --- file metadata -------------------------------------------------------------------------------

_KEYS = ("format_version", "schema_version", "session", "channel", "subscriptions", "source_url", "hlarchive_version")


def part_metadata(
    *,
    session: str,
    channel: str,
    subscriptions: str,
    source_url: str,
    hlarchive_version: str,
) -> dict[bytes, bytes]:
    values = {
        "format_version": str(FORMAT_VERSION),
        "schema_version": str(SCHEMA_VERSION),
        "session": session,
        "channel": channel,
        "subscriptions": subscriptions,
        "source_url": source_url,
        "hlarchive_version": hlarchive_version,
    }
    return {f"hlarchive.{k}".encode(): v.encode() for k, v in values.items()}


def read_metadata(metadata: Mapping[bytes, bytes] | None, where: str) -> dict[str, str]:
    """The hlarchive keys of a part's metadata, checked: an unknown format version is refused."""
    found = {k.decode()[len("hlarchive.") :]: v.decode() for k, v in (metadata or {}).items() if k.startswith(b"hlarchive.")}
    version = found.get("format_version")
    if version is None:
        raise ArchiveFormatError(f"{where} is not an hlarchive part (no hlarchive.format_version in its metadata)")
    if version != str(FORMAT_VERSION):
        raise ArchiveFormatError(
            f"{where} has archive format version {version}, this hlarchive reads version {FORMAT_VERSION}: upgrade hlarchive"
        )
    return found


# --- how parts are written ---------------------------------------------------------------------------


def parquet_options(schema: pa.Schema, row_group_rows: int = 16_384, compression_level: int | None = None) -> dict[str, Any]:
    """``pyarrow.parquet.write_table`` options of every part: zstd, integers delta-encoded, the rest
    dictionary-encoded. One home, so parts written by the recorder and by compaction match."""
    delta, dictionary = _encodings(schema)
    return {
        "compression": "zstd",
        "compression_level": compression_level,
        "row_group_size": row_group_rows,
        "use_dictionary": dictionary,
        "column_encoding": {path: "DELTA_BINARY_PACKED" for path in delta},
    }


@functools.lru_cache(maxsize=256)
def _encodings(schema: pa.Schema) -> tuple[tuple[str, ...], list[str]]:
    """Integer columns (times, sequence numbers, ids) delta-encoded; the rest dictionary-encoded.

    Receive times and sequence numbers grow steadily, so deltas take a few bits where plain
    64-bit values take eight bytes: a third of a bbo row's size.
    """
    delta: list[str] = []
    other: list[str] = []
    for f in schema:
        _leaves(f.type, f.name, delta, other)
    return tuple(delta), other


def _leaves(arrow_type: pa.DataType, path: str, delta: list[str], other: list[str]) -> None:
    """Parquet's leaf column paths, as pyarrow names them (``a.list.element.b``)."""
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        for i in range(arrow_type.num_fields):
            child = arrow_type.field(i)
            _leaves(child.type, f"{path}.{child.name}", delta, other)
    elif pa.types.is_map(arrow_type):
        _leaves(arrow_type.key_type, f"{path}.key_value.key", delta, other)
        _leaves(arrow_type.item_type, f"{path}.key_value.value", delta, other)
    elif pa.types.is_list(arrow_type):
        _leaves(arrow_type.value_type, f"{path}.list.element", delta, other)
    elif pa.types.is_int64(arrow_type):
        delta.append(path)
    else:
        other.append(path)



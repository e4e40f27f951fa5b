"""JSON lines of websocket frames as other collectors write them: bare, or after a timestamp.

Accepted prefixes: epoch nanoseconds, microseconds, milliseconds or seconds (told apart by size),
or an ISO-8601 time, separated from the JSON by whitespace, a comma or a tab. Pure: no files here.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import orjson

_PREFIX = re.compile(rb"^\s*([^\s{\[,]+)[\s,]+(?=[{\[])")


class LineError(ValueError):
    """A line that is not a frame; the message says what is wrong with it."""


def parse_timestamp_ns(text: str) -> int:
    """An epoch number (s, ms, us or ns by magnitude) or an ISO-8601 time, as UTC nanoseconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        value = float(text) if "." in text else int(text)
        if value >= 1e17:
            return int(value)
        if value >= 1e14:
            return int(value * 1_000)
        if value >= 1e11:
            return int(value * 1_000_000)
        return int(value * 1_000_000_000)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LineError(f"{text!r} is neither an epoch number nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def parse_line(line: bytes) -> tuple[int | None, Any]:
    """``(recv_ns or None, frame)`` of one line."""
    recv_ns = None
    match = _PREFIX.match(line)
    if match:
        recv_ns = parse_timestamp_ns(match.group(1).decode("ascii", "replace"))
        line = line[match.end() :]
    try:
        return recv_ns, orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineError(f"not JSON: {exc}") from None

"""Asking a node for its L4 snapshot: ``fileSnapshot`` at its local info server, then read the file."""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from typing import Any

import orjson

from schemas.l4.node import snapshot_request

DEFAULT_NODE_INFO = "http://127.0.0.1:3001"


class SnapshotUnavailable(Exception):
    """The node info server could not be asked, or wrote nothing readable (the message says which)."""


def request_snapshot(node_info: str, timeout_s: float = 120.0) -> Any:
    """The parsed ``[height, [[coin, [bids, asks]], ...]]`` the node wrote for us."""
    handle, out_path = tempfile.mkstemp(prefix="hlarchive-l4-", suffix=".json")
    os.close(handle)
    try:
        body = orjson.dumps(snapshot_request(out_path))
        request = urllib.request.Request(node_info.rstrip("/") + "/info", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                answer.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise SnapshotUnavailable(f"no node info server at {node_info} ({reason})") from None
        try:
            with open(out_path, "rb") as written:
                return orjson.loads(written.read())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise SnapshotUnavailable(f"the node at {node_info} wrote no readable snapshot ({exc})") from None
    finally:
        try:
            os.unlink(out_path)
        except OSError:
            pass

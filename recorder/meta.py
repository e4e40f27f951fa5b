"""Metadata snapshots: the info endpoint's ``meta`` and ``spotMeta``, over the stdlib HTTP client.

They let an archive resolve ``@N`` spot coins and size decimals long after the fact.
"""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson


def info_url(ws_url: str) -> str:
    """``wss://api.hyperliquid.xyz/ws`` -> ``https://api.hyperliquid.xyz/info`` (the SDK's mapping, reversed)."""
    parts = urlsplit(ws_url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    path = parts.path[: -len("/ws")] if parts.path.endswith("/ws") else parts.path.rstrip("/")
    return urlunsplit((scheme, parts.netloc, f"{path}/info", "", ""))


def fetch_info(url: str, info_type: str, timeout_s: float = 10.0) -> Any:
    request = urllib.request.Request(
        url, data=orjson.dumps({"type": info_type}), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - the user's endpoint
        return orjson.loads(response.read())

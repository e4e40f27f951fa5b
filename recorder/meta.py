"""Metadata snapshots from the info endpoint, over the stdlib HTTP client.

They let an archive resolve ``@N`` spot coins and size decimals long after the fact, and let
``hlarchive serve`` answer what clients ask at start (markets, asset contexts, builder dexs).
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


SNAPSHOT_KINDS = ("perpDexs", "meta", "spotMeta", "metaAndAssetCtxs", "spotMetaAndAssetCtxs")
PER_DEX_KINDS = ("meta", "metaAndAssetCtxs")  # also taken for every builder dex, as "meta:<dex>"


def snapshot_requests(perp_dexs: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(kind, request)`` of the per-dex snapshots, from a ``perpDexs`` answer (``[null, {"name": ...}, ...]``)."""
    names = [d["name"] for d in perp_dexs or [] if isinstance(d, dict) and isinstance(d.get("name"), str)]
    return [(f"{kind}:{name}", {"type": kind, "dex": name}) for name in names for kind in PER_DEX_KINDS]


def fetch_info(url: str, info_type: str | dict[str, Any], timeout_s: float = 10.0) -> Any:
    body = {"type": info_type} if isinstance(info_type, str) else info_type
    request = urllib.request.Request(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - the user's endpoint
        return orjson.loads(response.read())

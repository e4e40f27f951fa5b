"""A minimal test client built on the sans-I/O protocol frames of ``schemas``."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from schemas.protocol import DataFrame, ServerFrame, parse_server_frame, ping_frame, subscribe_frame, unsubscribe_frame


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str) -> Client:
        return cls(await connect(url, ping_interval=None, close_timeout=0.5))

    async def subscribe(self, sub: dict[str, Any]) -> None:
        await self.ws.send(subscribe_frame(sub))

    async def unsubscribe(self, sub: dict[str, Any]) -> None:
        await self.ws.send(unsubscribe_frame(sub))

    async def ping(self) -> None:
        await self.ws.send(ping_frame())

    async def next(self, timeout: float = 5.0) -> ServerFrame:
        return parse_server_frame(await asyncio.wait_for(self.ws.recv(), timeout))

    async def data(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next ``n`` data frames (anything else is skipped)."""
        out: list[dict[str, Any]] = []
        while len(out) < n:
            frame = await self.next(timeout)
            if isinstance(frame, DataFrame):
                out.append(frame.message)
        return out

    async def close(self) -> None:
        await self.ws.close()

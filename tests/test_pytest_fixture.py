"""The README's worked example: testing a tiny strategy deterministically with the hl_replay fixture."""

from __future__ import annotations

from pathlib import Path

import orjson


class MidCrossBot:
    """Buys when the BTC mid rises above its moving average, sells when it falls below."""

    def __init__(self, window: int = 5) -> None:
        self.window, self.mids, self.position, self.trades = window, [], 0, []

    def on_book(self, msg: dict) -> None:
        bids, asks = msg["data"]["levels"]
        mid = (float(bids[0]["px"]) + float(asks[0]["px"])) / 2
        self.mids.append(mid)
        if len(self.mids) <= self.window:
            return
        average = sum(self.mids[-self.window - 1 : -1]) / self.window
        if mid > average and self.position <= 0:
            self.position = 1
            self.trades.append(("buy", mid))
        elif mid < average and self.position >= 0:
            self.position = -1
            self.trades.append(("sell", mid))


def book(t: int, bid: str, ask: str) -> dict:
    return {"channel": "l2Book", "data": {"coin": "BTC", "time": t, "levels": [[{"px": bid, "sz": "1.0", "n": 1}], [{"px": ask, "sz": "1.0", "n": 1}]]}}


def test_bot_from_a_list_of_frames(hl_replay):
    frames = [book(i, str(100 + i % 7), str(101 + i % 7)) for i in range(30)]
    bot = MidCrossBot()
    replay = hl_replay(frames)
    replay.subscribe({"type": "l2Book", "coin": "BTC"}, bot.on_book)
    summary = replay.run()
    assert summary.total == 30
    assert bot.trades[:2] == [("buy", 105.5), ("sell", 100.5)]  # mids 100.5 .. 106.5, period 7


def test_bot_from_timestamped_json_lines_is_deterministic(hl_replay, tmp_path: Path):
    lines = tmp_path / "btc.jsonl"
    lines.write_bytes(b"".join(b"2026-01-01T00:00:%02dZ " % i + orjson.dumps(book(i, str(100 + (i * 3) % 11), str(101 + (i * 3) % 11))) + b"\n" for i in range(40)))
    runs = []
    for _ in range(2):
        bot = MidCrossBot()
        replay = hl_replay(lines)
        replay.subscribe({"type": "l2Book", "coin": "BTC"}, bot.on_book)
        replay.run()
        runs.append(bot.trades)
    assert runs[0] == runs[1] and len(runs[0]) > 3

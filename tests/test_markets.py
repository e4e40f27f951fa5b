"""Recording the whole market: ``--coin all``, ``--top``, listings followed while recording."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from recorder.meta import fetch_info, info_url
from recorder.planning.markets import Market, Selection, list_markets, perp_markets, spot_markets
from recorder.planning.plan import MarketPlan, RecorderError
from replay.cli import main
from replay.serving.server import HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource

from .recording import archived, events, record


def fetcher(server: HyperliquidServer) -> Any:
    url = info_url(server.ws_url)
    return lambda request: fetch_info(url, request)


def recorded_coins(root: Path, channel: str) -> set[str]:
    return {m["data"]["coin"] if channel != "trades" else m["data"][0]["coin"] for key, ms in archived(root).items() for m in ms if m["channel"] == channel}


# --- choosing, without a network -------------------------------------------------------------------


def test_selection_takes_words_named_coins_top_exclude_and_dexes():
    markets = [
        Market("BTC", "perp", "", 900.0),
        Market("ETH", "perp", "", 500.0),
        Market("DOGE", "perp", "", 10.0),
        Market("xyz:HOOD", "perp", "xyz", 700.0),
        Market("PURR/USDC", "spot", "", 50.0),
        Market("@107", "spot", "", 800.0),
    ]
    assert Selection(("all",)).choose(markets) == ["BTC", "@107", "ETH", "PURR/USDC", "DOGE"]
    assert Selection(("all",), dexes=("all",)).choose(markets)[:3] == ["BTC", "@107", "xyz:HOOD"]
    assert Selection(("all-perps",), dexes=("xyz",), top=2).choose(markets) == ["BTC", "xyz:HOOD"]
    assert Selection(("all-spot",)).choose(markets) == ["@107", "PURR/USDC"]
    assert Selection(("all-perps", "kPEPE"), exclude=("ETH",)).choose(markets) == ["kPEPE", "BTC", "DOGE"]


def test_delisted_markets_are_skipped():
    meta = {"universe": [{"name": "BTC", "szDecimals": 5}, {"name": "OLD", "szDecimals": 0, "isDelisted": True}]}
    assert [m.coin for m in perp_markets([meta, [{"dayNtlVlm": "1.0"}, {"dayNtlVlm": "9.0"}]], "")] == ["BTC"]
    spot = {"universe": [{"name": "PURR/USDC", "index": 0}, {"name": "@9", "index": 9, "isDelisted": True}], "tokens": []}
    assert [m.coin for m in spot_markets([spot, [{"coin": "PURR/USDC", "dayNtlVlm": "3"}, {"coin": "@9"}]])] == ["PURR/USDC"]


def test_a_plan_past_the_limits_is_refused_with_the_numbers_and_what_to_drop():
    coins = [{"name": f"C{i}", "szDecimals": 2} for i in range(400)]
    answers = {"perpDexs": [None], "metaAndAssetCtxs": [{"universe": coins}, [{"dayNtlVlm": str(400 - i)} for i in range(400)]]}
    plan = MarketPlan(Selection(("all-perps",)), ["l2Book", "trades", "bbo"], [], [], "1m", lambda r: answers[r["type"]])
    with pytest.raises(RecorderError) as error:
        plan.resolve_at_start()
    text = str(error.value)
    assert "400 markets x 3 channel(s) = 1200 subscriptions" in text and "--top 333" in text
    fitted = plan.resolve()  # while recording: the most traded set that fits, the rest named
    assert len(fitted) == 999 and plan.left_out == [f"C{i}" for i in range(333, 400)]


# --- against simulate -----------------------------------------------------------------------------------


@pytest.fixture
def simulator():
    market = SyntheticSource(seed=4, tick_ms=100)
    with ServerThread(lambda: HyperliquidServer(market, rate=20)) as server:
        yield server


def test_coin_all_records_every_market_the_simulator_lists(simulator, tmp_path):
    listed = {m.coin for m in list_markets(fetcher(simulator), Selection(("all",), dexes=("all",)))}
    assert listed == set(simulator.source.coins)  # perps, spot and the builder dex's
    result = CliRunner().invoke(main, ["record", "--url", simulator.ws_url, "--coin", "all", "--dex", "all", "--channel", "bbo", "--duration", "2", "--no-meta", "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert recorded_coins(tmp_path, "bbo") == listed


def test_top_n_records_the_most_traded(simulator, tmp_path):
    time.sleep(0.5)  # some volume
    answers: dict[str, Any] = {}
    fetch = fetcher(simulator)

    def remembering(request: dict[str, Any]) -> Any:  # the plan and the check read the same answers
        key = orjson.dumps(request).decode()
        answers.setdefault(key, fetch(request))
        return answers[key]

    plan = MarketPlan(Selection(("all",), top=3), ["bbo"], [], [], "1m", remembering)
    chosen = {s.coin for s in plan.resolve_at_start()}
    meta, ctxs = remembering({"type": "metaAndAssetCtxs"})
    spot, spot_ctxs = remembering({"type": "spotMetaAndAssetCtxs"})
    volumes = {a["name"]: float(c["dayNtlVlm"]) for a, c in zip(meta["universe"], ctxs)}
    volumes.update({c["coin"]: float(c["dayNtlVlm"]) for c in spot_ctxs})
    assert chosen == set(sorted(volumes, key=lambda c: (-volumes[c], c))[:3])
    result = CliRunner().invoke(main, ["record", "--url", simulator.ws_url, "--coin", "all", "--top", "3", "--channel", "bbo", "--duration", "1.5", "--no-meta", "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    recorded = recorded_coins(tmp_path, "bbo")
    assert len(recorded) == 3 and recorded <= set(volumes)


def test_a_market_listed_mid_run_is_recorded_and_a_delisted_one_dropped(tmp_path):
    market = SyntheticSource(seed=4, tick_ms=50, coins=["BTC", "ETH"], list_every_s=1.0)
    with ServerThread(lambda: HyperliquidServer(market, rate=20)) as server:
        selection = Selection(("all-perps",))
        plan = MarketPlan(selection, ["bbo"], [], [], "1m", fetcher(server))
        subs = plan.resolve_at_start()
        assert {s.coin for s in subs} == {"BTC", "ETH"}
        server_thread_call = lambda: market.delist("ETH")  # noqa: E731
        import threading

        threading.Timer(1.2, server_thread_call).start()
        record(tmp_path, server.ws_url, [s.to_dict() for s in subs], 3.5, market_plan=plan, market_refresh_s=0.5)
    kinds = [(kind, (detail or {}).get("coin")) for kind, _, detail, _ in events(tmp_path)]
    assert ("subscribed_new_market", "NEW1") in kinds  # listed at 1 s, subscribed at the next refresh
    assert ("unsubscribed_delisted", "ETH") in kinds
    coins = recorded_coins(tmp_path, "bbo")
    assert {"BTC", "ETH", "NEW1"} <= coins
    new_frames = [m for ms in archived(tmp_path).values() for m in ms if m["channel"] == "bbo" and m["data"]["coin"] == "NEW1"]
    assert len(new_frames) >= 5


def test_coin_all_without_an_info_endpoint_is_one_line_naming_coin_lists(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "replay.cli", "record", "--url", "ws://127.0.0.1:9/ws", "--coin", "all", "--duration", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot list markets" in lines[0] and "--coin BTC --coin ETH" in lines[0]


def test_an_over_limit_plan_is_refused_before_connecting(tmp_path):
    many = [f"C{i}" for i in range(400)]
    market = SyntheticSource(seed=1, coins=many)
    with ServerThread(lambda: HyperliquidServer(market, rate=1)) as server:
        result = CliRunner().invoke(main, ["record", "--url", server.ws_url, "--coin", "all", "--duration", "1", "--out", str(tmp_path)])
        connections = server.stats["connections"]
    assert result.exit_code == 2 and "400 markets x 3 channel(s) = 1200 subscriptions" in result.output and "--top 333" in result.output
    assert connections == 0 and not any(tmp_path.glob("channel=*"))


def test_the_market_words_work_in_the_toml_config(simulator, tmp_path):
    config = tmp_path / "rec.toml"
    config.write_text(f'url = "{simulator.ws_url}"\ncoins = ["all-perps"]\ntop = 2\nexclude = ["BTC"]\nchannels = ["bbo"]\nno_meta = true\nduration = 1.5\nout = "{tmp_path / "a"}"\n')
    result = CliRunner().invoke(main, ["record", "--config", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    coins = recorded_coins(tmp_path / "a", "bbo")
    assert len(coins) == 2 and "BTC" not in coins and not any(c.startswith("@") or "/" in c or ":" in c for c in coins)

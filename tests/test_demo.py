from __future__ import annotations

from click.testing import CliRunner

from replay import Replay
from replay.analysis.views import open_archive
from replay.cli import main


def test_demo_records_every_channel_then_lists_queries_and_says_what_next(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--seconds", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "hlarchive replay" in result.output and "total:" in result.output and "(4 rows)" in result.output
    channels = {m["channel"] for m in Replay(out).messages()}
    assert channels >= {
        "allMids", "l2Book", "trades", "bbo", "candle", "activeAssetCtx", "activeSpotAssetCtx", "activeAssetData", "user",
        "userFills", "orderUpdates", "userFundings", "userNonFundingLedgerUpdates", "webData2", "notification",
        "userTwapSliceFills", "userTwapHistory",
    }
    con = open_archive(out)
    assert con.sql("select count(distinct coin) from trades").fetchall() == [(4,)]
    assert con.sql("select count(*) from events where kind = 'subscribed'").fetchall() == [(31,)]

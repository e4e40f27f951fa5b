from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import ArchiveFormatError, escape, parse_part_name, parse_partition, partition_dir, unescape
from schemas.layout import PartName, part_metadata, read_metadata, utc_date


@given(st.text(min_size=1))
def test_any_coin_escapes_to_one_safe_path_part_and_back(coin):
    escaped = escape(coin)
    assert "/" not in escaped and escaped not in (".", "..") and ":" not in escaped
    assert unescape(escaped) == coin


def test_partition_paths():
    path = partition_dir("trades", "PURR/USDC", "2026-01-31")
    assert path == "channel=trades/coin=PURR%2FUSDC/date=2026-01-31"
    assert parse_partition(path) == {"channel": "trades", "coin": "PURR/USDC", "date": "2026-01-31"}
    assert partition_dir("l2Book", "xyz:HOOD", "2026-01-31") == "channel=l2Book/coin=xyz%3AHOOD/date=2026-01-31"


def test_part_names_sort_by_time_and_parse_back():
    a, b = PartName(5, "s_1", 2), PartName(40, "s_1", 1)
    assert str(a) < str(b)
    assert parse_part_name(str(a)) == a
    assert parse_part_name(a.temporary) is None  # a part being written is never taken for a part


def test_utc_date_uses_utc():
    assert utc_date(1_751_414_399_999_999_999) == "2025-07-01"
    assert utc_date(1_751_414_400_000_000_000) == "2025-07-02"


def test_metadata_round_trip_and_unknown_version():
    md = part_metadata(session="s", channel="trades", subscriptions="[]", source_url="u", hlarchive_version="0")
    assert read_metadata(md, "p")["session"] == "s"
    with pytest.raises(ArchiveFormatError, match="upgrade hlarchive"):
        read_metadata({**md, b"hlarchive.format_version": b"9"}, "p")
    with pytest.raises(ArchiveFormatError, match="not an hlarchive part"):
        read_metadata({}, "p")

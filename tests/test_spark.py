"""Engines past one machine: Apache Spark (PySpark, local mode) reads the archive tree with its own
Parquet reader and hive partition discovery, and counts and sums as DuckDB does, for every channel.

Marked ``spark``: it needs Java and PySpark, which ``.ci/run`` installs; run with ``-m spark``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from replay.analysis.views import open_archive

from .archives import make_archive
from .recording import EVERY_CHANNEL

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail("the spark tests need Java and PySpark: pip install pyspark (.ci/run installs both)")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("hlarchive-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.caseSensitive", "true")  # candles carry both `t` and `T`
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spark")
    make_archive(root, EVERY_CHANNEL + [{"type": "trades", "coin": "PURR/USDC"}], 30, flush_rows=25)
    return root


def test_spark_reads_every_channel_with_the_same_counts_as_duckdb(spark, archive):
    con = duckdb.connect()
    channels = sorted(p.name.removeprefix("channel=") for p in archive.glob("channel=*"))
    assert len(channels) >= 15
    for channel in channels:
        df = spark.read.option("basePath", str(archive)).parquet(str(archive / f"channel={channel}"))
        duck = con.execute(
            f"select coin, date::VARCHAR, count(*), sum(seq), sum(recv_ns % 1000003) from read_parquet('{archive}/channel={channel}/*/*/*.parquet', "
            "hive_partitioning = true, union_by_name = true) group by 1, 2 order by 1, 2"
        ).fetchall()
        rows = df.selectExpr("coin", "cast(date as string) as date", "seq", "pmod(recv_ns, 1000003) as r").groupBy("coin", "date").agg(
            {"*": "count", "seq": "sum", "r": "sum"}
        )
        sparks = sorted((r["coin"], r["date"], r["count(1)"], r["sum(seq)"], r["sum(r)"]) for r in rows.collect())
        assert [tuple(row) for row in duck] == sparks, channel


def test_spark_prunes_and_decodes_coin_partitions(spark, archive):
    df = spark.read.option("basePath", str(archive)).parquet(str(archive / "channel=trades"))
    assert sorted(r["coin"] for r in df.select("coin").distinct().collect()) == ["ETH", "PURR/USDC"]  # %2F decoded
    duck = open_archive(archive).execute("select count(*), sum(len(data)) from archive_trades where coin = 'PURR/USDC'").fetchall()[0]
    spark_rows = df.where("coin = 'PURR/USDC'").selectExpr("count(*) as n", "sum(size(data)) as trades").collect()[0]
    assert (spark_rows["n"], spark_rows["trades"]) == duck

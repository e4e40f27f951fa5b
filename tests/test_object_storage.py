"""Archives on object storage: a real S3 server on loopback (SeaweedFS), ``sync``, every reader, ``record --upload``."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner

from replay import Replay
from replay.analysis.inventory import summarize, verify
from replay.analysis.sync import sync
from replay.analysis.views import open_archive
from replay.cli import main
from replay.serving.archive_info import ArchiveInfo
from replay.serving.archive_source import ArchiveSource
from replay.serving.server import HyperliquidServer, ServerThread
from replay.serving.synthetic_source import SyntheticSource

from .archives import make_archive
from .recording import archived, record
from .s3server import BUCKET, OutageProxy

SUBS = [
    {"type": "l2Book", "coin": "BTC"},
    {"type": "trades", "coin": "BTC"},
    {"type": "trades", "coin": "PURR/USDC"},
    {"type": "bbo", "coin": "ETH"},
    {"type": "allMids"},
]


_n = [0]


def fresh_prefix() -> str:
    _n[0] += 1
    return f"s3://{BUCKET}/t{_n[0]}-{time.monotonic_ns()}"


@pytest.fixture(scope="module")
def local_archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("local")
    make_archive(root, SUBS, 60, flush_rows=40)
    from recorder import ArchiveWriter

    with ArchiveWriter(root, session="s9") as writer:
        writer.write_event("disconnect", recv_ns=1_767_225_600_000_000_005, connection=1, detail={"code": 1006})
        writer.write_meta("meta", {"universe": [{"name": "BTC", "szDecimals": 5}]}, recv_ns=1_767_225_600_000_000_005)
    return root


def remote_keys(url: str, *, catalog: bool = False) -> list[str]:
    """The parts at ``url`` (with ``catalog``, its catalog's files instead)."""
    fs, path = pafs.FileSystem.from_uri(url)
    keys = sorted(i.path[len(path) + 1 :] for i in fs.get_file_info(pafs.FileSelector(path, recursive=True)) if i.type == pafs.FileType.File)
    return [k for k in keys if k.startswith("_catalog/") == catalog]


def local_keys(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("part-*.parquet"))


def test_sync_copies_committed_parts_once_and_verifies_them(s3, local_archive, tmp_path):
    (local_archive / "_journal" / "x").mkdir(parents=True, exist_ok=True)
    (local_archive / "_journal" / "x" / "seg-1.wal").write_bytes(b"journal")  # never synced
    tmp = next(local_archive.glob("channel=trades/*/*")) / ".part-1-x-1.parquet.tmp"
    tmp.write_bytes(b"half")  # never synced
    url = fresh_prefix()
    first = sync(local_archive, url)
    assert first.copied == first.parts == len(local_keys(local_archive)) and first.skipped == 0
    assert remote_keys(url) == local_keys(local_archive)
    assert "_catalog/COMPLETE" in remote_keys(url, catalog=True)  # a new copy lists every part synced into it
    again = sync(local_archive, url)
    assert again.copied == 0 and again.skipped == first.parts  # idempotent: nothing uploaded
    tmp.unlink()


def test_an_interrupted_sync_continues(s3, local_archive):
    url = fresh_prefix()

    def stop_after_three(report: Any, total: int) -> None:
        if report.copied == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(local_archive, url, progress=stop_after_three)
    assert len(remote_keys(url)) == 3
    rest = sync(local_archive, url)
    assert rest.copied == rest.parts - 3 and remote_keys(url) == local_keys(local_archive)


def test_delete_source_removes_parts_only_once_copied(s3, local_archive, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(local_archive, copy)
    url = fresh_prefix()
    result = CliRunner().invoke(main, ["sync", str(copy), url, "--delete-source", "--silent"])
    assert result.exit_code == 0, result.output
    assert local_keys(copy) == [] and remote_keys(url) == local_keys(local_archive)


def test_every_reader_answers_as_from_the_local_copy(s3, local_archive):
    url = fresh_prefix()
    sync(local_archive, url)
    assert [orjson.dumps(m) for m in Replay(url).messages()] == [orjson.dumps(m) for m in Replay(local_archive).messages()]
    one = Replay(url, start=1_767_225_600_200, end=1_767_225_600_900)
    one.subscribe({"type": "trades", "coin": "PURR/USDC"}, lambda m: None)
    ref = Replay(local_archive, start=1_767_225_600_200, end=1_767_225_600_900)
    ref.subscribe({"type": "trades", "coin": "PURR/USDC"}, lambda m: None)
    assert list(one.messages()) == list(ref.messages()) and len({p.coin for p in one.parts_opened}) == 1
    for query in (
        "select coin, count(*), round(sum(px * sz), 6) from trades group by 1 order by 1",  # float sums differ in the last bit with the reading order
        "select coin, count(*), avg(mid) from l2book group by 1",
        "select count(*) from bbo where coin = 'ETH'",
        "select kind, count(*) from events group by 1",
        "select count(*) from all_mids",
    ):
        assert open_archive(url).execute(query).fetchall() == open_archive(local_archive).execute(query).fetchall(), query
    remote, local = summarize(url), summarize(local_archive)
    assert remote["partitions"] == local["partitions"] and remote["gaps"] == local["gaps"]
    checked = verify(url)
    assert checked.ok and checked.parts == len(local_keys(local_archive))
    assert ArchiveInfo(url).answer({"type": "l2Book", "coin": "BTC"}, 2**62) == ArchiveInfo(local_archive).answer({"type": "l2Book", "coin": "BTC"}, 2**62)
    assert ArchiveInfo(url).answer({"type": "meta"}, 2**62) == {"universe": [{"name": "BTC", "szDecimals": 5}]}


def test_the_cli_reads_a_url_like_a_path(s3, local_archive):
    url = fresh_prefix()
    sync(local_archive, url)
    runner = CliRunner()
    query = "select coin, count(*) as n from trades group by 1 order by 1"
    assert runner.invoke(main, ["sql", url, query, "--format", "json"]).output == runner.invoke(main, ["sql", str(local_archive), query, "--format", "json"]).output
    listed = runner.invoke(main, ["ls", url])
    assert listed.exit_code == 0 and "PURR/USDC" in listed.output
    assert runner.invoke(main, ["verify", url]).exit_code == 0
    replayed = runner.invoke(main, ["replay", url, "--coin", "BTC", "--channel", "trades"])
    assert replayed.output == runner.invoke(main, ["replay", str(local_archive), "--coin", "BTC", "--channel", "trades"]).output


def test_serve_from_a_url(s3, local_archive):
    from hyperliquid.info import Info

    url = fresh_prefix()
    sync(local_archive, url)
    with ServerThread(lambda: HyperliquidServer(ArchiveSource(url, speed=None), rate=None)) as server:
        info = Info(server.base_url, skip_ws=True, spot_meta={"universe": [], "tokens": []})  # the archive holds meta, not spotMeta
        book = info.l2_snapshot("BTC")
    expected = Replay(local_archive)
    expected.subscribe({"type": "l2Book", "coin": "BTC"}, lambda m: None)
    assert book == next(expected.messages())["data"]


@pytest.mark.parametrize(
    ("env", "url", "words"),
    [
        ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, f"s3://{BUCKET}/x", "no AWS credentials"),
        ({}, "s3://no-such-bucket/x", "the bucket does not exist"),
        ({"AWS_SECRET_ACCESS_KEY": "wrong"}, f"s3://{BUCKET}/x", "access denied"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, f"s3://{BUCKET}/x", "cannot reach the store"),
    ],
)
def test_store_problems_are_one_line_errors(s3, local_archive, tmp_path, env, url, words):
    environment = {**__import__("os").environ, **{k: v for k, v in env.items() if v is not None}, "HOME": str(tmp_path)}
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
    done = subprocess.run([sys.executable, "-m", "replay.cli", "sync", str(local_archive), url, "--silent"], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


def test_record_upload_survives_a_store_outage(s3, tmp_path, monkeypatch):
    """The store becomes unreachable mid-run and comes back: every committed part ends up there, once."""
    url = fresh_prefix()
    root = tmp_path / "rec"
    subs = [{"type": "bbo", "coin": "BTC"}, {"type": "trades", "coin": "ETH"}]
    proxy = OutageProxy(s3.ports["s3"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    outage = threading.Timer(1.0, proxy.down)
    back = threading.Timer(9.0, proxy.up)  # longer than the S3 SDK's own retries (about 6 s): ours must carry it
    market = SyntheticSource(seed=3)
    try:
        with ServerThread(lambda: HyperliquidServer(market, rate=50)) as server:
            outage.start()
            back.start()
            recorder = record(root, server.ws_url, subs, 11.0, upload_url=url, flush_seconds=0.5)
        outage.join()
        back.join()
    finally:
        proxy.close()
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    assert recorder.uploader is not None and recorder.uploader.failures > 0  # it did hit the outage
    assert recorder.uploader.backlog == 0
    assert remote_keys(url) == local_keys(root)
    remote = archived_from(url)
    assert remote == archived(root) and sum(len(v) for v in remote.values()) > 50


def archived_from(url: str) -> dict[str, list[dict[str, Any]]]:
    from .recording import stream_of

    out: dict[str, list[dict[str, Any]]] = {}
    for msg in Replay(url).messages():
        out.setdefault(stream_of(msg), []).append(msg)
    return out


def test_history_import_reads_s3_sources(s3, tmp_path):
    from recorder.imports.history import import_history

    from .history_files import make_history

    bucket_dir = tmp_path / "bucket"
    make_history(bucket_dir)
    url = fresh_prefix()
    fs, path = pafs.FileSystem.from_uri(url)
    for file in bucket_dir.rglob("*.lz4"):
        with fs.open_output_stream(f"{path}/{file.relative_to(bucket_dir).as_posix()}", compression=None) as sink:  # as is, not LZ4 again
            sink.write(file.read_bytes())
    from_s3 = import_history([url], tmp_path / "a")
    from_disk = import_history([str(bucket_dir)], tmp_path / "b")
    assert from_s3.rows == from_disk.rows and from_s3.trades == from_disk.trades and from_s3.files == 7
    assert [orjson.dumps(m) for m in Replay(tmp_path / "a").messages()] == [orjson.dumps(m) for m in Replay(tmp_path / "b").messages()]
    assert import_history([url], tmp_path / "a").skipped == 7


def test_export_reads_an_s3_archive_as_the_local_copy(s3, local_archive, tmp_path):
    """``hlarchive export s3://...``: the same files, byte for byte, as from the local copy."""
    import gzip

    from replay.exports import export

    url = fresh_prefix()
    sync(local_archive, url)
    local = export(local_archive, "tardis", coin="BTC", out=tmp_path / "local")
    remote = export(url, "tardis", coin="BTC", out=tmp_path / "remote")
    assert [p.name for p in remote] == [p.name for p in local] and local
    for a, b in zip(local, remote):
        assert gzip.decompress(a.read_bytes()) == gzip.decompress(b.read_bytes())
    result = CliRunner().invoke(main, ["export", url, "--format", "tardis", "--coin", "DOGE", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "no data for DOGE" in result.output

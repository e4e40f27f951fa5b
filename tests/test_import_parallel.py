"""``hlarchive import --jobs N``: files imported by N worker processes give the same archive as one
at a time; a run killed or interrupted part-way is finished by the next, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lz4.frame
import orjson
import pytest
from click.testing import CliRunner

from recorder.imports.history import import_history
from replay.cli import main

from .archives import archive_differences
from .history_files import HOUR9_NS, iso, make_history


def markers(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "_imports").glob("*.json"))}


def big_l2book(path: Path, coin: str, lines: int) -> Path:
    """An l2Book file large enough to take a worker a few seconds (several parts of 100,000 rows)."""
    head = orjson.dumps({"channel": "l2Book", "data": {"coin": coin, "time": 0, "levels": []}})
    assert head
    out = []
    for i in range(lines):
        t_ns = HOUR9_NS + i * 100_000_000
        bids = f'[{{"px":"{124 - i % 7 * 0.01:.2f}","sz":"{1 + i % 97}.5","n":{1 + i % 9}}},{{"px":"123.5","sz":"2.25","n":2}}]'
        asks = f'[{{"px":"{124.01 + i % 5 * 0.01:.2f}","sz":"{3 + i % 89}.25","n":{1 + i % 7}}},{{"px":"124.5","sz":"7.5","n":4}}]'
        raw = f'{{"channel":"l2Book","data":{{"coin":"{coin}","time":{t_ns // 1_000_000 - 300},"levels":[{bids},{asks}]}}}}'
        out.append(f'{{"time":"{iso(t_ns)}","ver_num":1,"raw":{raw}}}\n')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lz4.frame.compress("".join(out).encode()))
    return path


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("bucket")
    make_history(source)
    return source


def test_two_workers_make_the_archive_one_makes(history, tmp_path):
    one = import_history([str(history)], tmp_path / "one", jobs=1)
    two = import_history([str(history)], tmp_path / "two", jobs=2)
    assert archive_differences(tmp_path / "one", tmp_path / "two") == []
    assert markers(tmp_path / "one") == markers(tmp_path / "two") and len(markers(tmp_path / "one")) == 8  # 7 files and the fills paired across hours
    assert (one.files, one.rows, one.trades, one.unpaired_fills) == (two.files, two.rows, two.trades, two.unpaired_fills) == (7, 134, 26, 0)
    again = import_history([str(history)], tmp_path / "two", jobs=2)
    assert (again.files, again.skipped, again.rows, again.trades) == (0, 7, 0, 0)
    assert archive_differences(tmp_path / "one", tmp_path / "two") == []


def test_a_neighbouring_hour_imported_later_still_pairs(history, tmp_path):
    hours = history / "node_fills_by_block" / "hourly" / "20250311"
    first = import_history([str(hours / "9.lz4")], tmp_path / "a", jobs=2)
    assert first.unpaired_fills == 1  # the seller's fill of the edge trade is in hour 10
    second = import_history([str(hours / "10.lz4")], tmp_path / "a", jobs=2)
    assert second.unpaired_fills == 0 and first.trades + second.trades == 12  # every trade of both hours, the edge one too
    import_history([str(hours)], tmp_path / "b", jobs=1)  # both hours in one command
    assert archive_differences(tmp_path / "a", tmp_path / "b") == []


def test_the_cli_takes_jobs_and_shows_files_done_of_total(history, tmp_path):
    result = CliRunner().invoke(main, ["import", str(history), "--root", str(tmp_path / "a"), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "importing: 7/7 file(s)" in result.output and "MB/s" in result.output and "rows (" in result.output
    bad = CliRunner().invoke(main, ["import", str(history), "--root", str(tmp_path / "a"), "--jobs", "0"])
    assert bad.exit_code == 2 and "--jobs" in bad.output


def _start(source: Path, root: Path) -> subprocess.Popen[bytes]:
    script = "import sys; from replay.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", script, "import", str(source), "--root", str(root), "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


@pytest.fixture(scope="module")
def clean_big_import(big_history, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    import_history([str(big_history)], root, jobs=1)
    return root


@pytest.fixture(scope="module")
def big_history(history, tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("big")
    for coin in ("BTC", "ETH", "SOL"):
        big_l2book(source / "market_data" / "20250311" / "10" / "l2Book" / f"{coin}.lz4", coin, 300_000)
    return source


def _wait_for_parts(root: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(root.glob("channel=l2Book/coin=*/date=*/part-*.parquet")):
            return
        time.sleep(0.02)
    raise AssertionError("the import wrote no part in time")


@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_a_run_stopped_mid_file_is_finished_by_the_next_nothing_twice(big_history, clean_big_import, tmp_path, how):
    root = tmp_path / "stopped"
    process = _start(big_history, root)
    _wait_for_parts(root)
    if how == "kill -9":  # the whole process group: the parent and both workers die where they stand
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        assert len(markers(root)) < 3  # stopped part-way: a file had parts and no marker
    else:  # a terminal's Ctrl-C reaches the whole group
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130, err.decode()
        assert b"run the same command again to finish" in err and b"Traceback" not in err, err.decode(errors="replace")[-4000:]  # whole: a rare traceback here (1 fresh-clone run in 10) is still to be named
        finished = {orjson.loads(text)["key"].split("/")[-1] for text in markers(root).values()}
        on_disk = {p.parent.parent.name for p in root.glob("channel=l2Book/coin=*/date=*/part-*.parquet")}
        assert on_disk == {f"coin={name.removesuffix('.lz4')}" for name in finished}  # no part of an unfinished file
    rerun = _start(big_history, root)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    assert archive_differences(clean_big_import, root) == []
    assert markers(root) == markers(clean_big_import)

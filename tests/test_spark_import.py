"""``hlarchive import --spark MASTER``: the per-file import as Spark tasks (PySpark, local mode) into
object storage (SeaweedFS on loopback, ``s3://``), equal to the local import; a task that fails
once, after its parts went up and before its marker, is retried and nothing lands twice.

Marked ``spark``: it needs Java and PySpark, which ``.ci/run`` installs; run with ``-m spark``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recorder.imports.history import import_history
from recorder.imports.remote import RemoteRoot
from recorder.imports.spark import import_with_spark
from replay.analysis.sync import sync

from .archives import archive_differences
from .history_files import make_history
from .s3server import BUCKET

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("bucket")
    make_history(source)
    return source


@pytest.fixture(scope="module")
def local_import(history, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("local")
    import_history([str(history)], root, jobs=1)
    return root


def local_markers(root: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in (root / "_imports").glob("*.json")}


def fetched(url: str, into: Path) -> Path:
    sync(url, str(into))
    return into


@pytest.mark.parametrize("master, fail", [("local[2]", None), ("local[2,2]", "node_fills_by_block/hourly/20250311/10")])
def test_spark_imports_into_s3_as_the_local_import_does(s3, history, local_import, tmp_path, master, fail):
    url = f"s3://{BUCKET}/spark-{time.monotonic_ns()}"
    seen: list[tuple[int, int, int, int]] = []
    report = import_with_spark([str(history)], url, master, on_tasks=lambda *counts: seen.append(counts), fail_first_attempt_of=fail)
    assert (report.files, report.rows, report.trades, report.unpaired_fills) == (7, 134, 26, 0)
    assert seen and seen[-1][:2] == (7, 7)
    if fail:
        assert any(counts[3] >= 1 for counts in seen)  # Spark saw the first attempt fail, and retried it
    assert archive_differences(local_import, fetched(url, tmp_path / "back")) == []
    assert RemoteRoot(url).markers() == local_markers(local_import)
    again = import_with_spark([str(history)], url, "local[2]")
    assert (again.files, again.skipped, again.rows, again.trades) == (0, 7, 0, 0)
    assert archive_differences(local_import, fetched(url, tmp_path / "again")) == []


def test_the_cli_runs_the_import_on_spark_into_a_shared_path(history, local_import, tmp_path):
    from click.testing import CliRunner

    from replay.cli import main

    result = CliRunner().invoke(main, ["import", str(history), "--root", str(tmp_path / "shared"), "--spark", "local[2]"])
    assert result.exit_code == 0, result.output
    assert "spark: 7/7 file(s) done" in result.output and "trades frames from 7 file(s)" in result.output
    assert archive_differences(local_import, tmp_path / "shared") == []
    both = CliRunner().invoke(main, ["import", str(history), "--root", str(tmp_path / "x"), "--spark", "local[2]", "--jobs", "2"])
    assert both.exit_code == 2 and "--jobs is for a local import" in both.output

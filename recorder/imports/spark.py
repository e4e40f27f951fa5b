"""``hlarchive import --spark MASTER``: the per-file import as a Spark job, one task a file.

The driver lists the files; each task runs exactly the local import of its file (same session,
parts and marker) on an executor, into ROOT when it is a path every executor sees, or into a
local scratch directory whose parts then go up to ROOT when it is an ``s3://`` URL. A task that is
retried, or run twice by speculation, adds nothing twice: a file's marker decides, and the parts of
an attempt that died are removed before the next (see ``remote.py``). The driver pairs fills across
files at the end, as the local import does.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.layout import ArchiveError

from .history import MARKERS, FileResult, HistoryReport, Source, add_result, identity, import_file, list_sources
from .pairing import pair_across_files
from .remote import RemoteRoot

TaskProgress = Callable[[int, int, int, int], None]  # (tasks done, tasks, running, failed attempts)


def import_with_spark(
    locations: list[str],
    root: str,
    master: str,
    *,
    dataset: str | None = None,
    on_tasks: TaskProgress | None = None,
    fail_first_attempt_of: str | None = None,
) -> HistoryReport:
    """Import every file under ``locations`` into ``root`` with Spark at ``master``.

    ``fail_first_attempt_of`` (tests): the first attempt of the task whose file key contains it
    uploads its parts, then fails before its marker, as an executor lost mid-task would."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ArchiveError("--spark needs PySpark and Java 17+: pip install 'hlarchive[spark]'") from None
    remote = root.startswith("s3://") or "://" in root
    if remote:
        store = RemoteRoot(root)
        store.clean_unfinished()
    else:
        Path(root, MARKERS).mkdir(parents=True, exist_ok=True)
    sources = list_sources(locations, dataset)
    started = time.monotonic()
    ours = SparkSession.getActiveSession() is None  # a notebook's own session is used as it is, and left running
    spark = (
        SparkSession.builder.master(master)
        .appName("hlarchive import")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        results = _run_tasks(spark.sparkContext, sources, root, on_tasks, fail_first_attempt_of)
    finally:
        if ours:
            spark.stop()
    report = HistoryReport()
    for index, result in sorted(results, key=lambda item: item[0]):
        add_result(report, sources[index], FileResult(**result) if result is not None else None)
        report.bytes_read += sources[index].size
    pairing = _pair(root, remote)
    report.trades += pairing[0]
    report.unpaired_fills = pairing[1]
    report.seconds = time.monotonic() - started
    return report


def _run_tasks(context: Any, sources: list[Source], root: str, on_tasks: TaskProgress | None, fail_first_attempt_of: str | None) -> list[Any]:
    """One task a file; the driver reports Spark's task counts while they run."""
    group = f"hlarchive-import-{uuid.uuid4().hex[:8]}"
    tasks = context.parallelize(list(enumerate(sources)), max(1, len(sources)))
    outcome: dict[str, Any] = {}

    # the store's endpoint and keys, for executors whose environment lacks them (a Python worker
    # forked by a JVM started before they were set, in local mode): what an executor has wins
    store_env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}

    def collect() -> None:
        try:
            context.setJobGroup(group, f"hlarchive import of {len(sources)} file(s)")  # per thread: set where the job runs
            outcome["results"] = tasks.map(lambda item: _task(item, root, fail_first_attempt_of, store_env)).collect()
        except BaseException as exc:  # noqa: BLE001 - raised on the driver's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=collect, name="hlarchive-spark-collect", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.5)
        if on_tasks:
            on_tasks(*_task_counts(context, group, len(sources)))
    if "error" in outcome:
        raise ArchiveError(f"the Spark job failed: {_first_line(outcome['error'])}") from None
    return outcome["results"]


def _task(item: tuple[int, Source], root: str, fail_first_attempt_of: str | None, store_env: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
    """One file on an executor: ``(index, FileResult as a dict)``, or ``None`` when it was in already."""
    for key, value in store_env.items():
        os.environ.setdefault(key, value)
    index, source = item
    fail = None
    if fail_first_attempt_of and fail_first_attempt_of in source.key:
        from pyspark import TaskContext

        task = TaskContext.get()
        if task is not None and task.attemptNumber() == 0:
            def fail() -> None:
                raise RuntimeError(f"injected fault: first attempt of {source.key} lost before its marker")
    if "://" not in root:
        if fail is not None:
            raise RuntimeError(f"injected fault: first attempt of {source.key}")
        result = import_file(source, Path(root))
        return index, dataclasses.asdict(result) if result is not None else None
    store = RemoteRoot(root)
    session = identity(source)
    if store.exists(f"{MARKERS}/{session}.json"):
        return index, None
    store.clean_unfinished(session)
    with tempfile.TemporaryDirectory(prefix="hlarchive-import-") as scratch:
        result = import_file(source, Path(scratch))
        assert result is not None
        store.put_session(Path(scratch), session, before_marker=fail)
    return index, dataclasses.asdict(result)


def _pair(root: str, remote: bool) -> tuple[int, int]:
    if not remote:
        pairing = pair_across_files(Path(root))
        return pairing.trades, pairing.unpaired
    store = RemoteRoot(root)
    with tempfile.TemporaryDirectory(prefix="hlarchive-pairs-") as scratch:
        markers = Path(scratch, MARKERS)
        markers.mkdir()
        for name, text in store.markers().items():
            (markers / f"{name}.json").write_bytes(text)
        pairing = pair_across_files(Path(scratch))
        if pairing.session is not None:
            store.put_session(Path(scratch), pairing.session)
    return pairing.trades, pairing.unpaired


def _task_counts(context: Any, group: str, total: int) -> tuple[int, int, int, int]:
    tracker = context.statusTracker()
    done = running = failed = 0
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in (info.stageIds if info else ()):
            stage_info = tracker.getStageInfo(stage)
            if stage_info is not None:
                done += stage_info.numCompletedTasks
                running += stage_info.numActiveTasks
                failed += stage_info.numFailedTasks
    return min(done, total), total, running, failed


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        if "injected fault" in line or "ArchiveError" in line:
            return line.strip()
    return lines[0].strip() if lines else text


"""``record --upload URL``: each committed part copied to an object store in the background.

Receipt never waits on it: the writer hands over the path of a part it committed, a thread copies
it (one atomic upload), verifies the copy (size, and a footer with the same row count), and retries
with capped backoff while the store is down. A local part stays until its copy is verified, and
with ``keep_local_days`` it is then removed once its day is that old. At start, parts a previous
run committed but did not upload are queued again, so a crash loses no upload.
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.catalog import CATALOG_DIR, COMPLETE, Entry, added_line, entry_of_footer, log_name
from schemas.layout import ArchiveError, escape, parse_part_name

from .catalog import CatalogLog

CATALOG_EVERY_S = 30.0  # uploaded parts' entries are written to the store's catalog at least this often
UPLOADED_DIR = "_uploaded"  # one empty marker a part uploaded and verified, so restarts skip it quickly


class UploadError(ArchiveError):
    pass


def open_target(url: str) -> tuple[pafs.FileSystem, str]:
    """The store at ``url`` (credentials and endpoint from the standard AWS environment), checked now."""
    if url.startswith("s3://"):
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        if not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")) and not os.environ.get("AWS_PROFILE"):
            raise UploadError(f"--upload {url}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a store that is not AWS)")
    try:
        fs, path = pafs.FileSystem.from_uri(url)
        bucket = fs.get_file_info(path.split("/", 1)[0]) if url.startswith("s3://") else None
    except (pa.ArrowInvalid, ValueError, OSError) as exc:
        raise UploadError(f"--upload {url}: {str(exc).splitlines()[0]}") from None
    if bucket is not None and bucket.type == pafs.FileType.NotFound:
        raise UploadError(f"--upload {url}: the bucket does not exist: create it, or check the URL")
    return fs, path.rstrip("/")


class Uploader:
    def __init__(
        self,
        root: Path,
        url: str,
        *,
        keep_local_days: float | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        backoff_cap_s: float = 30.0,
    ) -> None:
        self.root = root
        self.url = url
        self.fs, self.base = open_target(url)
        self.keep_local_days = keep_local_days
        self.on_event = on_event or (lambda kind, detail: None)
        self.backoff_cap_s = backoff_cap_s
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._pending: set[Path] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hlarchive-uploader", daemon=True)
        self._stopping = threading.Event()
        self.uploaded = 0
        self.failures = 0
        self._cataloged: list[tuple[Path, Entry]] = []  # uploaded, entry not yet in the store's catalog
        self._cataloged_at = time.monotonic()

    @property
    def backlog(self) -> int:
        with self._lock:
            return len(self._pending)

    def start(self) -> Uploader:
        self._start_remote_catalog()
        for part in sorted(self.root.glob("channel=*/coin=*/date=*/part-*.parquet")):  # left by an earlier run
            if not self._marker(part).exists():
                self.submit(part)
        self._thread.start()
        return self

    def submit(self, part: Path) -> None:
        """Queue a committed part (called from the writer thread on each commit)."""
        with self._lock:
            if part in self._pending:
                return
            self._pending.add(part)
        self._queue.put(part)

    def stop(self, drain_s: float = 30.0) -> None:
        """Let the queue drain for up to ``drain_s``; what is left stays local and is uploaded next start."""
        deadline = time.monotonic() + drain_s
        while self.backlog and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.05)
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout=10)
        try:
            self.flush_catalog()
        except OSError:
            pass  # unmarked: checked and cataloged at the next start

    def _start_remote_catalog(self) -> None:
        """A store with no part yet starts with its catalog complete: every part uploaded is listed."""
        complete = f"{self.base}/{CATALOG_DIR}/{COMPLETE}"
        try:
            if self.fs.get_file_info(complete).type != pafs.FileType.NotFound:
                return
            listed = self.fs.get_file_info(pafs.FileSelector(self.base, allow_not_found=True))
            if any(i.base_name.startswith("channel=") for i in listed):
                return  # parts from before: the first reader builds the catalog from them
            with self.fs.open_output_stream(complete, compression=None) as sink:
                sink.write(orjson.dumps({"format": 1, "since_ns": time.time_ns()}))
        except OSError as exc:
            self.on_event("upload_retry", {"part": COMPLETE, "attempt": 0, "delay_s": 0, "error": str(exc).splitlines()[0][:300]})

    def _marker(self, part: Path) -> Path:
        return self.root / UPLOADED_DIR / part.relative_to(self.root).as_posix().replace("/", "~")

    def _run(self) -> None:
        while True:
            part = self._queue.get()
            if part is None:
                return
            attempt = 0
            while not self._stopping.is_set():
                try:
                    self._upload(part)
                    break
                except Exception as exc:  # noqa: BLE001 - a store that is down: wait and retry
                    self.failures += 1
                    attempt += 1
                    delay = min(self.backoff_cap_s, 0.2 * 2 ** min(attempt, 10))
                    self.on_event("upload_retry", {"part": part.name, "attempt": attempt, "delay_s": delay, "error": str(exc).splitlines()[0][:300]})
                    self._stopping.wait(delay)
            else:
                return
            with self._lock:
                self._pending.discard(part)

    def _upload(self, part: Path) -> None:
        if not part.exists():
            return
        relative = part.relative_to(self.root).as_posix()
        target = f"{self.base}/{relative}"
        size = part.stat().st_size
        rows = pq.read_metadata(part).num_rows
        info = self.fs.get_file_info(target)
        if not (info.type == pafs.FileType.File and info.size == size and self._rows(target) == rows):
            with open(part, "rb") as source, self.fs.open_output_stream(target, compression=None) as sink:
                while chunk := source.read(8 << 20):
                    sink.write(chunk)
            if self.fs.get_file_info(target).size != size or self._rows(target) != rows:
                raise UploadError(f"the upload of {relative} did not verify")
        entry = entry_of_footer(relative, pq.read_metadata(part), size)
        with self._lock:
            self._cataloged.append((part, entry))
        self.uploaded += 1
        self.on_event("uploaded", {"part": relative, "bytes": size})
        if self._queue.empty() or time.monotonic() - self._cataloged_at >= CATALOG_EVERY_S:
            self.flush_catalog()

    def flush_catalog(self) -> None:
        """The uploaded parts' entries into the store's catalog (a file of lines a date: a store
        cannot append), then their markers; a crash before leaves them unmarked, so the next start
        checks them again (no copy if the copy verifies) and writes their entries."""
        with self._lock:
            done, self._cataloged = self._cataloged, []
            self._cataloged_at = time.monotonic()
        if not done:
            return
        by_date: dict[str, list[bytes]] = {}
        for _, entry in done:
            by_date.setdefault(entry.date, []).append(added_line(entry, time.time_ns()))
        name = log_name(time.strftime("%Y%m%d%H", time.gmtime()), f"upload-{secrets.token_hex(4)}")
        try:
            for date, lines in by_date.items():
                with self.fs.open_output_stream(f"{self.base}/{CATALOG_DIR}/date={escape(date)}/{name}", compression=None) as sink:
                    sink.write(b"".join(lines))
        except OSError:
            with self._lock:
                self._cataloged = done + self._cataloged  # the next flush tries again
            raise
        for part, _ in done:
            marker = self._marker(part)
            marker.parent.mkdir(exist_ok=True)
            marker.touch()
            if self.keep_local_days is not None and self._older_than_kept(part):
                part.unlink()
                CatalogLog(self.root, "upload").removed([part.relative_to(self.root).as_posix()])

    def _rows(self, target: str) -> int | None:
        try:
            with self.fs.open_input_file(target) as handle:
                return pq.read_metadata(handle).num_rows
        except (OSError, pa.ArrowInvalid):
            return None

    def _older_than_kept(self, part: Path) -> bool:
        """Whether the part's UTC day is at least ``keep_local_days`` before today (0: any day)."""
        if parse_part_name(part.name) is None:
            return False
        day = datetime.strptime(part.parent.name.removeprefix("date="), "%Y-%m-%d").date()
        return (datetime.now(timezone.utc).date() - day) >= timedelta(days=self.keep_local_days or 0)

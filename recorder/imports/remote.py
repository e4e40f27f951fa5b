"""An archive root in object storage, as an import writes to it: a file's parts go up after they
commit locally, and its marker last, so a marker on the store means the file is there whole.

Before its parts, a session's list of them goes up as ``_imports/<session>.pending.json``; a
session that died before its marker is found by that list and its parts are deleted, so a retried
task (Spark's, or a re-run) never leaves a part twice.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import orjson
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.catalog import CATALOG_DIR, COMPLETE, added_line, entry_of_footer, log_name, removed_line
from schemas.layout import IMPORTS_DIR, escape, parse_part_name

from ..parts.upload import open_target

MARKERS = IMPORTS_DIR


class RemoteRoot:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.base = open_target(self.url)

    def _path(self, relative: str) -> str:
        return f"{self.base}/{relative}"

    def exists(self, relative: str) -> bool:
        return self.fs.get_file_info(self._path(relative)).type == pafs.FileType.File

    def read(self, relative: str) -> bytes:
        with self.fs.open_input_stream(self._path(relative)) as handle:
            return handle.read()

    def write(self, relative: str, data: bytes) -> None:
        with self.fs.open_output_stream(self._path(relative), compression=None) as sink:
            sink.write(data)

    def upload(self, local: Path, relative: str) -> None:
        with open(local, "rb") as source, self.fs.open_output_stream(self._path(relative), compression=None) as sink:
            while chunk := source.read(8 << 20):
                sink.write(chunk)
        if self.fs.get_file_info(self._path(relative)).size != local.stat().st_size:
            raise OSError(f"the upload of {relative} did not verify")

    def delete(self, relative: str) -> None:
        try:
            self.fs.delete_file(self._path(relative))
        except FileNotFoundError:
            pass

    def markers(self) -> dict[str, bytes]:
        """Every marker's name (without ``.json``) and text."""
        selector = pafs.FileSelector(self._path(MARKERS), allow_not_found=True)
        found = {}
        for info in self.fs.get_file_info(selector):
            name = info.base_name
            if info.type == pafs.FileType.File and name.endswith(".json") and not name.endswith(".pending.json"):
                found[name.removesuffix(".json")] = self.read(f"{MARKERS}/{name}")
        return found

    def clean_unfinished(self, session: str | None = None) -> int:
        """Delete the parts of sessions (all, or ``session``) that listed their parts and never wrote a marker."""
        selector = pafs.FileSelector(self._path(MARKERS), allow_not_found=True)
        removed = 0
        for info in self.fs.get_file_info(selector):
            name = info.base_name
            if not name.endswith(".pending.json") or (session is not None and name != f"{session}.pending.json"):
                continue
            unfinished = name.removesuffix(".pending.json")
            if self.exists(f"{MARKERS}/{unfinished}.json"):
                self.delete(f"{MARKERS}/{name}")
                continue
            relatives = orjson.loads(self.read(f"{MARKERS}/{name}"))
            for relative in relatives:
                self.delete(relative)
                removed += 1
            self._catalog([removed_line(r, time.time_ns()) for r in relatives], f"{unfinished}-cleanup")
            self.delete(f"{MARKERS}/{name}")
        return removed

    def _start_catalog(self) -> None:
        """A store with no part yet starts with its catalog complete: every part imported is listed."""
        if self.exists(f"{CATALOG_DIR}/{COMPLETE}"):
            return
        listed = self.fs.get_file_info(pafs.FileSelector(self.base, allow_not_found=True))
        if not any(i.base_name.startswith("channel=") for i in listed):
            self.write(f"{CATALOG_DIR}/{COMPLETE}", orjson.dumps({"format": 1, "since_ns": time.time_ns()}))

    def _catalog(self, lines: list[bytes], writer: str) -> None:
        """Entries of parts uploaded (or removed) as a file of lines a date: after the parts, before
        the marker, so a marker means the catalog lists them too."""
        by_date: dict[str, list[bytes]] = {}
        for line in lines:
            by_date.setdefault(orjson.loads(line)["date"], []).append(line)
        name = log_name(time.strftime("%Y%m%d%H", time.gmtime()), f"{writer}-{secrets.token_hex(3)}")
        for date, texts in by_date.items():
            self.write(f"{CATALOG_DIR}/date={escape(date)}/{name}", b"".join(texts))

    def put_session(self, local_root: Path, session: str, before_marker: object = None) -> int:
        """Upload the parts of ``session`` under ``local_root``, then its marker; returns the parts sent."""
        parts = sorted(
            p for p in local_root.glob(f"channel=*/coin=*/date=*/part-*-{session}-*.parquet")
            if (name := parse_part_name(p.name)) is not None and name.session == session
        )
        relatives = [p.relative_to(local_root).as_posix() for p in parts]
        self.write(f"{MARKERS}/{session}.pending.json", orjson.dumps(relatives))
        self._start_catalog()
        for part, relative in zip(parts, relatives):
            self.upload(part, relative)
        now = time.time_ns()
        self._catalog([added_line(entry_of_footer(r, pq.read_metadata(p), p.stat().st_size), now) for p, r in zip(parts, relatives)], session)
        if callable(before_marker):
            before_marker()
        self.upload(local_root / MARKERS / f"{session}.json", f"{MARKERS}/{session}.json")
        self.delete(f"{MARKERS}/{session}.pending.json")
        return len(parts)

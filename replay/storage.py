"""Where an archive lives: a local directory or an object store, behind one ``pyarrow.fs`` seam.

Every reader takes a path or a URL ``pyarrow.fs.FileSystem.from_uri`` understands
(``s3://bucket/prefix``, ``gs://...``, with its query options). Credentials and the endpoint come
from the standard environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``), never from flags. Failures become one line saying what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.fs as pafs

from schemas.layout import ArchiveError


def is_url(root: str | os.PathLike[str]) -> bool:
    text = str(root)
    return "://" in text and not text.startswith("file://")


@dataclass(frozen=True)
class Store:
    """An archive root on a filesystem: ``fs`` and the root's path in it; ``url`` as the user gave it."""

    fs: pafs.FileSystem
    root: str
    url: str

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts]) if parts else self.root

    def where(self, path: str) -> str:
        """A path as the user knows it: the local path, or the URL of an object."""
        if self.local:
            return path
        return self.url.split("?", 1)[0].rstrip("/") + path[len(self.root.rstrip("/")) :]

    def entries(self, path: str) -> list[pafs.FileInfo]:
        """The children of a directory (one listing request on an object store); none if it is missing."""
        try:
            return sorted(self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)), key=lambda i: i.base_name)
        except OSError as exc:
            raise storage_error(exc, self.url) from None

    def info(self, path: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(path)
        except OSError as exc:
            raise storage_error(exc, self.url) from None

    def is_dir(self, path: str) -> bool:
        return self.info(path).type == pafs.FileType.Directory

    def exists(self, path: str) -> bool:
        return self.info(path).type != pafs.FileType.NotFound

    def size(self, path: str) -> int:
        return self.info(path).size or 0

    def write(self, path: str, data: bytes | Callable[[Any], None]) -> None:
        """Write a whole file so no reader sees half of it: a temporary renamed (and fsynced) on disk;
        on an object store, one upload, which is visible only once complete."""
        if self.local:
            directory, name = os.path.split(path)
            os.makedirs(directory, exist_ok=True)
            temporary = os.path.join(directory, f".{name}.tmp")
            with open(temporary, "wb") as sink:
                data(sink) if callable(data) else sink.write(data)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temporary, path)
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return
        try:
            with self.fs.open_output_stream(path, compression=None) as sink:
                data(sink) if callable(data) else sink.write(data)
        except OSError as exc:
            raise storage_error(exc, self.where(path)) from None

    def delete(self, path: str) -> None:
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if self.exists(path):
                raise storage_error(exc, self.where(path)) from None

    def read_bytes(self, path: str) -> bytes:
        with self.open(path) as handle:
            return handle.read()

    def open(self, path: str) -> pa.NativeFile:
        try:
            return self.fs.open_input_file(path)
        except OSError as exc:
            raise storage_error(exc, self.where(path)) from None


def open_store(root: str | os.PathLike[str]) -> Store:
    """The store of ``root``: a local path, or a URL with its filesystem (credentials from the environment)."""
    text = str(root)
    if not is_url(text):
        local = Path(text.removeprefix("file://")).absolute()
        return Store(pafs.LocalFileSystem(), local.as_posix(), text)
    if text.startswith("s3://"):
        check_s3_credentials(text)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise ArchiveError(f"cannot open {text!r}: {_first_line(exc)}; give a local path or a URL like s3://bucket/prefix") from None
    except OSError as exc:
        raise storage_error(exc, text) from None
    return Store(fs, path.rstrip("/"), text)


def check_s3_credentials(url: str) -> None:
    """Credentials come from the environment (or an AWS profile); with none, say so in one line
    rather than let the SDK probe the EC2 metadata address (off this machine) for them."""
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # set it to false on EC2 with an instance role
    if "anonymous=true" in url.lower():
        return
    has_keys = os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")
    has_profile = os.environ.get("AWS_PROFILE") or os.path.exists(os.path.expanduser("~/.aws/credentials")) or os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    if not (has_keys or has_profile or os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "false"):
        raise ArchiveError(f"{url}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a store that is not AWS)")


def storage_error(exc: BaseException, where: str) -> ArchiveError:
    """One line for what went wrong talking to a store, with the way out."""
    text = _first_line(exc)
    lowered = text.lower()
    if "no_such_bucket" in lowered or "nosuchbucket" in lowered or "bucket does not exist" in lowered:
        return ArchiveError(f"{where}: the bucket does not exist: create it, or check the URL")
    if any(word in lowered for word in ("access_denied", "accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch", "credentials", "forbidden", "403")):
        return ArchiveError(f"{where}: access denied ({text}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a store that is not AWS)")
    if any(word in lowered for word in ("couldn't connect", "could not connect", "connection refused", "curl error", "timed out", "timeout", "network")):
        return ArchiveError(f"{where}: cannot reach the store ({text}): check AWS_ENDPOINT_URL (or ?endpoint_override=) and that it is up")
    return ArchiveError(f"{where}: {text}")


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]

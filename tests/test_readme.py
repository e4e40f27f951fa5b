"""The README's examples run: its two opening commands are CI's, and its tagged blocks run here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from replay.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCK = re.compile(r"<!-- test: (python|shell) -->\n```\w+\n(.*?)```", re.S)


def test_readme_opens_with_the_two_commands():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)[:2]
    assert commands[0].endswith("pip install -e . && hlarchive demo")
    assert commands[1].endswith("pip install -e '.[test]' && python -m pytest -q")
    assert "python -m pytest -q" in (Path(__file__).parent.parent / ".ci" / "run").read_text()


def test_readme_fixture_example_is_the_tested_one():
    example = re.search(r"```python\n(class MidCrossBot:.*?)```", README, re.S)
    assert example is not None
    tested = (Path(__file__).parent / "test_pytest_fixture.py").read_text()
    for line in example.group(1).splitlines():
        if line.strip() and not line.strip().startswith("replay = hl_replay"):
            assert line.strip() in tested, line


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("readme")
    result = CliRunner().invoke(main, ["demo", "--seconds", "2", "--out", str(work / "demo-archive")])
    assert result.exit_code == 0, result.output
    return work


@pytest.mark.parametrize("kind, code", BLOCK.findall(README), ids=lambda v: v.strip().splitlines()[0][:40] if "\n" in v or len(v) > 10 else v)
def test_readme_block_runs(kind, code, demo_dir):
    if kind == "python":
        result = subprocess.run([sys.executable, "-c", code], cwd=demo_dir, capture_output=True, text=True, timeout=120)
    else:
        bindir = Path(sys.executable).parent
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", code.replace("hlarchive ", f"{bindir}/hlarchive ")], cwd=demo_dir, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip()

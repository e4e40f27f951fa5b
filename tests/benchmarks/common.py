"""Shared bits of the benchmark scripts: synthetic frames, medians, a table, a simulator process."""

from __future__ import annotations

import itertools
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from recorder.archiver import peak_rss_mb
from replay.simulator.market import SyntheticMarket
from schemas import parse_subscription


@dataclass(frozen=True)
class Figure:
    """One line of the benchmark table: our figure, the baseline's, and the target."""

    name: str
    ours: float
    baseline: float | None
    baseline_name: str
    target: str
    met: bool | None
    #: ours / baseline in each interleaved round; the ratio is their median (each round's two sides
    #: ran minutes apart at most, so a round's ratio does not see the machine's drift)
    rounds: tuple[float, ...] = ()

    @property
    def ratio(self) -> float | None:
        if self.rounds:
            return statistics.median(self.rounds)
        return None if not self.baseline else self.ours / self.baseline

    def row(self) -> tuple[Any, ...]:
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        met = "-" if self.met is None else ("met" if self.met else "NOT met")
        baseline = "-" if self.baseline is None else self.baseline
        return (self.name, self.ours, baseline, self.baseline_name, ratio, self.target, met)


HEADER = ("figure", "hlarchive", "baseline", "baseline is", "ratio", "target", "")


def synthetic_frames(sub: dict[str, Any], n: int, seed: int = 0, tick_ms: int = 100) -> list[dict[str, Any]]:
    market = SyntheticMarket(seed=seed, tick_ms=tick_ms)
    return list(itertools.islice(market.frames(parse_subscription(sub)), n))


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


def interleaved(runs: int, *measures: Callable[[], float], warm_up: bool = False) -> list[list[float]]:
    """Each measure's value in each of ``runs`` rounds, the measures taking turns within a round:
    this machine's speed drifts by up to 2x within minutes, and turns share the drift. ``warm_up``:
    one round first, not counted (caches, first imports, the files in the page cache)."""
    if warm_up:
        for measure in measures:
            measure()
    rounds = [[measure() for measure in measures] for _ in range(runs)]
    return [[r[i] for r in rounds] for i in range(len(measures))]


def round_ratios(ours: list[float], baseline: list[float]) -> tuple[float, ...]:
    return tuple(o / b for o, b in zip(ours, baseline))


def round_lines(figures: list[Figure]) -> str:
    """Each ratio's rounds, for the lines that have them: the spread says how far to trust the median."""
    lines = [f"  {f.name}: " + " ".join(f"{r:.2f}x" for r in f.rounds) for f in figures if f.rounds]
    return "\nratio in each round:\n" + "\n".join(lines) if lines else ""


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(_fmt(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def cli_process(command: str, *args: str) -> Iterator[str]:
    """``hlarchive COMMAND ARGS --port P`` (simulate, serve) in its own process; yields its ws URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "replay.cli", command, *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("ws URL:"):
            raise RuntimeError(f"hlarchive {command} did not start: {line!r}")
        time.sleep(0.1)
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def simulator_process(*args: str) -> Any:
    """``hlarchive simulate`` in its own process; yields its ws URL."""
    return cli_process("simulate", *args)


def vm_hwm_mb() -> float:
    """This process's peak RSS."""
    return peak_rss_mb()


PEAK_WRAPPER = r"""
import atexit, resource, runpy, sys
from tests.benchmarks.common import vm_hwm_mb
def _report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"PEAK_RSS_MB={vm_hwm_mb():.1f}", file=sys.stderr)
    print(f"CPU_S={usage.ru_utime + usage.ru_stime:.4f}", file=sys.stderr)
atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__")
"""


def run_measured(module: str, *args: str, code: str | None = None) -> tuple[str, float]:
    """Run ``python -m module args`` (or ``code``) in a fresh process; returns stdout and its peak RSS."""
    stdout, peak, _ = run_measured_cpu(module, *args, code=code)
    return stdout, peak


def run_measured_cpu(module: str, *args: str, code: str | None = None) -> tuple[str, float, float]:
    """As ``run_measured``, plus the process's CPU seconds (user + system)."""
    argv = [sys.executable, "-c", PEAK_WRAPPER, module, *args] if code is None else [sys.executable, "-c", code, *args]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    peak = [float(line.split("=")[1]) for line in result.stderr.splitlines() if line.startswith("PEAK_RSS_MB=")]
    cpu = [float(line.split("=")[1]) for line in result.stderr.splitlines() if line.startswith("CPU_S=")]
    return result.stdout, peak[-1] if peak else float("nan"), cpu[-1] if cpu else float("nan")

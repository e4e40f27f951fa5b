"""Recording a node's L4 files: following them live, importing them, and what the archive costs.

    python -m tests.benchmarks.l4_capture [--seconds 20] [--rate 20] [--coins 7] [--blocks 1500] [--runs 3]

- Following: ``simulate --node-data`` in its own process offers a fixed rate (``--rate`` blocks a
  second of ``--coins`` coins); ``record --node-data`` follows it for ``--seconds`` in another. Its
  events/s, its lag at the end and its peak RSS, beside the rate offered.
- Import: ``hlarchive import DIR --root R`` of ``--blocks`` blocks of node files, as users run it
  (the bulk path, both cores), against ``orjson.loads`` of the same lines alone in one process, the
  runs taking turns; events/s, medians of ``--runs``. Twice: the import alone
  (``--checkpoint-every 0``), and with its default checkpoints (every 5 min of blocks) after it.
  The row path (``bulk=False``, a block at a time) is printed beside them, once.
- Bytes: archive bytes per event (the node channels' parts) against the node's text gzipped.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replay.simulator.market import SyntheticMarket
from replay.simulator.node_files import NodeFiles

from .common import (
    HEADER,
    Figure,
    interleaved,
    machine,
    round_lines,
    round_ratios,
    run_measured,
    simulator_process,
    table,
)

COINS = ["BTC", "ETH", "SOL", "kPEPE", "xyz:HOOD", "@1", "PURR/USDC"]

IMPORT = """
import re, shutil, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run([shutil.which("hlarchive") or "hlarchive", "import", sys.argv[1], "--root", sys.argv[2], "--silent", *sys.argv[3:]], capture_output=True, text=True, check=True)
took = time.perf_counter() - started
print(re.search(r"([0-9,]+) events", done.stdout).group(1).replace(",", ""), took)
"""

ROW_PATH = """
import sys, time
from recorder.node.follow import import_node_data
started = time.perf_counter()
status = import_node_data(sys.argv[1], sys.argv[2], say=lambda _: None, bulk=False)
print(status.events, time.perf_counter() - started)
"""

BASELINE = """
import sys, time, orjson
from pathlib import Path
started = time.perf_counter()
events = 0
for path in sorted(p for p in Path(sys.argv[1]).rglob("*") if p.is_file()):
    with open(path, "rb") as handle:
        for line in handle:
            events += len(orjson.loads(line)["events"])
print(events, time.perf_counter() - started)
"""


def node_files(directory: Path, coins: list[str], blocks: int) -> int:
    market = SyntheticMarket(seed=1, coins=coins)
    files = NodeFiles(market.tapes, coins, directory, {c: market.coins[c].sz_decimals for c in coins})
    files.write_through(0)
    files.write_through(blocks - 1)
    files.close()
    return sum(len(line) for p in directory.rglob("*") if p.is_file() for line in [p.read_bytes()])


def count_events(directory: Path) -> int:
    import orjson

    return sum(len(orjson.loads(line)["events"]) for p in directory.rglob("*") if p.is_file() for line in p.read_bytes().splitlines())


def follow(seconds: float, rate: float, coins: list[str], work: Path) -> tuple[float, float, int, float]:
    """(events/s followed, events/s offered, lag in blocks at the end, peak RSS MB of the follower)."""
    node_dir, root = work / "node", work / "followed"
    with simulator_process("--node-data", str(node_dir), "--coins", ",".join(coins), "--rate", str(rate)):
        time.sleep(1.5)
        offered_from = count_events(node_dir)
        began = time.monotonic()
        _, peak = run_measured("replay.cli", "record", "--node-data", str(node_dir), "--out", str(root), "--duration", str(seconds), "--node-info", "http://127.0.0.1:9", "--quiet")
        took = time.monotonic() - began
        offered = (count_events(node_dir) - offered_from) / took
    count = ("from replay import open_archive; import sys; con = open_archive(sys.argv[1]); "
             "print(con.execute('select (select count(*) from l4_statuses) + (select count(*) from l4_diffs) + (select count(*) from archive_nodeFills)').fetchone()[0])")
    result = subprocess.run([sys.executable, "-c", count, str(root)], capture_output=True, text=True, check=True)
    events = int(result.stdout.split()[-1])
    written = {int(m) for m in re.findall(rb'"block_number":(\d+)', b"".join(p.read_bytes() for p in (node_dir / "node_order_statuses_by_block").rglob("*") if p.is_file()))}
    cursor = Path(root / "_node" / "cursor.json").read_text()
    lag = max(written) - int(re.search(r'"height":(\d+)', cursor).group(1))  # type: ignore[union-attr]
    return events / seconds, offered, lag, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=12.0, help="blocks a second the simulator writes")
    parser.add_argument("--coins", type=int, default=7)
    parser.add_argument("--blocks", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    coins = COINS[: args.coins]
    work = Path(tempfile.mkdtemp(prefix="hlarchive-l4-bench-"))
    try:
        print(machine())
        followed, offered, lag, peak = follow(args.seconds, args.rate, coins, work)

        node_dir = work / "files"
        text_bytes = node_files(node_dir, coins, args.blocks)
        events_in_files = count_events(node_dir)
        gz = sum(len(gzip.compress(p.read_bytes(), 6)) for p in node_dir.rglob("*") if p.is_file())

        def run_import(*options: str, code: str = IMPORT) -> float:
            root = work / f"imported-{time.monotonic_ns()}"
            out, _ = run_measured("", node_dir.as_posix(), root.as_posix(), *options, code=code)
            events, seconds = out.split()
            archive = sum(p.stat().st_size for p in root.glob("channel=[!_]*/**/*.parquet") if "l4Checkpoints" not in str(p))
            run_import.archive_bytes = archive  # type: ignore[attr-defined]
            shutil.rmtree(root)
            return int(events) / float(seconds)

        def run_baseline() -> float:
            out, _ = run_measured("", node_dir.as_posix(), code=BASELINE)
            events, seconds = out.split()
            return int(events) / float(seconds)

        ours, base = interleaved(args.runs, lambda: run_import("--checkpoint-every", "0"), run_baseline, warm_up=True)
        with_checkpoints, base_again = interleaved(args.runs, run_import, run_baseline, warm_up=False)
        row_path = run_import(code=ROW_PATH)
        per_event = run_import.archive_bytes / events_in_files  # type: ignore[attr-defined]
        gz_per_event = gz / events_in_files
        figures = [
            Figure(f"follow: events/s ({len(coins)} coins, {args.rate:g} blocks/s offered)", round(followed), round(offered), "events/s offered", ">= 30,000/s, lag bounded", followed >= 30_000 and lag < 5 * args.rate),
            Figure("follow: lag at the end (blocks)", lag, None, "-", f"< {5 * args.rate:g} (5 s)", lag < 5 * args.rate),
            Figure("follow: peak RSS (MB)", round(peak, 1), None, "-", "<= 300 MB", peak <= 300),
            Figure("import: events/s (hlarchive import --checkpoint-every 0)", round(statistics.median(ours)), round(statistics.median(base)), "orjson.loads of the lines", ">= 0.5x", statistics.median(round_ratios(ours, base)) >= 0.5, round_ratios(ours, base)),
            Figure("import: events/s (hlarchive import, its default checkpoints after it)", round(statistics.median(with_checkpoints)), round(statistics.median(base_again)), "orjson.loads of the lines", ">= 0.5x",
                   statistics.median(round_ratios(with_checkpoints, base_again)) >= 0.5, round_ratios(with_checkpoints, base_again)),
            Figure("import: events/s, the row path (a block at a time; one run)", round(row_path), round(statistics.median(base)), "orjson.loads of the lines", "", None),
            Figure("archive: bytes/event", round(per_event, 2), round(gz_per_event, 2), "node text, gzip -6", "<= 0.5x", per_event <= 0.5 * gz_per_event),
        ]
        print(f"node files: {events_in_files:,} events in {args.blocks:,} blocks, {text_bytes / 1e6:,.1f} MB of text ({text_bytes / events_in_files:.0f} bytes/event)")
        print(table([f.row() for f in figures], HEADER))
        print(round_lines(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

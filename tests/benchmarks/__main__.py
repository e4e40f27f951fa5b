"""``python -m tests.benchmarks [--quick]``: every benchmark, one table, each figure beside its baseline.

Baselines run in the same run on the same data; the simulator always runs in its own process.
``--quick`` uses smaller data and fewer runs (a smoke check, not figures to quote).
"""

from __future__ import annotations

import argparse
import time

from . import (
    archive_size,
    export_throughput,
    freqtrade_export,
    history_import,
    object_storage,
    paper_throughput,
    recorder_throughput,
    replay_throughput,
    server_throughput,
    sql_vwap,
)
from .common import HEADER, machine, round_lines, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, one run each")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    started = time.time()
    figures = []
    figures += recorder_throughput.figures(seconds=4 if args.quick else 10, runs=runs)
    figures += replay_throughput.figures(frames_per_channel=10_000 if args.quick else 100_000, runs=runs)
    figures += archive_size.figures(frames_per_channel=5_000 if args.quick else 20_000)
    figures += sql_vwap.figures(hours=1 if args.quick else 24, runs=runs)
    figures += server_throughput.figures(seconds=2 if args.quick else 5, runs=runs)
    figures += history_import.figures(mb=5 if args.quick else 50, runs=runs)
    figures += object_storage.figures(hours=1 if args.quick else 24, runs=runs)
    figures += paper_throughput.figures(frames=5_000 if args.quick else 40_000, runs=runs, orders=200 if args.quick else 2_000)
    figures += export_throughput.figures(frames=2_000 if args.quick else 20_000, runs=runs, l4_minutes=1.5 if args.quick else 5.0)
    figures += freqtrade_export.figures(trades=200_000 if args.quick else 2_000_000, coins=10 if args.quick else 100, days=3 if args.quick else 30, runs=runs)
    print(f"hlarchive benchmarks: median of {runs} run(s); {machine()}; {time.strftime('%Y-%m-%d', time.gmtime())}; took {time.time() - started:.0f}s")
    print(table([f.row() for f in figures], HEADER))
    print(round_lines(figures))


if __name__ == "__main__":
    main()

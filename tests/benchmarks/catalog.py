"""A month of the whole market: readers planning from the catalog against walking the tree, and the
recorder's cost of compacting behind itself, in one run.

    python -m tests.benchmarks.catalog [--coins 300] [--days 30] [--runs 3] [--no-recorder]

Archive shapes (stated in each figure's name):

- *the hour*: a whole-market hour as today's defaults write it: 300 coins x (l2Book, trades, bbo) =
  900 partitions, a part a partition a minute (``--flush-seconds 60``): 54,000 parts of 10 rows.
- *30 days*: 29 older days as the recorder's compaction behind itself leaves them (a part a
  partition an hour, their catalog entries folded; no ``compact --into day`` of the user's: 626,400
  parts, hard links of one part a channel, so the benchmark stays within minutes), then the hour
  (its entries in the writers' lines, as while it is recorded). Walking 30 days' 700,000 files
  takes minutes a reader: those baselines are measured on one day only unless ``--walk-month``.
- *the hour, compacted*: the hour after the recorder's own compaction behind itself (a part a
  partition), measured on the S3 server the tests use too (SeaweedFS, on loopback).

Baselines: the same readers walking the tree (``HLARCHIVE_NO_CATALOG=1``: how every reader worked
before the catalog). Time to first frame is ``Replay(root, start, end)`` of one coin's trades for
the hour, to its first frame, in a fresh process, its imports done (pyarrow, duckdb: about 0.4 s
here, whatever the archive). The recorder's cost: the compaction of the hour
(54,000 parts -> 900) as the recorder runs it (its own low-priority process), CPU seconds; and the
recorder benchmark's intake with and without ``--compact-every 2s --compact-after 1s``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recorder import ArchiveWriter
from recorder.parts.catalog import CatalogLog, start_catalog
from replay.catalog import fold_date
from replay.storage import open_store
from schemas import parse_subscription
from schemas.catalog import Entry, entry_of_table, schema_id
from schemas.layout import PartName, escape, parquet_options

from .common import HEADER, Figure, machine, round_lines, synthetic_frames, table

T0_NS = 1_767_225_600_000_000_000  # 2026-01-01
DAY_NS = 86_400_000_000_000
MINUTE_NS = 60_000_000_000
HOUR_NS = 3_600_000_000_000
CHANNELS = ("l2Book", "trades", "bbo")
ROWS = 10  # a part's rows: a quiet coin's minute


def templates(work: Path) -> dict[str, pa.Table]:
    """A part's rows of each channel, as the writer makes them (typed ``data``), to stamp copies of."""
    out = {}
    for channel in CHANNELS:
        root = work / f"template-{channel}"
        frames = synthetic_frames({"type": channel, "coin": "BTC"}, ROWS, seed=3)
        with ArchiveWriter(root, session="tpl") as writer:
            for i, frame in enumerate(frames):
                writer.write(frame, T0_NS + i, {"type": channel, "coin": "BTC"})
        path = next(root.glob("channel=*/coin=*/date=*/part-*.parquet"))
        out[channel] = pq.read_table(path)
    return out


def stamp(root: Path, template: pa.Table, channel: str, coin: str, first_ns: int, span_ns: int, session: str, n: int, log: CatalogLog) -> None:
    """A copy of ``template`` as ``coin``'s part of ``channel`` received over ``[first_ns, first_ns + span_ns)``."""
    rows = template.num_rows
    recv = pa.array([first_ns + i * span_ns // rows for i in range(rows)], pa.int64())
    table = template.set_column(template.schema.get_field_index("recv_ns"), "recv_ns", recv)
    table = table.set_column(table.schema.get_field_index("coin"), "coin", pa.repeat(pa.scalar(coin), rows))
    table = table.set_column(table.schema.get_field_index("session"), "session", pa.repeat(pa.scalar(session), rows))
    stream = parse_subscription({"type": channel, "coin": coin}).stream
    table = table.set_column(table.schema.get_field_index("stream"), "stream", pa.repeat(pa.scalar(stream), rows))
    table = table.set_column(table.schema.get_field_index("seq"), "seq", pc.add(pa.array(range(rows), pa.int64()), n * rows))
    date = time.strftime("%Y-%m-%d", time.gmtime(first_ns // 1_000_000_000))
    directory = root / f"channel={channel}" / f"coin={escape(coin)}" / f"date={date}"
    directory.mkdir(parents=True, exist_ok=True)
    name = PartName(first_ns, session, n)
    path = directory / str(name)
    pq.write_table(table, path, **parquet_options(table.schema, 16_384))
    log.added([entry_of_table(path.relative_to(root).as_posix(), table, path.stat().st_size)])


def whole_market(root: Path, tpl: dict[str, pa.Table], coins: int, days: int) -> int:
    """``days - 1`` older days as the recorder's compaction behind itself leaves them (a part a
    partition an hour: no ``compact --into day`` of the user's), then the uncompacted hour (the last
    day's first); parts written.

    The older days' parts are hard links of one part a channel (a reader plans from their catalog
    entries, which say what each holds; only the last hour's parts are read in the figures), so
    626,400 of them take seconds to make."""
    start_catalog(root)
    log = CatalogLog(root, "bench")
    names = [f"C{c:03d}" for c in range(coins)]
    written = 0
    seed_dir = root.parent / f"{root.name}-seed"
    sources = {}
    for channel in CHANNELS:
        path = seed_dir / f"{channel}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(tpl[channel], path, **parquet_options(tpl[channel].schema, 16_384))
        sources[channel] = (path, path.stat().st_size, schema_id(tpl[channel].schema))
    store = open_store(root)
    links = 0
    for d in range(days - 1):
        day_ns = T0_NS + d * DAY_NS
        date = time.strftime("%Y-%m-%d", time.gmtime(day_ns // 1_000_000_000))
        entries = []
        for channel in CHANNELS:
            source, size, schema = sources[channel]
            for coin in names:
                if links + 24 > 60_000:  # a file takes 65,000 links at most: a fresh copy to link to
                    for name_, (path, size_, schema_) in list(sources.items()):
                        fresh = path.with_name(f"{name_}-{written}.parquet")
                        shutil.copyfile(path, fresh)
                        sources[name_] = (fresh, size_, schema_)
                    source, size, schema = sources[channel]
                    links = 0
                links += 24
                directory = root / f"channel={escape(channel)}" / f"coin={escape(coin)}" / f"date={date}"
                directory.mkdir(parents=True, exist_ok=True)
                for h in range(24):
                    first = day_ns + h * HOUR_NS
                    name = str(PartName(first, "compact20260101T000000_000000", h + 1))
                    os.link(source, directory / name)
                    relative = f"channel={escape(channel)}/coin={escape(coin)}/date={date}/{name}"
                    entries.append(Entry(relative, channel, coin, date, ROWS, size, first, first + HOUR_NS - 1, 0, ROWS - 1, "compact20260101T000000_000000", ((first, ROWS),), schema))
                    written += 1
        log.added(entries)
        fold_date(store, date, before_hour="9999999999")  # folded, as the recorder's compaction rounds leave them
    hour = T0_NS + (days - 1) * DAY_NS
    n = 0
    for minute in range(60):
        for channel in CHANNELS:
            for coin in names:
                n += 1
                stamp(root, tpl[channel], channel, coin, hour + minute * MINUTE_NS, MINUTE_NS, "live", n, log)
                written += 1
    return written


def run(code: str, *args: str, walk: bool = False) -> float:
    """Seconds a fresh process takes to run ``code`` (imports excluded: it times itself)."""
    env = {**os.environ, **({"HLARCHIVE_NO_CATALOG": "1"} if walk else {})}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


FIRST_FRAME = r"""
import sys, time
from replay import Replay
import pyarrow.parquet, pyarrow.compute  # what any first read loads: imports are not the planning
t = time.perf_counter()
root, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
replay = Replay(root, start=start / 1e6, end=end / 1e6)
replay.subscribe({"type": "trades", "coin": "C000"}, lambda m: None)
next(item for item in replay.items() if item.stream is not None)
print(time.perf_counter() - t)
"""

COMMAND = r"""
import sys, time
from click.testing import CliRunner
from replay.cli import main
import pyarrow.parquet, duckdb  # what any first read loads: imports are not the command's work
t = time.perf_counter()
result = CliRunner().invoke(main, sys.argv[1:])
assert result.exit_code in (0, 1), result.output
print(time.perf_counter() - t)
"""

QUERY = r"""
import sys, time
from replay.analysis.views import open_archive, partitions_of
t = time.perf_counter()
query = "select count(*) from trades where coin = 'C000' and recv_ns between ? and ?"
start, end = int(sys.argv[2]), int(sys.argv[3])
if sys.argv[4] == "window":  # as `hlarchive sql ROOT QUERY --coin C000 --start MS --end MS` opens it
    con = open_archive(sys.argv[1], partitions=partitions_of(query), coins=["C000"], start=start // 1_000_000, end=end // 1_000_000)
else:  # as `hlarchive sql ROOT QUERY` opens it: every part of the channels the query names
    con = open_archive(sys.argv[1], partitions=partitions_of(query))
n = con.execute(query, [start, end]).fetchone()[0]
assert n > 0
print(time.perf_counter() - t)
"""


def median(runs: int, code: str, *args: str, walk: bool = False) -> float:
    return statistics.median(run(code, *args, walk=walk) for _ in range(runs))


def figures(coins: int = 300, days: int = 30, runs: int = 3, recorder: bool = True, walk_month: bool = False) -> list[Figure]:
    work = Path(tempfile.mkdtemp())
    out: list[Figure] = []
    try:
        tpl = templates(work)
        one_day, month = work / "day", work / "month"
        whole_market(one_day, tpl, coins, 1)
        parts = whole_market(month, tpl, coins, days)
        hour = T0_NS + (days - 1) * DAY_NS
        window = (str(hour), str(hour + 3_600_000_000_000 - 1))
        day_window = (str(T0_NS), str(T0_NS + 3_600_000_000_000 - 1))
        shape_hour = f"the hour ({coins * 3 * 60:,} parts)"
        shape_month = f"30 days ({parts:,} parts)" if days == 30 else f"{days} days ({parts:,} parts)"
        for root, name, w in ((one_day, shape_hour, day_window), (month, shape_month, window)):
            ours = median(runs, FIRST_FRAME, str(root), *w)
            walked = median(runs, FIRST_FRAME, str(root), *w, walk=True)
            out.append(Figure(f"Replay of one coin-hour, first frame, s: {name}", round(ours, 3), round(walked, 3), "walking the tree", "<= 0.2 s", ours <= 0.2))
        flat = out[1].ours / out[0].ours
        out.append(Figure("first frame, 30 days / 1 day", round(flat, 2), None, "-", "flat (<= 1.5x)", flat <= 1.5))
        walked_root, walked_as = (month, "") if walk_month else (one_day, f" (1 day: {coins * 3 * 60:,} parts)")
        walked_window = window if walk_month else day_window
        for command in ("ls", "coverage"):
            ours = median(runs, COMMAND, command, str(month))
            walked = median(1, COMMAND, command, str(walked_root), walk=True)
            out.append(Figure(f"hlarchive {command}, s: {shape_month}", round(ours, 2), round(walked, 2), f"walking the tree, footers{walked_as}", "<= 5 s", ours <= 5.0))
        ours = median(runs, QUERY, str(month), *window, "window")
        walked = median(1, QUERY, str(walked_root), *walked_window, "whole", walk=True)
        out.append(Figure(f"DuckDB query of one coin-hour through the views of that coin-hour (sql --coin --start --end; open + query), s: {shape_month}", round(ours, 3), round(walked, 3), f"globbing the tree{walked_as}", "<= 0.5 s", ours <= 0.5))
        whole = median(runs, QUERY, str(month), *window, "whole")
        out.append(Figure(f"DuckDB query of one coin-hour through the views of the whole archive (open + query), s: {shape_month}", round(whole, 3), round(walked, 3), f"globbing the tree{walked_as}", "-", None))
        # the recorder's compaction of the hour, as it runs it behind itself
        before = os.times()
        done = subprocess.run([sys.executable, "-m", "replay.analysis.compaction", str(month), str(hour), str(hour + 3_600_000_000_000), str(3_600_000_000_000)], capture_output=True, text=True)
        after = os.times()
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        out.append(Figure(f"compaction behind the recorder, CPU s per hour of the whole market ({coins * 3 * 60:,} parts -> {coins * 3})", round(cpu, 1), 3600, "the hour it compacts", "-", None))
        compacted = median(runs, FIRST_FRAME, str(month), *window)
        out.append(Figure("Replay of one coin-hour, first frame, s: 30 days, the hour compacted", round(compacted, 3), None, "-", "<= 0.2 s", compacted <= 0.2))
        out += s3_figures(work, tpl, coins, runs)
        if recorder:
            out += recorder_figures()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def s3_figures(work: Path, tpl: dict[str, pa.Table], coins: int, runs: int) -> list[Figure]:
    """The hour compacted (a part a partition), synced to SeaweedFS: first frame with the catalog and walking the bucket."""
    from replay.analysis.sync import sync

    from ..s3server import S3Server

    root = work / "hour-compacted"
    start_catalog(root)
    log = CatalogLog(root, "bench")
    for channel in CHANNELS:  # the hour as compaction leaves it: a part a partition
        for c in range(coins):
            stamp(root, tpl[channel], channel, f"C{c:03d}", T0_NS, 3_600_000_000_000, "hour", c, log)
    server = S3Server(work / "seaweed").start()
    try:
        os.environ.update(server.env())
        url = "s3://hlarchive/bench"
        sync(root, url)
        window = (str(T0_NS), str(T0_NS + 3_600_000_000_000 - 1))
        ours = median(runs, FIRST_FRAME, url, *window)
        walked = median(runs, FIRST_FRAME, url, *window, walk=True)
        return [Figure(f"S3: Replay of one coin-hour, first frame, s: the hour, compacted ({coins * 3} parts)", round(ours, 3), round(walked, 3), "listing the bucket", "<= 0.2 s", ours <= 0.2)]
    finally:
        server.stop()


def recorder_figures(rate: float = 2000.0) -> list[Figure]:
    """Two loads, compaction on and off back to back in each round: the simulator as fast as it goes
    (every core busy: the compaction, at ``SCHED_IDLE``, waits), and ``rate`` frames/s with a part a
    partition a second (cores to spare: the compaction runs, and merges those parts)."""
    from .common import simulator_process
    from .recorder_throughput import SUBS, run_recorder_cpu

    out: list[Figure] = []
    for load, sim_rate, extra in (
        ("flat out", "0", ()),
        (f"{rate:,.0f} frames/s, --flush-seconds 1", str(rate / len(SUBS)), ("--flush-seconds", "1")),
    ):
        parts_off: list[int] = []
        parts_on: list[int] = []
        with simulator_process("--rate", sim_rate) as url:
            rounds = [
                (
                    run_recorder_cpu(url, 10.0, *extra, "--compact-every", "0", parts=parts_off),
                    run_recorder_cpu(url, 10.0, *extra, "--compact-every", "2s", "--compact-after", "1s", parts=parts_on),
                )
                for _ in range(3)
            ]
        off = statistics.median(r[0][0] for r in rounds)
        on = statistics.median(r[1][0] for r in rounds)
        cpu_off = statistics.median(r[0][2] for r in rounds)
        cpu_on = statistics.median(r[1][2] for r in rounds)
        left_on, left_off = statistics.median(parts_on), statistics.median(parts_off)
        out += [
            Figure(f"recorder frames/s, compacting behind itself every 2 s ({load})", round(on), round(off), "the same, --compact-every 0", ">= 0.95x", on >= 0.95 * off, tuple(r[1][0] / r[0][0] for r in rounds)),
            Figure(f"parts left after 10 s, compacting every 2 s ({load})", left_on, left_off, "the same, --compact-every 0", "", None),
            Figure(f"recorder CPU us/frame, compacting every 2 s ({load})", round(cpu_on, 1), round(cpu_off, 1), "the same, --compact-every 0", "", None),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=300)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-recorder", action="store_true")
    parser.add_argument("--walk-month", action="store_true", help="walk all 30 days for the ls/coverage/SQL baselines (minutes each)")
    args = parser.parse_args()
    results = figures(args.coins, args.days, args.runs, recorder=not args.no_recorder, walk_month=args.walk_month)
    print(f"catalog and compaction, median of {args.runs} runs ({machine()})")
    print(table([f.row() for f in results], HEADER))
    print(round_lines(results))


if __name__ == "__main__":
    main()

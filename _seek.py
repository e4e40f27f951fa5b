import cProfile, pstats, time, tempfile, random
from pathlib import Path
from tests.benchmarks.l4_book import build, with_checkpoints, seek_seconds, recv_ns, COIN
work = Path(tempfile.mkdtemp())
l4, l2, market, last = build(work, 10, 1000, 60)
cp = with_checkpoints(l4, work / "cp", 5)
ticks = random.Random(1).sample(range(last), 7)
print([round(seek_seconds(cp, COIN, recv_ns(market, t) // 1_000_000)[0], 3) for t in ticks])
pr = cProfile.Profile(); pr.enable()
for t in ticks: seek_seconds(cp, COIN, recv_ns(market, t) // 1_000_000)
pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(14)

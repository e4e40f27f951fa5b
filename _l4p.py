import cProfile, pstats, sys, time, tempfile
from pathlib import Path
from tests.benchmarks.l4_book import build, l2book_per_second, COIN
work = Path(tempfile.mkdtemp())
l4, l2, market, last = build(work, 10, 1000, 5)
print("blocks", last)
print("derived", l2book_per_second(l4), "recorded", l2book_per_second(l2))
pr = cProfile.Profile(); pr.enable(); l2book_per_second(l4); pr.disable()
pstats.Stats(pr).sort_stats("tottime").print_stats(18)

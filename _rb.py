import sys, time, tempfile, importlib.util
from pathlib import Path
from tests.benchmarks.l4_book import build, blocks_of, COIN
spec = importlib.util.spec_from_file_location("oldbook", "/tmp/oldbook.py"); old = importlib.util.module_from_spec(spec); sys.modules["oldbook"] = old; spec.loader.exec_module(old)
from schemas.l4.book import L4Book
work = Path(tempfile.mkdtemp())
l4, l2, market, last = build(work, 3, 1000, 60)
blocks = blocks_of(l4)
n = sum(len(d) for *_, d in blocks)
for name, cls in (("old", old.L4Book), ("new", L4Book), ("old", old.L4Book), ("new", L4Book)):
    b = cls(COIN); t = time.perf_counter()
    for h, ms, s, d in blocks: b.apply_block(h, ms, s, d)
    print(name, n / (time.perf_counter() - t))
import cProfile, pstats
pr = cProfile.Profile(); pr.enable()
b = L4Book(COIN)
for h, ms, s, d in blocks: b.apply_block(h, ms, s, d)
pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(10)

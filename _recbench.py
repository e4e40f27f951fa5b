from tests.benchmarks.catalog import recorder_figures
from tests.benchmarks.common import HEADER, table, round_lines
r = recorder_figures()
print(table([f.row() for f in r], HEADER))
print(round_lines(r))

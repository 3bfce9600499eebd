"""Sweep overhead per run: what papermill, the kernel start and the point's process cost next to the run's compute.

    python benchmarks/runner.py                       # the default run of nbs/04_ltdarts_search.ipynb, as a 1-point sweep
    python benchmarks/runner.py -p search_epochs 1    # any notebook parameters

The point runs exactly as `lt-workbook sweep` runs it (a `lt-workbook run` process, papermill, a fresh kernel). Compute
is the time spent inside the notebook's cells (papermill's per-cell durations); the overhead is the rest of the sweep's
wall-clock time for the point, split into papermill + kernel start (inside the point's process) and the process start.
"""
import argparse, tempfile, time
from pathlib import Path
import yaml
from lt_workbook.runner import run_sweep, read_record

ap = argparse.ArgumentParser()
ap.add_argument('--notebook', default='nbs/04_ltdarts_search.ipynb')
ap.add_argument('-p', '--parameter', nargs=2, action='append', default=[], metavar=('NAME', 'VALUE'))
a = ap.parse_args()

with tempfile.TemporaryDirectory() as tmp:
    sweep = Path(tmp)/'bench.yaml'
    base = {k: yaml.safe_load(v) for k, v in a.parameter}
    sweep.write_text(yaml.safe_dump(dict(notebook=a.notebook, base=base, grid={}, root=str(Path(tmp)/'root'))))
    t0 = time.perf_counter()
    table = run_sweep(sweep, workers=1)
    total = time.perf_counter() - t0
    assert table.status.tolist() == ['completed'], table.to_string()
    rec = read_record(table.folder[0])

compute, in_process = rec['cell_seconds'], rec['wall_time']
kernel, process = in_process - compute, total - in_process
print(f"\n{Path(a.notebook).name} {base or '(defaults)'}, one sweep point on this machine")
print(f"  compute (time in cells)          {compute:8.1f} s")
print(f"  papermill + kernel start         {kernel:8.1f} s")
print(f"  point process start + sweep      {process:8.1f} s")
print(f"  overhead / compute               {(kernel + process) / compute:8.3f}")

"""Papermill hangs with output capture into `Output` widgets, and none with 00's `show_in` (widget state).

    python benchmarks/output_widgets.py                 # 8 runs of each notebook, 4 at a time, 120 s each
    python benchmarks/output_widgets.py --runs 24 --cells 40

Two small notebooks, alike but for how they fill four `Output` widgets in each of `--cells` cells: by capture
(`out.clear_output()` then `with out: display(table)`, the usual way) or by `show_in(out, table)`. Each is executed by
papermill `--runs` times, `--parallel` at a time; a run that has not finished after `--timeout` seconds is counted as hung
(its kernel sits idle while papermill's client waits for a reply it never receives: jupyter/nbclient#312).
"""
import argparse, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import nbformat
from nbformat.v4 import new_code_cell, new_notebook

SETUP = ("import ipywidgets as widgets, pandas as pd\nfrom IPython.display import display\n"
         "from lt_workbook.plots import show_in\nouts = [widgets.Output() for _ in range(4)]\ndisplay(widgets.VBox(outs))")
FILL = dict(capture="for out in outs:\n    out.clear_output()\n    with out: display(pd.DataFrame({'acc': [61.5]}))",
            show_in="for out in outs: show_in(out, pd.DataFrame({'acc': [61.5]}))")

def write_notebook(path:Path, fill:str, cells:int):
    nb = new_notebook(cells=[new_code_cell(SETUP)] + [new_code_cell(fill) for _ in range(cells)])
    nb.metadata['kernelspec'] = dict(name='python3', display_name='Python 3', language='python')
    nbformat.write(nb, path)

def outcome(nb:Path, out:Path, timeout:float)->str:
    "'finished', 'failed' or 'hung' (not done after `timeout` seconds)."
    try:
        rc = subprocess.run([sys.executable, '-m', 'papermill', str(nb), str(out), '--no-progress-bar'],
                            capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired: return 'hung'   # subprocess.run kills papermill; its kernel exits with it
    return 'finished' if rc == 0 else 'failed'

ap = argparse.ArgumentParser()
ap.add_argument('--runs', type=int, default=8)
ap.add_argument('--cells', type=int, default=40)
ap.add_argument('--parallel', type=int, default=4)
ap.add_argument('--timeout', type=float, default=120)
a = ap.parse_args()

with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(a.parallel) as pool:
    for name, fill in FILL.items():
        nb = Path(tmp)/f'{name}.ipynb'
        write_notebook(nb, fill, a.cells)
        results = list(pool.map(lambda i: outcome(nb, Path(tmp)/f'{name}_{i}.ipynb', a.timeout), range(a.runs)))
        counts = {k: results.count(k) for k in ('finished', 'hung', 'failed')}
        print(f'{name:8s}: ' + ', '.join(f'{v} {k}' for k, v in counts.items()) + f' of {a.runs} papermill runs '
              f'({a.cells} cells filling 4 output widgets, {a.parallel} runs at a time, {a.timeout:.0f} s limit)', flush=True)

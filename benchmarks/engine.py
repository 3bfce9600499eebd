"""papermill's engine against this project's (`lt-papermill`, nbs/09a_engine.ipynb) on a section notebook.

papermill writes the output notebook when each cell starts and when it ends; `lt_workbook`'s engine writes it at most
every few seconds, and at the end. Both execute the same notebook with the same parameters (`papermill` and
`lt-papermill`, the same command line with the other engine; a kernel each), alternately, `--rounds` times; the CPU
time of papermill and its kernel together (the children's rusage) and the wall time are compared as ratios,
lt_workbook / papermill. `--tests-only` executes only the cells before the parameters cell (the checks that follow
each definition), where the writes weigh most.

    python benchmarks/engine.py [--notebook nbs/02_component_exploration.ipynb] [--rounds 2] [--tests-only]
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def source(notebook:Path, tests_only:bool, dest:Path)->Path:
    "The notebook to execute: `notebook`, or its cells before the parameters cell (in `dest`, beside it in spirit)."
    if not tests_only:
        return notebook
    nb = json.loads(notebook.read_text())
    end = next(i for i, c in enumerate(nb['cells']) if 'parameters' in c.get('metadata', {}).get('tags', []))
    nb['cells'] = nb['cells'][:end]
    dest.write_text(json.dumps(nb))
    return dest

def execute(src:Path, engine:str, runs:str)->tuple:
    "(CPU seconds of papermill and its kernel, wall seconds) of one execution of `src` with `engine`."
    env = {**os.environ, 'TQDM_DISABLE': '1', 'OMP_NUM_THREADS': '1', 'LT_WORKBOOK_RUNS': runs}
    out = Path(tempfile.mkdtemp())/'out.ipynb'
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    lt_papermill = [Path(sys.executable).with_name('lt-papermill')]   # the package's console script
    command = [sys.executable, '-m', 'papermill'] if engine == 'nbclient' else lt_papermill
    subprocess.run([*command, '--cwd', str(ROOT/'nbs'), '--no-progress-bar', str(src), str(out)],
                   env=env, check=True, capture_output=True)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--notebook', default='nbs/02_component_exploration.ipynb')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--tests-only', action='store_true')
    a = ap.parse_args()
    notebook = (ROOT/a.notebook).resolve()
    dest = notebook.parent/f'_engine_bench_{os.getpid()}_{notebook.name}'
    src = source(notebook, a.tests_only, dest)
    cells = len(json.loads(src.read_text())['cells'])
    res = {'nbclient': [], 'lt_workbook': []}
    try:
        for r in range(a.rounds):   # alternating, the order swapped every round
            for engine in (('nbclient', 'lt_workbook') if r % 2 == 0 else ('lt_workbook', 'nbclient')):
                res[engine].append(execute(src, engine, tempfile.mkdtemp()))
                cpu, wall = res[engine][-1]
                print(f'round {r}: {engine:12s} CPU {cpu:7.1f} s  wall {wall:7.1f} s', flush=True)
    finally:
        dest.unlink(missing_ok=True)
    ratio = lambda k: statistics.median(o[k] / p[k] for o, p in zip(res['lt_workbook'], res['nbclient']))
    print(f"{notebook.name}{' (cells before the parameters cell)' if a.tests_only else ''}: {cells} cells, "
          f"{a.rounds} alternating rounds; lt_workbook / papermill, median of the rounds' ratios: "
          f"CPU {ratio(0):.3f}, wall {ratio(1):.3f}")

if __name__ == '__main__':
    main()

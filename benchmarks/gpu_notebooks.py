"""The notebooks' default runs on an accelerator: does every notebook pass unchanged, and on which device did it train?

Executes each notebook as `make test` does: the section notebooks (the Makefile's E2E_NBS) through papermill with their
defaults, the others through `nbdev_test` (which skips `#| eval: false` cells such as a page's stored parameters),
several at a time, each with its own runs folder, under one deadline for the whole batch (a lent GPU is held for
minutes, not hours). A notebook passes when papermill finishes it without an error. The devices column reads the
`env.device` that every run directory's params.json records, so a pass on CUDA is told apart from a silent fall-back
to the CPU.

    python benchmarks/gpu_notebooks.py [NOTEBOOK ...] [--parallel 7] [--deadline 300] [--out /tmp/gpu_notebooks]

Prints one line per notebook as it ends, then a table; writes `notebooks.json` (and each executed notebook, for the
failures' tracebacks) under `--out`.
"""
import argparse, collections, json, os, re, shutil, signal, subprocess, sys, time
from pathlib import Path

def run_devices(runs:Path)->dict:
    "How many run directories under `runs` recorded each device (params.json's `env.device`)."
    devices = collections.Counter()
    for p in runs.rglob('params.json'):
        try: devices[json.loads(p.read_text()).get('env', {}).get('device', '?')] += 1
        except (OSError, ValueError): devices['unreadable'] += 1
    return dict(devices)

def e2e_pattern(makefile='Makefile')->re.Pattern:
    "The notebooks `make test` runs through papermill (E2E_NBS, also nbdev_test's skip pattern)."
    return re.compile(re.search(r"^E2E_NBS\s*=\s*(.+)$", Path(makefile).read_text(), re.M).group(1).strip())

def command(nb:Path, out:Path, e2e:re.Pattern)->list:
    "papermill with the defaults for a section notebook, nbdev_test for the others, as `make test`."
    if e2e.match(nb.name):
        return [sys.executable, '-m', 'papermill', '--cwd', str(nb.parent), '--no-progress-bar', '--start-timeout', '180', str(nb), str(out/nb.name)]
    return [shutil.which('nbdev_test') or 'nbdev_test', '--path', str(nb), '--do_print']

def start(nb:Path, out:Path, e2e:re.Pattern)->dict:
    "Start `nb`'s run; its runs go to a folder of its own."
    runs = out/'runs'/nb.stem; runs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, 'LT_WORKBOOK_RUNS': str(runs), 'TQDM_DISABLE': '1'}
    log = open(out/f'{nb.stem}.log', 'w')
    cmd = command(nb, out, e2e)
    return dict(nb=nb, runs=runs, log=log, t0=time.time(),   # a session of its own: stopping it stops its workers and kernel too
                proc=subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

def finish(job:dict, status:str)->dict:
    "The record of a notebook that ended (or was stopped at the deadline)."
    job['log'].close()
    log = Path(job['log'].name).read_text(errors='replace').splitlines()
    errors = [l for l in log if 'Error' in l or 'Exception' in l][-3:]
    return dict(notebook=job['nb'].name, status=status, seconds=round(time.time() - job['t0'], 1),
                devices=run_devices(job['runs']), errors=errors if status != 'passed' else [])

def kernel_start_failed(job:dict)->bool:
    "Whether papermill stopped because the kernel died on starting (not because of the notebook)."
    return 'Kernel died before replying to kernel_info' in Path(job['log'].name).read_text(errors='replace')

def stop(job:dict):
    "Kill the job's whole process session (papermill or nbdev_test, its workers and their kernels)."
    try: os.killpg(job['proc'].pid, signal.SIGKILL)
    except ProcessLookupError: pass
    job['proc'].wait()

def run_all(nbs:list, out:Path, parallel:int, deadline:float)->list:
    "Run `nbs`, `parallel` at a time, stopping whatever still runs `deadline` seconds after the start."
    end, todo, running, done, retried = time.time() + deadline, list(nbs), [], [], set()
    e2e = e2e_pattern()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # stopped from outside: the finally below stops the notebooks too
    try:
        while todo or running:
            if todo and len(running) < parallel and time.time() < end:
                running.append(start(todo.pop(0), out, e2e))
                time.sleep(2); continue           # one kernel start at a time: simultaneous starts can collide on ports
            time.sleep(1)
            for job in list(running):
                rc = job['proc'].poll()
                if rc is None and time.time() < end: continue
                if rc is None: stop(job)
                running.remove(job)
                if rc and job['nb'] not in retried and kernel_start_failed(job):   # once more, at the head of the queue
                    job['log'].close(); retried.add(job['nb']); todo.insert(0, job['nb']); continue
                done.append(finish(job, 'passed' if rc == 0 else 'stopped at the deadline' if rc is None else 'failed'))
                r = done[-1]; print(f"  {r['notebook']:<32} {r['status']:<24} {r['seconds']:>6.0f} s  {r['devices']}", flush=True)
            if time.time() >= end and not running:
                done += [dict(notebook=nb.name, status='not started (deadline)', seconds=0, devices={}, errors=[]) for nb in todo]; todo = []
    finally:
        for job in running: stop(job)
    return done

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='*', help='default: every numbered notebook in nbs/')
    ap.add_argument('--parallel', type=int, default=7); ap.add_argument('--deadline', type=float, default=300)
    ap.add_argument('--out', default='/tmp/gpu_notebooks')
    a = ap.parse_args()
    nbs = [Path(p) for p in a.notebooks] or sorted(Path('nbs').glob('[0-9]*.ipynb'))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    import torch
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device (CPU)'
    print(f"notebooks with their defaults on {name}, torch {torch.__version__}, {a.parallel} at a time, deadline {a.deadline:.0f} s", flush=True)
    done = run_all(nbs, out, a.parallel, a.deadline)
    (out/'notebooks.json').write_text(json.dumps(dict(device=name, torch=torch.__version__, notebooks=done), indent=1))
    print(f"\n{'notebook':<32} {'status':<24} {'seconds':>7}  runs by device")
    for r in sorted(done, key=lambda r: r['notebook']):
        print(f"{r['notebook']:<32} {r['status']:<24} {r['seconds']:>7.0f}  {r['devices'] or '-'}")
        for e in r['errors']: print(f"{'':<34}{e[:150]}")
    print(f"{sum(r['status'] == 'passed' for r in done)} of {len(done)} passed")

if __name__ == '__main__': main()

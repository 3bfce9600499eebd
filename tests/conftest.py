import os, signal, subprocess, sys, tempfile, time
from pathlib import Path
import pytest, yaml

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'

@pytest.fixture(scope='session', autouse=True)
def runs_root():
    "The runs root the notebooks write to by default: $LT_WORKBOOK_RUNS (shared with nbdev_test by `make test`) or a temp dir."
    if not os.environ.get('LT_WORKBOOK_RUNS'): os.environ['LT_WORKBOOK_RUNS'] = tempfile.mkdtemp(prefix='lt-runs-')
    return Path(os.environ['LT_WORKBOOK_RUNS'])

def papermill_cmd(nb, out, params, files=()):
    "papermill on `nb` with YAML parameter `files` (`-f`), then `params`."
    return [sys.executable, '-m', 'papermill', str(NBS/nb), str(out), *(a for f in files for a in ('-f', str(f))),
            '-y', yaml.safe_dump(params), '--cwd', str(NBS),
            '--no-progress-bar', '--start-timeout', '300']   # kernels start slowly beside other tests on 2 cores

def run_notebook(nb, out, params=None, timeout=900, files=()):
    "Execute `nb` with papermill; returns the CompletedProcess (stdout+stderr in `.stdout`)."
    return subprocess.run(papermill_cmd(nb, out, params or {}, files), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)

def run_bad_parameters(nb, tmp_path, bad:dict, workers:int=2)->dict:
    "Run `nb` once per `{name: (params, message)}` of `bad`, two kernels at a time (start timeout 300 s): {name: (run_dir, result)}."
    from concurrent.futures import ThreadPoolExecutor
    def go(item):
        name, (params, _) = item
        rd = tmp_path/f'runs_{name}'
        return name, (rd, run_notebook(nb, tmp_path/f'{name}.ipynb', {**params, 'run_dir': str(rd)}))
    with ThreadPoolExecutor(workers) as ex: return dict(ex.map(go, bad.items()))

def start_notebook(nb, out, params=None):
    "Start `nb` under papermill in its own process group (so the kernel can be killed with it)."
    return subprocess.Popen(papermill_cmd(nb, out, params or {}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)

def runs_in(root):
    "The run directories under `root`, keyed by run name without the parameter hash."
    from lt_workbook.training import Run
    return {p.name.rsplit('-', 1)[0]: Run(p) for p in sorted(Path(root).iterdir()) if (p/'params.json').exists()}

def kill_group(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

def _saved_after(metrics):
    "The run writes an epoch's metrics line, then its checkpoint: true once the checkpoint is at least as new."
    ck = metrics.parent/'checkpoint.pt'
    return ck.exists() and ck.stat().st_mtime_ns >= metrics.stat().st_mtime_ns

def kill_after_epochs(proc, root, metrics_glob, epochs, delay=0., timeout=600):
    "Once the run matching `root/metrics_glob` has logged `epochs` epochs (then `delay` s more), kill the notebook `proc`."
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        ms = list(Path(root).glob(metrics_glob))
        if ms and len(ms[0].read_text().splitlines()) >= epochs and _saved_after(ms[0]): break
        time.sleep(0.2)
    time.sleep(delay)
    assert proc.poll() is None, 'the run finished before it could be killed'
    kill_group(proc)

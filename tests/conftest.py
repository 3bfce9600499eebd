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

def check_bad_parameters(nb, tmp_path, bad:dict, end_to_end:str):
    """Each `{name: (params, message)}` of `bad` fails with `message` before any run directory is written: every one checked
    without a kernel (`validation_errors`, seconds), and `end_to_end` also through papermill, as a researcher would meet it."""
    rds = {name: tmp_path/f'runs_{name}' for name in bad}
    errors = validation_errors(nb, {name: {**params, 'run_dir': str(rds[name])} for name, (params, _) in bad.items()})
    for name, (params, msg) in bad.items():
        assert errors[name] is not None and msg in errors[name], (name, errors[name])
        assert not rds[name].exists(), f'{name}: {rds[name]} was written'
    params, msg = bad[end_to_end]
    rd = tmp_path/f'runs_{end_to_end}_papermill'
    res = run_notebook(nb, tmp_path/f'{end_to_end}.ipynb', {**params, 'run_dir': str(rd)})
    assert res.returncode != 0 and msg in res.stdout, (end_to_end, res.stdout[-2000:])
    assert not rd.exists(), f'{end_to_end}: {rd} was written'

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

def _code(cell): return ''.join(cell['source'])

_VALIDATE = r"""
import __future__, json, sys, types
spec = json.load(sys.stdin)
mod = sys.modules['__validation__'] = types.ModuleType('__validation__')   # dataclasses look their module up
run = lambda src, ns: exec(compile(src, spec['nb'], 'exec', flags=__future__.annotations.compiler_flag, dont_inherit=True), ns)
for src in spec['exports']: run(src, mod.__dict__)
errors = {}
for name, assignments in spec['cases'].items():
    ns = dict(mod.__dict__)
    try:
        for src in [spec['parameters'], assignments, *spec['after']]: run(src, ns)
        errors[name] = None
    except Exception as e: errors[name] = f'{type(e).__name__}: {e}'
print(json.dumps(errors))
"""

def validation_errors(nb, cases:dict, after:int=1)->dict:
    """What the notebook `nb` raises for each `{name: params}` of `cases`, as `{name: 'Type: message' or None}`, without a
    kernel: in one fresh Python process, its exported cells (definitions and imports) once, then per case its `parameters`
    cell, the case's values (as papermill injects them) and the `after` code cells that follow (where every notebook
    validates its parameters). Test cells are skipped, and the exported cells never run in the test process itself (they
    would register their classes in the package's registries)."""
    import json
    cells = [c for c in json.loads((NBS/nb).read_text())['cells'] if c['cell_type'] == 'code']
    i = next(i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', []))
    spec = dict(nb=nb, exports=[_code(c) for c in cells[:i] if _code(c).lstrip().startswith(('#| export', '#|export'))],
                parameters=_code(cells[i]), after=[_code(c) for c in cells[i + 1:i + 1 + after]],
                cases={name: '\n'.join(f'{k} = {v!r}' for k, v in params.items()) for name, params in cases.items()})
    res = subprocess.run([sys.executable, '-c', _VALIDATE], input=json.dumps(spec), capture_output=True, text=True, cwd=NBS,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])

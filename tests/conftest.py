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

def notebook_source(nb, out, tests:bool=True)->Path:
    """What papermill executes: the notebook `nb`, or with `tests=False` a copy beside `out` without its test cells (the
    runner's `without_tests`, what each rank of a distributed run executes): the runs after a notebook's default run,
    which executes them, re-run only the experiment."""
    if tests: return NBS/nb
    from lt_workbook.runner import without_tests
    return without_tests(NBS/nb, Path(out).with_name(Path(out).stem + '.source.ipynb'))

# `lt-papermill` (09a, the package's console script): papermill's command line, with the output notebook written every few
# seconds, not twice per cell
PAPERMILL = [str(Path(sys.executable).with_name('lt-papermill'))]

def papermill_cmd(nb, out, params, files=(), tests:bool=True, log_output:bool=False):
    "papermill on `nb` (without its test cells if not `tests`) with YAML parameter `files` (`-f`), then `params`; `log_output`: the cells' output streamed as `make run` streams it."
    return [*PAPERMILL, str(notebook_source(nb, out, tests)), str(out), *(a for f in files for a in ('-f', str(f))),
            '-y', yaml.safe_dump(params), '--cwd', str(NBS), *(['--log-output'] if log_output else []),
            '--no-progress-bar', '--start-timeout', '300']   # kernels start slowly beside other tests on 2 cores

def run_notebook(nb, out, params=None, timeout=900, files=(), tests:bool=True, log_output:bool=False):
    """Execute `nb` with papermill (`tests=False`: without its test cells; `log_output`: as `make run` does, text progress
    bars and messages streamed); returns the CompletedProcess (stdout+stderr in `.stdout`)."""
    env = {**os.environ, **({'LT_WORKBOOK_PROGRESS': 'text'} if log_output else {})}
    return subprocess.run(papermill_cmd(nb, out, params or {}, files, tests, log_output), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)

def check_bad_parameters(nb, tmp_path, bad:dict, end_to_end:str|None=None):
    """Each `{name: (params, message)}` of `bad` fails with `message` before any run directory is written: every one checked
    without a kernel (`validation_errors`: the notebook's own parameters and checking cells, seconds), and `end_to_end`
    (01 and 04, the README's notebooks) also through papermill, as a researcher would meet it."""
    rds = {name: tmp_path/f'runs_{name}' for name in bad}
    errors = validation_errors(nb, {name: {**params, 'run_dir': str(rds[name])} for name, (params, _) in bad.items()})
    for name, (params, msg) in bad.items():
        assert errors[name] is not None and msg in errors[name], (name, errors[name])
        assert not rds[name].exists(), f'{name}: {rds[name]} was written'
    if end_to_end is None: return
    params, msg = bad[end_to_end]
    rd = tmp_path/f'runs_{end_to_end}_papermill'
    res = run_notebook(nb, tmp_path/f'{end_to_end}.ipynb', {**params, 'run_dir': str(rd)}, tests=False)
    assert res.returncode != 0 and msg in res.stdout, (end_to_end, res.stdout[-2000:])
    assert not rd.exists(), f'{end_to_end}: {rd} was written'

def start_notebook(nb, out, params=None, tests:bool=True):
    "Start `nb` under papermill in its own process group (so the kernel can be killed with it)."
    return subprocess.Popen(papermill_cmd(nb, out, params or {}, tests=tests), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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


def validation_errors(nb, cases:dict, after:int=1)->dict:
    """What the notebook `nb` raises for each `{name: params}` of `cases`, as `{name: 'Type: message' or None}`, without a
    kernel: the runner's `preflight` (the check `lt-workbook run` makes before writing anything), per case."""
    from lt_workbook.runner import preflight
    return {name: preflight(NBS/nb, params, after) for name, params in cases.items()}


# The slowest tests (CI on 2 cores, slowest first) start first: scheduled last, one of them would end the run alone
SLOWEST_FIRST = ('test_ltdarts_notebook.py::test_default_run', 'test_training_notebook.py::test_default_run',
                 'test_runner.py::test_sweep_kill_rerun_failed_point_and_results', 'test_etf_notebook.py::test_default_run_and_bad_parameters',
                 'test_runner.py::test_slurm_requeue_resumes', 'test_browser.py::test_explorer_run_all_widgets_and_a_filter', 'test_recipes.py::test_default_run',
                 'test_ltdarts_notebook.py::test_resume_after_kill_gives_the_same_genotype', 'test_runner.py::test_run_reports_the_failing_cell',
                 'test_reslt_notebook.py::test_default_run', 'test_components_notebook.py::test_default_run',
                 'test_ltdarts_notebook.py::test_config_file_and_bad_parameters', 'test_training_notebook.py::test_resume_after_kill_matches_uninterrupted',
                 'test_distributed.py::test_torchrun_two_ranks_match_one_process_and_resume')

def pytest_collection_modifyitems(config, items):
    first = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: first.get(item.nodeid.split('/')[-1].split('@')[0].split('[')[0], len(first)))

"""The inspecting side of `lt-workbook` (issue 26): `--version`, `params`, `sweep --dry-run`, `status` of a sweep that
another process is running, `--loggers`, and `run` streaming the notebook's output (its text progress bars) to the
terminal. One tiny sweep of 01 (one point, 2 epochs) serves `status` while it runs and `--dry-run` once it is done."""
import ast, contextlib, io, json, logging, os, subprocess, sys, time
from pathlib import Path
from types import SimpleNamespace
import pytest, yaml
import lt_workbook
from lt_workbook import runner
from lt_workbook.runner import main
from lt_workbook.training import LOGGERS
from conftest import ROOT, NBS, kill_group

CLI = [sys.executable, '-c', 'import sys; from lt_workbook.runner import main; sys.exit(main())']
TINY01 = dict(methods=['ce'], epochs=2, n_max=20, imbalance_ratio=10, crt_epochs=0, eval_every=2, warmup_epochs=0,
              batch_size=16)

def cli_env():
    "The environment of a command started here: one thread; no progress mode of our own (the command sets it)."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    env.pop('LT_WORKBOOK_PROGRESS', None)
    return env

def cli(*args, **kw):
    "`lt-workbook ARGS` in a process of its own: stdout (the command's output) and stderr (its log) apart."
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=cli_env(), **kw)

def run_main(*args):
    "`main(ARGS)` in this process: (exit code, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()

def table_rows(text:str)->list:
    "The rows of a table `lt-workbook` printed (`text_table`, left-aligned) as dicts, cut at its header's columns."
    header, *lines = text.rstrip('\n').split('\n')
    starts, names = [], header.split()
    for n in names: starts.append(header.index(n, starts[-1] + 1 if starts else 0))
    return [{n: l[s:e].strip() for n, s, e in zip(names, starts, starts[1:] + [None])} for l in lines]

@pytest.fixture
def papermill_logger(monkeypatch):
    "papermill's logger as it was, after the test (`run` without `--quiet` gives it a handler in this process)."
    log = logging.getLogger('papermill')
    monkeypatch.setattr(log, 'handlers', list(log.handlers))
    monkeypatch.setattr(log, 'level', log.level)
    monkeypatch.setattr(log, 'propagate', log.propagate)
    return log

def test_version(capsys):
    with pytest.raises(SystemExit) as e: main(['--version'])
    assert e.value.code == 0 and capsys.readouterr().out == f'lt-workbook {lt_workbook.__version__}\n'

def literal_parameters(nb)->dict:
    "{name: value} of every assignment in the notebook's `parameters` cell, read here with `ast` (this test's reading)."
    cells = json.loads((NBS/nb).read_text())['cells']
    src = next(''.join(c['source']) for c in cells if 'parameters' in c['metadata'].get('tags', []))
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign): targets = node.targets
        elif isinstance(node, ast.AnnAssign): targets = [node.target]
        else: continue
        out.update({t.id: ast.literal_eval(node.value) for t in targets})
    return out

def test_params_lists_every_parameter_of_04():
    "Every parameter 04's parameters cell assigns, in order, with its literal default and its comment; by path or name."
    expected = literal_parameters('04_ltdarts_search.ipynb')
    rc, out, err = run_main('params', '04')
    assert rc == 0, err
    rows = table_rows(out)
    assert list(rows[0]) == ['name', 'default', 'comment'] and [r['name'] for r in rows] == list(expected), out
    for r in rows: assert ast.literal_eval(r['default']) == expected[r['name']], r
    rc, js, err = run_main('params', 'nbs/04_ltdarts_search.ipynb', '--format', 'json')
    params = json.loads(js)
    assert rc == 0 and [p['name'] for p in params] == list(expected), err
    for p in params: assert p['value'] == ast.literal_eval(p['default']) == expected[p['name']], p
    by_name = {p['name']: p for p in params}
    assert by_name['classifier']['comment'].startswith('classifier during the search'), by_name['classifier']
    assert by_name['data_seed']['comment'] == '' and 'stem' in by_name   # `stem`: a line papermill's inspection skips
    assert run_main('params', '04_ltdarts_search')[1] == out
    rc, _, err = run_main('params', '99')
    assert rc == 2 and 'the section notebooks are' in err and '04_ltdarts_search' in err, err

def test_loggers_and_text_progress_reach_what_runs(monkeypatch, tmp_path, papermill_logger):
    "`--loggers` and text progress bars are the environment of what `run` executes, restored after; output streams."
    seen = {}
    def fake_execute(notebook, params, run_dir, **kw):
        seen.update(env={k: os.environ.get(k) for k in ('LT_WORKBOOK_PROGRESS', 'LT_WORKBOOK_LOGGERS')}, kw=kw)
        return dict(status='completed', notebook=str(notebook), wall_time=0, cell_seconds=0)
    monkeypatch.setattr(runner, 'execute', fake_execute)
    monkeypatch.delenv('LT_WORKBOOK_PROGRESS', raising=False)
    monkeypatch.delenv('LT_WORKBOOK_LOGGERS', raising=False)
    spec = ','.join(LOGGERS)
    rc, out, err = run_main('run', '04', '--loggers', spec)
    assert rc == 0 and 'completed in' in out, err
    assert seen['env'] == {'LT_WORKBOOK_PROGRESS': 'text', 'LT_WORKBOOK_LOGGERS': spec}
    assert seen['kw'] == dict(log_output=True, progress=False)
    assert 'LT_WORKBOOK_PROGRESS' not in os.environ and 'LT_WORKBOOK_LOGGERS' not in os.environ
    assert papermill_logger.level == logging.INFO and papermill_logger.handlers   # the notebook's output on stderr
    seen.clear()
    rc, _, err = run_main('run', '04', '--loggers', 'tensorbord', '--run-dir', tmp_path/'r')
    assert rc == 2 and "loggers='tensorbord': expected one of ('tensorboard', 'wandb')" in err, err
    assert not seen and not (tmp_path/'r').exists()

def tiny_notebook(path:Path, *sources:str, params:str='n = 3\nrun_dir = None'):
    "A notebook at `path`: a parameters cell `params`, then a code cell per source."
    cells = [dict(cell_type='code', id=f'c{i}', metadata={'tags': ['parameters']} if i == 0 else {},
                  execution_count=None, outputs=[], source=src) for i, src in enumerate([params, *sources])]
    kernel = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    path.write_text(json.dumps(dict(nbformat=4, nbformat_minor=5, metadata={'kernelspec': kernel}, cells=cells)))
    return path

def test_run_streams_the_notebook_output(tmp_path):
    "`run` shows the notebook's printed output and progress bar (text) on stderr as it runs; stdout has the last line."
    nb = tiny_notebook(tmp_path/'tiny.ipynb', 'assert n >= 1',
                       "from lt_workbook.training import progress\nprint('hello from the kernel')\n"
                       "for i in progress(range(n), desc='steps'): pass")
    res = cli('run', nb, '-p', 'n', 4, '--run-dir', tmp_path/'r', timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'hello from the kernel' in res.stderr and 'steps: 100%' in res.stderr, res.stderr[-3000:]
    assert '4/4' in res.stderr and res.stdout.startswith('tiny.ipynb completed in'), (res.stdout, res.stderr[-3000:])

@pytest.fixture(scope='module')
def tiny_sweep(tmp_path_factory):
    "A one-point sweep of 01 (2 tiny epochs), started in the background."
    d = tmp_path_factory.mktemp('cli_sweep')
    f = d/'tiny.yaml'
    f.write_text(yaml.safe_dump(dict(notebook='nbs/01_training.ipynb', base=TINY01, seeds=[0], root=str(d/'sweep'))))
    proc = subprocess.Popen([*CLI, 'sweep', str(f), '--no-tests'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=cli_env())
    yield SimpleNamespace(dir=d, file=f, root=d/'sweep', proc=proc)
    if proc.poll() is None: kill_group(proc)

def finished(sweep, timeout=600)->str:
    "The sweep's output, once it has ended (successfully)."
    if not hasattr(sweep, 'out'): sweep.out = sweep.proc.communicate(timeout=timeout)[0]
    assert sweep.proc.returncode == 0, sweep.out[-3000:]
    return sweep.out

@pytest.mark.xdist_group('cli_sweep')
def test_status_follows_a_running_sweep(tiny_sweep):
    "`status` while another process runs the sweep: the point held by that process, then completed, epochs, accuracy."
    seen, deadline = [], time.time() + 600
    while tiny_sweep.proc.poll() is None and time.time() < deadline:
        rc, out, err = run_main('status', tiny_sweep.file, '--format', 'json')
        assert rc == 0, err
        seen.append(json.loads(out)[0])
        time.sleep(0.3)
    out = finished(tiny_sweep)
    assert 'tiny.yaml: 1 point of 01_training.ipynb in' in out and '0 completed, 1 to run' in out, out[-2000:]
    held = f'running (held by pid {tiny_sweep.proc.pid} on host '
    states = [s['status'] for s in seen]
    assert any(s.startswith(held) for s in states), states
    assert all(s in ('to run', 'completed') or s.startswith(held) for s in states), states
    assert all(s['epochs'] in (None, '0/2', '1/2', '2/2') for s in seen), seen   # as far as metrics.jsonl goes
    res = cli('status', tiny_sweep.file)
    assert res.returncode == 0, res.stderr[-2000:]
    row, = table_rows(res.stdout)
    assert list(row) == ['point', 'status', 'runs', 'epochs', 'acc', 'wall_time'], res.stdout
    assert row['point'].startswith('seed=0-'), row
    assert (row['status'], row['runs'], row['epochs']) == ('completed', '1/1', '2/2'), row
    assert float(row['acc']) >= 0 and float(row['wall_time']) > 0, row
    rc, by_root, _ = run_main('status', tiny_sweep.root)   # the sweep's folder: the points it holds
    assert rc == 0 and by_root == res.stdout

def tree(root)->dict:
    return {str(p): p.stat().st_mtime_ns for p in Path(root).rglob('*')}

@pytest.mark.xdist_group('cli_sweep')
def test_dry_run_lists_points_without_running_any(tiny_sweep):
    "One more seed in the sweep file: `--dry-run` shows the completed point skipped, the new one to run; writes nothing"
    finished(tiny_sweep)
    more = tiny_sweep.dir/'more.yaml'
    more.write_text(tiny_sweep.file.read_text().replace('- 0\n', '- 0\n- 1\n'))
    before, t0 = tree(tiny_sweep.dir), time.time()
    res = cli('sweep', more, '--dry-run', '--no-tests')
    assert res.returncode == 0, res.stderr[-2000:]
    first, rest = res.stdout.split('\n', 1)
    assert first.startswith('more.yaml: 2 points of 01_training.ipynb in'), first
    assert first.endswith('1 completed, 1 to run'), first
    rows = {r['point'].split('-')[0]: r for r in table_rows(rest)}
    assert list(rows) == ['seed=0', 'seed=1'], rows
    assert list(rows['seed=0']) == ['point', 'status', 'action', 'notebook', 'parameters'], rows
    done, todo = rows['seed=0'], rows['seed=1']
    assert (tiny_sweep.root/done['point']).is_dir() and (done['status'], done['action']) == ('completed', 'skip'), done
    assert (todo['status'], todo['action'], todo['notebook']) == ('to run', 'run', '01_training.ipynb'), todo
    assert all(s in todo['parameters'] for s in ('seeds=[1]', 'epochs=2', 'methods=["ce"]')), todo
    assert tree(tiny_sweep.dir) == before and not (tiny_sweep.root/todo['point']).exists()   # nothing written or run
    assert time.time() - t0 < 60                                                            # no kernel started

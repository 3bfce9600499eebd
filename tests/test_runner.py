"""The `lt-workbook` command end to end: a 2-seed sweep over notebook 04, killed and re-run, failing points,
the results table, `run`'s failure report, and the Slurm executor on a real single-node Slurm."""
import json, os, shutil, subprocess, sys, time
from pathlib import Path
import pytest, yaml
from conftest import ROOT, kill_group

TINY = dict(search_epochs=1, layers=3, init_channels=4, n_max=30, imbalance_ratio=10, hessian_every=0, retrain_methods=[], ablations=[])
CLI = [sys.executable, '-c', 'import sys; from lt_workbook.runner import main; sys.exit(main())']

def cli(*args, **kw):
    return subprocess.run([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'}, **kw)

def write_sweep(path, root, classifiers, **extra):
    path.write_text(yaml.safe_dump(dict(notebook='nbs/04_ltdarts_search.ipynb', base=TINY, grid={'classifier': classifiers},
                                        root=str(root), **extra)))
    return path

def records(root):
    return {p.parent.name: json.loads(p.read_text()) for p in Path(root).glob('*/execution.json')}

def test_sweep_kill_rerun_failed_point_and_results(tmp_path):
    root = tmp_path/'sweep'
    sweep = write_sweep(tmp_path/'tiny.yaml', root, ['etf'], seeds=[0, 1])
    # 1. start the 2-point sweep on 1 worker, kill it (with its worker and kernel) once the first point has completed
    proc = subprocess.Popen([*CLI, 'sweep', str(sweep), '--workers', '1'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if any(r['status'] == 'completed' for r in records(root).values()): break
        time.sleep(0.2)
    assert proc.poll() is None, 'the sweep finished before it could be killed'
    kill_group(proc)
    before = records(root)
    done_before = {k: r['started'] for k, r in before.items() if r['status'] == 'completed'}
    assert len(done_before) == 1, before
    # 2. re-run, one point per "GPU" (CPU here: only the pinning is checked): only the missing points run
    res = cli('sweep', sweep, '--gpus', '0,1')
    assert res.returncode == 0, res.stdout[-3000:]
    assert '1 completed, 1 to run' in res.stdout, res.stdout[-2000:]
    after = records(root)
    assert len(after) == 2 and all(r['status'] == 'completed' for r in after.values())
    assert {k: after[k]['started'] for k in done_before} == done_before
    assert {after[k]['gpus'] for k in after if k not in done_before} <= {'0', '1'}      # CUDA_VISIBLE_DEVICES per point
    for name, r in after.items():
        assert (root/name/'04_ltdarts_search.ipynb').exists() and (root/name/'log.txt').exists()
        assert r['cell_seconds'] > 0 and r['wall_time'] >= r['cell_seconds']
    # 3. the same sweep with a bad value added: 2 points skipped, the 2 bad ones recorded as failed, exit code 1
    bad = write_sweep(tmp_path/'tiny_bad.yaml', root, ['etf', 'bogus'], seeds=[0, 1])
    res = cli('sweep', bad, '--workers', '2')
    assert res.returncode == 1, res.stdout[-3000:]
    assert '2 completed, 2 to run' in res.stdout and 'FAILED classifier=bogus' in res.stdout, res.stdout[-2000:]
    failed = {k: r for k, r in records(root).items() if r['status'] == 'failed'}
    assert len(failed) == 2 and all("classifier='bogus'" in r['error'] for r in failed.values()), failed
    # 4. the results table: one row per run and per failed point, and mean +- std over the 2 seeds
    res = cli('results', root, '--format', 'json', '--runs')
    assert res.returncode == 0, res.stdout[-2000:]
    rows = json.loads(res.stdout)
    assert sorted(r['status'] for r in rows) == ['completed'] * 2 + ['failed'] * 2
    assert {r['run'] for r in rows if r['status'] == 'completed'} == {'search_lt_etf'}
    assert all(r['section'] == '04_ltdarts_search' for r in rows)
    res = cli('results', root, '--format', 'csv')
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2 and all(l.split(',')[lines[0].split(',').index('seeds')] == '2' for l in lines[1:]), res.stdout
    res = cli('results', root)
    assert 'not completed' in res.stdout and 'bogus' in res.stdout and '±' in res.stdout, res.stdout

def test_run_reports_the_failing_cell(tmp_path):
    "Parameters the notebook's checks refuse: a one-line error before anything is written; a cell that fails later: its error, recorded."
    res = cli('run', '04', '-p', 'classifier', 'bogus', '--run-dir', tmp_path/'r', '--quiet')
    assert res.returncode == 2 and "classifier='bogus'" in res.stdout and not (tmp_path/'r').exists(), res.stdout[-2000:]
    res = cli('run', '01', '-p', 'lr', '1e9', '-p', 'warmup_epochs', '0', '-p', 'methods', '[ce]', '--run-dir', tmp_path/'d', '--quiet')
    assert res.returncode == 1
    assert 'Diverged' in res.stdout and 'failed' in res.stdout, res.stdout[-2000:]
    rec = json.loads((tmp_path/'d'/'execution.json').read_text())
    assert rec['status'] == 'failed' and rec['params']['lr'] == 1e9 and (tmp_path/'d'/'01_training.ipynb').exists()
    res = cli('run', '04', '-p', 'clasifier', 'etf')
    assert res.returncode == 2 and "no parameter 'clasifier'" in res.stdout

@pytest.fixture(scope='module')
def slurm(tmp_path_factory):
    "A Slurm to submit to: the machine's own, else a single-node one started here (tests/slurm/single_node.sh)."
    if shutil.which('sinfo') and subprocess.run(['sinfo'], capture_output=True).returncode == 0:
        yield None; return
    d = tmp_path_factory.mktemp('slurm')
    script = ROOT/'tests'/'slurm'/'single_node.sh'
    res = subprocess.run(['bash', script, 'start', d], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode == 3: pytest.skip(f'no Slurm here and none can be started: {res.stdout.strip()}')
    assert res.returncode == 0, res.stdout
    os.environ['SLURM_CONF'] = str(d/'slurm.conf')
    yield d
    subprocess.run(['bash', script, 'stop', d])
    del os.environ['SLURM_CONF']

def test_slurm_executor(slurm, tmp_path):
    "The points of a sweep as one Slurm job array (submitit): one completes, one fails with its error recorded."
    root = tmp_path/'sweep'
    sweep = write_sweep(tmp_path/'slurm.yaml', root, ['linear', 'bogus'], slurm={'timeout_min': 15, 'cpus_per_task': 1})
    res = cli('sweep', sweep, '--executor', 'slurm', timeout=900)
    assert res.returncode == 1, res.stdout[-3000:]
    assert 'submitted 2 Slurm job(s)' in res.stdout, res.stdout[-3000:]
    recs = records(root)
    assert sorted(r['status'] for r in recs.values()) == ['completed', 'failed'], recs
    assert any(f.name.endswith('_result.pkl') for f in (root/'.submitit').iterdir())

"""Issue 23, the runner's part (nbs/09_runner.ipynb): two sweeps split the points, a point killed by a signal is recorded
failed, results group by every parameter but the seed, unreadable files are listed instead of stopping everything, failed
runs keep their error, and the CLI's bad inputs are one-line errors before anything is written. No notebook is executed:
points run a fake command (monkeypatched `_point_command`), runs are written by hand as `Run` writes them."""
import contextlib, io, json, sys, threading
from pathlib import Path
import pytest, yaml
from lt_workbook import runner
from lt_workbook.runner import (find_notebook, check_params, load_sweep, main, results_table, run_sweep,
                                seed_summary, sweep_points)
from lt_workbook.training import params_hash

NB04 = 'nbs/04_ltdarts_search.ipynb'

FAKE = r'''import json, os, signal, sys, time
point_dir, mode, log = sys.argv[1:4]
with open(log, 'a') as f: f.write(os.path.basename(point_dir) + "\n")
rec = dict(section='04_ltdarts_search', params={}, status='running', error=None)
json.dump(rec, open(os.path.join(point_dir, 'execution.json'), 'w'))
if mode == 'kill': os.kill(os.getpid(), signal.SIGKILL)
time.sleep(0.3)
json.dump({**rec, 'status': 'completed'}, open(os.path.join(point_dir, 'execution.json'), 'w'))
'''

@pytest.fixture
def fake_points(monkeypatch, tmp_path):
    "Points run `FAKE` in `mode` (set `.mode`); every execution appends the point's name to `.log`."
    class F: mode, log = 'ok', tmp_path/'executions.log'
    monkeypatch.setattr(runner, '_point_command',
                        lambda notebook, point_dir: [sys.executable, '-c', FAKE, str(point_dir), F.mode, str(F.log)])
    return F

def sweep_file(tmp_path, root, **extra):
    f = tmp_path/'tiny.yaml'
    f.write_text(yaml.safe_dump(dict(notebook=NB04, base={'search_epochs': 1}, grid={'classifier': ['etf', 'linear']},
                                     seeds=[0, 1], root=str(root), **extra)))
    return f

def executions(log): return Path(log).read_text().split() if Path(log).exists() else []

def quiet(f, *a, **kw):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return f(*a, **kw)

def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()

# defect 2 (sweep half): two sweeps over one file split the points; a point whose holder died is claimable again
def test_two_concurrent_sweeps_run_each_point_once(tmp_path, fake_points):
    root = tmp_path/'sweep'
    f = sweep_file(tmp_path, root)
    tables = [None, None]
    def go(i): tables[i] = quiet(run_sweep, f, workers=2)
    threads = [threading.Thread(target=go, args=(i,)) for i in (0, 1)]
    for t in threads: t.start()
    for t in threads: t.join()
    names = [p.name for p in sweep_points(load_sweep(f))]
    assert sorted(executions(fake_points.log)) == sorted(names), executions(fake_points.log)   # each exactly once
    for t in tables:
        assert set(t.status) <= {'completed', 'running elsewhere'} and len(t) == 4, t
    assert all(json.loads((root/n/'execution.json').read_text())['status'] == 'completed' for n in names)
    # a point left `running` by a dead holder (its lock file stays, unlocked) runs again; completed ones do not
    stale = root/names[0]
    (stale/'execution.json').write_text(json.dumps(dict(section='04_ltdarts_search', params={}, status='running')))
    (stale/'.lock').write_text('999999 elsewhere\n')
    t = quiet(run_sweep, f)
    assert executions(fake_points.log).count(names[0]) == 2 and len(executions(fake_points.log)) == 5
    assert set(t.status) == {'completed'}

# defect 5: a point killed by a signal is recorded failed with the signal; the sweep goes on
def test_point_killed_by_a_signal_is_failed_and_the_sweep_finishes(tmp_path, fake_points):
    fake_points.mode = 'kill'
    root = tmp_path/'sweep'
    t = quiet(run_sweep, sweep_file(tmp_path, root), workers=2)
    assert len(t) == 4 and set(t.status) == {'failed'}, t
    assert all('SIGKILL' in e for e in t.error), t.error.tolist()
    rec = json.loads((Path(t.folder[0])/'execution.json').read_text())
    assert rec['status'] == 'failed' and 'killed by SIGKILL (signal 9)' in rec['error']
    assert len(executions(fake_points.log)) == 4

def write_run(root, name, params, summary=None, params_text=None):
    "A run directory as `Run` writes it: `<name>-<hash>/params.json` (+ `env`), `summary.json` once finished."
    d = Path(root)/f'{name}-{params_hash(params)}'
    d.mkdir(parents=True)
    (d/'params.json').write_text(params_text if params_text is not None else json.dumps({**params, 'env': {'host': 'h'}}))
    if summary is not None: (d/'summary.json').write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return d

BASE = dict(dataset='mnist5k', imbalance_ratio=100.0, arch='resnet32', classifier='linear', loss='ce', method='ce', epochs=2)
def done(acc): return dict(status='completed', acc=acc, many=acc, medium=acc, few=acc, params=1000)

# defect 4: runs outside a sweep are grouped by every parameter but the seed
def test_results_group_by_every_parameter_but_the_seed(tmp_path):
    root = tmp_path/'runs'/'01_training'
    write_run(root, 'ce_s0', {**BASE, 'lr': 0.05, 'seed': 0}, done(60.))
    write_run(root, 'ce_s1', {**BASE, 'lr': 0.05, 'seed': 1}, done(64.))
    write_run(root, 'ce_lr02_s0', {**BASE, 'lr': 0.2, 'seed': 0}, done(40.))
    s = seed_summary(results_table(tmp_path/'runs')).set_index('config')
    assert sorted(s.index) == ['lr=0.05', 'lr=0.2'], s
    assert s.loc['lr=0.05', 'seeds'] == 2 and s.loc['lr=0.05', 'acc_mean'] == 62 and s.loc['lr=0.2', 'seeds'] == 1
    rc, out, _ = cli('results', tmp_path/'runs', '--format', 'json')
    assert rc == 0 and sorted(r['seeds'] for r in json.loads(out)) == [1, 2]

# defect 7: one unreadable JSON is listed with its path; the others are reported (results and sweep)
def test_unreadable_files_are_listed_and_the_rest_reported(tmp_path, fake_points):
    root = tmp_path/'runs'/'01_training'
    write_run(root, 'good_s0', {**BASE, 'seed': 0}, done(60.))
    bad_params = write_run(root, 'badp', {**BASE, 'seed': 1}, done(61.), params_text='{"lr": 0.1, ')
    bad_summary = write_run(root, 'bads', {**BASE, 'seed': 2}, '{"status": "compl')
    point = tmp_path/'runs'/'sweeps'/'s'/'lr=0.1-00000000'; point.mkdir(parents=True)
    (point/'parameters.yaml').write_text('lr: 0.1\n'); (point/'execution.json').write_text('not json')
    t = results_table(tmp_path/'runs')
    bad = t[t.status == 'unreadable']
    assert len(t) == 4 and len(bad) == 3, t
    for f in (bad_params/'params.json', bad_summary/'summary.json', point/'execution.json'):
        assert bad.error.str.contains(str(f), regex=False).any(), (f, bad.error.tolist())
    assert t[t.run == 'good_s0'].status.item() == 'completed'
    rc, out, _ = cli('results', tmp_path/'runs')
    assert rc == 0 and 'unreadable' in out and 'params.json' in out
    # a sweep with one point's execution.json corrupt: that point is listed (not run, not trained over), the others run
    sroot = tmp_path/'sweep'
    f = sweep_file(tmp_path, sroot)
    names = [p.name for p in sweep_points(load_sweep(f))]
    (sroot/names[0]).mkdir(parents=True); (sroot/names[0]/'execution.json').write_text('{')
    t = quiet(run_sweep, f, workers=2).set_index('point')
    assert t.loc[names[0], 'status'] == 'unreadable' and str(sroot/names[0]/'execution.json') in t.loc[names[0], 'error']
    assert (t.drop(index=names[0]).status == 'completed').all() and sorted(executions(fake_points.log)) == sorted(names[1:])

# defect 9: a failed run keeps its error in the results
def test_failed_run_keeps_its_error(tmp_path):
    write_run(tmp_path/'runs'/'01_training', 'ce', {**BASE, 'seed': 0}, dict(status='failed', error='RuntimeError: boom'))
    t = results_table(tmp_path/'runs')
    assert t.status.item() == 'failed' and t.error.item() == 'RuntimeError: boom'

# defect 10 (CLI half): checked before anything is written, one-line errors naming the file, no overwritten run
def test_run_checks_values_before_writing(tmp_path):
    d = tmp_path/'r'
    rc, _, err = cli('run', '04', '-p', 'search_epochs', '1.5', '--run-dir', d)
    assert rc == 2 and 'search_epochs=1.5' in err and 'integer' in err and not d.exists(), err
    assert check_params(find_notebook('04'), {'lr': '5e-2', 'arch_lr': '0.03', 'search_epochs': 2}) == \
        {'lr': 0.05, 'arch_lr': 0.03, 'search_epochs': 2}                          # papermill -f: YAML 1.1 reads 5e-2 as text
    assert check_params(find_notebook('01'), {'seeds': 3, 'methods': 'ce'}) == {'seeds': [3], 'methods': ['ce']}
    with pytest.raises(ValueError, match=r'seeds=\[0.0\]'): check_params(find_notebook('01'), {'seeds': [0.0]})

def test_cli_missing_and_malformed_files_are_one_line_errors(tmp_path):
    (tmp_path/'bad.yaml').write_text('lr: [0.1\nepochs: 2\n')
    (tmp_path/'bad_sweep.yaml').write_text(f'notebook: {NB04}\ngrid: {{classifier: [etf}}\n')
    for args, name in [(['run', '04', '-f', tmp_path/'missing.yaml'], 'missing.yaml'), (['run', '04', '-f', tmp_path/'bad.yaml'], 'bad.yaml'),
                       (['sweep', tmp_path/'missing.yaml'], 'missing.yaml'), (['sweep', tmp_path/'bad_sweep.yaml'], 'bad_sweep.yaml'),
                       (['results', tmp_path/'nowhere'], 'nowhere')]:
        rc, _, err = cli(*args)
        assert rc == 2 and name in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not list(tmp_path.glob('*/execution.json'))

def test_sweep_scalar_seeds(tmp_path):
    f = tmp_path/'s.yaml'
    f.write_text(f'notebook: {NB04}\nbase: {{search_epochs: 1}}\nseeds: 3\n')
    assert [p.params['seeds'] for p in sweep_points(load_sweep(f))] == [[3]]
    f.write_text(f'notebook: {NB04}\nseeds: [0.5]\n')
    with pytest.raises(ValueError, match='seeds'): load_sweep(f)

def test_run_without_run_dir_gets_a_fresh_folder(monkeypatch):
    import papermill
    monkeypatch.setattr(papermill, 'execute_notebook', lambda *a, **kw: None)   # no kernel: only where the record goes
    section = Path(runner.runs_root('04_ltdarts_search'))
    before = set(section.glob('*/execution.json')) | set(section.glob('execution.json'))
    for _ in range(2): assert runner.execute('04', {'search_epochs': 1}, log_output=False, progress=False)['status'] == 'completed'
    new = (set(section.glob('*/execution.json')) | set(section.glob('execution.json'))) - before
    assert len(new) == 2 and all(f.parent.name.startswith('run-') for f in new), new   # two runs, two folders

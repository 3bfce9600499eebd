"""The `lt-workbook` command end to end: a 2-seed sweep over notebook 04, killed and re-run, failing points,
the results table, `run`'s failure report, the Slurm executor on a real single-node Slurm (a job array; a point's job
interrupted as at its time limit, requeued and resumed), `train` from a settings file, and the paper-scale presets."""
import json, os, shutil, subprocess, sys, time
from pathlib import Path
import pytest, yaml
from conftest import ROOT, kill_group

TINY = dict(search_epochs=1, layers=3, init_channels=4, n_max=30, imbalance_ratio=10, test_per_class=20, hessian_every=0, retrain_methods=[],
            ablations=[])
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
    "(The points skip 04's test cells, `--no-tests`: its default run executes them; a point's notebook has the rest.)"
    root = tmp_path/'sweep'
    sweep = write_sweep(tmp_path/'tiny.yaml', root, ['etf'], seeds=[0, 1])
    # 1. start the 2-point sweep on 1 worker, kill it (with its worker and kernel) once the first point has completed
    proc = subprocess.Popen([*CLI, 'sweep', str(sweep), '--workers', '1', '--no-tests'], cwd=ROOT, stdout=subprocess.PIPE,
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
    res = cli('sweep', sweep, '--gpus', '0,1', '--no-tests')
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
    res = cli('sweep', bad, '--workers', '2', '--no-tests')
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
    res = cli('run', '01', '-p', 'lr', '1e9', '-p', 'warmup_epochs', '0', '-p', 'methods', '[ce]', '-p', 'test_per_class', '10',
              '--run-dir', tmp_path/'d', '--quiet',
              '--no-tests')   # (01's test cells: its default run executes them)
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

@pytest.mark.xdist_group('slurm')   # one worker, one single-node Slurm
def test_slurm_executor(slurm, tmp_path):
    "The points of a sweep as one Slurm job array (submitit): one completes, one fails with its error recorded."
    root = tmp_path/'sweep'
    sweep = write_sweep(tmp_path/'slurm.yaml', root, ['linear', 'bogus'], slurm={'timeout_min': 15, 'cpus_per_task': 1})
    res = cli('sweep', sweep, '--executor', 'slurm', '--no-tests', timeout=900)
    assert res.returncode == 1, res.stdout[-3000:]
    assert 'submitted 2 Slurm job(s)' in res.stdout, res.stdout[-3000:]
    recs = records(root)
    assert sorted(r['status'] for r in recs.values()) == ['completed', 'failed'], recs
    assert any(f.name.endswith('_result.pkl') for f in (root/'.submitit').iterdir())

TINY01 = dict(methods='[ce]', epochs=3, n_max=20, imbalance_ratio=10, test_per_class=20, crt_epochs=0, eval_every=1, warmup_epochs=0,
              batch_size=16)

@pytest.mark.xdist_group('slurm')
def test_slurm_requeue_resumes(slurm, tmp_path):
    "A 2-task point (a 2-rank Gloo run) interrupted as a timeout does (submitit's USR2) after its first epoch checkpoint: requeued, resumed, completed."
    import submitit
    tasks = 2
    point = tmp_path/'point'
    args = [a for k, v in TINY01.items() for a in ('-p', k, str(v))]
    proc = subprocess.Popen([*CLI, 'run', '01', *args, '--run-dir', point, '--executor', 'slurm', '--tasks-per-node', str(tasks),
                             '--timeout-min', '15', '--cpus-per-task', '1'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not list(point.glob('*/checkpoint.pt')): time.sleep(0.2)
        assert proc.poll() is None and list(point.glob('*/checkpoint.pt')), (proc.stdout.read() if proc.poll() is not None else 'no checkpoint')
        job_id = (point/'slurm_job').read_text().strip()
        submitit.SlurmJob(folder=point/'.submitit', job_id=job_id)._interrupt(timeout=True)   # what Slurm sends before the time limit
        while time.time() < deadline and proc.poll() is None:   # Slurm holds a requeued job for 2 minutes (BeginTime): release it now
            reason = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%r'], capture_output=True, text=True).stdout
            if 'BeginTime' in reason: subprocess.run(['scontrol', 'update', f'JobId={job_id}', 'StartTime=now'], check=True); break
            time.sleep(0.5)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None: kill_group(proc)
    assert proc.returncode == 0, out[-3000:]
    assert 'after 1 requeue(s)' in out, out[-3000:]
    rec = json.loads((point/'execution.json').read_text())
    assert rec['status'] == 'completed' and rec['restarts'] == 1 and rec['world_size'] == tasks, rec
    run, = [p.parent for p in point.glob('*/metrics.jsonl')]
    epochs = [json.loads(l)['epoch'] for l in (run/'metrics.jsonl').read_text().splitlines() if 'epoch' in json.loads(l)]
    assert epochs == list(range(TINY01['epochs'])), epochs                 # each epoch once: resumed, not restarted
    assert json.loads((run/'summary.json').read_text())['status'] == 'completed'
    log = '\n'.join(f.read_text() for f in (point/'.submitit').glob(f'{job_id}_0_log.*'))   # both attempts (appended)
    assert 'Caught signal SIGUSR2' in log and f'Requeued job {job_id}' in log and 'requeued (restart 1)' in log, log[-3000:]
    assert 'resuming from epoch' in (point/'01_training.ipynb').read_text()

def test_train_command(tmp_path):
    "`lt-workbook train`: a tiny recipe from a file trains into a run directory; an unknown key is exit code 2 before anything is written."
    f = tmp_path/'tiny.yaml'
    f.write_text(yaml.safe_dump(dict(dataset='mnist5k', n_max=30, imbalance_ratio=10, arch='cifar_resnet', arch_kw={'blocks': 1},
                                     epochs=1, batch_size=32, name='tiny', resources={'gpus': 1, 'gpu_hours': 0.001})))
    res = cli('train', '-f', f, '-p', 'epocs', '2', '--run-dir', tmp_path/'bad')
    assert res.returncode == 2 and "unknown key(s) 'epocs'" in res.stdout and not (tmp_path/'bad').exists(), res.stdout[-2000:]
    res = cli('train', '-f', f, '-p', 'lr', '0.02', '--run-dir', tmp_path/'runs')
    assert res.returncode == 0, res.stdout[-3000:]
    assert 'gpus 1' in res.stdout and 'gpu_hours 0.001' in res.stdout and 'completed  acc ' in res.stdout and ' few ' in res.stdout, res.stdout[-2000:]
    run, = (tmp_path/'runs').glob('tiny-*')
    params, summary = json.loads((run/'params.json').read_text()), json.loads((run/'summary.json').read_text())
    assert summary['status'] == 'completed' and params['arch'] == 'cifar_resnet' and params['lr'] == 0.02 and params['dataset'] == 'mnist5k'

def test_presets_build_configs():
    "Every paper-scale preset is a valid train file: its TrainConfig builds, its dataset is known, it says what it needs and how to launch it."
    from lt_workbook.runner import read_train_spec
    from lt_workbook.data import LIST_DATASETS
    files = sorted((ROOT/'configs'/'presets').glob('*.yaml'))
    assert len(files) >= 5
    for f in files:
        spec = read_train_spec([f])
        assert spec.data['name'] in LIST_DATASETS and spec.cfg.epochs > 0 and spec.name == f.stem, f
        assert spec.resources.get('gpus', 0) >= 1 and spec.resources.get('gpu_hours', 0) > 0, f
        text = f.read_text()
        assert 'torchrun --n' in text and 'Slurm' in text and f'configs/presets/{f.name}' in text, f
        if 'places_lt' in f.name: assert 'pretrained' in str(spec.cfg.arch_kw), f   # ResNet-152 from ImageNet weights

"Issue 23, the run directory (01's `Run`, `Trainer`, `TrainConfig`): checkpoints are data, checked and named when bad; one writer per run; one metrics line per epoch."
import hashlib, json, os, shutil, subprocess, sys, textwrap, time
from dataclasses import asdict, replace
from pathlib import Path
import pytest, torch
from lt_workbook.training import Run, TrainConfig, crt_config, train_run

# a 3-class set of random images: seconds, no dataset files (the same in the subprocesses below)
TINY = '''
import torch
from lt_workbook.data import ImageSet, LTDataset
def tiny():
    g = torch.Generator().manual_seed(0)
    img = lambda n: torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    tr_y, te_y = torch.tensor([0] * 12 + [1] * 6 + [2] * 3), torch.arange(3).repeat(3)
    return LTDataset(name='tiny', train=ImageSet(img(len(tr_y)), tr_y), test=ImageSet(img(len(te_y)), te_y),
                     classes=['a', 'b', 'c'], spec={'dataset': 'tiny'})
'''
exec(TINY)
CFG = TrainConfig(epochs=2, batch_size=8, lr=0.05, device='cpu')

def _strip(events): return [{k: v for k, v in e.items() if k != 'time'} for e in events]

@pytest.fixture(scope='module')
def data(): return tiny()

@pytest.fixture(scope='module')
def ref(data, tmp_path_factory):
    "An uninterrupted run of CFG: the reference every repaired run must equal."
    return train_run(data, CFG, 'rel', 'r', run_dir=tmp_path_factory.mktemp('ref'))

def _copy(ref, tmp_path, drop=('summary.json',)):
    "A copy of the reference run in a fresh runs folder (same name: `train_run` finds it), without the files `drop`."
    dst = tmp_path/'runs'/ref.name
    shutil.copytree(ref.path, dst)
    for f in drop: (dst/f).unlink(missing_ok=True)
    return Run(dst)

def _fails_naming(data, run, words):
    "Re-running `run` is a clear error naming checkpoint.pt (and `words`); an unfinished run is recorded failed with it, a completed one keeps its results."
    before = run.summary
    with pytest.raises(ValueError) as e: train_run(data, CFG, 'rel', 'r', run_dir=run.path.parent)
    msg = str(e.value)
    assert str(run.checkpoint_file) in msg and all(w in msg for w in words), msg
    if before and before['status'] == 'completed': assert run.summary == before
    else: assert run.summary['status'] == 'failed' and 'checkpoint.pt' in run.summary['error'], run.summary
    return msg

class Payload:
    "A pickle that, loaded, would create the marker file (harmless stand-in for code in a checkpoint)."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (open, (self.marker, 'w'))

@pytest.mark.parametrize('where', ['completed', 'resume', 'init_from'])
def test_crafted_checkpoint_is_refused(data, ref, tmp_path, where):
    "A checkpoint whose pickle would run code (its checksum updated to match, as an attacker would) is refused, naming the file."
    run = _copy(ref, tmp_path, drop=() if where == 'completed' else ('summary.json',))
    marker = tmp_path/'marker'
    torch.save({'model': Payload(str(marker)), 'epoch': 1}, run.checkpoint_file)
    (run.path/'checkpoint.pt.sha256').write_text(hashlib.sha256(run.checkpoint_file.read_bytes()).hexdigest() + '\n')
    if where == 'init_from':
        with pytest.raises(ValueError, match='refused') as e:
            train_run(data, crt_config(CFG, run.checkpoint_file, epochs=1), 'rel', 'crt', run_dir=tmp_path/'stage2')
        assert str(run.checkpoint_file) in str(e.value)
    else: _fails_naming(data, run, ['refused'])
    assert not marker.exists()

def test_corrupt_checkpoint_bytes(data, ref, tmp_path):
    "4 KB overwritten inside checkpoint.pt: a clear error naming it (its checksum), not a silent load and a wrong result."
    run = _copy(ref, tmp_path)
    b = bytearray(run.checkpoint_file.read_bytes()); mid = len(b) // 2
    b[mid:mid + 4096] = os.urandom(4096); run.checkpoint_file.write_bytes(bytes(b))
    _fails_naming(data, run, ['sha256'])

def test_deleted_checkpoint_of_completed_run(data, ref, tmp_path):
    "A completed run whose checkpoint is gone: a clear error naming it and saying what to do (was `TypeError: 'NoneType'...`)."
    run = _copy(ref, tmp_path, drop=('checkpoint.pt',))
    assert 'to train it again' in _fails_naming(data, run, [])

def test_truncated_checkpoint(data, ref, tmp_path):
    "A truncated checkpoint (no checksum beside it, as written before checksums): a clear error naming it (was torch's zip error)."
    run = _copy(ref, tmp_path, drop=('summary.json', 'checkpoint.pt.sha256'))
    os.truncate(run.checkpoint_file, run.checkpoint_file.stat().st_size // 2)
    _fails_naming(data, run, ['truncated'])

def _repaired(data, ref, run, metrics:bytes):
    "Write `metrics` into the killed run, re-run it: exactly the uninterrupted run's lines, one per epoch."
    run.metrics_file.write_bytes(metrics)
    again = train_run(data, CFG, 'rel', 'r', run_dir=run.path.parent)
    assert again.path == run.path and again.summary['status'] == 'completed'
    assert _strip(again.metrics) == _strip(ref.metrics) and [e['epoch'] for e in again.metrics] == [0, 1]

def test_kill_before_first_checkpoint(data, ref, tmp_path):
    "Killed before the first checkpoint: with a duplicate epoch-0 line, or half a line (glued to the next by the re-run)."
    lines = ref.metrics_file.read_bytes().splitlines(keepends=True)
    run = _copy(ref, tmp_path, drop=('summary.json', 'checkpoint.pt', 'checkpoint.pt.sha256'))
    _repaired(data, ref, run, lines[0])                             # epoch 0 logged, killed before its checkpoint
    run = _copy(ref, tmp_path/'b', drop=('summary.json', 'checkpoint.pt', 'checkpoint.pt.sha256'))
    _repaired(data, ref, run, lines[0][:len(lines[0]) // 2])          # killed inside the first line

def test_metrics_shorter_than_checkpoint_recorded(data, ref, tmp_path):
    "metrics.jsonl shorter than its checkpoint recorded: never padded with NUL bytes; the run is trained again, one line per epoch."
    lines = ref.metrics_file.read_bytes().splitlines(keepends=True)
    _repaired(data, ref, _copy(ref, tmp_path), lines[0])

def test_partial_last_line_is_skipped(ref, tmp_path):
    "`Run.metrics` with a last line cut short: the whole lines, a warning (was a JSONDecodeError on every read)."
    run = _copy(ref, tmp_path)
    run.metrics_file.write_bytes(ref.metrics_file.read_bytes() + b'{"epoch": 2, "lr"')
    with pytest.warns(UserWarning, match='cut short'): assert run.metrics == ref.metrics

def test_disk_full_names_the_file(data, tmp_path, monkeypatch):
    "A full disk while saving the checkpoint (torch's 'enforce fail') or writing metrics: an OSError naming the file and the disk."
    def full(*a, **k): raise RuntimeError('[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write failed')
    with monkeypatch.context() as m:
        m.setattr(torch, 'save', full)
        with pytest.raises(OSError, match='disk is full') as e: train_run(data, replace(CFG, epochs=1), 'rel', 'full', run_dir=tmp_path)
    run = Run(next(tmp_path.glob('full-*')))
    assert str(run.checkpoint_file) in str(e.value) and run.summary['status'] == 'failed'
    assert not [p for p in run.path.iterdir() if p.name.endswith('.tmp')]       # no temporary file left behind
    def enospc(*a): raise OSError(28, 'No space left on device')
    with monkeypatch.context() as m:
        m.setattr(os, 'write', enospc)
        with pytest.raises(OSError, match='disk is full') as e: run.log(epoch=0)
    assert str(run.metrics_file) in str(e.value)

def test_moved_source_run_same_hash(ref, tmp_path):
    "cRT from the same source run in two runs folders (one moved): the same stage-2 run, not a retrain."
    a, b = (shutil.copytree(ref.path, tmp_path/d/ref.name) for d in ('a', 'b'))
    pa, pb = (asdict(crt_config(CFG, Path(p)/'checkpoint.pt', epochs=1)) for p in (a, b))
    ra = Run.create(tmp_path/'s2', 'crt', pa); rb = Run.create(tmp_path/'s2', 'crt', pb)
    assert pa['init_from'] != pb['init_from'] and ra.path == rb.path and rb.params['init_from'] == pa['init_from']

def test_whole_number_floats_train(data, tmp_path):
    "epochs 1.0, batch_size 8.0, milestones 5 (papermill / YAML values): accepted as integers, the run trains (was a crash after the run dir was written)."
    cfg = TrainConfig(epochs=1.0, batch_size=8.0, milestones=5, lr=0.05, device='cpu')
    assert (cfg.epochs, cfg.batch_size, cfg.milestones) == (1, 8, (5,))
    run = train_run(data, cfg, 'rel', 'floats', run_dir=tmp_path)
    assert run.summary['status'] == 'completed' and len(run.metrics) == 1 and run.params['epochs'] == 1

WORKER = TINY + '''
import sys, time
from pathlib import Path
from lt_workbook.training import TrainConfig, train_run
root, tag = Path(sys.argv[1]), sys.argv[2]
d = tiny()
(root/f'ready_{tag}').touch()
while not (root/'go').exists(): time.sleep(0.01)
run = train_run(d, TrainConfig(epochs=3, batch_size=8, lr=0.05, device='cpu'), 'rel', 'two', run_dir=root/'runs')
print('DONE', run.summary['status'], flush=True)
'''

def test_two_processes_one_run_dir(tmp_path):
    "Two processes start the same run at once: one trains, the other waits (naming the holder's pid) and loads it; one line per epoch."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    procs = [subprocess.Popen([sys.executable, '-c', WORKER, str(tmp_path), t], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env) for t in 'ab']
    deadline = time.time() + 120
    while not all((tmp_path/f'ready_{t}').exists() for t in 'ab'):
        assert time.time() < deadline and all(p.poll() is None for p in procs), [p.communicate()[0][-2000:] for p in procs]
        time.sleep(0.05)
    (tmp_path/'go').touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 and 'DONE completed' in o for p, o in zip(procs, outs)), [o[-2000:] for o in outs]
    run = Run(next((tmp_path/'runs').glob('two-*')))
    assert [e['epoch'] for e in run.metrics] == [0, 1, 2]
    waited = [o for o in outs if 'waiting for pid' in o]
    loaded = [o for o in outs if 'already completed, loaded' in o]
    # the second either waited for the first (named) or came after it had finished: never both training
    assert len(loaded) == 1, outs
    if waited: assert any(f'waiting for pid {p.pid} ' in waited[0] for p in procs), waited

def test_unreadable_json_names_the_file(data, ref, tmp_path):
    "A corrupt params.json or summary.json of an existing run: a ValueError naming the file (was a bare JSONDecodeError)."
    for f, text in (('params.json', '{"lr": 0.1, '), ('summary.json', '{"status": "compl')):
        run = _copy(ref, tmp_path/f, drop=())
        (run.path/f).write_text(text)
        with pytest.raises(ValueError, match=str(run.path/f)): train_run(data, CFG, 'rel', 'r', run_dir=run.path.parent)

def test_summary_disk_full_and_stale_temporary_files(data, ref, tmp_path, monkeypatch):
    "A full disk while writing summary.json names the file; a temporary file left by a writer killed mid-write is removed by the next one."
    run = _copy(ref, tmp_path)
    def enospc(*a, **k): raise OSError(28, 'No space left on device')
    with monkeypatch.context() as m:
        m.setattr(Path, 'write_text', enospc)
        with pytest.raises(OSError, match='disk is full') as e: run.finish('completed')
    assert str(run.summary_file) in str(e.value)
    (run.path/'.checkpoint.pt.123.abcd.tmp').write_bytes(b'x' * 100)
    with run.writing(): pass
    assert not list(run.path.glob('.*.tmp'))

def test_a_run_name_cannot_leave_the_runs_folder(data, tmp_path):
    for name in ('../../escaped', 'a/b', '..', ''):
        with pytest.raises(ValueError, match='one folder name'): train_run(data, CFG, 'rel', name, run_dir=tmp_path/'runs')
    assert not any(tmp_path.rglob('params.json'))

def test_faults_quick():
    "benchmarks/faults.py --quick, faults only (the tiny version of the full replay): kill -9 before the first checkpoint, inside a metrics line and inside a checkpoint write, a payload, corrupt and deleted checkpoints, ... all survived."
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, str(root/'benchmarks'/'faults.py'), '--quick', '--only', 'faults'], capture_output=True, text=True,
                         cwd=root, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    n = [l for l in res.stdout.splitlines() if l.startswith('faults injected')]
    assert n and n[0].split(':')[1].split(',')[0].strip() == n[0].rsplit(':', 1)[1].strip(), n
    assert 'inside a metrics line' in res.stdout or 'inside the first metrics line' in res.stdout

"""Replay issue 23's faults and bad inputs against the real code; print what survived and what was a clear error.

    python benchmarks/faults.py            # every fault and bad input (a few minutes on one core)
    python benchmarks/faults.py --quick    # a subset (under a minute)
    python benchmarks/faults.py --seed 3   # other random kill moments

Faults are injected for real (kill -9 of a training process, bytes overwritten, files cut, deleted, glued, two writers, a
full disk, a moved runs folder), then the run or sweep is re-run and compared, by code, with an uninterrupted reference
run of the same config: the same final metrics, exactly one metrics.jsonl line per epoch, `completed`. Where the
expected outcome is an error (a checkpoint carrying code, corrupt bytes), it must name the file, and nothing recorded
may be lost; following what the message says to do must then give the reference result.

Bad inputs go through the entry points a user calls (`TrainConfig`, `train_run`, `load_dataset`, `lt-workbook run`,
`lt-workbook sweep`, `lt-workbook results`): each is either accepted with the right value or a clear error (ValueError,
OSError or exit code 2, naming the parameter or file) before anything is written (a listing of the folder before/after).

Every fault runs in its own temporary runs folder (`LT_WORKBOOK_RUNS`); the project's runs/ is never touched. No notebook
is executed: `lt-workbook run` has papermill's `execute_notebook` replaced by a stub that records the parameters it
would run with, and sweep points run a tiny fake command (as tests/test_reliability_runner.py does).
Exit code 1 when any fault was not survived or any bad input was not a clear error before any write.
"""
import os, sys, tempfile
os.environ['OMP_NUM_THREADS'] = '1'
_TMP = tempfile.mkdtemp(prefix='ltwb-faults-')
os.environ['LT_WORKBOOK_RUNS'] = os.path.join(_TMP, 'default-runs')   # never the project's runs/

import argparse, contextlib, hashlib, io, json, random, shutil, signal, subprocess, time, traceback, warnings
from dataclasses import asdict, replace
from pathlib import Path
import torch
torch.set_num_threads(1)
import yaml
from lt_workbook import training, runner
from lt_workbook.training import Run, TrainConfig, crt_config, train_run, train_stages, Trainer, runs_root
from lt_workbook.data import load_dataset
from lt_workbook.runner import results_table, run_sweep, load_sweep, sweep_points

ROOT = Path(__file__).resolve().parents[1]
NB04 = 'nbs/04_ltdarts_search.ipynb'

# a 3-class set of random images (21 train, 9 test): seconds, no dataset files; the same in the subprocesses
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
CFG = TrainConfig(epochs=3, batch_size=8, lr=0.05, device='cpu')
SECTION, NAME = 'faults', 'r'

# The training process a kill is injected into. FAULT_KILL = '<kind>:<n>' makes it SIGKILL itself at a chosen moment:
#   log_before:n    before the n-th metrics line is written
#   log_partial:n   after writing half of the n-th metrics line (a kill inside the write)
#   aw_before:n     inside the n-th atomic write, its temporary file written, before it is moved into place
#   aw_after:n      right after the n-th atomic write (1: params.json; per epoch: sums, checkpoint, sum; last: summary)
#   ckpt_half:n     inside the n-th checkpoint's data write, half its bytes on disk
# With no FAULT_KILL the parent kills it with SIGKILL after a delay (a random moment).
CHILD = TINY + r'''
import os, sys, signal, time
from pathlib import Path
torch.set_num_threads(1)
from lt_workbook import training
from lt_workbook.training import Run, TrainConfig, train_run
root, go = Path(sys.argv[1]), sys.argv[2]
kind, n = (os.environ.get('FAULT_KILL') or 'none:0').split(':'); n = int(n)
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
calls = {'log': 0, 'aw': 0, 'ckpt': 0}
log, aw, fsynced = Run.log, training.atomic_write, training._fsynced
def log_hook(self, **event):
    calls['log'] += 1
    if calls['log'] == n and kind == 'log_before': die()
    if calls['log'] == n and kind == 'log_partial':
        data = (json.dumps(training.jsonable(event)) + '\n').encode()
        fd = os.open(self.metrics_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, data[:len(data) // 2]); os.fsync(fd); die()
    return log(self, **event)
def aw_hook(path, write):
    calls['aw'] += 1
    if calls['aw'] == n and kind == 'aw_before':
        tmp = Path(path).with_name(f'.{Path(path).name}.{os.getpid()}.killed.tmp'); write(tmp); die()
    aw(path, write)
    if calls['aw'] == n and kind == 'aw_after': die()
def fsynced_hook(data):
    calls['ckpt'] += 1
    if calls['ckpt'] != n or kind != 'ckpt_half': return fsynced(data)
    def write(p):
        with open(p, 'wb') as f: f.write(data[:len(data) // 2]); f.flush(); os.fsync(f.fileno())
        die()
    return write
import json
Run.log, training.atomic_write, training._fsynced = log_hook, aw_hook, fsynced_hook
d = tiny()
cfg = TrainConfig(epochs=3, batch_size=8, lr=0.05, device='cpu')
Path(go + '.ready.' + str(os.getpid())).touch()
while not Path(go).exists(): time.sleep(0.005)
run = train_run(d, cfg, 'faults', 'r', run_dir=root)
print('DONE', run.summary['status'], flush=True)
'''

# a sweep point's fake command (no notebook): records its execution, writes its execution.json; `kill` dies by SIGKILL
FAKE = r'''import json, os, signal, sys, time
point_dir, mode, log = sys.argv[1:4]
with open(log, 'a') as f: f.write(os.path.basename(point_dir) + "\n")
rec = dict(section='04_ltdarts_search', params={}, status='running', error=None)
json.dump(rec, open(os.path.join(point_dir, 'execution.json'), 'w'))
if mode == 'kill': os.kill(os.getpid(), signal.SIGKILL)
time.sleep(0.3)
json.dump({**rec, 'status': 'completed'}, open(os.path.join(point_dir, 'execution.json'), 'w'))
'''

SWEEPER = r'''import sys, json
from pathlib import Path
from lt_workbook import runner
f, log, go = sys.argv[1:4]
runner._point_command = lambda nb, d: [sys.executable, '-c', sys.argv[4], str(d), 'ok', log]
Path(go + '.' + sys.argv[5]).touch()
import time
while not Path(go).exists(): time.sleep(0.005)
t = runner.run_sweep(f, workers=2)
print('TABLE', json.dumps(t.status.tolist()), flush=True)
'''

# ---------------------------------------------------------------- helpers

def quiet(f, *a, **kw):
    "Call `f` with its prints, progress bars and warnings swallowed."
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return f(*a, **kw)

def strip(events): return [{k: v for k, v in e.items() if k != 'time'} for e in events]

def metric_lines(run):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); return run.metrics

FINAL = ('acc', 'many', 'medium', 'few', 'per_class')

def leftovers(run:Run)->str:
    "A note on temporary files a killed writer left in the run's folder (litter, not a loss), or ''."
    tmps = [p.name for p in run.path.iterdir() if p.name.endswith('.tmp')]
    return f"{len(tmps)} temporary file(s) of the killed process left in the run folder: {', '.join(tmps)}" if tmps else ''

def differs(run:Run, ref:Run, tmp_ok=False)->str:
    "'' when `run` equals the reference: completed, the same final metrics, exactly its metrics lines (one per epoch), no NUL byte, no temporary file left; else what differs."
    s = run.summary
    if not s or s.get('status') != 'completed': return f"status {(s or {}).get('status')!r}, not completed"
    bad = [k for k in FINAL if s.get(k) != ref.summary.get(k)]
    if bad: return f"final metrics differ from the uninterrupted run: {', '.join(f'{k} {s.get(k)} vs {ref.summary.get(k)}' for k in bad[:2])}"
    raw = run.metrics_file.read_bytes()
    if b'\0' in raw: return 'metrics.jsonl holds NUL bytes'
    try: m = metric_lines(run)
    except ValueError as e: return f'metrics.jsonl unreadable: {e}'
    epochs = [e.get('epoch') for e in m]
    if epochs != list(range(CFG.epochs)): return f'metrics.jsonl epochs {epochs}, expected one line per epoch {list(range(CFG.epochs))}'
    if strip(m) != strip(ref.metrics): return 'metrics lines differ from the uninterrupted run'
    if not raw.endswith(b'\n') or len(raw.splitlines()) != CFG.epochs: return 'metrics.jsonl has a partial or extra line'
    if not tmp_ok and leftovers(run): return leftovers(run)
    return ''

def listing(root)->dict:
    "Every file under `root` with its size and sha1 (what 'nothing written' compares)."
    root = Path(root)
    return {str(p.relative_to(root)): (p.stat().st_size, hashlib.sha1(p.read_bytes()).hexdigest()) if p.is_file() else 'dir'
            for p in sorted(root.rglob('*'))} if root.exists() else {}

def first_line(s): return ' '.join(str(s).split())[:150]

class Ctx:
    "A fault's own folder, with `LT_WORKBOOK_RUNS` pointing into it."
    def __init__(self, name):
        self.dir = Path(tempfile.mkdtemp(prefix=name + '-', dir=_TMP)); self.runs = self.dir/'runs'
    def __enter__(self):
        self.old = os.environ['LT_WORKBOOK_RUNS']; os.environ['LT_WORKBOOK_RUNS'] = str(self.runs); return self
    def __exit__(self, *a):
        os.environ['LT_WORKBOOK_RUNS'] = self.old; shutil.rmtree(self.dir, ignore_errors=True)

def copy_ref(ref:Run, root:Path, drop=('summary.json',))->Run:
    "The reference run copied into `root` (a section's runs folder: `train_run(..., run_dir=root)` finds it), without `drop`."
    dst = Path(root)/ref.name
    shutil.copytree(ref.path, dst)
    for f in drop: (dst/f).unlink(missing_ok=True)
    return Run(dst)

def rerun(data, root, cfg=CFG)->Run: return quiet(train_run, data, cfg, SECTION, NAME, run_dir=root)

def expect_error(f, *a, kinds=(ValueError, OSError), **kw):
    "The message of the error `f` raises (one of `kinds`), or raise AssertionError saying it did not / raised another."
    try: quiet(f, *a, **kw)
    except kinds as e: return str(e)
    except Exception as e: raise AssertionError(f'raised {type(e).__name__}: {first_line(e)} (not a clear error)')
    raise AssertionError('no error')

def check(cond, why):
    if not cond: raise AssertionError(why)

# ---------------------------------------------------------------- faults

RESULTS = {'faults': [], 'inputs': []}

_T = [time.time()]
def report(kind, label, ok, why=''):
    RESULTS[kind].append((label, ok, why))
    dt, _T[0] = time.time() - _T[0], time.time()
    print(f"  {'ok    ' if ok else 'NOT OK'} {dt:5.1f}s  {label}" + (f'  -- {why}' if why else ''), flush=True)

def fault(label, f, *a):
    try: report('faults', label, True, f(*a) or '')
    except AssertionError as e: report('faults', label, False, first_line(e))
    except Exception as e: report('faults', label, False, f'unexpected {type(e).__name__}: {first_line(e)}  [{first_line(traceback.format_exc().splitlines()[-3])}]')

def child_env(**kw): return {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT), **kw}

def start_child(root:Path, go:Path, kill:str|None):
    return subprocess.Popen([sys.executable, '-c', CHILD, str(root), str(go)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=child_env(**({'FAULT_KILL': kill} if kill else {})), cwd=str(ROOT))

def wait_ready(procs, go:Path, n=1, deadline=120):
    t = time.time() + deadline
    while len(list(go.parent.glob(go.name + '.ready*'))) < n:
        if time.time() > t or any(p.poll() is not None for p in procs):
            raise AssertionError(f"training process did not start: {[p.communicate()[0][-500:] for p in procs]}")
        time.sleep(0.01)

def kill_fault(data, ref, kill:str, delay:float|None=None):
    "Train CFG in a child process that is killed by SIGKILL (at the hook `kill`, or after `delay` s), then re-run: the reference."
    with Ctx('kill') as c:
        root, go = c.runs/SECTION, c.dir/'go'
        p = start_child(root, go, kill)
        wait_ready([p], go)
        go.touch()
        if delay is not None:
            try: p.wait(timeout=delay)
            except subprocess.TimeoutExpired: p.send_signal(signal.SIGKILL)
        out = p.communicate(timeout=180)[0]
        check(p.returncode == -signal.SIGKILL, f'the kill did not land (exit {p.returncode}: {out.strip()[-200:]})')
        again = rerun(data, root)
        why = differs(again, ref, tmp_ok=True)
        check(not why, f'after the kill: {why}')
        return leftovers(again)

def random_kill(data, ref, rng, t_train):
    "kill -9 at a random moment of the training (seeded): a shorter delay when the run finished first."
    delay = rng.uniform(0.05, 0.95) * t_train
    for _ in range(4):
        try: return kill_fault(data, ref, None, delay)
        except AssertionError as e:
            if 'did not land (exit 0' not in str(e): raise
            delay /= 2
    raise AssertionError('the random kill never landed before the run finished')

def two_processes(data, ref):
    "Two processes start the same run at once: one trains, the other waits and loads it; one line per epoch, the reference result."
    with Ctx('two') as c:
        root, go = c.runs/SECTION, c.dir/'go'
        procs = [start_child(root, go, None) for _ in 'ab']
        wait_ready(procs, go, 2)   # both have built their data: start them together
        go.touch()
        outs = [p.communicate(timeout=240)[0] for p in procs]
        check(all(p.returncode == 0 and 'DONE completed' in o for p, o in zip(procs, outs)), f'a process failed: {[o[-300:] for o in outs]}')
        trained = [o for o in outs if 'already completed, loaded' not in o]
        check(len(trained) == 1, f'{len(trained)} processes trained the run (expected one; the other waits and loads it)')
        runs = list(root.glob('r-*'))
        check(len(runs) == 1, f'{len(runs)} run folders')
        why = differs(Run(runs[0]), ref)
        check(not why, why)

class Payload:
    "A pickle that, loaded, creates the marker file (a harmless stand-in for code in a checkpoint)."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (open, (self.marker, 'w'))

def plant_payload(run:Run, marker:Path):
    torch.save({'model': Payload(str(marker)), 'epoch': 1}, run.checkpoint_file)
    (run.path/'checkpoint.pt.sha256').write_text(hashlib.sha256(run.checkpoint_file.read_bytes()).hexdigest() + '\n')   # as an attacker would

def names_checkpoint(msg, run, *words):
    check(str(run.checkpoint_file) in msg, f'the error does not name {run.checkpoint_file}: {first_line(msg)}')
    for w in words: check(w in msg, f'the error does not say {w!r}: {first_line(msg)}')

def kept(run:Run, before:dict, what=('summary.json', 'metrics.jsonl', 'params.json')):
    "Nothing recorded lost: the files `what` of `run` as they were (`before`: a listing of the run's folder)."
    now = listing(run.path)
    lost = [f for f in what if f in before and now.get(f) != before[f]]
    check(not lost, f'recorded files changed or lost: {lost}')

def bad_checkpoint(data, ref, spoil, words, completed=False, follow_hint=True):
    "A spoiled checkpoint (`spoil(run)`): a clear error naming it; a completed run keeps its results, an unfinished one is recorded failed with its metrics kept; then doing what the message says (delete the checkpoint, or the folder) gives the reference."
    with Ctx('ckpt') as c:
        root = c.runs/SECTION
        run = copy_ref(ref, root, drop=() if completed else ('summary.json',))
        spoil(run)
        before = listing(run.path)
        msg = expect_error(rerun, data, root)
        names_checkpoint(msg, run, *words)
        if completed: kept(run, before)
        else:
            kept(run, before, ('metrics.jsonl', 'params.json'))
            s = run.summary or {}
            check(s.get('status') == 'failed' and 'checkpoint.pt' in (s.get('error') or ''), f'not recorded failed naming the checkpoint: {s}')
        if not follow_hint: return
        if 'delete its checkpoint.pt' in msg: run.checkpoint_file.unlink(missing_ok=True)
        elif 'delete the folder' in msg or 'delete its run folder' in msg: shutil.rmtree(run.path)
        else: raise AssertionError(f'the message does not say what to do: {first_line(msg)}')
        why = differs(rerun(data, root), ref)
        check(not why, f'after following the message: {why}')

def payload_fault(data, ref, where):
    with Ctx('payload') as c:
        marker = c.dir/'marker'
        if where == 'init_from':
            run = copy_ref(ref, c.dir/'stage1')
            plant_payload(run, marker)
            msg = expect_error(lambda: quiet(train_run, data, crt_config(CFG, run.checkpoint_file, epochs=1), SECTION, 'crt', run_dir=c.runs))
            names_checkpoint(msg, run, 'refused')
        else:
            bad_checkpoint(data, ref, lambda run: plant_payload(run, marker), ['refused'], completed=where == 'completed')
        check(not marker.exists(), 'the payload ran: the marker file was created')

def overwrite_4k(run):
    b = bytearray(run.checkpoint_file.read_bytes()); mid = len(b) // 2
    b[mid:mid + 4096] = random.Random(0).randbytes(4096); run.checkpoint_file.write_bytes(bytes(b))

def truncate_ckpt(run, sidecar):
    if not sidecar: (run.path/'checkpoint.pt.sha256').unlink()
    os.truncate(run.checkpoint_file, run.checkpoint_file.stat().st_size // 2)

def metrics_fault(data, ref, make, drop):
    "metrics.jsonl made by `make(lines)` in a copy of the reference without `drop`: the re-run gives exactly the reference's lines."
    with Ctx('metrics') as c:
        root = c.runs/SECTION
        run = copy_ref(ref, root, drop)
        run.metrics_file.write_bytes(make(ref.metrics_file.read_bytes().splitlines(keepends=True)))
        why = differs(rerun(data, root), ref)
        check(not why, why)

def partial_line_read(ref):
    "`Run.metrics` with a last line cut short: the whole lines and a warning, not an error on every read."
    with Ctx('partial') as c:
        run = copy_ref(ref, c.runs)
        run.metrics_file.write_bytes(ref.metrics_file.read_bytes() + b'{"epoch": 3, "lr"')
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            check(run.metrics == ref.metrics, 'the whole lines are not returned')
        check(any('cut short' in str(x.message) for x in w), 'no warning about the cut line')

def disk_full(data, ref, where):
    "A full disk while writing (monkeypatched): an OSError naming the file and the full disk, no temporary file left, the run recorded failed; then, space freed, the re-run gives the reference."
    with Ctx('full') as c:
        root = c.runs/SECTION
        n = {'save': 0, 'write': 0}
        save, write, write_text = torch.save, os.write, Path.write_text
        def full_save(*a, **k):
            n['save'] += 1
            if n['save'] == 2: raise RuntimeError('[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write failed')
            return save(*a, **k)
        def full_write(fd, data):
            if data.startswith(b'{"epoch": 2'): raise OSError(28, 'No space left on device')
            return write(fd, data)
        def full_text(self, *a, **k):
            if 'summary.json' in self.name: raise OSError(28, 'No space left on device')
            return write_text(self, *a, **k)
        target = {'checkpoint': 'checkpoint.pt', 'metrics': 'metrics.jsonl', 'summary': 'summary.json'}[where]
        try:
            if where == 'checkpoint': torch.save = full_save
            elif where == 'metrics': os.write = full_write
            else: Path.write_text = full_text
            msg = expect_error(rerun, data, root)
        finally: torch.save, os.write, Path.write_text = save, write, write_text
        run = Run(next(root.glob('r-*')))
        check(str(run.path/target) in msg and ('disk is full' in msg or 'No space left' in msg), f'the error does not name {run.path/target} and the full disk: {first_line(msg)}')
        tmps = [p.name for p in run.path.iterdir() if p.name.endswith('.tmp')]
        check(not tmps, f'temporary files left: {tmps}')
        if where != 'summary': check((run.summary or {}).get('status') == 'failed', f'not recorded failed: {run.summary}')
        why = differs(rerun(data, root), ref)
        check(not why, f'after freeing space: {why}')

def moved_runs(data):
    "cRT (init_from: the stage-1 checkpoint) trained, the runs folder moved: the same runs, loaded, no epoch trained again."
    with Ctx('moved') as c:
        cfg = replace(CFG, epochs=2, second_stage='crt', second_stage_kw={'epochs': 1})
        first = quiet(train_stages, data, cfg, SECTION, 'st', run_dir=c.dir/'a')
        summaries = [r.summary for r in first]
        shutil.move(str(c.dir/'a'), str(c.dir/'b'))
        epochs = []
        orig = Trainer.train_epoch
        Trainer.train_epoch = lambda self, e: (epochs.append(e), orig(self, e))[1]
        try: again = quiet(train_stages, data, cfg, SECTION, 'st', run_dir=c.dir/'b')
        finally: Trainer.train_epoch = orig
        check([r.name for r in again] == [r.name for r in first], f'other run folders after the move: {[r.name for r in again]} vs {[r.name for r in first]}')
        check(not epochs, f'{len(epochs)} epoch(s) trained again after the move')
        check(len(list((c.dir/'b').iterdir())) == 2, f'run folders after the move: {sorted(p.name for p in (c.dir/"b").iterdir())}')
        check([r.summary for r in again] == summaries, 'the summaries changed')

# --- sweeps (fake points: no notebook)

def sweep_file(c, extra=None, seeds=(0, 1)):
    f = c.dir/'tiny.yaml'
    f.write_text(yaml.safe_dump(dict(notebook=NB04, base={'search_epochs': 1}, grid={'classifier': ['etf', 'linear']},
                                     seeds=list(seeds), root=str(c.dir/'sweep'), **(extra or {}))))
    return f

def executions(log): return Path(log).read_text().split() if Path(log).exists() else []

@contextlib.contextmanager
def fake_points(log, mode=lambda d: 'ok'):
    orig = runner._point_command
    runner._point_command = lambda nb, d: [sys.executable, '-c', FAKE, str(d), mode(Path(d)), str(log)]
    try: yield
    finally: runner._point_command = orig

def two_sweeps():
    "Two `lt-workbook sweep` processes over one sweep file at once: every point runs exactly once and ends completed."
    with Ctx('sweeps') as c:
        f, log, go = sweep_file(c), c.dir/'exec.log', c.dir/'go'
        procs = [subprocess.Popen([sys.executable, '-c', SWEEPER, str(f), str(log), str(go), FAKE, t], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=child_env(), cwd=str(ROOT)) for t in 'ab']
        t = time.time() + 120
        while len(list(c.dir.glob('go.*'))) < 2:
            if time.time() > t or any(p.poll() is not None for p in procs):
                raise AssertionError(f'sweep process failed: {[p.communicate()[0][-300:] for p in procs]}')
            time.sleep(0.01)
        go.touch()
        outs = [p.communicate(timeout=180)[0] for p in procs]
        check(all(p.returncode == 0 for p in procs), f'a sweep failed: {[o[-300:] for o in outs]}')
        names = [p.name for p in sweep_points(load_sweep(f))]
        ex = executions(log)
        check(sorted(ex) == sorted(names), f'points executed {len(ex)} times for {len(names)} points: {sorted(ex)}')
        for o in outs:
            st = json.loads(o.split('TABLE ', 1)[1].splitlines()[0])
            check(set(st) <= {'completed', 'running elsewhere'} and len(st) == len(names), f'a sweep reported {st}')
        recs = [json.loads((c.dir/'sweep'/n/'execution.json').read_text())['status'] for n in names]
        check(set(recs) == {'completed'}, f'point records {recs}')

def killed_point():
    "A sweep point killed by SIGKILL: recorded failed with the signal, the other points complete; re-running the sweep runs it again, and only it."
    with Ctx('sigpoint') as c:
        f, log = sweep_file(c), c.dir/'exec.log'
        names = [p.name for p in sweep_points(load_sweep(f))]
        with fake_points(log, lambda d: 'kill' if d.name == names[0] else 'ok'): t = quiet(run_sweep, f, workers=2).set_index('point')
        check(t.loc[names[0], 'status'] == 'failed' and 'SIGKILL' in t.loc[names[0], 'error'], f'killed point: {t.loc[names[0]].to_dict()}')
        check((t.drop(index=names[0]).status == 'completed').all(), f'other points: {t.status.tolist()}')
        rec = json.loads((c.dir/'sweep'/names[0]/'execution.json').read_text())
        check(rec['status'] == 'failed' and 'SIGKILL' in rec['error'], f'its execution.json: {rec}')
        with fake_points(log): t = quiet(run_sweep, f, workers=2)
        check(set(t.status) == {'completed'}, f'after the re-run: {t.status.tolist()}')
        ex = executions(log)
        check(ex.count(names[0]) == 2 and len(ex) == len(names) + 1, f'executions {ex}')

def write_run(root, name, params, summary=None, params_text=None):
    d = Path(root)/f'{name}-{training.params_hash(params)}'
    d.mkdir(parents=True)
    (d/'params.json').write_text(params_text if params_text is not None else json.dumps({**params, 'env': {'host': 'h'}}))
    if summary is not None: (d/'summary.json').write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return d

BASE = dict(dataset='mnist5k', imbalance_ratio=100.0, arch='resnet32', classifier='linear', loss='ce', method='ce', epochs=2)
def done(acc): return dict(status='completed', acc=acc, many=acc, medium=acc, few=acc, params=1000)

def unreadable_results():
    "An unreadable params.json, summary.json and execution.json among good runs: `results` lists each with its path and reports the others."
    with Ctx('unreadable') as c:
        root = c.runs/'01_training'
        write_run(root, 'good_s0', {**BASE, 'seed': 0}, done(60.)); write_run(root, 'good_s1', {**BASE, 'seed': 1}, done(64.))
        bp = write_run(root, 'badp', {**BASE, 'seed': 2}, done(61.), params_text='{"lr": 0.1, ')
        bs = write_run(root, 'bads', {**BASE, 'seed': 3}, '{"status": "compl')
        point = c.runs/'sweeps'/'s'/'lr=0.1-00000000'; point.mkdir(parents=True)
        (point/'parameters.yaml').write_text('lr: 0.1\n'); (point/'execution.json').write_text('not json')
        before = listing(c.runs)
        t = quiet(results_table, c.runs)
        bad = t[t.status == 'unreadable']
        for fl in (bp/'params.json', bs/'summary.json', point/'execution.json'):
            check(bad.error.str.contains(str(fl), regex=False).any(), f'{fl.name} not listed with its path: {bad.error.tolist()}')
        good = t[t.run.str.startswith('good')]
        check(len(good) == 2 and (good.status == 'completed').all() and sorted(good.acc) == [60., 64.], f'good runs: {good[["run", "status", "acc"]].values.tolist()}')
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = runner.main(['results', str(c.runs)])
        check(rc == 0 and 'unreadable' in out.getvalue() and '62' in out.getvalue(), f'lt-workbook results: rc {rc}, {first_line(err.getvalue() or out.getvalue())}')
        check(listing(c.runs) == before, 'results changed files')

def unreadable_sweep_point():
    "A sweep with one point's execution.json unreadable: that point is listed with its path (not run, not overwritten), the others run."
    with Ctx('unreadable-point') as c:
        f, log = sweep_file(c), c.dir/'exec.log'
        names = [p.name for p in sweep_points(load_sweep(f))]
        bad = c.dir/'sweep'/names[0]/'execution.json'; bad.parent.mkdir(parents=True); bad.write_text('{')
        with fake_points(log): t = quiet(run_sweep, f, workers=2).set_index('point')
        check(t.loc[names[0], 'status'] == 'unreadable' and str(bad) in t.loc[names[0], 'error'], f'the bad point: {t.loc[names[0]].to_dict()}')
        check((t.drop(index=names[0]).status == 'completed').all(), f'the others: {t.status.tolist()}')
        check(bad.read_text() == '{' and names[0] not in executions(log), 'the bad point was run or its file overwritten')

def unreadable_run_file(data, ref, fname):
    "Re-running a run whose params.json or summary.json is unreadable: a clear error naming the file, nothing recorded lost."
    with Ctx('unreadable-run') as c:
        root = c.runs/SECTION
        run = copy_ref(ref, root, drop=())
        (run.path/fname).write_text('{"status": "compl' if fname == 'summary.json' else '{"lr": 0.1, ')
        before = listing(run.path)
        msg = expect_error(rerun, data, root)
        check(str(run.path/fname) in msg, f'the error does not name {run.path/fname}: {first_line(msg)}')
        kept(run, before, ('summary.json', 'metrics.jsonl', 'params.json', 'checkpoint.pt'))

# ---------------------------------------------------------------- bad inputs

class Stub:
    "papermill's `execute_notebook` replaced: records the parameters a notebook would run with (no kernel)."
    def __init__(self): self.calls = []
    def __call__(self, nb, out, parameters=None, **kw): self.calls.append(dict(parameters or {}))

def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = runner.main([str(a) for a in args])
    except SystemExit as e: rc = e.code
    return rc, out.getvalue(), err.getvalue()

def bad_input(label, f, names=(), accept=None):
    """Try a bad input in a fresh folder. `f(c)` returns ('error', message) or ('ok', value); `names`: what a clear error
    must name (strings, or functions of the folder); `accept(value, c)`: when given, acceptance with a value it approves is right too."""
    with Ctx('input') as c:
        import papermill
        stub, orig = Stub(), papermill.execute_notebook
        papermill.execute_notebook = stub
        c.stub = stub
        c.runs.mkdir(parents=True)
        try:
            c.setup = getattr(f, 'setup', None)
            if c.setup: c.setup(c)
            before = listing(c.dir)
            try: kind, val = f(c)
            except Exception as e: kind, val = 'crash', f'{type(e).__name__}: {first_line(e)}'
            after = listing(c.dir)
        finally: papermill.execute_notebook = orig
        written = sorted(set(after) - set(before)) + sorted(k for k in before if k in after and after[k] != before[k])
        want = [n(c) if callable(n) else n for n in names]
        if kind == 'error':
            missing = [n for n in want if n not in val]
            if written: report('inputs', label, False, f'error, but after writing {written[:3]}: {first_line(val)}')
            elif missing: report('inputs', label, False, f'the error does not name {missing}: {first_line(val)}')
            else: report('inputs', label, True, first_line(val)[:110])
        elif kind == 'ok' and accept is not None:
            why = accept(val, c)
            report('inputs', label, not why, why or 'accepted, with the right value')
        elif kind == 'ok':
            what = (f'accepted: papermill was reached (stubbed here) with {first_line({k: v for k, v in val.items() if k != "run_dir"})}'
                    if isinstance(val, dict) else f'accepted ({first_line(val)[:80]})')
            report('inputs', label, False, what + (f', after writing {written[-1]}' if written else '') + '; expected a clear error before any write')
        else: report('inputs', label, False, f'unclear error: {val}')

def tc(**kw):
    "TrainConfig(**kw): ('ok', the config) or ('error', message); any other exception propagates (an unclear error)."
    def f(c):
        try: return 'ok', TrainConfig(**{'device': 'cpu', **kw})
        except (ValueError, TypeError) as e: return 'error', f'{type(e).__name__}: {e}'
    return f

def ld(*a, **kw):
    def f(c):
        kw2 = {k: (v(c) if callable(v) else v) for k, v in kw.items()}
        try: return 'ok', load_dataset(*a, **kw2)
        except (ValueError, OSError) as e: return 'error', f'{type(e).__name__}: {e}'
    return f

def run_cli(*args, files=None):
    "`lt-workbook <args>` (paths: functions of the folder); files: {name: text} written first. ('error', stderr) for exit 2, ('ok', the parameters papermill got) otherwise."
    def f(c):
        a = [x(c) if callable(x) else x for x in args]
        rc, out, err = cli(*a)
        if rc == 2: return 'error', err.strip() + ('' if len(err.strip().splitlines()) <= 1 or err.startswith('usage') else '  [several lines]')
        if rc != 0: return 'crash', f'exit code {rc}: {first_line(err or out)}'
        return 'ok', (c.stub.calls[-1] if c.stub.calls else out)
    if files:
        def setup(c):
            for n, t in files.items(): (c.dir/n).write_text(t(c) if callable(t) else t)
        f.setup = setup
    return f

def param_is(name, value):
    def acc(params, c):
        got = params.get(name) if isinstance(params, dict) else None
        ok = got == value and type(got) is type(value) and (not isinstance(got, list) or all(type(x) is type(y) for x, y in zip(got, value)))
        return '' if ok else f'{name} reached the notebook as {got!r}, expected {value!r}'
    return acc

def attr_is(name, value):
    def acc(cfg, c):
        got = getattr(cfg, name)
        return '' if got == value and type(got) is type(value) else f'{name} is {got!r} ({type(got).__name__}), expected {value!r}'
    return acc

F = lambda name: (lambda c: str(c.dir/name))   # a path in the input's folder

def sweep_yaml(body):
    "A sweep file `s.yaml` with `body` (its points run in the folder: root)."
    return {'s.yaml': lambda c: f'notebook: {NB04}\nroot: {c.dir/"sweep"}\n' + body}

def sweep_seeds_3(c):
    with fake_points(c.dir/'exec.log'): r = run_cli('sweep', F('s.yaml'))(c)
    if r[0] != 'ok': return r
    ps = [yaml.safe_load(p.read_text()) for p in (c.dir/'sweep').glob('*/parameters.yaml')]
    return 'ok', ps
sweep_seeds_3.setup = run_cli('x', files=sweep_yaml('base: {search_epochs: 1}\nseeds: 3\n')).setup

def name_escapes(c):
    root = c.runs/'sec'
    try: r = quiet(train_run, DATA, replace(CFG, epochs=1), 'sec', '../../../escaped', run_dir=root)
    except (ValueError, OSError) as e: return 'error', f'{type(e).__name__}: {e}'
    return 'ok', f'wrote {r.path}'

def bad_inputs(quick):
    cases = [
        # the list (defect 10)
        ('TrainConfig(epochs=1.0)', tc(epochs=1.0), (), attr_is('epochs', 1)),
        ('TrainConfig(batch_size=32.0)', tc(batch_size=32.0), (), attr_is('batch_size', 32)),
        ('lt-workbook run 01 -p seeds [0.0]', run_cli('run', '01', '-p', 'seeds', '[0.0]'), ('seeds',)),
        ("load_dataset('mnist5k', n_max=0)", ld('mnist5k', 10, n_max=0), ('n_max',)),
        ('lt-workbook run 01 -p seeds 3', run_cli('run', '01', '-p', 'seeds', '3'), ('seeds',), param_is('seeds', [3])),
        ('TrainConfig(milestones=5)', tc(milestones=5), (), attr_is('milestones', (5,))),
        ('lt-workbook run 01 -p milestones 5', run_cli('run', '01', '-p', 'milestones', '5'), ('milestones',), param_is('milestones', [5])),
        ('lt-workbook run 01 -p methods ce', run_cli('run', '01', '-p', 'methods', 'ce'), ('methods',), param_is('methods', ['ce'])),
        ("lt-workbook sweep s.yaml (seeds: 3)", sweep_seeds_3, ('seeds',),
         lambda ps, c: '' if ps and all(p.get('seeds') == [3] for p in ps) else f'points ran with {ps}'),
        ('lt-workbook run 04 -f missing.yaml', run_cli('run', '04', '-f', F('missing.yaml')), (F('missing.yaml'),)),
        ('lt-workbook sweep missing.yaml', run_cli('sweep', F('missing.yaml')), (F('missing.yaml'),)),
        ('lt-workbook run 04 -f bad.yaml (malformed YAML)', run_cli('run', '04', '-f', F('bad.yaml'), files={'bad.yaml': 'lr: [0.1\nepochs: 2\n'}), (F('bad.yaml'),)),
        ('lt-workbook sweep bad.yaml (malformed YAML)', run_cli('sweep', F('s.yaml'), files=sweep_yaml('grid: {classifier: [etf}\n')), (F('s.yaml'),)),
        ('lt-workbook run 04 -f p.yaml (lr: 5e-2, a YAML 1.1 string)', run_cli('run', '04', '-f', F('p.yaml'), files={'p.yaml': 'lr: 5e-2\n'}), ('lr',), param_is('lr', 0.05)),
        ('lt-workbook run 01 -p lrr 0.1 (unknown parameter)', run_cli('run', '01', '-p', 'lrr', '0.1'), ('lrr',)),
        ('TrainConfig(lrr=0.1) (unknown parameter)', tc(lrr=0.1), ('lrr',)),
        ('TrainConfig(epochs=0)', tc(epochs=0), ('epochs',)),
        ('TrainConfig(lr=-0.1)', tc(lr=-0.1), ('lr',)),
        ('lt-workbook run 01 -p epochs 0', run_cli('run', '01', '-p', 'epochs', '0'), ('epochs',)),
        ('lt-workbook run 01 -p lr -0.1', run_cli('run', '01', '-p', 'lr', '-0.1'), ('lr',)),
        ("TrainConfig(lr='fast') (wrong type)", tc(lr='fast'), ('lr',)),
        ('lt-workbook run 01 -p epochs ten (wrong type)', run_cli('run', '01', '-p', 'epochs', 'ten'), ('epochs',)),
        # more of the same kind
        ('TrainConfig(batch_size=-8)', tc(batch_size=-8), ('batch_size',)),
        ('TrainConfig(epochs=1.5)', tc(epochs=1.5), ('epochs',)),
        ("TrainConfig(epochs=float('nan'))", tc(epochs=float('nan')), ('epochs',)),
        ('TrainConfig(epochs=True)', tc(epochs=True), ('epochs',)),
        ('TrainConfig(seed=-1)', tc(seed=-1), ('seed',)),
        ('TrainConfig(seed=2.0)', tc(seed=2.0), (), attr_is('seed', 2)),
        ("TrainConfig(milestones='5')", tc(milestones='5'), ('milestones',)),
        ('TrainConfig(milestones=[5.0, 8])', tc(milestones=[5.0, 8]), (), attr_is('milestones', (5, 8))),
        ('TrainConfig(beta=1.0)', tc(beta=1.0), ('beta',)),
        ("TrainConfig(device='cuda:7') on a CPU machine", tc(device='cuda:7') if not torch.cuda.is_available() else tc(device='cuda:99'), ('device',)),
        ("TrainConfig(init_from='missing.pt')", lambda c: tc(init_from=str(c.dir/'missing.pt'))(c), ('init_from', F('missing.pt'))),
        ("TrainConfig(loss='ldam') with a linear head", tc(loss='ldam'), ('ldam', 'classifier')),
        ("TrainConfig(loss='hinge')", tc(loss='hinge'), ('loss',)),
        ("TrainConfig(sampler='balanced')", tc(sampler='balanced'), ('sampler',)),
        ("load_dataset('cifar11')", ld('cifar11'), ('dataset',)),
        ("load_dataset('mnist5k', imbalance_ratio=0.5)", ld('mnist5k', 0.5), ('imbalance_ratio',)),
        ("load_dataset('mnist5k', imbalance_ratio='100')", ld('mnist5k', '100'), ('imbalance_ratio',)),
        ("load_dataset('mnist5k', 10, profile='linear')", ld('mnist5k', 10, profile='linear'), ('profile',)),
        ("load_dataset('mnist5k', 10, n_max=40.0)", ld('mnist5k', 10, n_max=40.0), (),
         lambda ds, c: '' if ds.spec['n_max'] == 40 and type(ds.spec['n_max']) is int else f"n_max {ds.spec['n_max']!r}"),
        ("load_dataset('cifar10', data_root=<empty folder>, download=False)", ld('cifar10', 10, data_root=lambda c: c.dir/'data', download=False), ('data',)),
        ("load_dataset('places_lt', None, data_root=<empty folder>)", ld('places_lt', None, data_root=lambda c: c.dir/'data'), ('data',)),
        ('lt-workbook run 99 (no such notebook)', run_cli('run', '99'), ('99',)),
        ("lt-workbook run 01 -p dataset cifar11", run_cli('run', '01', '-p', 'dataset', 'cifar11'), ('dataset',)),
        ('lt-workbook run 01 -p lr true (wrong type)', run_cli('run', '01', '-p', 'lr', 'true'), ('lr',)),
        ("lt-workbook run 01 -p seeds '[0, -1]'", run_cli('run', '01', '-p', 'seeds', '[0, -1]'), ('seeds',)),
        ('lt-workbook run 04 -p search_epochs 1.0', run_cli('run', '04', '-p', 'search_epochs', '1.0'), ('search_epochs',), param_is('search_epochs', 1)),
        ('lt-workbook run 04 -f list.yaml (not a mapping)', run_cli('run', '04', '-f', F('list.yaml'), files={'list.yaml': '- lr\n- 0.1\n'}), (F('list.yaml'),)),
        ('lt-workbook sweep --workers 0', run_cli('sweep', F('s.yaml'), '--workers', '0', files=sweep_yaml('base: {search_epochs: 1}\n')), ('workers',)),
        ('lt-workbook sweep --workers abc', run_cli('sweep', F('s.yaml'), '--workers', 'abc', files=sweep_yaml('base: {search_epochs: 1}\n')), ('--workers',)),
        ('sweep file: grid classifier: etf (not a list)', run_cli('sweep', F('s.yaml'), files=sweep_yaml('grid: {classifier: etf}\n')), ('classifier',)),
        ('sweep file: unknown key seed', run_cli('sweep', F('s.yaml'), files=sweep_yaml('seed: 1\n')), ('seed',)),
        ('sweep file: seeds [0.5]', run_cli('sweep', F('s.yaml'), files=sweep_yaml('seeds: [0.5]\n')), ('seeds',)),
        ('sweep file: grid lrr: [0.1] (unknown parameter)', run_cli('sweep', F('s.yaml'), files=sweep_yaml('grid: {lrr: [0.1]}\n')), ('lrr',)),
        ('sweep file: grid search_epochs: [1.5]', run_cli('sweep', F('s.yaml'), files=sweep_yaml('grid: {search_epochs: [1.5]}\n')), ('search_epochs',)),
        ('sweep file: a YAML list', run_cli('sweep', F('s.yaml'), files={'s.yaml': '- notebook\n- 04\n'}), (F('s.yaml'),)),
        ('sweep file: notebook 99', run_cli('sweep', F('s.yaml'), files={'s.yaml': 'notebook: nbs/99_none.ipynb\n'}), ('notebook',)),
        ('lt-workbook results <missing folder>', run_cli('results', F('nowhere')), (F('nowhere'),)),
        ("train_run(..., name='../../../escaped') (a name leaving the runs root)", name_escapes, ('escaped',)),
    ]
    if quick: cases = cases[:22:2] + cases[22::5]
    for label, f, names, *acc in cases: bad_input(label, f, names, acc[0] if acc else None)

# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='a subset, under a minute')
    ap.add_argument('--seed', type=int, default=0, help='seed of the random kill moments')
    ap.add_argument('--only', choices=('faults', 'inputs'), default=None, help='only the faults, or only the bad inputs')
    a = ap.parse_args()
    assert str(runs_root('x')).startswith(_TMP), runs_root('x')
    t0 = time.time()
    global DATA
    DATA = data = tiny()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory(dir=_TMP) as refdir:
        t = time.time()
        ref = rerun(data, Path(refdir)/SECTION)
        t_train = time.time() - t
        assert ref.summary['status'] == 'completed' and len(ref.metrics) == CFG.epochs
        print(f'reference: {CFG.epochs} epochs of the tiny set in {t_train:.1f} s, acc {ref.summary["acc"]:.1f}; seed of the kill moments {a.seed}')
        if a.only != 'inputs': run_faults(a, data, ref, rng, t_train)
        if a.only != 'faults':
            print('bad inputs (each in a fresh folder; accepted with the right value, or a clear error before any write):')
            _T[0] = time.time()
            bad_inputs(a.quick)
    f, i = RESULTS['faults'], RESULTS['inputs']
    nf, ni = sum(ok for _, ok, _ in f), sum(ok for _, ok, _ in i)
    print(f'\nfaults injected: {len(f)}, survived without loss: {nf}')
    print(f'bad inputs tried: {len(i)}, accepted right or a clear error before any write: {ni}')
    for kind, items in RESULTS.items():
        for label, ok, why in items:
            if not ok: print(f'NOT OK ({kind[:-1]}): {label}: {why}')
    print(f'{time.time() - t0:.0f} s')
    shutil.rmtree(_TMP, ignore_errors=True)
    return int(nf < len(f) or ni < len(i))

def run_faults(a, data, ref, rng, t_train):
        print('faults (injected, then re-run and compared with the uninterrupted run):')
        _T[0] = time.time()
        # kill -9 at chosen and random moments: atomic writes are #1 params.json, per epoch e #2+3e sums, #3+3e checkpoint, #4+3e sum, #11 summary
        n_aw = 2 + 3 * CFG.epochs
        kills = [('before the first metrics line', 'log_before:1'),
                 ('after epoch 0 logged, before its checkpoint', 'aw_before:2'),
                 ('inside the first metrics line (half written)', 'log_partial:1'),
                 (None, f'ckpt_half:{rng.randint(1, CFG.epochs)}'),
                 (None, f'log_partial:{rng.randint(2, CFG.epochs)}'),
                 (None, f'aw_before:{rng.randint(3, n_aw)}'),
                 (None, f'aw_after:{rng.randint(2, n_aw - 1)}')]
        if a.quick: kills = kills[1:4]   # the three: before the first checkpoint, inside a metrics line, inside a checkpoint write
        for what, k in kills:
            kind, n = k.split(':')
            what = what or {'ckpt_half': f'inside checkpoint {n} (half its bytes written)', 'log_partial': f'inside metrics line {n}',
                            'aw_before': f'inside atomic write #{n} (temporary file written, not moved)', 'aw_after': f'right after atomic write #{n}'}[kind]
            fault(f'kill -9 {what} [{k}]', kill_fault, data, ref, k)
        if not a.quick:
            fault('kill -9 at a random moment (seeded)', random_kill, data, ref, rng, t_train)
        fault('checkpoint carrying a pickle payload: completed run', payload_fault, data, ref, 'completed')
        if not a.quick:
            fault('checkpoint carrying a pickle payload: resume', payload_fault, data, ref, 'resume')
            fault('checkpoint carrying a pickle payload: cRT init_from', payload_fault, data, ref, 'init_from')
        fault('4 KB overwritten inside checkpoint.pt (unfinished run)', bad_checkpoint, data, ref, overwrite_4k, ['sha256'])
        if not a.quick:
            fault('4 KB overwritten inside checkpoint.pt (completed run)', bad_checkpoint, data, ref, overwrite_4k, ['sha256'], True)
            fault('truncated checkpoint, no checksum beside it', bad_checkpoint, data, ref, lambda r: truncate_ckpt(r, False), ['truncated'])
            fault('truncated checkpoint, its checksum beside it', bad_checkpoint, data, ref, lambda r: truncate_ckpt(r, True), ['sha256'])
        fault('deleted checkpoint of a completed run', bad_checkpoint, data, ref, lambda r: r.checkpoint_file.unlink(), [], True)
        nock = ('summary.json', 'checkpoint.pt', 'checkpoint.pt.sha256')
        fault('partial first metrics line, no checkpoint', metrics_fault, data, ref, lambda l: l[0][:len(l[0]) // 2], nock)
        if not a.quick:
            fault('duplicate epoch-0 line (killed before its checkpoint, re-run, killed again)', metrics_fault, data, ref, lambda l: l[0] + l[0], nock)
            fault('half a line glued to the next', metrics_fault, data, ref, lambda l: l[0][:len(l[0]) // 2] + l[0], nock)
            fault('partial last line after the final checkpoint', metrics_fault, data, ref, lambda l: b''.join(l) + b'{"epoch": 3, "lr"', ('summary.json',))
            fault('metrics.jsonl deleted, checkpoint kept', metrics_fault, data, ref, lambda l: b'', ('summary.json',))
        fault('metrics.jsonl shorter than its checkpoint recorded', metrics_fault, data, ref, lambda l: l[0], ('summary.json',))
        fault('Run.metrics with a cut last line: whole lines + warning', partial_line_read, ref)
        if not a.quick:
            fault('two processes training one run dir at once', two_processes, data, ref)
            fault('two sweeps over one sweep file at once', two_sweeps)
        fault('a sweep point killed by SIGKILL', killed_point)
        fault('unreadable params.json/summary.json/execution.json among good runs (results)', unreadable_results)
        if not a.quick:
            fault("unreadable execution.json of one sweep point (sweep)", unreadable_sweep_point)
            fault('unreadable params.json of a run, re-run', unreadable_run_file, data, ref, 'params.json')
            fault('unreadable summary.json of a run, re-run', unreadable_run_file, data, ref, 'summary.json')
        fault('disk full on a checkpoint write', disk_full, data, ref, 'checkpoint')
        if not a.quick:
            fault('disk full on a metrics line', disk_full, data, ref, 'metrics')
            fault('disk full on summary.json', disk_full, data, ref, 'summary')
        fault('runs folder moved: cRT init_from, same hash, no retraining', moved_runs, data)

if __name__ == '__main__': sys.exit(main())

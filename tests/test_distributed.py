"""One run, several processes: DistributedDataParallel and `SyncBatchNorm` against one process (float64, 2 ranks spawned
here), and `lt-workbook train` under `torchrun --nproc_per_node 2` (Gloo on CPU) on a list-file dataset of JPEGs the
test writes: the same numbers as one process, and a run killed mid-epoch resumes to the uninterrupted run's numbers
(on 2 ranks; on 1 process it resumes too)."""
import os, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest, torch, torch.nn as nn, torch.multiprocessing as mp, yaml
from conftest import ROOT, _saved_after

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).double()

def batch(n=7):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)

def rank_grads(rank, world, port, q):
    "One rank: its share of the batch through DDP with SyncBatchNorm, the loss weighted as `Trainer.backward` weights it."
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    from lt_workbook.training import sync_batch_norms, distributed, shard_of
    from torch.nn.parallel import DistributedDataParallel as DDP
    assert distributed()
    model = sync_batch_norms(tiny_net()); x, y = batch(); idx = shard_of(len(y))
    net = DDP(model)   # (held: its hooks average the gradients in backward)
    loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
    (loss * world * len(idx) / len(y)).backward()        # shares of 4 and 3 images: weights 8/7 and 6/7
    state = {k: v.detach().numpy() for k, v in [*model.named_parameters(), *model.named_buffers()] if v.is_floating_point()}
    q.put((rank, {**state, **{f'{k}.grad': p.grad.numpy() for k, p in model.named_parameters()}}))
    torch.distributed.destroy_process_group()

def test_two_ranks_compute_the_one_process_gradient_float64():
    "DDP's average of the weighted shares' gradients, through SyncBatchNorm, is the whole batch's (uneven shares 4 + 3)."
    ctx = mp.get_context('spawn'); q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=rank_grads, args=(r, 2, port, q)) for r in range(2)]
    for p in procs: p.start()
    got = dict(q.get(timeout=120) for _ in procs)
    for p in procs: p.join(30)
    model = tiny_net(); x, y = batch()
    nn.functional.cross_entropy(model(x), y).backward()
    ref = {k: v.detach() for k, v in [*model.named_parameters(), *model.named_buffers()] if v.is_floating_point()}
    ref.update({f'{k}.grad': p.grad for k, p in model.named_parameters()})
    for r in (0, 1):   # every rank holds the same gradients and running statistics as the single process
        for k, v in ref.items(): assert torch.allclose(torch.from_numpy(got[r][k]), v, rtol=0, atol=1e-12), (r, k)

TRAIN = dict(dataset='imagenet_lt', image_size=32, arch='cifar_resnet', arch_kw=dict(blocks=1), epochs=3, batch_size=8, lr=0.005, schedule='cosine',
             sync_bn=True, eval_every=1, device='cpu', name='ce')

def train(tmp_path, tag, nproc, workers, background=False):
    "`lt-workbook train` into tmp_path/tag: in this process's way (nproc 0) or under torchrun with `nproc` ranks."
    cmd = ['lt-workbook', 'train', '-f', str(tmp_path/'train.yaml'), '--run-dir', str(tmp_path/tag)]
    # --standalone: torchrun binds its own free port (a port chosen here could be taken by another test's kernel meanwhile)
    if nproc: cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc),
                     '--no-python', *cmd]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'LT_WORKBOOK_WORKERS': str(workers)}
    if background: return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                           start_new_session=True)
    res = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:]
    return res.stdout

def descendants(pid:int)->list:
    "The processes started under `pid`, at any depth (torchrun starts its ranks in sessions of their own)."
    kids = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try: fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError: continue
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo: todo += kids.get(p := todo.pop(), []); out.append(p)
    return out[1:]

def wait_for_epochs(root, n, timeout=300):
    "Until the one run under `root` has logged `n` epochs and saved the checkpoint after them."
    deadline = time.time() + timeout
    while time.time() < deadline:
        ms = list(Path(root).glob('*/metrics.jsonl'))
        if ms and len(ms[0].read_text().splitlines()) >= n and _saved_after(ms[0]): return
        time.sleep(0.1)
    raise TimeoutError(f'{root}: {n} epochs not logged within {timeout} s')

def the_run(d):
    from lt_workbook.training import Run
    runs = [Run(p) for p in Path(d).iterdir() if (p/'params.json').exists()]
    assert len(runs) == 1, runs
    return runs[0]

def events(run): return [{k: v for k, v in e.items() if k != 'time'} for e in run.metrics]

def test_torchrun_two_ranks_match_one_process_and_resume(tmp_path):
    from lt_workbook.data import write_fake_list_dataset
    write_fake_list_dataset(tmp_path/'data', 'imagenet_lt', counts=(20, 12, 7), test_per_class=4, size=(40, 30))
    (tmp_path/'train.yaml').write_text(yaml.safe_dump({**TRAIN, 'data_root': str(tmp_path/'data')}))
    train(tmp_path, 'one', 0, 0)                       # one process decoding in-process ...
    out = train(tmp_path, 'two', 2, 1)                 # ... and two ranks, each with a decoding worker
    one, two = the_run(tmp_path/'one'), the_run(tmp_path/'two')
    assert one.name == two.name and one.completed and two.completed, out[-2000:]   # one run, whatever the ranks
    assert not list((tmp_path/'two').glob('*/.ranks'))
    # the same mathematics (float64: the test above); in float32 the ranks sum in another order, which ResNet-32's
    # BatchNorm amplifies about 1e4-fold (relative gradient differences ~1e-4 at initialization): losses agree to 1e-3
    e1, e2 = events(one), events(two)
    assert [e['epoch'] for e in e2] == [0, 1, 2]
    for a, b in zip(e1, e2):
        assert abs(a['train_loss'] - b['train_loss']) <= 1e-3 * abs(a['train_loss']), (a, b)
        assert a['train_acc'] == b['train_acc'] and all(a[k] == b[k] for k in ('acc', 'many', 'medium', 'few')), (a, b)
    s1, s2 = one.summary, two.summary
    assert s1['per_class'] == s2['per_class'] and (one.confusion == two.confusion).all() and one.confusion.sum() == 12
    assert 'confusion' not in s2
    # killed mid-epoch (after epoch 1's checkpoint), re-run: resumes and ends with the uninterrupted 2-rank run's numbers
    proc = train(tmp_path, 'killed', 2, 1, background=True)
    wait_for_epochs(tmp_path/'killed', 1)
    time.sleep(0.3)                              # into epoch 1
    for pid in [proc.pid, *descendants(proc.pid)]: os.kill(pid, signal.SIGKILL)   # launcher and ranks, as a lost node
    proc.wait()
    killed = the_run(tmp_path/'killed')
    assert killed.summary is None and killed.load_checkpoint()['epoch'] == 1
    shutil.copytree(tmp_path/'killed', tmp_path/'elsewhere')
    out = train(tmp_path, 'elsewhere', 0, 0)            # a checkpoint of 2 ranks resumes on 1 process too
    moved = the_run(tmp_path/'elsewhere')
    assert 'resuming from epoch 1' in out and moved.completed and [e['epoch'] for e in moved.metrics] == [0, 1, 2], out[-2000:]
    out = train(tmp_path, 'killed', 2, 1)
    assert 'resuming from epoch 1' in out, out[-2000:]
    assert events(killed) == e2 and {k: v for k, v in killed.summary.items() if k != 'wall_time'} == \
        {k: v for k, v in s2.items() if k != 'wall_time'}

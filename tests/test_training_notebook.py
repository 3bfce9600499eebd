"End-to-end runs of nbs/01_training.ipynb with papermill: the default experiment, resume after a kill, bad inputs."
import json, os, time
from pathlib import Path
import pytest
from conftest import check_bad_parameters, run_notebook, start_notebook, kill_after_epochs, runs_in
from lt_workbook.data import write_fake_cifar, write_fake_list_dataset

NB = '01_training.ipynb'

def test_default_run(runs_root, tmp_path):
    "The notebook's default run: CE well above chance on mnist5k at ratio 100, LDAM-DRW's few-shot >= CE's."
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/'01_training')
    ce, ldam = runs['ce'].summary, runs['ldam_drw'].summary
    assert runs['ce'].params['dataset'] == 'mnist5k' and runs['ce'].params['imbalance_ratio'] == 100
    print(f"CE: acc {ce['acc']} few {ce['few']} ({ce['wall_time']} s); LDAM-DRW: acc {ldam['acc']} few {ldam['few']}; "
          f"CE+cRT: acc {runs['ce_crt'].summary['acc']} few {runs['ce_crt'].summary['few']}")
    assert ce['status'] == ldam['status'] == runs['ce_crt'].summary['status'] == 'completed'
    assert ce['acc'] >= 30, ce          # chance is 10%
    assert ldam['few'] >= ce['few'], (ldam['few'], ce['few'])
    assert len(ce['per_class']) == 10 and len(runs['ce'].metrics) == runs['ce'].params['epochs']

def _strip(events): return [{k: v for k, v in e.items() if k != 'time'} for e in events]

def test_resume_after_kill_matches_uninterrupted(tmp_path):
    "Kill the notebook after epoch 2 of 4, re-run it with the same run_dir: identical metrics and summary."
    params = dict(methods=['ce'], crt_epochs=0, epochs=4, eval_every=2, warmup_epochs=1, n_max=40, imbalance_ratio=10,
                  test_per_class=20)
    full = run_notebook(NB, tmp_path/'full.ipynb', {**params, 'run_dir': str(tmp_path/'full')}, tests=False)
    assert full.returncode == 0, full.stdout[-3000:]

    killed_dir = tmp_path/'killed'
    proc = start_notebook(NB, tmp_path/'killed.ipynb', {**params, 'run_dir': str(killed_dir)}, tests=False)
    kill_after_epochs(proc, killed_dir, 'ce-*/metrics.jsonl', 2)
    run = runs_in(killed_dir)['ce']
    assert run.summary is None and run.load_checkpoint()['epoch'] >= 2

    resumed = run_notebook(NB, tmp_path/'resumed.ipynb', {**params, 'run_dir': str(killed_dir)}, tests=False)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert 'resuming from epoch' in (tmp_path/'resumed.ipynb').read_text()
    ref = runs_in(tmp_path/'full')['ce']
    assert [e['epoch'] for e in run.metrics] == [0, 1, 2, 3]
    assert _strip(run.metrics) == _strip(ref.metrics)
    drop = lambda s: {k: v for k, v in s.items() if k != 'wall_time'}
    assert drop(run.summary) == drop(ref.summary)

def _bad_cases(tmp_path):
    empty = tmp_path/'empty_root'; empty.mkdir()
    lists = tmp_path/'lists'; folder = write_fake_list_dataset(lists, 'imagenet_lt')
    lists_bad = tmp_path/'lists_bad'; folder_bad = write_fake_list_dataset(lists_bad, 'imagenet_lt')
    (folder/'ImageNet_LT_train.txt').write_text('')
    (folder_bad/'ImageNet_LT_test.txt').write_text('test/0/0.jpg zero\n')
    return {
        'ratio_zero': (dict(imbalance_ratio=0), 'imbalance_ratio=0'),
        'ratio_negative': (dict(imbalance_ratio=-10), 'imbalance_ratio=-10'),
        'ratio_factor': (dict(imbalance_ratio=0.01), 'use imbalance_ratio=100'),
        'unknown_dataset': (dict(dataset='svhn'), "dataset='svhn'"),
        'missing_cifar': (dict(dataset='cifar10', data_root=str(empty)), 'cifar-10-batches-py'),
        'empty_list_file': (dict(dataset='imagenet_lt', imbalance_ratio=None, data_root=str(lists)), 'is empty'),
        'malformed_list_file': (dict(dataset='imagenet_lt', imbalance_ratio=None, data_root=str(lists_bad)), 'ImageNet_LT_test.txt:1'),
        'unknown_loss': (dict(methods=['ce', 'cross_entropy']), "methods='cross_entropy'"),
    }

def test_bad_inputs_fail_before_any_run_dir(tmp_path):
    "Each bad input is a clear error from the notebook, and no run directory is written."
    check_bad_parameters(NB, tmp_path, _bad_cases(tmp_path), end_to_end='malformed_list_file')

def test_cifar_files_end_to_end(tmp_path):
    "The real CIFAR loading code on tiny python-format batches, through the notebook's training and cRT."
    write_fake_cifar(tmp_path/'data', 'cifar10', per_class=20, test_per_class=3)
    params = dict(dataset='cifar10', data_root=str(tmp_path/'data'), imbalance_ratio=10, methods=['ce'], epochs=1, crt_epochs=1,
                  batch_size=32, run_dir=str(tmp_path/'runs'))
    res = run_notebook(NB, tmp_path/'out.ipynb', params, tests=False)
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(tmp_path/'runs')
    assert runs['ce'].summary['status'] == runs['ce_crt'].summary['status'] == 'completed'
    assert runs['ce'].params['dataset'] == 'cifar10' and len(runs['ce'].summary['per_class']) == 10

# --- issue 21: no host syncs on the hot path (in process: tiny models, a second or two each) ---
import math
import torch, torch.nn as nn
import lt_workbook.training as T
from torch.profiler import profile, ProfilerActivity

@pytest.fixture(scope='module')
def tiny_data():
    "mnist5k at n_max 200, ratio 2: about 1,450 training images, 23 steps of 64."
    return T.load_dataset('mnist5k', imbalance_ratio=2, n_max=200)

def tiny_model(num_classes=10):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, num_classes))

class PoisonAt:
    "The standard step, except at `(epoch, step)`: its loss is NaN and so become the weights (as a real divergence would make them); `fail_after` later steps raise, as a step that cannot take NaN weights would."
    def __init__(self, epoch, step, fail_after=None): self.at, self.fail_after, self.calls = (epoch, step), fail_after, {}
    def __call__(self, trainer, x, y):
        e = trainer.generator.initial_seed()   # one generator per epoch: count steps per epoch
        k = self.calls[e] = self.calls.get(e, -1) + 1
        loss, logits = T.standard_step(trainer, x, y)
        if self.fail_after is not None and any(not torch.isfinite(p).all() for p in trainer.params):
            self.fail_after -= 1
            if self.fail_after < 0: raise RuntimeError('probability tensor contains nan')
        if (len(self.calls) - 1, k) == self.at:
            with torch.no_grad():
                for p in trainer.params: p.fill_(float('nan'))
            loss = loss * float('nan')
        return loss, logits

@pytest.mark.parametrize('epoch,step,fail_after', [(1, 5, None), (0, 22, None), (0, 2, 3)])
def test_diverged_names_first_nonfinite_step(tiny_data, tmp_path, monkeypatch, epoch, step, fail_after):
    """The check read every 4 steps still names the first non-finite step (not the read's), records `diverged`, and no
    checkpoint or metrics line holds the diverged epoch; a step that then fails on the NaN weights is reported as the divergence."""
    monkeypatch.setattr(T, 'FINITE_CHECK_EVERY', 4)
    cfg = T.TrainConfig(epochs=2, batch_size=64, lr=0.05, device='cpu')
    with pytest.raises(T.Diverged, match=rf'non-finite training loss \(nan\) at epoch {epoch}, step {step}; lower the learning rate \(lr=0.05\)'):
        T.train_run(tiny_data, cfg, 'demo', 'poison', run_dir=tmp_path, model=tiny_model(), step=PoisonAt(epoch, step, fail_after))
    run = T.Run(next(tmp_path.glob('poison-*')))
    assert run.summary['status'] == 'diverged' and f'epoch {epoch}, step {step};' in run.summary['message']
    assert [e['epoch'] for e in run.metrics] == list(range(epoch))
    ck = run.load_checkpoint()
    if epoch == 0: assert ck is None
    else: assert ck['epoch'] == epoch and all(torch.isfinite(v).all() for v in ck['model'].values())

def host_reads_in_epoch(mod, data, check_every):
    "`(steps, host reads)` of one `train_epoch` of module `mod`'s trainer: reads are `aten::_local_scalar_dense` events (what `.item()`, `bool()`, `float()` of a tensor dispatch)."
    trainer = mod.Trainer(tiny_model(), data, mod.TrainConfig(epochs=1, batch_size=64, lr=0.05, device='cpu'))
    trainer.check_every, steps = check_every, [0]
    def step(trainer, x, y): steps[0] += 1; return mod.standard_step(trainer, x, y)
    trainer.step = step
    trainer.train_epoch(0)   # warm-up (first-call allocations)
    steps[0] = 0
    with profile(activities=[ProfilerActivity.CPU]) as prof: trainer.train_epoch(1)
    return steps[0], sum(e.name == 'aten::_local_scalar_dense' for e in prof.events())

def test_host_reads_per_epoch(tiny_data):
    "One epoch reads the host about steps / check_every times plus a constant (the check at its end, train_loss, train_acc); it read once a step before."
    for every in (4, 50):
        steps, reads = host_reads_in_epoch(T, tiny_data, every)
        assert steps >= 16, steps
        assert reads <= steps // every + 4, (every, steps, reads)

def test_fused_step_matches_plain_sgd():
    "The trainer's optimizer is fused (SGD and Adam) and, with `optimizer_step`'s multi-tensor clipping, steps as plain per-parameter SGD / Adam and clipping do (float64)."
    torch.manual_seed(0)
    shapes = [(5, 3), (3,), (4, 5, 2)]
    for name, plain in [('sgd', lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3, foreach=False)),
                        ('adam', lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=1e-3, foreach=False))]:
        ps = [nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in shapes]
        qs = [nn.Parameter(p.detach().clone()) for p in ps]
        cfg = T.TrainConfig(optimizer=name, lr=0.1, momentum=0.9, weight_decay=1e-3, grad_clip=0.5, device='cpu')
        trainer = type('Tr', (), dict(params=ps, cfg=cfg, opt=T.make_optimizer(cfg, ps), backward=staticmethod(lambda loss: loss.backward()),
                               scaler=torch.amp.GradScaler('cpu', enabled=False)))()
        assert all(g['fused'] and not g['foreach'] for g in trainer.opt.param_groups), trainer.opt.param_groups
        ref = plain(qs)
        for _ in range(3):
            w = [torch.randn(s, dtype=torch.float64) for s in shapes]
            T.optimizer_step(trainer, sum((p * v).sum() for p, v in zip(ps, w)))
            ref.zero_grad(); sum((q * v).sum() for q, v in zip(qs, w)).backward()
            # plain clipping: g * min(1, c / ||g||) with the norm over all the gradients
            norm = torch.sqrt(sum((q.grad ** 2).sum() for q in qs))
            for q in qs: q.grad.mul_(min(1., 0.5 / (float(norm) + 1e-6)))
            ref.step()
            for p, q in zip(ps, qs): torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)

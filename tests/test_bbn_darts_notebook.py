"End-to-end runs of nbs/05_bbn_darts.ipynb (papermill) and of its search in-process: defaults, HLS, resume, baselines, bad input."
import json, math
import pytest, yaml
import torch
from conftest import check_bad_parameters, run_notebook, runs_in, validation_errors, ROOT
from lt_workbook.data import load_dataset, train_val_split, class_probs, realized_ratio
from lt_workbook.training import TrainConfig, Trainer, Callback, Run, build_model
from lt_workbook.darts import SEARCH_SPACES
from lt_workbook.bbn_darts import BilateralArchitect, backbone_shift, hls_scale, mixing_ratio, bilateral_search

NB = '05_bbn_darts.ipynb'

def test_default_run(runs_root, tmp_path):
    """The default run: BBN, HLS and HLS + reverse sigmoid searches, a continuation of HLS, every per-epoch record, the mu
    sweep, the figures (Fig. 5 among them), Tables I-II and the claims tables; each run records its method and the
    imbalance ratio of the split it trained on."""
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/'05_bbn_darts')
    bbn, hls, cont, rs = runs['bbn_seed0'], runs['hls_seed0'], runs['hls_seed0_then_mu_0'], runs['hls_rs_seed0']
    assert all(r.completed for r in (bbn, hls, cont, rs)) and len(runs) == 4
    # item 1: the ratio recorded is max / min of the counts the weights trained on (the search's split), no 1-image class
    p = bbn.params
    data = load_dataset('mnist5k', 20., n_max=40, seed=0)   # the notebook's defaults (its 60 at ratio 100 had 1-image classes)
    assert p['n_max'] == 40 and p['data_seed'] == 0
    tr_idx, _ = train_val_split(data.train.labels, val_fraction=1 - p['train_portion'], seed=p['data_seed'])
    split_counts = torch.bincount(data.train.labels[tr_idx], minlength=data.num_classes).tolist()
    assert min(data.counts.tolist()) >= 2 and min(split_counts) >= 1
    for r in (bbn, hls, cont, rs):
        assert r.params['imbalance_ratio'] == max(split_counts) / min(split_counts), (r.name, r.params['imbalance_ratio'], split_counts)
    assert (bbn.params['method'], hls.params['method'], cont.params['method']) == ('bbn_darts_const', 'bbn_darts_hls', 'bbn_darts_hls_then_mu_0')
    # item 3: the paper's defaults (Alg. 1's t = 1..T, Eq. 12's class-balanced branch, architecture lr 0.02)
    T, tau, xi0 = bbn.params['epochs'], hls.params['architect']['tau'], hls.params['architect']['lr']['backbone']
    assert xi0 == 0.02 and hls.params['architect']['lr'] == dict(backbone=0.02, ins=0.02, cls=0.02)
    assert all(r.params['architect']['cls_sampler'] == 'class_balanced' and r.params['architect']['t_start'] == 1 for r in (bbn, hls))
    for r in (bbn, hls):
        ev = r.metrics
        assert len(ev) == T and r.params['arch'] == 'bilateral_supernet' and r.params['dataset'] == 'mnist5k'
        assert all({'mu', 'arch_lr', 'alpha_grad_norm', 'alpha_shift', 'alphas', 'train_loss', 'train_acc', 'val_loss', 'val_acc',
                    'genotype', 'head_genotypes'} <= set(e) for e in ev)
        assert [e['mu'] for e in ev] == [1 - ((t + 1) / T) ** 2 for t in range(T)] and ev[-1]['mu'] == 0
        assert set(ev[-1]['alphas']) == set(ev[-1]['alpha_grad_norm']) == {'normal', 'reduce', 'ins', 'cls'}
        assert ev[0]['alpha_grad_norm']['cls'] > 0 and ev[-1]['alpha_grad_norm']['ins'] == 0   # mu = 0: no gradient reaches the instance head
        sweep = json.loads((r.path/'mu_sweep.json').read_text())
        assert sweep == r.summary['mu_sweep'] and [s['mu'] for s in sweep] == [i / 10 for i in range(11)]
        assert all(s[k] is not None for s in sweep for k in ('acc', 'medium', 'few'))
    assert all(e['arch_lr']['backbone'] == xi0 for e in bbn.metrics)
    assert all(math.isclose(e['arch_lr']['backbone'], xi0 * (1 - math.exp(-tau * e['mu'])), rel_tol=0, abs_tol=1e-15)
               and e['arch_lr']['ins'] == hls.params['architect']['lr']['ins'] for e in hls.metrics)
    assert hls.metrics[-1]['arch_lr']['backbone'] == 0      # Eq. 17 at mu = 0: the backbone's alphas stop
    # Table II's "HLS + Reverse Sigmoid": HLS with Eq. 18's mixing, t = 1..T, k = 5
    a = rs.params['architect']
    assert rs.params['method'] == 'bbn_darts_hls_rsig' and a['schedule'] == 'reverse_sigmoid' and a['hls'] and a['k'] == 5
    assert all(math.isclose(e['mu'], 1 - 1 / (1 + math.exp(-5 * (e['epoch'] + 1 - T / 2) / (T / 2))), abs_tol=1e-12)
               and math.isclose(e['arch_lr']['backbone'], xi0 * (1 - math.exp(-tau * e['mu'])), abs_tol=1e-15) for e in rs.metrics)
    assert hls.metrics[-1]['alpha_shift']['normal'] == hls.metrics[-1]['alpha_shift']['reduce'] == 0
    assert bbn.metrics[-1]['alpha_shift']['normal'] > 0
    assert cont.params['init_from'] == str(hls.checkpoint_file) and all(e['mu'] == 0 for e in cont.metrics)
    # the continuation (continue_bilateral_search) takes its config and architect from the finished search's params.json
    assert cont.params['architect'] == {**hls.params['architect'], 'schedule': 'constant', 'mu0': 0.}
    assert {k: v for k, v in cont.params.items() if k not in ('method', 'epochs', 'lr', 'schedule', 'init_from', 'arch_kw', 'eval_every', 'architect', 'env')} == \
           {k: v for k, v in hls.params.items() if k not in ('method', 'epochs', 'lr', 'schedule', 'init_from', 'arch_kw', 'eval_every', 'architect', 'env')}
    nb = json.loads((tmp_path/'out.ipynb').read_text())
    html = ''.join(''.join(o['data']['text/html']) for c in nb['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {}))
    for title in ('Supernet test accuracy at mu_test', 'test-time mixing ratio', 'loss and accuracy per epoch', 'Theorem 1',
                  'How far the backbone alphas move', 'softmax(alpha) of the ins cell', 'softmax(alpha) of the reduce cell',
                  'Fig. 5: the backbone factor', 'recorded arch lr', 'bbn, seed 0 (Fig. 3)', 'hls, seed 0 (Fig. 7)',
                  'HLS + Reverse Sigmoid', 'HLS + Continous Learning (mu_0)', 'Fig. 5, Sec. IV-B'):
        assert title in html, title
    # item 12: the Reading is a claims table built from the run directories (one seed: no verdict but 'not reproduced')
    for where in ('Table I, Table II', 'Table II, Sec. V-D', 'Fig. 4, Sec. III-D', 'Fig. 6, Sec. V-C', 'Fig. 7 vs Fig. 3, Sec. V-C',
                  'Theorem 1, Eq. 14-16', 'Fig. 8, Sec. V-D', 'HLS + reverse-sigmoid mixing'):
        assert where in html, where
    assert 'supported' not in html.split('Tang 2024 (HLS)', 1)[1] and 'contradicted' not in html.split('Tang 2024 (HLS)', 1)[1]
    src = ''.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    assert 'less movement with HLS' not in src and 'Deviations from the paper' in src

def test_config_grid_runs_every_method_and_variant(tmp_path):
    "The Table II preset (made tiny), its five searches and the four continued-training variants: every run completes."
    grid = yaml.safe_load((ROOT/'configs'/'bbn_darts_table2.yaml').read_text())
    paper = yaml.safe_load((ROOT/'configs'/'bbn_darts_cifar10lt.yaml').read_text())
    tiny = dict(dataset='mnist5k', data_root=None, imbalance_ratio=10, n_max=30, group_split='count', epochs=1, layers=3, init_channels=4, steps=1,
                stem_stride=2, batch_size=16, seeds=[0], mu_grid=3, continue_epochs=1, run_dir=str(tmp_path/'grid'))
    cfg = tmp_path/'grid.yaml'
    assert grid['continue_variants'] == paper['continue_variants'] and grid['continue_from'] == 'hls'
    cfg.write_text(yaml.safe_dump({**grid, **tiny}))
    res = run_notebook(NB, tmp_path/'grid.ipynb', files=[cfg], tests=False)
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(tmp_path/'grid')
    assert paper['continue_from'] == 'hls' and {'hls', 'hls_rs'} <= set(grid['methods'])
    expect = {f'{m}_seed0' for m in grid['methods']} | {f'hls_seed0_then_{v}' for v in paper['continue_variants']}
    assert set(runs) == expect and all(r.completed for r in runs.values())
    assert runs['darts_rs_seed0'].params['sampler'] == 'class_balanced' and runs['darts_seed0'].params['arch'] == 'supernet'
    frozen = runs['hls_seed0_then_frozen_backbone']
    assert frozen.params['arch_kw']['freeze_backbone'] and all(e['mu'] == 0 for e in frozen.metrics)
    assert runs['hls_rs_seed0'].params['architect']['schedule'] == 'reverse_sigmoid' and runs['hls_rs_seed0'].params['method'] == 'bbn_darts_hls_rsig'
    methods = {r.params['method'] for r in runs.values()}
    assert len(methods) == len(runs) and all(m.startswith('bbn_darts_') for m in methods), methods
    for cfg_ in (grid, paper):   # Sec. V-A: architecture lr 0.02 for every alpha set; the paper's sampler and schedule
        assert cfg_['arch_lr_backbone'] == cfg_['arch_lr_ins'] == cfg_['arch_lr_cls'] == 0.02
        assert cfg_['cls_sampler'] == 'class_balanced' and cfg_['t_start'] == 1

def test_bad_parameters(tmp_path):
    "A bad parameter fails before any run directory, naming the parameter and the value."
    bad = {'method': (dict(methods=['bbn', 'hsl']), "methods='hsl'"),
           'sampler': (dict(cls_sampler='inverse'), "cls_sampler='inverse': expected one of ('class_balanced', 'reversed')"),
           'mu_grid': (dict(mu_grid=1), 'mu_grid=1'),
           'portion': (dict(train_portion=1.0), 'train_portion=1.0')}
    bad['continue_from'] = (dict(continue_from='darts'), "continue_from='darts': expected one of ('bbn', 'hls', 'hls_rs')")
    check_bad_parameters(NB, tmp_path, bad)
    # a sweep's point of another method (configs/sweeps/bbn_darts_table2.yaml) continues nothing rather than failing
    assert validation_errors(NB, {'darts': dict(methods=['darts'], continue_variants=['mu_0'], run_dir=str(tmp_path/'d'))}) == {'darts': None}

@pytest.fixture(scope='module')
def tiny():
    data = load_dataset('mnist5k', imbalance_ratio=10, n_max=30)
    train_idx, val_idx = train_val_split(data.train.labels, val_fraction=0.5, seed=0)
    return data.train_subset(train_idx), data.train.subset(val_idx)

def _search(tiny, root, method='hls', epochs=2, callbacks=(), arch_kw=None, init_from=None, **architect_kw):
    data, val = tiny
    bilateral = method in ('bbn', 'hls')
    kw = dict(primitives=list(SEARCH_SPACES['darts']), C=4, layers=3, steps=1, multiplier=1, stem_stride=2, **(arch_kw or {}))
    cfg = TrainConfig(arch='bilateral_supernet' if bilateral else 'supernet', epochs=epochs, batch_size=16, lr=0.025, lr_min=0.001,
                      schedule='cosine', grad_clip=5., eval_every=epochs, device='cpu', arch_kw=kw, init_from=init_from,
                      sampler='class_balanced' if method == 'darts_rs' else 'instance')
    akw = dict(batch_size=16, lr=dict(backbone=0.03, ins=0.02, cls=0.01), hls=method == 'hls', **architect_kw) if bilateral else \
          dict(batch_size=16, lr=0.03, sampler='class_balanced' if method == 'darts_rs' else 'instance')
    run = bilateral_search(data, val, cfg, akw, method, root, mu_grid=5, section='bbn', callbacks=callbacks,   # the notebook's search function
                           eval_set=data.test.subset(torch.arange(0, len(data.test), 10)))
    assert run.params['architect'] == akw and 'train_portion' not in run.params
    return run.model, run

class Interrupt(Callback):
    "Stop the run at the start of epoch `at` (after the previous epoch's checkpoint), as a kill would."
    def __init__(self, at): self.at = at
    def before_epoch(self, trainer, epoch):
        if epoch == self.at: raise KeyboardInterrupt

def _strip(events): return [{k: v for k, v in e.items() if k != 'time'} for e in events]

def test_resume_repeats_the_uninterrupted_search(tiny, tmp_path):
    "Interrupted after epoch 1 of 2 and re-run in the same directory: the same per-epoch records (mu, alphas, shifts, losses) and sweep."
    _, ref = _search(tiny, tmp_path/'full', epochs=2)
    with pytest.raises(KeyboardInterrupt): _search(tiny, tmp_path/'killed', epochs=2, callbacks=[Interrupt(1)])
    killed = next((tmp_path/'killed').iterdir())
    assert Run(killed).summary is None and Run(killed).load_checkpoint()['epoch'] == 1
    _, run = _search(tiny, tmp_path/'killed', epochs=2, callbacks=[Interrupt(-1)])
    assert [e['epoch'] for e in run.metrics] == [0, 1] and [e['mu'] for e in run.metrics] == [0.75, 0.]
    assert _strip(run.metrics) == _strip(ref.metrics) and run.summary['mu_sweep'] == ref.summary['mu_sweep']
    assert run.summary['genotype'] == ref.summary['genotype'] and run.summary['head_genotypes'] == ref.summary['head_genotypes']

def test_frozen_backbone_continuation_trains_only_the_heads(tiny, tmp_path):
    "Continuing with freeze_backbone: backbone weights, alphas and BatchNorm statistics unchanged, heads changed."
    _, base = _search(tiny, tmp_path, method='bbn', epochs=1)
    model, run = _search(tiny, tmp_path, method='bbn', epochs=1, arch_kw=dict(freeze_backbone=True), init_from=str(base.checkpoint_file),
                         schedule='constant', mu0=0.)
    before = torch.load(base.checkpoint_file, weights_only=False)['model']
    after = model.state_dict()
    backbone = [k for k in before if k.startswith(('stem.', 'cells.')) or k in ('alphas_normal', 'alphas_reduce')]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)
    assert not torch.equal(before['alphas_cls'], after['alphas_cls'])
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith('heads.cls.'))
    ev = run.metrics[0]
    assert ev['mu'] == 0 and ev['alpha_shift']['normal'] == ev['alpha_shift']['reduce'] == 0 and 'backbone' not in ev['arch_lr']

def test_single_branch_baseline(tiny, tmp_path):
    "DARTS + re-sampling runs through the same step and tracker: class-balanced batches, no mu, a flat mu sweep."
    model, run = _search(tiny, tmp_path, method='darts_rs', epochs=1)
    ev = run.metrics[0]
    assert run.params['sampler'] == 'class_balanced' and 'mu' not in ev and set(ev['alpha_grad_norm']) == {'normal', 'reduce'}
    assert run.params['arch'] == 'supernet' and len({s['acc'] for s in run.summary['mu_sweep']}) == 1

def test_bbn_code_options(tiny, tmp_path):
    "BBN's code as options: t = 0..T-1 (mu starts at 1, never 0) and the reversed class-sampling stream; recorded in params."
    _, run = _search(tiny, tmp_path, method='bbn', epochs=2, cls_sampler='reversed', t_start=0)
    assert [e['mu'] for e in run.metrics] == [1., 0.75] and run.metrics[0]['alpha_grad_norm']['cls'] == 0
    assert run.params['architect']['cls_sampler'] == 'reversed' and run.params['architect']['t_start'] == 0

@pytest.mark.parametrize('kind', ['class_balanced', 'reversed'])
def test_class_sampling_stream_follows_its_sampler(tiny, kind):
    "The architect's class-sampling training stream draws classes as `class_probs(kind)` says (Eq. 12 or BBN's reversed)."
    data, val = tiny
    kw = dict(primitives=list(SEARCH_SPACES['darts']), C=4, layers=3, steps=1, multiplier=1, stem_stride=2)
    cfg = TrainConfig(arch='bilateral_supernet', epochs=2, batch_size=16, device='cpu', arch_kw=kw)
    model = build_model(cfg, data.num_classes)
    arch = BilateralArchitect(model, val, batch_size=16, lr=0.02, cls_sampler=kind)
    trainer = Trainer(model, data, cfg, step=arch.step, callbacks=[arch])
    arch.before_epoch(trainer, 0)
    labels = torch.cat([next(arch.train_cls)[1] for _ in range(400)])
    freq = torch.bincount(labels, minlength=data.num_classes).double() / len(labels)
    assert (freq - class_probs(data.counts, kind)).abs().max() < 0.02, (kind, freq)

def test_recorded_ratio_is_the_split_s(tiny, tmp_path):
    "A search's params.json records max / min of the counts of the split its weights trained on."
    data, _ = tiny
    _, run = _search(tiny, tmp_path, method='darts', epochs=1)
    assert run.params['imbalance_ratio'] == realized_ratio(data.counts.tolist()) == data.imbalance_ratio

"End-to-end runs of nbs/06_reslt_branches.ipynb with papermill: the default run, bad parameters, the paper-scale configs and presets."
import json
import numpy as np
import papermill, pytest, torch, yaml
from conftest import run_notebook, runs_in, NBS, ROOT
from lt_workbook.data import load_dataset, lt_metrics
from lt_workbook.training import TrainConfig, Trainer, build_model

import torch.nn.functional as F
from lt_workbook.reslt import (ResLTSetting, ResLTNet, BranchAnalysis, STUDIES, fuse, reslt_loss, branch_masks, reslt_groups,
                               scaled_backbone, baseline_config)

NB = '06_reslt_branches.ipynb'
SECTION = '06_reslt_branches'

@pytest.mark.xdist_group('reslt_default_run')   # the checkpoint test below reads this run: same worker, in order
def test_default_run(runs_root, tmp_path):
    "The default run: CE and ResLT (both branch kinds) with per-branch results, the ablation runs, the figures, the printed few-shot numbers."
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/SECTION)
    for name, names in [('ce_s0', ['N']), ('reslt_s0', ['N_hmt', 'N_mt', 'N_t']), ('branch-bn_s0', ['N_hmt', 'N_mt', 'N_t'])]:
        r = runs[name]
        s, p = r.summary, r.params
        assert s['status'] == 'completed' and p['dataset'] == 'mnist5k', name
        assert list(s['branches']) == names + ['fused'] and s['branches']['fused']['acc'] == s['acc'], name
        assert all(s['branches'][b][k] is not None for b in s['branches'] for k in ('acc', 'many', 'medium', 'few'))
        feats = json.loads((r.path/'features.json').read_text())
        assert np.array(feats['features']).shape == (500, 32) and np.bincount(feats['labels']).tolist() == [50] * 10
    p = runs['reslt_s0'].params
    assert p['arch'] == 'reslt' and p['arch_kw']['branch'] == 'conv' and p['step'] == 'reslt' and p['step_kw']['alpha'] == 0.995
    assert p['arch_kw']['backbone'] == 'components' and p['grouping'] == 'count'
    assert p['arch_kw']['groups'] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]      # by count rank: the 3/3/4 many/medium/few split
    assert runs['branch-bn_s0'].params['arch_kw']['branch'] == 'bn'
    sweeps = {k for k in runs if k.startswith('sweep_')}
    assert len(sweeps) == 18 and {'sweep_ce_s0', 'sweep_reslt_s0', 'sweep_branch-stacked_alpha0_s0', 'sweep_num_groups-5_s0'} <= sweeps
    assert all(runs[k].completed and runs[k].params['epochs'] == 2 for k in sweeps)
    # every run records a descriptive method and the ratio of the training counts it trained on
    methods = {k: runs[k].params['method'] for k in runs}
    assert methods['ce_s0'] == methods['sweep_ce_s0'] == 'ce' and methods['reslt_s0'] == methods['sweep_reslt_s0'] == 'reslt'
    assert methods['branch-bn_s0'] == 'reslt_bn_branches' and methods['sweep_branch-stacked_alpha0_s0'] == 'stacked_convs_ce'
    assert methods['sweep_fusion-main_s0'] == 'reslt_fig2d_main_only' and methods['sweep_branch-shared_s0'] == 'reslt_fig2e_shared'
    assert methods['sweep_class_sets-main_disjoint_s0'] == 'reslt_fig2a_main_disjoint' and methods['sweep_num_groups-5_s0'] == 'reslt_5_groups_by_count'
    counts = load_dataset('mnist5k', 50.0, n_max=200, seed=0).counts
    assert all(abs(r.params['imbalance_ratio'] - counts.max() / counts.min()) < 1e-12
               for k, r in runs.items() if not k.startswith('ratio'))
    # Fig. 4 / Fig. 8: CE and ResLT at widths x0.5 and x2 (x1 is the short pair above), short runs
    for m, width in [(0.5, 4), (2.0, 16)]:
        ce, rl = runs[f'size_x{m:g}_ce_s0'], runs[f'size_x{m:g}_reslt_s0']
        assert ce.params['arch_kw'] == {'blocks': 1, 'width': width} == rl.params['arch_kw']['backbone_kw']
        assert ce.params['width_multiplier'] == m == rl.params['width_multiplier']
        assert ce.params['epochs'] == rl.params['epochs'] == 2
        assert rl.params['method'] == 'reslt' and rl.summary['params'] > ce.summary['params']
    # Table 5: CE and ResLT at ratios 100 and 10 (50 is the short pair above), LDAM+DRW at all three
    for r in (100, 50, 10):
        ldam = runs[f'ratio{r}_ldam_drw_s0'].params
        got = tuple(ldam[k] for k in ('loss', 'reweight', 'drw_epoch', 'method', 'epochs'))
        assert got == ('ldam', 'drw', 1, 'ldam_drw', 2), got
        names = [f'ratio{r}_ldam_drw_s0'] + ([f'ratio{r}_ce_s0', f'ratio{r}_reslt_s0'] if r != 50 else [])
        assert all(abs(runs[n].params['imbalance_ratio'] - r) < 1e-9 and runs[n].completed for n in names), r
    assert 'ratio50_ce_s0' not in runs and 'size_x1_ce_s0' not in runs
    # Fig. 2(d): the prediction is the main branch's, whose loss is the fusion loss on N_hmt alone
    d = runs['sweep_fusion-main_s0'].summary['branches']
    assert d['fused'] == d['N_hmt'] and runs['sweep_fusion-main_s0'].params['arch_kw']['fusion'] == 'main'
    assert runs['sweep_class_sets-all_s0'].summary['branches'].keys() == {'N_hmt_1', 'N_hmt_2', 'N_hmt_3', 'fused'}
    out = json.loads((tmp_path/'out.ipynb').read_text())
    html = ''.join(''.join(o['data']['text/html']) for c in out['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {}))
    for title in ('CE vs ResLT', 'reslt: each branch alone and fused', 'Penultimate features of the test images',
                  'Fused accuracy against alpha', 'Table 1 naive fusions: fused accuracy', 'Fig. 7 controls: fused accuracy',
                  'Fig. 2 variants (a)-(e): fused accuracy', 'our ablations: fused accuracy', 'Fig. 4: accuracy against model size',
                  'Fig. 8: many', 'at each model size', 'Table 5: accuracy against the imbalance ratio'):
        assert title in html, title
    # the Reading: a claims table with a verdict per claim, every one 'not reproduced' with one seed
    for where in ('Table 1', 'Fig. 6, Sec. 4.2.3', 'Fig. 3(a, b), Sec. 3.3.1', 'Fig. 3(c, d), Sec. 3.3.2', 'Fig. 7, Sec. 4.2.1',
                  'Fig. 5, Sec. 4.2.5', 'Table 9, Sec. 4.2.6', 'ResLT beats (d): the additive shortcut is a core factor',
                  'Fig. 4, Sec. 4.2.2, Table 6', 'ResLT trails CE on many-shot classes at width x2', 'Fig. 8, Sec. 4.2.4, Table 6',
                  'ResLT beats LDAM+DRW at imbalance ratio 100', 'ResLT beats CE at imbalance ratio 10'):
        assert where in html, where
    assert 'supported</td>' not in html and 'contradicted</td>' not in html and 'not reproduced</td>' in html

@pytest.mark.xdist_group('reslt_default_run')
def test_reslt_checkpoint_reproduces_its_branch_analysis(runs_root):
    "ResLT-specific: the model rebuilt from the default run's params.json and checkpoint gives the recorded per-branch accuracies."
    runs = runs_in(runs_root/SECTION)
    if 'reslt_s0' not in runs: pytest.skip('needs the default run (test_default_run, with the same runs root)')
    run = runs['reslt_s0']
    p = run.params
    data = load_dataset(p['dataset'], p['imbalance_ratio'], n_max=p['n_max'], seed=p['data_seed'], test_per_class=p['test_per_class'])
    cfg = TrainConfig(**{k: p[k] for k in ('arch', 'arch_kw', 'classifier', 'group_split')}, device='cpu')
    model = build_model(cfg, data.num_classes)
    assert isinstance(model, ResLTNet) and model.masks.sum(1).tolist() == [10, 7, 4]
    model.load_state_dict(run.load_checkpoint()['model'])
    trainer = Trainer(model, data, cfg)
    f, z = BranchAnalysis().outputs(trainer, data.test.images)
    assert z.shape == (500, 3, 10) and torch.equal(fuse(z, 'sum').argmax(1), trainer.predict(data.test.images))
    for k, name in enumerate(model.branch_names):
        m = lt_metrics(z[:, k].argmax(1), data.test.labels, data.counts.tolist(), cfg.group_split)
        assert all(abs(m[key] - run.summary['branches'][name][key]) < 1e-6 for key in ('acc', 'many', 'medium', 'few')), name
    feats = json.loads((run.path/'features.json').read_text())
    assert np.allclose(feats['features'], f.sum(1).numpy(), atol=1e-3)

def test_bad_parameters_fail_before_any_run_directory(tmp_path):
    "Groups that do not fit the data fail with a clear message after loading it, before any run directory; bad settings in-process."
    rd = tmp_path/'runs'
    res = run_notebook(NB, tmp_path/'bounds.ipynb', dict(grouping='index', group_bounds=[2, 20], run_dir=str(rd)), tests=False)
    assert res.returncode != 0 and 'group_bounds=[2, 20]: expected increasing class indices from 1 to 9' in res.stdout, res.stdout[-2000:]
    assert not rd.exists(), f'{rd} was written'
    for kw, msg in [(dict(num_groups=6), 'num_groups=6: expected an integer from 2 to 5'),
                    (dict(alpha=1.5), r'alpha=1.5: expected a number in \[0, 1\]'),
                    (dict(branch='grouped'), "branch='grouped': expected one of")]:
        with pytest.raises(ValueError, match=msg): ResLTSetting(**kw)
    with pytest.raises(ValueError, match=r'group_bounds=\[2, 4\] makes 3 groups but num_groups=2'):
        ResLTSetting(num_groups=2, grouping='index', group_bounds=[2, 4]).groups([10] * 10)

def test_paper_configs_name_notebook_parameters():
    "The paper-scale configs set only the notebook's parameters, with valid settings and the public code's groups and alphas."
    params = papermill.inspect_notebook(str(NBS/NB))
    expect = {'reslt_cifar10lt.yaml': ('cifar10', 0.998, [[0, 1], [2, 3], list(range(4, 10))], 10),
              'reslt_cifar100lt.yaml': ('cifar100', 0.995, [list(range(0, 35)), list(range(35, 70)), list(range(70, 100))], 100)}
    for f, (dataset, alpha, groups, K) in expect.items():
        c = yaml.safe_load((ROOT/'configs'/f).read_text())
        assert set(c) <= set(params), set(c) - set(params)
        st = ResLTSetting(**{k: c[k] for k in ('num_groups', 'grouping', 'group_bounds', 'branch', 'fusion', 'class_sets', 'alpha',
                                               'branch_norm', 'log_eps')})
        assert c['dataset'] == dataset and st.alpha == alpha and st.groups([1] * K) == groups
        assert st.log_eps == 1e-7 and st.branch_norm == 'pooled' and st.class_sets == 'nested'     # the public code's loss
        assert c['backbone'] == 'resnet32' and c['epochs'] == 200 and c['batch_size'] == 128 and c['milestones'] == [160, 180]
        assert c['warmup_epochs'] == 5 and c['lr'] == 0.1 and set(c['studies']) == set(STUDIES)
        # Fig. 4: ResNet-32 at 1x, 2x, 3x channels; Table 5: its three ratios and the rows that are workbook recipes
        assert c['width_multipliers'] == [1, 2, 3] and scaled_backbone('resnet32', {}, 3)[1]['widths'] == [48, 96, 192]
        assert c['imbalance_ratios'] == [100, 50, 10] and set(c['baselines']) == {'mixup', 'focal', 'cb_focal', 'ldam_drw', 'ce_drw'}
        for b in c['baselines']: baseline_config(TrainConfig(), b)

def test_large_scale_presets_follow_sec_4_1():
    """Every ResLT train preset has a CE + cRT twin on the same backbone and schedule; lr and batch per backbone
    (Sec. 4.1), alpha per dataset (Sec. 4.2.5)."""
    from lt_workbook.runner import read_train_spec
    presets = ROOT/'configs'/'presets'
    reslt = {f.stem: read_train_spec([f]) for f in sorted(presets.glob('reslt_*.yaml')) if not f.stem.endswith('_crt')}
    assert set(reslt) == ({f'reslt_imagenet_lt_{b}' for b in ('resnet10', 'resnext50', 'resnext101')}
                          | {'reslt_inat2018_resnet50', 'reslt_places_lt_resnet152'})
    alpha = {'imagenet_lt': 0.99, 'inat2018': 0.9, 'places_lt': 0.99}
    for name, spec in reslt.items():
        cfg = spec.cfg
        big = cfg.arch_kw['backbone'] in ('resnext101_32x4d', 'resnet152')          # "for the limited GPU memory"
        assert (cfg.lr, cfg.batch_size) == ((0.05, 128) if big else (0.1, 256)), name
        assert cfg.schedule == 'cosine' and cfg.momentum == 0.9 and cfg.arch_kw['class_sets'] == 'nested', name
        assert cfg.step == 'reslt' and cfg.step_kw['alpha'] == alpha[spec.data['name']], name
        twin = read_train_spec([presets/f'{name}_crt.yaml'])
        t = twin.cfg
        assert twin.data == spec.data and t.arch == cfg.arch_kw['backbone'], name
        assert t.arch_kw == cfg.arch_kw.get('backbone_kw', {}), name
        assert t.second_stage == 'crt' and t.step == 'standard' and t.method == 'crt', name
        same = ('epochs', 'batch_size', 'lr', 'weight_decay', 'schedule', 'sampler', 'seed')
        assert all(getattr(t, k) == getattr(cfg, k) for k in same), name

def test_public_loss_and_float64():
    "log_eps=1e-7 reproduces the public code's loss in float64 (to 1e-10), and float64 logits give a float64 loss."
    torch.manual_seed(0)
    z = torch.randn(12, 3, 10, dtype=torch.float64) * 4
    z[0, 2] = 0.; z[0, 2, 9] = -40.                             # p(target) ~ 1e-18 in the tail branch: the epsilon matters
    y = torch.tensor([9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4])
    bounds, beta, eps = (0, 2, 4), 0.998, 1e-7
    w = torch.stack([(y >= b).double() for b in bounds], 1)                                   # B x 3 membership weights
    ice = -(w * torch.log(torch.softmax(z, -1).gather(2, y[:, None, None].expand(-1, 3, 1))[..., 0] + eps)).sum() / w.sum()
    want = beta * ice + (1 - beta) * F.cross_entropy(z.sum(1), y)
    masks = branch_masks(reslt_groups([1] * 10, 3, 'index', [2, 4]), 10)
    got = reslt_loss(z, y, masks, beta, log_eps=eps)
    assert got.dtype == torch.float64 and abs(float(got - want)) < 1e-10
    assert abs(float(reslt_loss(z, y, masks, beta) - want)) > 1e-3
    assert abs(float(reslt_loss(z, y, masks, beta)) - float(reslt_loss(z.float(), y, masks, beta))) < 1e-5

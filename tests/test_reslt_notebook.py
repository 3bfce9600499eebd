"End-to-end runs of nbs/06_reslt_branches.ipynb with papermill: the default run, bad parameters, the paper-scale configs."
import json
import numpy as np
import papermill, pytest, torch, yaml
from conftest import run_notebook, runs_in, NBS, ROOT
from lt_workbook.data import load_dataset, lt_metrics
from lt_workbook.training import TrainConfig, Trainer, build_model
from lt_workbook.components import trim_test_set
from lt_workbook.reslt import ResLTSetting, ResLTNet, BranchAnalysis, STUDIES, fuse

NB = '06_reslt_branches.ipynb'
SECTION = '06_reslt_branches'

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
    assert p['arch'] == 'reslt' and p['arch_kw']['branch'] == 'conv' and p['alpha'] == 0.995 and p['arch_kw']['backbone'] == 'components'
    assert p['arch_kw']['groups'] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]      # by count rank: the 3/3/4 many/medium/few split
    assert runs['branch-bn_s0'].params['arch_kw']['branch'] == 'bn'
    sweeps = {k for k in runs if k.startswith('sweep_')}
    assert len(sweeps) == 15 and {'sweep_ce_s0', 'sweep_reslt_s0', 'sweep_branch-stacked_alpha0_s0', 'sweep_num_groups-5_s0'} <= sweeps
    assert all(runs[k].completed and runs[k].params['epochs'] == 2 for k in sweeps)
    out = json.loads((tmp_path/'out.ipynb').read_text())
    html = ''.join(''.join(o['data']['text/html']) for c in out['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {}))
    for title in ('CE vs ResLT', 'reslt: each branch alone and fused', 'Penultimate features of the test images',
                  'Fused accuracy against alpha', 'naive: fused accuracy', 'controls: fused accuracy'):
        assert title in html, title
    text = ''.join(''.join(o.get('text', '')) for c in out['cells'] for o in c.get('outputs', []))
    assert 'reslt: overall' in text and 'few-shot gain of the fused output over the main branch N_hmt alone' in text

def test_reslt_checkpoint_reproduces_its_branch_analysis(runs_root):
    "ResLT-specific: the model rebuilt from the default run's params.json and checkpoint gives the recorded per-branch accuracies."
    runs = runs_in(runs_root/SECTION)
    if 'reslt_s0' not in runs: pytest.skip('needs the default run (test_default_run or nbdev_test with the same runs root)')
    run = runs['reslt_s0']
    p = run.params
    data = trim_test_set(load_dataset(p['dataset'], p['imbalance_ratio'], n_max=p['n_max'], seed=p['data_seed']), p['test_per_class'])
    cfg = TrainConfig(**{k: p[k] for k in ('arch', 'arch_kw', 'classifier', 'group_split')}, device='cpu')
    model = build_model(cfg, data.num_classes)
    assert isinstance(model, ResLTNet) and model.masks.sum(1).tolist() == [10, 7, 4]
    model.load_state_dict(run.load_checkpoint()['model'])
    tr = Trainer(model, data, cfg)
    f, z = BranchAnalysis().outputs(tr, data.test.images)
    assert z.shape == (500, 3, 10) and torch.equal(fuse(z, 'sum').argmax(1), tr.predict(data.test.images))
    for k, name in enumerate(model.branch_names):
        m = lt_metrics(z[:, k].argmax(1), data.test.labels, data.counts.tolist(), cfg.group_split)
        assert all(abs(m[key] - run.summary['branches'][name][key]) < 1e-6 for key in ('acc', 'many', 'medium', 'few')), name
    feats = json.loads((run.path/'features.json').read_text())
    assert np.allclose(feats['features'], f.sum(1).numpy(), atol=1e-3)

def test_bad_parameters_fail_before_any_run_directory(tmp_path):
    "Groups that do not fit the data fail with a clear message after loading it, before any run directory; bad settings in-process."
    rd = tmp_path/'runs'
    res = run_notebook(NB, tmp_path/'bounds.ipynb', dict(grouping='index', group_bounds=[2, 20], run_dir=str(rd)))
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
        st = ResLTSetting(c['num_groups'], c['grouping'], c['group_bounds'], c['branch'], c['fusion'], c['nested'], c['alpha'], c['branch_norm'])
        assert c['dataset'] == dataset and st.alpha == alpha and st.groups([1] * K) == groups
        assert c['backbone'] == 'resnet32' and c['epochs'] == 200 and c['batch_size'] == 128 and c['milestones'] == [160, 180]
        assert c['warmup_epochs'] == 5 and c['lr'] == 0.1 and set(c['studies']) == set(STUDIES)

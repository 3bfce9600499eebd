"End-to-end runs of nbs/02_component_exploration.ipynb with papermill: the default sweep, bad parameters, a non-default group."
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import papermill, pytest, yaml
from conftest import check_bad_parameters, run_notebook, NBS, ROOT, runs_in
from lt_workbook.components import component_groups, variant_name, param_count, component_net, COMPONENTS_PAPER
from lt_workbook.data import lt_counts, realized_ratio
from lt_workbook.recipes import backbone

NB = '02_component_exploration.ipynb'
DEFAULT_GROUPS = ['topology', 'conv', 'lt_ops']

def test_default_run(runs_root, tmp_path):
    """The default sweep: one completed run per (variant, ratio) with its parameter count, the ratio it really trained on
    and its method; the figures' HTML and the claims table in the notebook."""
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/'02_component_exploration')
    variants = {variant_name(**kw): kw for g in component_groups(DEFAULT_GROUPS).values() for kw in g.values()}
    assert len(variants) == 11
    for v, kw in variants.items():
        for ratio in (10, 100):
            r = runs[f'{v}_r{ratio}_s0']
            s, p = r.summary, r.params
            assert s['status'] == 'completed' and p['arch_kw']['block'] == kw['block']
            # the recorded ratio is max / min of the training counts the run used (n_max 100, untouched by the test trimming)
            assert p['train_counts'] == lt_counts(100, 10, ratio) and p['test_per_class'] == 20
            assert p['imbalance_ratio'] == realized_ratio(p['train_counts']) == ratio and p['n_max'] == 100
            assert p['method'] == v, (v, p['method'])
            assert s['params'] == param_count(kw['block'], p['arch_kw']['width'], 1), (v, s['params'])
            assert abs(s['params'] - 20_000) / 20_000 < 0.12, (v, s['params'])
            assert all(s[k] is not None for k in ('acc', 'many', 'medium', 'few')) and len(s['per_class']) == 10
    # Fig. 1: the other architectures, with the sweep's recipe and data at ratio 100 (ResNet-32 at its own 0.46M)
    fig1 = {'resnet32': 'fig1_resnet32', 'genotype:DARTS_V2': 'fig1_genotype-DARTS_V2',
            'genotype:LTDARTS_MNIST5K_R100': 'fig1_genotype-LTDARTS_MNIST5K_R100'}
    assert {n for n in runs if n.startswith('fig1_')} == {f'{n}_r100_s0' for n in fig1.values()}
    for b, n in fig1.items():
        r = runs[f'{n}_r100_s0']
        assert r.summary['status'] == 'completed' and r.params['backbone'] == b and r.params['method'] == n
        assert r.params['train_counts'] == lt_counts(100, 10, 100) and r.params['epochs'] == runs['basic_r100_s0'].params['epochs']
    assert runs['fig1_resnet32_r100_s0'].summary['params'] == 464_154
    nb = json.loads((tmp_path/'out.ipynb').read_text())
    html = [''.join(o['data']['text/html']) for c in nb['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {})]
    plots = [h for h in html if 'Plotly.newPlot' in h]
    titles = ['Topology: basic vs bottleneck', 'Convolution design', 'Table 1: operations', 'topology: overall and many',
              'Fig. 1: accuracy against parameters']
    for t in titles: assert any(t in h for h in plots), t
    assert any('application/vnd.jupyter.widget-view+json' in o.get('data', {}) for c in nb['cells'] for o in c.get('outputs', []))
    # the Reading: a claims table (Fig. 5, Fig. 6, Table 1 at both ratios), one seed -> no verdict but "not reproduced"
    reading = [h for h in html if COMPONENTS_PAPER in h and 'verdict' in h]
    assert reading and all(w in reading[-1] for w in ('Fig. 5', 'Fig. 6', 'Table 1', '(ratio 10)', '(ratio 100)'))
    assert 'supported' not in reading[-1] and 'contradicted' not in reading[-1]
    assert any('Fig. 1' in h and 'best of' in h and 'resnet32' in h for h in reading)   # Fig. 1's claim, against ResNet-32
    claims = json.loads((runs_root/'02_component_exploration'/'claims.json').read_text())['claims']
    assert sum(c['where'] == 'Fig. 1' for c in claims) == 1

def test_bad_parameters_and_a_tiny_extra_group(tmp_path):
    "A bad parameter fails before any run directory is written, with a clear message; the norm group runs tiny."
    cases = {
        'bogus_group': (dict(components=['conv', 'bogus']), "components='bogus'"),
        'unrealizable_ratio': (dict(n_max=50), "imbalance_ratio=100 with n_max=50"),    # 02's old default: 1 image would be ratio 50
        'inexact_ratio': (dict(n_max=150, imbalance_ratios=[100]), "imbalance_ratios=100 with n_max=150"),   # 150 .. 1: ratio 150
        'bad_width': (dict(width=0), "width=0: expected a positive integer"),
        'fig1_ratio_not_trained': (dict(fig1_ratio=50), "fig1_ratio=50: expected one of imbalance_ratios"),
        'fig1_unknown_genotype': (dict(fig1_backbones=['genotype:NOPE']), "genotype='NOPE': no such name"),
    }
    tiny = dict(components=['norm'], imbalance_ratios=[10], n_max=20, test_per_class=5, epochs=1, target_params=8000, fig1_backbones=[])
    rd = tmp_path/'runs_tiny_norm'
    with ThreadPoolExecutor(1) as ex:   # the tiny group beside the bad parameters
        res = ex.submit(run_notebook, NB, tmp_path/'tiny_norm.ipynb', {**tiny, 'run_dir': str(rd)})
        check_bad_parameters(NB, tmp_path, cases)
        res = res.result()
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(rd)
    assert set(runs) == {f'bottleneck{n}_r10_s0' for n in ('', '-gn', '-ln', '-in')}, set(runs)
    assert all(r.completed and r.params['arch_kw']['norm'] in ('bn', 'gn', 'ln', 'in') for r in runs.values())

def test_bad_names_in_process():
    "The notebook's validation helpers name the parameter, the value and what is allowed (no kernel needed)."
    for call, msg in [(lambda: component_groups(['activation'], activations=['relu', 'swish']), "activations='swish': expected one of"),
                      (lambda: component_groups(['norm'], norms=['bn', 'batchnorm']), "norms='batchnorm': expected one of"),
                      (lambda: component_groups(['conv'], base_block='resnext'), "base_block='resnext': expected one of"),
                      (lambda: component_net(10, block='lt_agg', position='middle'), "position='middle': expected one of")]:
        with pytest.raises(ValueError, match=msg): call()

def test_paper_configs_name_notebook_parameters():
    "The paper-scale configs set only parameters the notebook has, with valid group names."
    params = papermill.inspect_notebook(str(NBS/NB))
    for cfg in ('components_cifar10lt.yaml', 'components_cifar100lt.yaml'):
        c = yaml.safe_load((ROOT/'configs'/cfg).read_text())
        assert set(c) <= set(params), set(c) - set(params)
        groups = component_groups(c['components'], c['base_block'], c['activations'], c['norms'])
        assert len({variant_name(**kw) for g in groups.values() for kw in g.values()}) == 22
        assert c['blocks'] == 5 and c['epochs'] == 200 and c['imbalance_ratios'] == [50, 100] and c['target_params'] is None
        assert c['width'] is None and c['n_max'] is None and c['seeds'] == [0, 1, 2]
        # Fig. 1 is CIFAR-10-LT's: its architectures at ratio 100, ResNet-32 among them (the claim's reference)
        if c['dataset'] == 'cifar10':
            assert c['fig1_ratio'] in c['imbalance_ratios'] and 'resnet32' in c['fig1_backbones'] and len(c['fig1_backbones']) == 4
            assert [backbone(b, 10).arch for b in c['fig1_backbones']] == ['resnet32'] + ['genotype_net'] * 3
        else: assert c['fig1_backbones'] == []
        # the whole per-class pool (CIFAR-10: 5,000, CIFAR-100: 500 per class) realizes both ratios exactly
        n_max, C = (5000, 10) if c['dataset'] == 'cifar10' else (500, 100)
        assert all(realized_ratio(lt_counts(n_max, C, r)) == r for r in c['imbalance_ratios'])

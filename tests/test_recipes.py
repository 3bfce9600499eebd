"""The recipes (nbs/13_recipes.ipynb): every backbone with every method that changes the network or a stage, and every
method at all on one backbone, trains (the notebook's default runs its whole grid); the recipe path reproduces
the sections' own runs to the last digit, and a bad genotype or pair fails before any run directory is written."""
import json
import pytest
import torch
from conftest import check_bad_parameters, run_notebook, runs_in
from lt_workbook.data import load_dataset, LTDataset
from lt_workbook.training import METRIC_KEYS, TrainConfig, method_config, train_run
from lt_workbook.imbnas import arch_str
from lt_workbook.recipes import backbone, check_grid, run_recipe, recipe_config
from lt_workbook.reslt import ResLTSetting, reslt_run
from lt_workbook.ccsam import ccsam_run

NB = '13_recipes.ipynb'
BACKBONES = ['resnet32', 'block:lt_hier', 'genotype:DARTS_V2', 'cell:' + arch_str(['nor_conv_3x3', 'skip_connect'] * 3)]
METHODS = ['ce', 'ldam_drw', 'balanced_softmax', 'mixup_crt', 'sam', 'ccsam', 'reslt']
BASE = dict(epochs=1, batch_size=32, lr=0.05, device='cpu')
SMALL = dict(size=20_000, layers=3, cells_per_stage=1, blocks=1)   # every backbone but ResNet-32 fitted to 20k weights

@pytest.fixture(scope='module')
def tiny():
    "The embedded digits at ratio 5, 20 images in the head class; every 20th test image."
    d = load_dataset('mnist5k', imbalance_ratio=5, n_max=20)
    return LTDataset(d.name, d.train, d.test.subset(torch.arange(0, len(d.test), 20)), d.classes, d.mean, d.std, d.hflip, d.spec)

def same_run(a, b):
    "Two runs with the same numbers to the last digit: final metrics, per-class accuracy and every logged training loss."
    assert a.path != b.path and a.summary['per_class'] == b.summary['per_class']
    assert [a.summary[k] for k in METRIC_KEYS] == [b.summary[k] for k in METRIC_KEYS]
    assert [e['train_loss'] for e in a.metrics] == [e['train_loss'] for e in b.metrics]

# Methods that change what the network is or what it is trained on: the head (LDAM-DRW's cosine head, ResLT's branches),
# a second stage on the features (cRT, CC-SAM's adversarial features), each with every backbone. CE, balanced softmax
# and SAM change only the loss on the logits or the optimizer's step: with one backbone (any backbone's logits serve).
PER_BACKBONE = ['ldam_drw', 'mixup_crt', 'ccsam', 'reslt']
GRID = [(b, m) for b in BACKBONES for m in PER_BACKBONE] + [(BACKBONES[1], m) for m in METHODS if m not in PER_BACKBONE]

def test_grid_covers_every_backbone_and_method():
    assert {b for b, _ in GRID} == set(BACKBONES) and {m for _, m in GRID} == set(METHODS) and len(set(GRID)) == len(GRID)

@pytest.mark.parametrize('name,method', GRID)
def test_backbone_and_method_pairs_train(tiny, tmp_path, name, method):
    bb = backbone(name, tiny.num_classes, **SMALL)
    over = {'second_stage_kw': {'epochs': 1}} if method in ('mixup_crt', 'ccsam') else None
    runs = run_recipe(tiny, bb, method, BASE, overrides=over, run_dir=tmp_path)
    final = runs[-1]
    assert final.summary['status'] == 'completed' and len(final.summary['per_class']) == tiny.num_classes
    params = json.loads((final.path/'params.json').read_text())
    assert params['backbone'] == name and params['method'] == method   # params.json names both parts
    assert len(runs) == (2 if method in ('mixup_crt', 'ccsam') else 1)

def test_ldam_drw_recipe_reproduces_01(tiny, tmp_path):
    "01's run: `method_config('ldam_drw', **base)` through `train_run`, as its experiment cell does."
    base = dict(BASE, epochs=2, warmup_epochs=1, schedule='cosine', eval_every=1)
    ours = train_run(tiny, method_config('ldam_drw', **base), '01_training', 'ldam_drw', run_dir=tmp_path/'01')
    recipe, = run_recipe(tiny, backbone('resnet32'), 'ldam_drw', base, run_dir=tmp_path/'13')
    same_run(ours, recipe)

def test_reslt_recipe_reproduces_06(tiny, tmp_path):
    "06's run: `reslt_run` on the config of the backbone (here ResNet-32) with ResLT's default setting."
    cfg = TrainConfig(**BASE, arch='resnet32')
    ours = reslt_run(tiny, cfg, ResLTSetting(), '06_reslt_branches', 'reslt', run_dir=tmp_path/'06')
    recipe, = run_recipe(tiny, backbone('resnet32'), 'reslt', BASE, run_dir=tmp_path/'13')
    same_run(ours, recipe)

def test_ccsam_recipe_reproduces_07(tiny, tmp_path):
    "07's runs: `ccsam_run` on `method_config('ccsam', ...)` (stage 1 with CC-SAM's step, then stage 2 on adversarial features)."
    stage2 = dict(second_stage_kw=dict(epochs=1))
    ours = ccsam_run(tiny, method_config('ccsam', **BASE, **stage2), '07_ccsam_landscapes', 'ccsam', run_dir=tmp_path/'07')
    recipe = run_recipe(tiny, backbone('resnet32'), 'ccsam', BASE, overrides=stage2, run_dir=tmp_path/'13')
    assert [r.params['method'] for r in recipe] == ['ccsam_stage1', 'ccsam']
    for a, b in zip(ours, recipe): same_run(a, b)

def test_bad_genotypes_and_pairs_fail_before_any_run(tiny, tmp_path):
    bad = [(['genotype:NOT_A_CELL'], ['ce']), (['genotype:{"normal": [["conv_9x9", 0]]}'], ['ce']),
           ([f'genotype:{tmp_path}/missing.json'], ['ce']), (['resnet32'], ['reslt', 'mixup_typo']),
           (['resnet32'], ['ce', 'ccsam'])]
    for backbones, methods in bad:
        with pytest.raises(ValueError) as e:
            check_grid(backbones, methods, tiny.num_classes, BASE, head='etf' if 'ccsam' in methods else None)
        print(e.value)
    with pytest.raises(ValueError, match='reslt'):   # ResLT with mixup: named both parts
        recipe_config(backbone('resnet32'), 'mixup', BASE, head='reslt')
    assert not any(tmp_path.rglob('params.json'))

def test_load_model_rebuilds_a_recipe_network_in_a_fresh_process(tiny, tmp_path):
    "`load_model` needs only the run directory: in a new process (no section imported yet) it finds the network's module, loads the weights only, and predicts as the trained model does."
    import subprocess, sys
    run, = run_recipe(tiny, backbone('genotype:DARTS_V2', tiny.num_classes, **SMALL), 'reslt', BASE, run_dir=tmp_path)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path/'x.pt')
    with torch.no_grad(): expected = run.model.eval()(x)
    code = ("import sys, torch; from lt_workbook.training import load_model; assert 'lt_workbook.reslt' not in sys.modules; "
            f"m = load_model(sys.argv[1]); torch.save(m(torch.load(sys.argv[2])).detach(), sys.argv[3])")
    res = subprocess.run([sys.executable, '-c', code, str(run.path), str(tmp_path/'x.pt'), str(tmp_path/'y.pt')],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert torch.equal(torch.load(tmp_path/'y.pt'), expected)


def test_default_run(runs_root, tmp_path):
    "The notebook's default grid: every backbone x method trained (both stages where there are two), the tables and figures drawn."
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/'13_recipes')
    finals = [r for n, r in runs.items() if not n.endswith('_stage1')]
    assert len(finals) == 3 * 6 and all(r.completed for r in runs.values())
    assert {(r.params['backbone'], r.params['method']) for r in finals} == {
        (b, m) for b in ('block:basic', 'genotype:DARTS_V2', 'genotype:LTDARTS_MNIST5K_R100')
        for m in ('ce', 'ldam_drw', 'balanced_softmax', 'mixup_crt', 'reslt', 'ccsam')}
    nb = json.loads((tmp_path/'out.ipynb').read_text())
    html = ''.join(''.join(o['data']['text/html']) for c in nb['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {}))
    for title in ('Few-shot accuracy (%) by backbone x method', 'Overall accuracy (%) by backbone x method',
                  'Rank of each method per backbone', 'the searched cell beats the hand', 'Table 3'):
        assert title in html, title
    assert json.loads((runs_root/'13_recipes'/'claims.json').read_text())

def test_bad_parameters(tmp_path):
    "Every bad grid fails before any run directory: an unknown method, a malformed genotype, an impossible pair, bad numbers."
    bad = {'method': (dict(methods=['ce', 'cutmix']), "method='cutmix'"),
           'genotype': (dict(backbones=['genotype:{"normal": 3}']), 'genotype='),
           'pair': (dict(methods=['ccsam'], head='etf'), "step='ccsam'"),
           'reslt_mixup': (dict(methods=['mixup'], head='reslt'), 'ResLT with mixup'),
           'epochs': (dict(epochs=0), 'epochs=0'),
           'method_kw': (dict(method_kw={'sam': {'step_kw': {'rho': 0.05}}}), "method_kw='sam'")}
    check_bad_parameters(NB, tmp_path, bad)

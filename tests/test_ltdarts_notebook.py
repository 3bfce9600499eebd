"End-to-end runs of nbs/04_ltdarts_search.ipynb (the main job) with papermill: defaults, a config file, resume, bad input."
import json, subprocess, sys, time
from pathlib import Path
import yaml
from conftest import run_notebook, start_notebook, kill_after_epochs, runs_in, NBS, ROOT
from lt_workbook.darts import check_genotype, OPS

NB = '04_ltdarts_search.ipynb'
TINY = dict(search_epochs=3, layers=3, init_channels=4, n_max=60, hessian_every=0, retrain_methods=[], ablations=[],
)

def test_default_run(runs_root, tmp_path):
    "The README's main job: search (ETF and linear), genotype.json, per-epoch records, the retrained cell, the figures."
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/'04_ltdarts_search')
    main = runs['search_lt_etf']
    s = main.summary
    assert s['status'] == 'completed' and main.params['dataset'] == 'mnist5k' and main.params['classifier'] == 'etf'
    g = json.loads((main.path/'genotype.json').read_text())
    assert g == s['genotype'] and check_genotype(g) and all(op != 'none' for op, _ in g['normal'] + g['reduce'])
    ev = main.metrics
    assert len(ev) == main.params['epochs'] and all({'acc', 'many', 'medium', 'few', 'alphas', 'genotype'} <= set(e) for e in ev)
    assert all(abs(sum(row) - 1) < 1e-4 for row in ev[-1]['alphas']['normal'])          # softmax per edge
    assert any('hessian_max_eig' in e for e in ev) and 'cls_norms' in ev[-1]
    assert runs['search_lt_linear'].completed
    retrain = runs['retrain_lt_etf_ce']
    assert retrain.completed and retrain.params['arch'] == 'genotype_net' and retrain.params['arch_kw']['genotype'] == g
    assert all(retrain.summary[k] is not None for k in ('acc', 'many', 'medium', 'few'))
    nb = json.loads((tmp_path/'out.ipynb').read_text())
    html = ''.join(''.join(o['data']['text/html']) for c in nb['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {}))
    for title in ('Supernet test accuracy', 'softmax(alpha) per edge', 'Found normal cell', 'Largest eigenvalue', 'Retrained'):
        assert title in html, title

def test_config_file_and_bad_parameters(tmp_path):
    "`-f` with the Table 6 ablation preset (made tiny) runs every variant; bad parameters fail before any run directory."
    ablation = yaml.safe_load((ROOT/'configs'/'ltdarts_ablation.yaml').read_text())
    cfg = tmp_path/'ablation_tiny.yaml'
    cfg.write_text(yaml.safe_dump({**ablation, **TINY, 'ablations': ablation['ablations'], 'dataset': 'mnist5k', 'data_root': None,
                                   'search_epochs': 1, 'stem_stride': 2, 'batch_size': 32, 'run_dir': str(tmp_path/'ablation')}))
    bad = {'unknown_op': (dict(ops=['sep_conv_3x3', 'conv_9x9']), "ops='conv_9x9'"),
           'bad_order': (dict(order=3), 'order=3')}
    results = {'config': run_notebook(NB, tmp_path/'ablation.ipynb', files=[cfg])}
    for name, (params, _) in bad.items():   # one at a time: kernels starting beside a search can miss their start timeout
        results[name] = run_notebook(NB, tmp_path/f'{name}.ipynb', {**params, 'run_dir': str(tmp_path/name)})
    assert results['config'].returncode == 0, results['config'].stdout[-3000:]
    runs = runs_in(tmp_path/'ablation')
    assert {'search_lt_etf', 'search_lt_linear', 'search_darts_linear'} <= set(runs)
    assert runs['search_darts_linear'].params['arch_kw']['primitives'][-1] == 'dil_conv_5x5'
    for name, (_, msg) in bad.items():
        assert results[name].returncode != 0 and msg in results[name].stdout, (name, results[name].stdout[-2000:])
        assert not (tmp_path/name).exists(), name

def test_resume_after_kill_gives_the_same_genotype(tmp_path):
    "Kill the search in its second epoch, re-run with the same run_dir: same per-epoch records and genotype as uninterrupted."
    full = run_notebook(NB, tmp_path/'full.ipynb', {**TINY, 'run_dir': str(tmp_path/'full')})
    assert full.returncode == 0, full.stdout[-3000:]
    killed = tmp_path/'killed'
    proc = start_notebook(NB, tmp_path/'killed.ipynb', {**TINY, 'run_dir': str(killed)})
    kill_after_epochs(proc, killed, 'search_lt_etf-*/metrics.jsonl', 1, delay=1.0)   # 1 s into epoch 2
    run = runs_in(killed)['search_lt_etf']
    assert run.summary is None and run.load_checkpoint()['epoch'] >= 1
    resumed = run_notebook(NB, tmp_path/'resumed.ipynb', {**TINY, 'run_dir': str(killed)})
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert 'resuming from epoch' in (tmp_path/'resumed.ipynb').read_text()
    ref = runs_in(tmp_path/'full')['search_lt_etf']
    strip = lambda evs: [{k: v for k, v in e.items() if k not in ('time',)} for e in evs]
    assert strip(run.metrics) == strip(ref.metrics)
    assert run.summary['genotype'] == ref.summary['genotype']

"End-to-end runs of nbs/04_ltdarts_search.ipynb (the main job) with papermill: defaults, a config file, resume, bad input."
import json, re, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import yaml
from conftest import check_bad_parameters, run_notebook, start_notebook, kill_after_epochs, runs_in, NBS, ROOT
from lt_workbook.darts import check_genotype, OPS, GENOTYPES, ltdarts_retrain, resolve_genotype
from lt_workbook.data import load_dataset, train_val_split, realized_ratio
import pytest, torch

NB = '04_ltdarts_search.ipynb'
TINY = dict(search_epochs=2, layers=3, init_channels=4, imbalance_ratio=10.0, n_max=61, test_per_class=20, hessian_every=0, retrain_methods=[],
            ablations=[], snapshot_epochs=[], compare_archs=[])   # n_max >= 2 * ratio: every class keeps >= 1 image on each side of the search's split

def test_default_run(runs_root, tmp_path):
    """The README's main job: search (ETF and linear), genotype.json, per-epoch records, the retrained cell, the figures;
    run as `make run` runs it, the terminal shows each search's progress as it goes."""
    res = run_notebook(NB, tmp_path/'out.ipynb', log_output=True)
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/'04_ltdarts_search')
    main = runs['search_lt_etf']
    for run in (main, runs['search_lt_linear'], runs['retrain_lt_etf_ce']):   # text bars: the run's name, epochs done of all
        assert re.search(rf"{run.name}: +100%\S* +{run.params['epochs']}/{run.params['epochs']} ", res.stdout), res.stdout[-3000:]
    s = main.summary
    assert s['status'] == 'completed' and main.params['dataset'] == 'mnist5k' and main.params['classifier'] == 'etf'
    g = json.loads((main.path/'genotype.json').read_text())
    assert g == s['genotype'] and check_genotype(g) and all(op != 'none' for op, _ in g['normal'] + g['reduce'])
    ev = main.metrics
    assert len(ev) == main.params['epochs'] and all({'acc', 'many', 'medium', 'few', 'alphas', 'genotype'} <= set(e) for e in ev)
    assert all(abs(sum(row) - 1) < 1e-4 for row in ev[-1]['alphas']['normal'])          # softmax per edge
    assert any('hessian_max_eig' in e for e in ev) and 'cls_norms' in ev[-1]
    assert runs['search_lt_linear'].completed and runs['search_lt_linear_nc'].completed   # twin = main control, linear = third arm
    assert main.params['method'] == 'ltdarts_search_lt_etf' and runs['search_lt_linear_nc'].params['method'] == 'ltdarts_search_lt_linear_nc'
    # the search trains its weights on one half: the recorded ratio is that half's max/min (item 1)
    p = main.params
    data = load_dataset(p['dataset'], 100.0, n_max=p['n_max'], seed=0)
    tr_idx, va_idx = train_val_split(data.train.labels, val_fraction=1 - p['train_portion'], seed=0)
    half = torch.bincount(data.train.labels[tr_idx], minlength=10).tolist()
    assert p['imbalance_ratio'] == realized_ratio(half)
    # Hessian w.r.t. alpha: convergence and residual recorded, unconverged epochs listed in the summary (item 13)
    hess = [e for e in ev if 'hessian_max_eig' in e]
    assert hess and all('hessian_converged' in e and 'hessian_residual' in e for e in hess)
    assert s['hessian_unconverged'] == [e['epoch'] for e in hess if not e['hessian_converged']]
    retrain = runs['retrain_lt_etf_ce']
    assert retrain.completed and retrain.params['arch'] == 'genotype_net' and retrain.params['arch_kw']['genotype'] == g
    assert retrain.params['method'] == 'lt_etf+ce' and retrain.params['imbalance_ratio'] == realized_ratio(data.counts.tolist())
    assert all(retrain.summary[k] is not None for k in ('acc', 'many', 'medium', 'few'))
    assert retrain.params['arch_kw']['stem_stride'] == 2   # the CPU default retrains at half resolution
    # Fig. 8a-b's snapshots: the cells of search epochs 1 and 3 of each search, each distinct cell trained once; the
    # ETF search's last cell is the retrained one above (no run of its own); Table 2's backbones at the cell's budget
    snaps = {n for n in runs if re.fullmatch(r'retrain_lt_(etf|linear)_e[13]_ce', n)}   # `snapshot_classifiers`: etf, linear
    assert 'retrain_lt_etf_e3_ce' not in snaps and any(n.endswith('_e1_ce') for n in snaps), sorted(runs)
    assert not any(n.startswith('retrain_lt_linear_nc_e') for n in runs)
    assert len(snaps) == len({json.dumps(runs[n].params['arch_kw']['genotype'], sort_keys=True) for n in snaps})
    for b, block in (('block_basic_ce', 'basic'), ('block_aggregated_ce', 'aggregated'), ('block_hierarchical_ce', 'hierarchical')):
        assert runs[b].completed and runs[b].params['arch_kw']['block'] == block
        assert abs(runs[b].summary['params'] - retrain.summary['params']) < 0.15 * retrain.summary['params']   # equal budgets
    # issue 19: the found cell, taken from the search's run directory alone, retrains through `ltdarts_retrain` (here with a
    # method of two stages), and through the notebook with `genotype` set to that directory: no search, and with the
    # notebook's retraining settings the very run the search mode made (same parameters: loaded, not trained again).
    # (The recipe path, `backbone('genotype:...')`, reads the cell with the same `resolve_genotype`: tests/test_recipes.py.)
    assert resolve_genotype(main.path) == resolve_genotype(str(main.path/'genotype.json')) == g
    t = time.time()
    fresh = ltdarts_retrain(data, str(main.path), 'crt', 0, 10_000, 2, dict(epochs=1, batch_size=128, second_stage_kw=dict(epochs=1)),
                            run_dir=tmp_path/'retrain', stem_stride=2)
    assert list(fresh) == ['lt_etf cell + crt (stage 1)', 'lt_etf cell + crt'] and all(r.completed for r in fresh.values())
    stage1, final = fresh.values()
    assert stage1.params['arch_kw']['genotype'] == g and stage1.params['method'] == 'lt_etf+crt_stage1'
    assert final.params['method'] == 'lt_etf+crt' and final.params['init_from'] == str(stage1.checkpoint_file)
    claims = (runs_root/'04_ltdarts_search'/'claims.json').read_text()
    res = run_notebook(NB, tmp_path/'given.ipynb', dict(genotype=str(main.path)), tests=False)
    assert res.returncode == 0, res.stdout[-3000:]
    out = (tmp_path/'given.ipynb').read_text()
    assert 'genotype given (lt_etf): no search' in out and f'{retrain.name}: already completed' in out
    assert runs_in(runs_root/'04_ltdarts_search').keys() == runs.keys() and 'Given normal cell' in out
    assert (runs_root/'04_ltdarts_search'/'claims.json').read_text() == claims   # the ledger keeps the search mode's claims
    print(f'retrain from the run directory: {time.time() - t:.1f} s')
    nb = json.loads((tmp_path/'out.ipynb').read_text())
    html = ''.join(''.join(o['data']['text/html']) for c in nb['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {}))
    for title in ('supernet test accuracy', 'softmax(alpha) per edge', 'Found normal cell', 'largest Hessian eigenvalue', 'Retrained',
                  'class-vector norms during the search', 'pairwise angles between class vectors after the search',
                  'Fig. 8a-b: search and test', 'Fig. 2 (a, c', 'Fig. 4: the last cell of each search'):
        assert title in html, title
    # the Reading is a computed claims table (item 12), with the paper's locations and the right authors
    reading = [c for c in nb['cells'] if c['cell_type'] == 'code' and 'claims_table(claims)' in ''.join(c['source'])]
    assert len(reading) == 1
    table = ''.join(''.join(o.get('data', {}).get('text/html', '')) for o in reading[0]['outputs'])
    for where in ('Fig. 8c', 'Fig. 8a-b (search)', 'Fig. 8a-b (test)', 'Fig. 9a', 'Table 2', 'Fig. 2', 'Table 6', 'Pan, Sun, Gong'):
        assert where in table, where
    md = ' '.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    assert 'Fan et al' not in md and 'Deviations from the paper' in md

def test_config_file_and_bad_parameters(tmp_path):
    "`-f` with the Table 6 ablation preset (made tiny) runs every variant; bad parameters fail before any run directory."
    ablation = yaml.safe_load((ROOT/'configs'/'ltdarts_ablation.yaml').read_text())
    cfg = tmp_path/'ablation_tiny.yaml'
    cfg.write_text(yaml.safe_dump({**ablation, **TINY, 'ablations': ablation['ablations'], 'dataset': 'mnist5k', 'data_root': None,
                                   'search_epochs': 1, 'stem_stride': 2, 'batch_size': 32, 'run_dir': str(tmp_path/'ablation'),
                                   'balanced_search': ['linear_nc'], 'seeds': [0]}))
    unfinished = tmp_path/'search_lt_etf-00000000'   # a search run directory without its summary (killed, or still running)
    unfinished.mkdir(); (unfinished/'params.json').write_text(json.dumps(dict(method='ltdarts_search_lt_etf')))
    bad = {'unknown_op': (dict(ops=['sep_conv_3x3', 'conv_9x9']), "ops='conv_9x9'"),
           'bad_order': (dict(order=3), 'order=3'),
           'ldam_raw_logits': (dict(weight_loss='ldam', classifier='etf'), "needs cosine logits"),   # item 2
           'clamped_profile': (dict(n_max=50, imbalance_ratio=100.0), 'n_max'),
           'snapshot_past_end': (dict(snapshot_epochs=[1, 5]), 'snapshot_epochs: 5 is not a search epoch'),          # Fig. 8's snapshots (issue 27)
           'compare_block': (dict(compare_archs=['block:se2']), "compare_archs='block:se2'"),
           # a malformed genotype (issue 19): unknown name, bad JSON, no such file, a run that has not finished, an operation
           # not in OPS, an edge from a node that does not exist yet
           'genotype_name': (dict(genotype='DARTS_V3'), "genotype='DARTS_V3': no such name, file or directory"),
           'genotype_json': (dict(genotype='{"normal": [['), 'not valid JSON'),
           'genotype_file': (dict(genotype=str(tmp_path/'missing'/'genotype.json')), 'no such name, file or directory'),
           'genotype_run': (dict(genotype=str(unfinished)), 'has not completed'),
           'genotype_op': (dict(genotype=json.dumps(dict(GENOTYPES['DARTS_V2'], normal=[['conv_9x9', 0], ['skip_connect', 1]]))),
                           "operation='conv_9x9'"),
           'genotype_edges': (dict(genotype=json.dumps(dict(GENOTYPES['DARTS_V2'], reduce=[['skip_connect', 0], ['skip_connect', 2]]))),
                              'node 0 cannot take input 2')}
    with ThreadPoolExecutor(1) as ex:   # the preset's searches beside the bad parameters
        config = ex.submit(run_notebook, NB, tmp_path/'ablation.ipynb', files=[cfg], tests=False)
        check_bad_parameters(NB, tmp_path, bad, end_to_end='clamped_profile')
        config = config.result()
    assert config.returncode == 0, config.stdout[-3000:]
    runs = runs_in(tmp_path/'ablation')
    assert {'search_lt_etf', 'search_lt_linear', 'search_lt_linear_nc', 'search_darts_linear', 'search_lt_linear_nc_balanced'} <= set(runs)
    assert runs['search_lt_linear_nc_balanced'].params['imbalance_ratio'] == 1.0
    assert runs['search_darts_linear'].params['arch_kw']['primitives'][-1] == 'dil_conv_5x5'

def test_resume_after_kill_gives_the_same_genotype(tmp_path):
    "Kill the search in its second (last) epoch, re-run with the same run_dir: same per-epoch records and genotype as uninterrupted."
    full = run_notebook(NB, tmp_path/'full.ipynb', {**TINY, 'run_dir': str(tmp_path/'full')}, tests=False)
    assert full.returncode == 0, full.stdout[-3000:]
    killed = tmp_path/'killed'
    proc = start_notebook(NB, tmp_path/'killed.ipynb', {**TINY, 'run_dir': str(killed)}, tests=False)
    kill_after_epochs(proc, killed, 'search_lt_etf-*/metrics.jsonl', 1, delay=1.0)   # 1 s into epoch 2
    run = runs_in(killed)['search_lt_etf']
    assert run.summary is None and run.load_checkpoint()['epoch'] >= 1
    resumed = run_notebook(NB, tmp_path/'resumed.ipynb', {**TINY, 'run_dir': str(killed)}, tests=False)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert 'resuming from epoch' in (tmp_path/'resumed.ipynb').read_text()
    ref = runs_in(tmp_path/'full')['search_lt_etf']
    # TINY's profile (61 head images at ratio 10) splits unevenly: the weight half's ratio differs from the whole set's
    data = load_dataset('mnist5k', 10.0, n_max=61, seed=0)
    tr_idx, _ = train_val_split(data.train.labels, val_fraction=0.5, seed=0)
    half = realized_ratio(torch.bincount(data.train.labels[tr_idx], minlength=10).tolist())
    assert half != data.imbalance_ratio and ref.params['imbalance_ratio'] == half == run.params['imbalance_ratio']
    assert abs(ref.params['val_imbalance_ratio'] - data.imbalance_ratio) < 5
    strip = lambda evs: [{k: v for k, v in e.items() if k not in ('time',)} for e in evs]
    assert strip(run.metrics) == strip(ref.metrics)
    assert run.summary['genotype'] == ref.summary['genotype']

def tiny_search(tmp_path, name, batched=True, device='cpu', epochs=2, **architect):
    "A 3-cell search in DARTS' space on 40-image-head mnist5k, for comparing implementations of the same search."
    from lt_workbook.darts import search_halves, search_config, ltdarts_search, SEARCH_SPACES
    train, val = search_halves(load_dataset('mnist5k', 10.0, n_max=40, seed=0))
    cfg = search_config('eq', SEARCH_SPACES['darts'], classifier='linear', supernet=dict(C=4, layers=3, stem_stride=2, batched=batched),
                        epochs=epochs, batch_size=32, device=device, channels_last=True)
    return ltdarts_search(train, val, cfg, architect=dict(lr=3e-2, batch_size=32, **architect), name=name, run_dir=tmp_path)

def assert_same_search(a, b, tol=5e-3):
    """Two searches' records: the same genotype every epoch, softmax(alpha) and training losses within `tol`. (One step's
    gradients agree to 1e-5, notebook 04; Adam's early steps move an alpha by about its lr whatever the gradient's size,
    so float32 rounding in a near-zero gradient can change a step's sign: after 2 epochs at arch lr 3e-2 the softmax
    weights, about 1/8 each, differ by up to 2e-3 between the two implementations, depending on the thread count.)"""
    assert [e['genotype'] for e in a] == [e['genotype'] for e in b]
    for ea, eb in zip(a, b):
        for kind in ('normal', 'reduce'):
            diff = (torch.tensor(ea['alphas'][kind]) - torch.tensor(eb['alphas'][kind])).abs().max().item()
            assert diff < tol, (kind, diff)
        assert abs(ea['train_loss'] - eb['train_loss']) < tol

def test_batched_search_matches_per_edge(tmp_path, capsys):
    """Issue 21: the batched supernet searches as the per-edge one (same seed: same genotypes, close alphas). The batched
    run asks for CUDA graphs on the CPU: it says why it runs eagerly, and its records are those of the plain step."""
    per_edge = tiny_search(tmp_path, 'per_edge', batched=False).metrics
    batched = tiny_search(tmp_path, 'batched', cuda_graph=True).metrics
    assert_same_search(per_edge, batched)
    assert 'cuda_graph: not on a CUDA device (cpu); the search steps run eagerly' in capsys.readouterr().err

@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device (none on this machine)")
def test_cuda_graph_search_matches_eager(tmp_path, capsys, monkeypatch):
    "On CUDA: the search replayed from CUDA graphs records what the eager search records, and it did replay."
    from lt_workbook.training import CudaGraphStep
    replays, replay = [], CudaGraphStep._replay
    monkeypatch.setattr(CudaGraphStep, '_replay', lambda self: replays.append(1) or replay(self))
    eager = tiny_search(tmp_path, 'eager', device='cuda', epochs=3).metrics
    graphed = tiny_search(tmp_path, 'graphed', device='cuda', epochs=3, cuda_graph=True).metrics
    assert 'capture failed' not in capsys.readouterr().err and len(replays) > 3
    assert_same_search(eager, graphed)

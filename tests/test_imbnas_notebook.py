"End-to-end runs of nbs/08_imbnas_transfer.ipynb with papermill: the default run's records, and bad parameters."
import json
import numpy as np
import torch
from conftest import run_notebook, runs_in
from lt_workbook.imbnas import cost_signature, is_valid

NB = '08_imbnas_transfer.ipynb'

def test_default_run(runs_root, tmp_path):
    "Rank transfer (tau matrix from the run directories), P0-P3 with costs and searches, P1's frozen backbone, figures."
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/'08_imbnas_transfer')
    # rank transfer: equal-cost valid cells, CE on balanced and CE + DRW on long-tailed data, tau from those runs
    rt = runs['rank_transfer'].summary
    archs, variants = rt['archs'], rt['variants']
    assert variants == ['mnist5k_r1', 'mnist5k_r20'] and len(archs) == 3 and len(set(archs)) == 3
    assert len({cost_signature(a) for a in archs}) == 1 and all(is_valid(a) for a in archs)
    tau = np.array(rt['tau'], dtype=float)
    assert tau.shape == (2, 2) and np.allclose(np.diag(tau), 1) and np.allclose(tau, tau.T)
    rank = {k: r for k, r in runs.items() if k.startswith('rank_mnist5k')}
    assert len(rank) == 6 and all(r.completed for r in rank.values())
    for k, r in rank.items():
        ratio = r.params['imbalance_ratio']
        assert r.params['reweight'] == ('drw' if ratio > 1 else 'none'), k
        v = f'mnist5k_r{ratio:g}'
        assert rt['acc'][v][archs.index(r.params['arch_kw']['arch'])] == r.summary['acc'], k
    # adaptation: one search per procedure (one record per generation), the costs, the retrained cells' metrics
    table = runs['adaptation'].summary['table']
    assert list(table) == ['P0', 'P1', 'P2', 'P3']
    for p, row in table.items():
        search = runs[f'search_{p}']
        s = search.summary
        assert s['status'] == 'completed' and s['best'] == row['cell'] and is_valid(row['cell'])
        assert [e['generation'] for e in search.metrics] == [0, 1] and s['history'][-1]['best_fitness'] == s['fitness']
        assert s['search_time'] > 0 and row['search_time'] == s['search_time']
        assert (row['adapt_time'] == 0) if p == 'P0' else (row['adapt_time'] == runs[f'adapt_{p}'].summary['wall_time'] > 0)
        assert all(row[k] is not None for k in ('acc', 'medium', 'few')), row
    src, p1, p2, p3 = runs['supernet_source'], runs['adapt_P1'], runs['adapt_P2'], runs['adapt_P3']
    assert src.params['imbalance_ratio'] == 1 and p1.params['imbalance_ratio'] == 20
    assert p1.params['freeze_backbone'] and p1.params['reweight'] == 'cb' and p1.params['init_from'] == str(src.checkpoint_file)
    assert p2.params['lr'] == src.params['lr'] / 10 and p2.params['reweight'] == 'drw'
    assert p3.params['init_from'] is None and p3.params['reweight'] == 'drw' and p3.params['epochs'] == src.params['epochs']
    # P1 trained the classifier only: every backbone parameter and buffer is bit-identical to the source supernet's
    before, after = src.load_checkpoint()['model'], p1.load_checkpoint()['model']
    backbone = [k for k in after if not k.startswith('classifier.')]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)
    assert not torch.equal(before['classifier.weight'], after['classifier.weight'])
    out = (tmp_path/'out.ipynb').read_text()
    assert 'cost ratio P3 / P1' in out
    nb = json.loads(out)
    html = ''.join(''.join(o['data']['text/html']) for c in nb['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {}))
    for title in ('Kendall tau between the rankings', 'Test accuracy per architecture', 'Cost of each adaptation procedure',
                  'Table 6', 'Evolutionary search'):
        assert title in html, title

BAD = {   # parameters -> the message the notebook must fail with
    'unknown_procedure': (dict(procedures=['P1', 'P4']), "procedures='P4'"),
    'too_many_children': (dict(population=4, crossover_num=3, mutation_num=3), 'crossover_num + mutation_num = 6'),
}

def test_bad_parameters_fail_before_any_run_dir(tmp_path):
    "Each bad parameter is a clear error from the notebook, and no run directory is written."
    for name, (params, msg) in BAD.items():   # one at a time: kernels starting in parallel on 2 cores time out
        rd = tmp_path/f'runs_{name}'
        res = run_notebook(NB, tmp_path/f'{name}.ipynb', {**params, 'run_dir': str(rd)})
        assert res.returncode != 0 and msg in res.stdout, (name, res.stdout[-2000:])
        assert not rd.exists(), f'{name}: {rd} was written'

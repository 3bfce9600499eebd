"End-to-end runs of nbs/08_imbnas_transfer.ipynb with papermill: the default run's records, the paper-scale presets, bad parameters."
import json
from pathlib import Path
import numpy as np
import torch
import yaml
from conftest import check_bad_parameters, run_notebook, runs_in
from lt_workbook.data import realized_ratio, load_dataset, train_val_split
from lt_workbook.training import TrainConfig, lr_at
from lt_workbook.imbnas import cost_signature, is_valid, step_schedule, adaptation_config, equal_cost_archs

NB = '08_imbnas_transfer.ipynb'
ROOT = Path(__file__).resolve().parents[1]

def test_default_run(runs_root, tmp_path):
    "Rank transfer (tau + diagnosis from the run directories), P0-P3 with costs and searches, schedules, ratios, methods, claims."
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(runs_root/'08_imbnas_transfer')
    # every run records a descriptive method
    assert all(r.params.get('method', '').startswith('imbnas_') for r in runs.values()), {k: r.params.get('method') for k, r in runs.items()}
    # rank transfer: equal-cost valid cells, CE on balanced and CE + DRW on long-tailed data, tau from those runs
    rt = runs['rank_transfer_s0'].summary
    archs, variants = rt['archs'], rt['variants']
    assert variants == ['mnist5k_r1', 'mnist5k_r20'] and len(archs) == 3 and len(set(archs)) == 3
    assert len({cost_signature(a) for a in archs}) == 1 and all(is_valid(a) for a in archs)
    tau = np.array(rt['tau'], dtype=float)
    assert tau.shape == (2, 2) and np.allclose(np.diag(tau), 1) and np.allclose(tau, tau.T)
    assert 'only 3 architectures' in rt['agreement']['mnist5k_r1|mnist5k_r20']['degenerate']   # 3 cells: degenerate, and said
    rank = {k: r for k, r in runs.items() if k.startswith('rank_mnist5k')}
    assert len(rank) == 6 and all(r.completed for r in rank.values())
    for k, r in rank.items():
        p = r.params
        drw = p['imbalance_ratio'] > 1
        assert p['reweight'] == ('drw' if drw else 'none') and p['method'] == ('imbnas_subnet_drw' if drw else 'imbnas_subnet_ce'), k
        # the sub-network schedule scaled to 3 epochs: 160/200 and 180/200 of 3 -> 2 and 3, DRW from 2, x0.01 steps
        assert p['schedule'] == 'multistep' and p['milestones'] == [2, 3] and p['drw_epoch'] == 2 and p['lr_decay'] == 0.01, k
        v = 'mnist5k_r1' if not drw else 'mnist5k_r20'
        assert rt['accs'][v][archs.index(r.params['arch_kw']['arch'])] == r.summary['acc'], k
    # adaptation: one search per procedure (one record per generation), the costs, the retrained cells' metrics
    table = runs['adaptation_r20_s0'].summary['table']
    assert list(table) == ['P0', 'P1', 'P2', 'P3', 'P2_ft1', 'P3_ce']   # P0-P3, Table 4's P2 frozen after epoch 1, Table 5's CE P3
    for p, row in table.items():
        search = runs['search_P0_s0' if p == 'P0' else f'search_{p}_r20_s0']
        s = search.summary
        assert s['status'] == 'completed' and s['best'] == row['cell'] and is_valid(row['cell'])
        assert search.params['method'] == f"imbnas_search_{p.split('_')[0]}"
        assert [e['generation'] for e in search.metrics] == [0, 1] and s['history'][-1]['best_fitness'] == s['fitness']
        assert s['search_time'] > 0 and row['search_time'] == s['search_time']
        assert (row['adapt_time'] == 0) if p == 'P0' else (row['adapt_time'] == runs[f'adapt_{p}_r20_s0'].summary['wall_time'] > 0)
        assert all(row[k] is not None for k in ('acc', 'medium'))
        if '_' in p: continue
        # the procedure's record: a run of method imbnas_<P> whose metrics are its retrained sub-net's (what Tables 3, 6 report)
        sub = runs[f'subnet_{p}_r20_s0']
        assert sub.params['method'] == f'imbnas_{p}' and sub.params['imbalance_ratio'] == 150 / 7 and sub.params['dataset'] == 'mnist5k'
        assert all(sub.summary[k] == row[k] for k in ('acc', 'many', 'medium', 'few')) and sub.summary['cell'] == row['cell']
    src, p1, p2, p3 = (runs[k] for k in ('supernet_source_s0', 'adapt_P1_r20_s0', 'adapt_P2_r20_s0', 'adapt_P3_r20_s0'))
    # recorded ratios are those of the images trained on: the source is balanced, the target's search split is not the
    # target's full ratio (150/7 = 21.4) but the split's; P1-P3 and the target search record the same split
    assert src.params['imbalance_ratio'] == 1 and src.params['method'] == 'imbnas_supernet'
    split_ratio = p1.params['imbalance_ratio']
    assert p2.params['imbalance_ratio'] == p3.params['imbalance_ratio'] == runs['search_P1_r20_s0'].params['imbalance_ratio'] == split_ratio
    target = load_dataset('mnist5k', 20, n_max=150)
    tr_idx, _ = train_val_split(target.train.labels, val_fraction=0.2, seed=0)
    split_counts = torch.bincount(target.train.labels[tr_idx], minlength=10).tolist()
    assert split_ratio == realized_ratio(split_counts) != target.imbalance_ratio == 150 / 7, (split_ratio, split_counts)
    for k in [k for k in runs if k.startswith('retrain_')]:
        assert runs[k].params['imbalance_ratio'] == 150 / 7 and runs[k].params['method'] == 'imbnas_retrain'
    assert {p1.params['method'], p2.params['method'], p3.params['method']} == {'imbnas_adapt_P1', 'imbnas_adapt_P2', 'imbnas_adapt_P3'}
    assert p1.params['freeze_backbone'] and p1.params['reweight'] == 'cb' and p1.params['init_from'] == str(src.checkpoint_file)
    # schedules scaled from the paper's: supernet 6 epochs (400/600, 500/600 -> 4, 5; DRW 4 for P3), adaptation 6/3 = 2
    # epochs at lr/10 (milestone and P2's DRW 100/200 -> 1)
    assert src.params['milestones'] == [4, 5] and p3.params['milestones'] == [4, 5] and p3.params['drw_epoch'] == 4
    assert p3.params['init_from'] is None and p3.params['reweight'] == 'drw' and p3.params['epochs'] == src.params['epochs'] == 6
    for p in (p1, p2):
        assert p.params['lr'] == src.params['lr'] / 10 and p.params['epochs'] == 2 and p.params['milestones'] == [1]
        assert p.params['schedule'] == 'multistep' and p.params['lr_decay'] == 0.01
    assert p2.params['reweight'] == 'drw' and p2.params['drw_epoch'] == 1
    # Table 4: P2 with the backbone frozen from epoch 1 of 2 (the paper's 50 and 100 of 200 both scale to it); Table 5: P3 with CE
    ft, ce = runs['adapt_P2_ft1_r20_s0'], runs['adapt_P3_ce_r20_s0']
    assert ft.params['finetune_epochs'] == 1 and 'finetune_epochs' not in p2.params and ft.params['epochs'] == 2
    assert {k: v for k, v in ft.params.items() if k != 'finetune_epochs'} == {k: v for k, v in p2.params.items()}
    assert ce.params['reweight'] == 'none' and ce.params['method'] == 'imbnas_adapt_P3_ce' and ce.params['epochs'] == 6
    # Table 1: four DARTS networks, each on the balanced and the imbalanced version (CE / CE + DRW, the scaled sub-net schedule)
    t1 = runs['table1_s0'].summary['table']
    assert list(t1) == ['A1', 'A2', 'A3', 'A4'] and t1['A3']['macs'] > t1['A4']['macs']
    gap = lambda a, b: abs(np.log(t1[a]['macs'] / t1[b]['macs']))
    assert gap('A1', 'A2') <= min(gap('A1', 'A3'), gap('A2', 'A4'), gap('A3', 'A4'))
    for a, row in t1.items():
        for kind, ratio, rw in (('bal', 1, 'none'), ('imb', 20, 'drw')):
            r = runs[f'table1_{a}_{kind}_s0']
            assert r.params['arch'] == 'genotype_net' and r.params['arch_kw']['genotype'] == row['genotype'] and r.params['reweight'] == rw
            assert r.params['milestones'] == [2, 3] and r.params['n_max'] == 40 and round(r.params['imbalance_ratio']) == ratio
            assert r.summary['acc'] == row[kind]
    claims = json.loads((runs_root/'08_imbnas_transfer'/'claims.json').read_text())['claims']
    assert {c['where'] for c in claims} == {'Table 1', 'Fig. 1', 'Table 3a', 'Table 6', 'Fig. 2', 'Table 4', 'Table 5'}
    # P1 trained the classifier only: every backbone parameter and buffer is bit-identical to the source supernet's
    before, after = src.load_checkpoint()['model'], p1.load_checkpoint()['model']
    backbone = [k for k in after if not k.startswith('classifier.')]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)
    assert not torch.equal(before['classifier.weight'], after['classifier.weight'])
    out = (tmp_path/'out.ipynb').read_text()
    assert 'cost ratio P3 / P1' in out and 'DEGENERATE, only 3 architectures' in out
    nb = json.loads(out)
    html = ''.join(''.join(o['data']['text/html']) for c in nb['cells'] for o in c.get('outputs', []) if 'text/html' in o.get('data', {}))
    for title in ('Kendall tau between the rankings', 'Test accuracy per architecture', 'Cost of each adaptation procedure',
                  'Table 6', 'Evolutionary search', 'Table 1: A1-A4', 'Table 3a: cells found', 'Table 4: P2 with', 'Table 5: cells found'):
        assert title in html, title
    # the Readings are claims tables with verdicts (1 seed: never 'supported')
    for where in ('Table 1', 'Fig. 1', 'Table 3a', 'Table 6', 'Fig. 2', 'Table 4', 'Table 5'):
        assert where in html, where
    assert 'not reproduced' in html and 'supported</td>' not in html

def _lrs(cfg): return [lr_at(cfg, e) for e in range(cfg.epochs)]

def test_paper_scale_presets_follow_sec_4_1(tmp_path):
    "configs/imbnas_*.yaml give the paper's schedules exactly (lr per epoch, re-weighting epoch) through the notebook's functions."
    ad = yaml.safe_load((ROOT/'configs/imbnas_adaptation.yaml').read_text())
    rt = yaml.safe_load((ROOT/'configs/imbnas_rank_transfer.yaml').read_text())
    assert ad['supernet_epochs'] == 600 and ad['adapt_epochs'] is None and ad['adapt_lr'] is None and ad['retrain_epochs'] == 200
    assert ad['lr'] == rt['lr'] == 0.1 and ad['lr_decay'] == rt['lr_decay'] == 0.01 and rt['rank_epochs'] == 200
    assert ad['seeds'] == [0, 1, 2] and ad['generations'] == 20 and ad['population'] == 50 and ad['top_k'] == 10
    t3a, t3b, t1 = (yaml.safe_load((ROOT/f'configs/imbnas_{n}.yaml').read_text()) for n in ('table3a', 'table3b', 'table1'))
    assert (t3a['source_dataset'], t3a['target_dataset'], t3a['target_ratios']) == ('cifar10', 'cifar100', [50, 100, 200, 400])
    assert (t3b['source_dataset'], t3b['target_dataset'], t3b['target_ratios']) == ('cifar100', 'cifar10', [100, 200, 400, 800])
    assert t3a['p2_finetune_epochs'] == [50, 100, 150] and t3a['p3_ce'] and t3a['seeds'] == t3b['seeds'] == t1['seeds'] == [0, 1, 2]
    SKIP = ('source_dataset', 'target_dataset', 'target_ratios', 'p2_finetune_epochs', 'p3_ce')   # the rest: Sec. 4.1 as in the adaptation preset
    assert all({k: c[k] for k in ad if k not in SKIP} ==
               {k: ad[k] for k in ad if k not in SKIP} for c in (t3a, t3b)), 'Sec. 4.1 as the adaptation preset'
    assert (t1['table1_datasets'], t1['table1_ratio'], t1['table1_epochs'], t1['table1_init_channels'], t1['table1_layers']) == (['cifar10', 'cifar100'], 100, 200, 36, 20)
    assert ad['table1_pool'] == rt['table1_pool'] == t3a['table1_pool'] == t3b['table1_pool'] == 0 and t1['procedures'] == [] == t1['rank_datasets']
    assert sorted(rt['cost_ops']) == ['nor_conv_3x3'] * 4 and rt['num_archs'] == len(equal_cost_archs(rt['cost_ops'])) == 135
    sup = TrainConfig(arch='cell_net', arch_kw=dict(arch=None, C=4, N=1), device='cpu', **step_schedule('supernet', ad['supernet_epochs'], ad['lr'], ad['lr_decay']))
    e = np.arange(600)
    assert np.allclose(_lrs(sup), np.where(e < 400, 0.1, np.where(e < 500, 1e-3, 1e-5)), rtol=1e-12, atol=0)
    ck = tmp_path/'ck.pt'; torch.save({'model': {}}, ck)
    p1, p2, p3 = (adaptation_config(p, sup, ck if p != 'P3' else None, ad['adapt_epochs'], ad['adapt_lr']) for p in ('P1', 'P2', 'P3'))
    assert p3.drw_epoch == 400 and p3.reweight == 'drw' and _lrs(p3) == _lrs(sup)
    for p in (p1, p2):
        assert p.epochs == 200 and np.allclose(_lrs(p), np.where(np.arange(200) < 100, 0.01, 1e-4), rtol=1e-12, atol=0)
    assert p1.reweight == 'cb' and p2.reweight == 'drw' and p2.drw_epoch == 100
    sub = step_schedule('subnet', rt['rank_epochs'], rt['lr'], rt['lr_decay'])
    assert sub['milestones'] == (160, 180) and sub['drw_epoch'] == 160 and step_schedule('subnet', ad['retrain_epochs'], 0.1) == {**sub, 'epochs': 200}

BAD = {   # parameters -> the message the notebook must fail with
    'unknown_procedure': (dict(procedures=['P1', 'P4']), "procedures='P4'"),
    'too_many_children': (dict(population=4, crossover_num=3, mutation_num=3), 'crossover_num + mutation_num = 6'),
    'drw_never_starts': (dict(retrain_epochs=2), 'retrain_epochs=2: re-weighting would start at epoch 2'),
    'no_seeds': (dict(seeds=[]), 'seeds=[]'),
    'no_target_ratios': (dict(target_ratios=[]), 'target_ratios=[]'),
    'table1_pool_too_small': (dict(table1_pool=3), 'table1_pool=3'),
    'finetune_past_the_end': (dict(p2_finetune_epochs=[50, 250]), 'p2_finetune_epochs=[50, 250]'),
}

def test_bad_parameters_fail_before_any_run_dir(tmp_path):
    "Each bad parameter is a clear error from the notebook, and no run directory is written."
    check_bad_parameters(NB, tmp_path, BAD)

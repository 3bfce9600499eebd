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
    params = dict(methods=['ce'], crt_epochs=0, epochs=4, eval_every=2, warmup_epochs=1, n_max=100)
    full = run_notebook(NB, tmp_path/'full.ipynb', {**params, 'run_dir': str(tmp_path/'full')})
    assert full.returncode == 0, full.stdout[-3000:]

    killed_dir = tmp_path/'killed'
    proc = start_notebook(NB, tmp_path/'killed.ipynb', {**params, 'run_dir': str(killed_dir)})
    kill_after_epochs(proc, killed_dir, 'ce-*/metrics.jsonl', 2)
    run = runs_in(killed_dir)['ce']
    assert run.summary is None and run.load_checkpoint()['epoch'] >= 2

    resumed = run_notebook(NB, tmp_path/'resumed.ipynb', {**params, 'run_dir': str(killed_dir)})
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
    res = run_notebook(NB, tmp_path/'out.ipynb', params)
    assert res.returncode == 0, res.stdout[-3000:]
    runs = runs_in(tmp_path/'runs')
    assert runs['ce'].summary['status'] == runs['ce_crt'].summary['status'] == 'completed'
    assert runs['ce'].params['dataset'] == 'cifar10' and len(runs['ce'].summary['per_class']) == 10

"""The results explorer (nbs/10_results_explorer.ipynb) with papermill on a runs folder it did not make, and on a missing
one. Its own small set of runs and its widget callbacks are checked by its test cells under nbdev_test."""
from conftest import run_notebook
from lt_workbook.data import load_dataset, write_fake_cifar
from lt_workbook.training import method_config, train_run
from lt_workbook.runner import results_table, seed_summary
from lt_workbook.explorer import paper_vs_ours

NB = '10_results_explorer.ipynb'

def test_explorer_reads_a_runs_folder_and_fills_the_paper_row(tmp_path):
    "A CIFAR-10-LT run at ratio 100 of 01's CE (tiny fake batches) is explored and sits beside LDAM-DRW's Table 2 ERM number."
    write_fake_cifar(tmp_path/'data', 'cifar10', per_class=100, test_per_class=3)   # n_max 100: ratio 100 realizable
    data = load_dataset('cifar10', 100, data_root=tmp_path/'data')
    train_run(data, method_config('ce', epochs=1, batch_size=32, device='cpu'), '01_training', 'ce', run_dir=tmp_path/'runs'/'01_training')
    res = run_notebook(NB, tmp_path/'out.ipynb', {'results_root': str(tmp_path/'runs')})
    assert res.returncode == 0, res.stdout[-3000:]
    assert '1 runs under' in (tmp_path/'out.ipynb').read_text()
    papers = paper_vs_ours(seed_summary(results_table(tmp_path/'runs')))
    row = papers[(papers.section == '01_training') & (papers.method == 'ce')].iloc[0]
    assert row.seeds == 1 and row.ours and row.paper == 70.36 and 'Table 2' in row.reference
    assert (papers.ours != '').sum() == 1

def test_missing_results_root_is_a_clear_error(tmp_path):
    res = run_notebook(NB, tmp_path/'out.ipynb', {'results_root': str(tmp_path/'nowhere')})
    assert res.returncode != 0 and "results_root=" in res.stdout and 'no such folder' in res.stdout, res.stdout[-2000:]

"""The results explorer (nbs/10_results_explorer.ipynb) with papermill: its default run on an empty runs root (it trains
its demonstration set, and says so) and on a runs root it did not make (it opens on those runs); bad results folders
without a kernel; the widget outside a kernel; its stored outputs. Its widget callbacks are checked by its test
cells."""
import json
from pathlib import Path
from conftest import NBS, run_notebook, validation_errors
from lt_workbook.data import load_dataset, write_fake_cifar
from lt_workbook.training import Run, method_config, train_run
from lt_workbook.runner import results_table, seed_summary
from lt_workbook.explorer import DEMO_SECTION, Explorer, paper_vs_ours

NB = '10_results_explorer.ipynb'

def printed(path)->str:
    "What the executed notebook at `path` printed (its stream outputs)."
    cells = json.loads(Path(path).read_text())['cells']
    return ''.join(''.join(o.get('text', '')) for c in cells for o in c.get('outputs', [])
                   if o['output_type'] == 'stream')

def test_default_run(tmp_path, monkeypatch):
    "An empty runs root: the notebook says it trains the demonstration set (how many runs, how long), then explores it."
    monkeypatch.setenv('LT_WORKBOOK_RUNS', str(tmp_path/'runs'))
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    text = printed(tmp_path/'out.ipynb')
    assert f"No completed run under {tmp_path/'runs'}: training the small demonstration set first (8 runs into" in text
    assert 'about a minute on 2 CPU cores' in text and '8 runs under' in text and '8 completed' in text
    assert len(list((tmp_path/'runs'/DEMO_SECTION).glob('*/summary.json'))) == 8

def test_explorer_opens_on_existing_runs_and_fills_the_paper_row(tmp_path, monkeypatch):
    """A runs root holding a CIFAR-10-LT run at ratio 100 of 01's CE (tiny fake batches): the default run explores
    it and trains nothing."""
    write_fake_cifar(tmp_path/'data', 'cifar10', per_class=100, test_per_class=3)   # n_max 100: ratio 100 realizable
    data = load_dataset('cifar10', 100, data_root=tmp_path/'data')
    train_run(data, method_config('ce', epochs=1, batch_size=32, device='cpu'), '01_training', 'ce',
              run_dir=tmp_path/'runs'/'01_training')
    monkeypatch.setenv('LT_WORKBOOK_RUNS', str(tmp_path/'runs'))
    res = run_notebook(NB, tmp_path/'out.ipynb')
    assert res.returncode == 0, res.stdout[-3000:]
    text = printed(tmp_path/'out.ipynb')
    assert '1 runs under' in text and 'training the small demonstration set' not in text
    assert not (tmp_path/'runs'/DEMO_SECTION).exists()
    papers = paper_vs_ours(seed_summary(results_table(tmp_path/'runs')))
    row = papers[(papers.section == '01_training') & (papers.method == 'ce')].iloc[0]
    assert row.seeds == 1 and row.ours and row.paper == 70.36 and 'Table 2' in row.reference
    assert (papers.ours != '').sum() == 1

def test_missing_or_empty_results_root_is_a_clear_error(tmp_path):
    "A results_root that is no folder, or a folder without a run: a message naming it (and the commands making runs)."
    (tmp_path/'empty').mkdir()
    errors = validation_errors(NB, dict(missing={'results_root': str(tmp_path/'nowhere')},
                                        empty={'results_root': str(tmp_path/'empty')},
                                        both={'results_root': str(tmp_path/'empty'), 'demo': True}))
    assert "results_root=" in errors['missing'] and 'no such folder' in errors['missing'], errors
    assert str(tmp_path/'empty') in errors['empty'] and 'holds no run' in errors['empty'], errors
    assert '`make run`' in errors['empty'] and '`lt-workbook run 01`' in errors['empty'], errors
    assert 'one or the other' in errors['both'], errors

def test_widget_outside_a_kernel(tmp_path):
    "Explorer.widget() in a plain Python process (plotly has no default renderer there): the tabs hold the figures."
    for seed in (0, 1):
        run = Run.create(tmp_path/'01_training', f'ce_s{seed}',
                         dict(dataset='mnist5k', imbalance_ratio=10., arch='resnet32', seed=seed, method='ce'))
        run.log(epoch=0, train_loss=1., acc=50.)
        run.finish('completed', acc=50. + seed, many=None, medium=50., few=40., params=1000)
    ex = Explorer(results_table(tmp_path))
    w = ex.widget()
    assert repr(w).startswith('Results explorer')
    bars = ex.tabs['bars'].outputs[0]['data']['application/vnd.plotly.v1+json']
    assert [b['x'] for b in bars['data']] == [['overall', 'medium', 'few']]   # no class above 100 images: no many bars
    ex.filters['seed'].value = ('1',)
    assert ex.header.value == '<b>1 of 2 runs selected</b>, 1 completed'

def test_stored_outputs_read_without_a_kernel():
    "The stored notebook: no progress bar (widget or text), no absolute path, static figures before the widget."
    nb = json.loads((NBS/NB).read_text())
    state = json.dumps(nb['metadata'].get('widgets', {}))
    assert 'ProgressModel' not in state and 'ProgressStyleModel' not in state and '/tmp/' not in state
    outputs = json.dumps([c.get('outputs', []) for c in nb['cells']])
    assert 'it/s]' not in outputs and '/work/' not in outputs and '/tmp/' not in outputs and '/root/' not in outputs
    code = [i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code']
    shown = next(i for i in code if ''.join(nb['cells'][i]['source']).strip() == 'explorer.widget()')
    before = nb['cells'][shown - 1]
    assert before['cell_type'] == 'markdown' and 'adds the filters' in ''.join(before['source'])
    static = nb['cells'][shown - 2]
    figures = [o for o in static['outputs'] if 'application/vnd.plotly.v1+json' in o.get('data', {})]
    assert len(figures) == 4 and all('text/html' in o['data'] for o in figures)   # bars, params, curves, confusion

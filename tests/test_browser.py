"""JupyterLab as a researcher uses it, in a real headless Chromium (Selenium): the results explorer (10) run on a runs
folder prepared here, its widgets drawn, a filter redrawing a figure; the LT-DARTS notebook (04) opened untrusted, as
stored, its figures drawn; no console error. Screenshots go to `$LT_WORKBOOK_SCREENSHOTS` when it names a folder
(docs/screenshots/ holds a set; its README says how they were made)."""
import os, shutil, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import nbformat, pytest
from conftest import NBS
import browser as B

pytestmark = [pytest.mark.skipif(bool(B.missing()), reason='the real-browser test needs ' + '; '.join(B.missing())),
              pytest.mark.xdist_group('browser')]   # one JupyterLab and one browser for both tests

EXPLORER_NB, SEARCH_NB = '10_results_explorer.ipynb', '04_ltdarts_search.ipynb'
METHODS, SEEDS = ('ce', 'ldam_drw'), (0, 1)
FILTER = 'method'            # the explorer's filter the test changes: from both methods to one
EXPLORER_CELL = 'explorer.widget()'  # in the source of 10's cell that shows the explorer
# Console errors that are not the notebooks' (pattern -> why it is harmless); anything else SEVERE fails the test. None
# so far: JupyterLab 4.6 offline, with its news and update check off, logs no error on these two notebooks.
HARMLESS = {}


def tiny_runs(root:Path)->Path:
    """Four completed runs under `root/01_training/` (2 methods x 2 seeds, a one-block ResNet, 2 epochs): a runs folder
    for the explorer in seconds. The data: digits 0, 4 and 9 of the embedded MNIST subset at ratio 10 (40, 14 and 4
    training images; medium and few classes), 20 test images each."""
    import torch
    from lt_workbook.data import ImageSet, LTDataset, load_dataset
    from lt_workbook import training as T
    d, digits = load_dataset('mnist5k', imbalance_ratio=10, n_max=40), torch.tensor([0, 4, 9])
    def keep(s, every=1):
        s = s.subset(torch.where(torch.isin(s.labels, digits))[0][::every])
        return ImageSet(s.images, torch.searchsorted(digits, s.labels))   # labels 0, 1, 2
    data = LTDataset('mnist5k', keep(d.train), keep(d.test, 5), [d.classes[i] for i in digits], d.mean, d.std, False,
                     d.spec)
    assert data.imbalance_ratio == 10, data.train.labels.bincount()
    for m in METHODS:
        for s in SEEDS:
            cfg = T.method_config(m, epochs=2, batch_size=16, lr=0.05, device='cpu', arch='cifar_resnet',
                                  arch_kw=dict(blocks=1), seed=s)
            T.train_run(data, cfg, '01_training', f'{m}_s{s}', run_dir=root/'01_training')
    return root


def notebook_copies(folder:Path, runs:Path)->Path:
    """Copies of 04 as stored and of 10 with its `results_root` set to `runs` (papermill's parameter cell, injected as
    papermill would): JupyterLab serves these, so nothing it saves touches the repository's notebooks."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    folder.mkdir()
    shutil.copy(NBS/SEARCH_NB, folder/SEARCH_NB)
    nb = parameterize_notebook(load_notebook_node(str(NBS/EXPLORER_NB)), dict(results_root=str(runs)))
    nbformat.write(nb, folder/EXPLORER_NB)
    return folder


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    """JupyterLab on the notebook copies, its kernels' runs root the prepared runs folder, and a headless Chromium: one
    of each for the module's tests (on one xdist worker)."""
    tmp, t0 = tmp_path_factory.mktemp('browser'), time.time()
    runs, root = tmp/'runs', notebook_copies(tmp/'nbs', tmp/'runs')
    env = {**os.environ, 'LT_WORKBOOK_RUNS': str(runs), 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
    env.pop('LT_WORKBOOK_PROGRESS', None)   # an interactive session: progress bars as JupyterLab shows them
    with ThreadPoolExecutor(1) as pool:     # the runs train while JupyterLab and Chromium start
        made = pool.submit(tiny_runs, runs)
        with B.jupyter_lab(root, env, tmp/'jupyterlab.log') as (base, token), B.chromium_driver() as driver:
            made.result()
            print(f'runs, JupyterLab and Chromium ready in {time.time() - t0:.0f}s')
            yield driver, base, token, root


def no_console_error(driver, where:str):
    "No SEVERE entry in the browser console since the last read, except those `HARMLESS` names."
    errors = B.console_errors(driver, HARMLESS)
    assert not errors, f'{where}: console errors\n' + '\n'.join(e['message'][:500] for e in errors)


def stored_figures(nb)->int:
    "The plotly figures stored in the notebook `nb` (outputs with plotly's JSON, which JupyterLab draws)."
    return sum('application/vnd.plotly.v1+json' in o.get('data', {}) for c in nbformat.read(nb, 4).cells
               if c.cell_type == 'code' for o in c.outputs)


def test_explorer_run_all_widgets_and_a_filter(lab):
    """10, Run All through the Run menu: its widgets render (no widget as text, no failed cell) and changing a filter
    changes the number of traces of the figure on screen. No console error."""
    driver, base, token, _ = lab
    t0 = time.time()
    B.open_notebook(driver, base, token, EXPLORER_NB)
    # JupyterLab draws a long notebook's cells a few at a time after it opens: wait for the one that shows the explorer
    shown = B.wait_for(f'10: a cell that shows the explorer ({EXPLORER_CELL!r})',
                       lambda: B.cell_with(driver, EXPLORER_CELL), 60)
    B.scroll_to(driver, shown, 'end')   # the stored outputs above the explorer's cell
    B.screenshot(driver, '10_first_open')
    B.run_all(driver)
    print(f'10: opened and run in {time.time() - t0:.0f}s')
    texts = B.output_texts(driver)
    assert not [t for t in texts if any(w in t for w in B.WIDGET_AS_TEXT)], 'a widget shows as text'
    assert not [t for t in texts if 'Traceback' in t], 'a cell failed'
    explorer = B.wait_for('the explorer drawn', lambda: B.explorer(driver), 60)
    assert B.css(driver, 'widget'), 'no ipywidgets DOM'
    B.scroll_to(driver, explorer)
    before = B.wait_for('a figure of the explorer on screen', lambda: B.explorer_plots(driver, explorer), 60)
    B.screenshot(driver, '10_after_run_all')
    B.change_filter(driver, explorer, FILTER)
    n = before[0]['traces']
    after = B.wait_for('the figure redrawn with other traces',
                       lambda: [p for p in B.explorer_plots(driver, explorer) if p['traces'] != n], 30)
    print(f"10: {n} traces in '{before[0]['title']}', {after[0]['traces']} once the {FILTER} filter changed")
    B.scroll_to(driver, explorer)
    B.screenshot(driver, '10_after_filter_change')
    no_console_error(driver, EXPLORER_NB)


def test_stored_figures_draw_untrusted(lab):
    "04 opened as stored, never run, untrusted: each of its stored plotly figures draws, with traces. No console error."
    driver, base, token, root = lab
    t0, n = time.time(), stored_figures(root/SEARCH_NB)
    assert n > 0, f'{SEARCH_NB} stores no figure (make site-nbs executes it)'
    B.open_notebook(driver, base, token, SEARCH_NB)
    cells = sum(c.cell_type == 'code' for c in nbformat.read(root/SEARCH_NB, 4).cells)
    counted = lambda: (lambda t: t if f'of {cells} code cells' in t else None)(B.trust(driver))
    said = B.wait_for('04: the trust of all its cells', counted, 30)
    assert said.startswith('Notebook not trusted'), said
    figs = lambda: [p for p in B.plots(driver) if p['svg']]
    try: B.wait_for(f'04: its {n} stored figures drawn', lambda: len(figs()) >= n, 60)
    except TimeoutError: pass   # the assertion below says which drew
    figs = figs()
    assert len(figs) == n and all(p['traces'] > 0 for p in figs), (n, figs)
    B.scroll_to(driver, B.plot_elements(driver)[0])
    B.screenshot(driver, '04_first_open')
    print(f'04: its {n} stored figures drawn ({sum(p["traces"] for p in figs)} traces) in {time.time() - t0:.0f}s')
    no_console_error(driver, SEARCH_NB)

"""Project wiring: the README's two commands, CI calling the test command, the dependency list, every notebook on the
site (the site's own checks are in test_site.py)."""
import configparser, json, re
from pathlib import Path
import yaml
from conftest import ROOT

def test_readme_starts_with_the_two_commands():
    readme = (ROOT/'README.md').read_text()
    block = re.search(r'```sh\n(.*?)```', readme, re.S).group(1)
    cmds = [l.split('#')[0].strip() for l in block.splitlines() if l.strip()]
    assert cmds == ['make run', 'make test']
    make = (ROOT/'Makefile').read_text()
    assert re.search(r'^run: install', make, re.M) and re.search(r'^test: install', make, re.M)
    assert 'pip install -q -e ".[dev]"' in make
    # `make run` streams the notebook's text progress bars (tests/test_ltdarts_notebook.py runs it so and reads them)
    assert 'LT_WORKBOOK_PROGRESS=text lt-papermill --log-output --no-progress-bar $(MAIN_NB)' in make

def test_ci_runs_the_readme_test_command():
    ci = (ROOT/'.ci'/'run').read_text()
    assert re.search(r'^make test$', ci, re.M)

def test_dependencies_declared_once_in_settings():
    "Every requirement has a floor (a major where internals are relied on); a plain install pulls no JupyterLab, submitit or TensorBoard."
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini'); d = cfg['DEFAULT']
    groups = {k: d[f'{k}_requirements'].split() for k in ('notebook', 'slurm', 'track', 'dev')}
    core = d['requirements'].split()
    names = lambda reqs: {re.split(r'[<>=!]', r)[0] for r in reqs}
    for pkg in ['torch', 'torchvision', 'numpy', 'plotly', 'ipywidgets', 'papermill', 'ipykernel', 'mlxtend', 'scipy',
                'scikit-learn', 'tqdm', 'curvlinops-for-pytorch', 'pytorch-optimizer']:
        assert pkg in names(core), pkg
    assert names(groups['notebook']) == {'jupyterlab'} and names(groups['slurm']) == {'submitit'}
    assert names(groups['track']) == {'tensorboard'} and not names(core) & {'jupyterlab', 'submitit', 'tensorboard'}
    assert all(re.search(r'(>=|==)', r) for r in core + sum(groups.values(), [])), 'a requirement without a floor'
    assert 'curvlinops-for-pytorch>=3.0,<4' in core and 'pytorch-optimizer>=4.0,<5' in core
    assert 'nbdev==2.4.14' in groups['dev'] and 'fastcore>=1.12.3,<2' in groups['dev'] and 'execnb>=0.1.16,<0.2' in groups['dev']
    setup = (ROOT/'setup.py').read_text()
    assert "extras['dev'] = sum(extras.values(), [])" in setup   # [dev] installs every extra
    env = (ROOT/'environment.yml').read_text()
    assert '-e .[dev]' in env and '- pytorch' in env   # conda's torch first: pip finds it satisfied, not reinstalled

def test_every_numbered_notebook_is_exported_and_on_the_site():
    q = yaml.safe_load((ROOT/'_quarto.yml').read_text())
    for nb in sorted((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb')):
        assert f'nbs/{nb.name}' in q['project']['render'], nb.name
        assert '#| default_exp' in nb.read_text(), nb.name

def test_config_presets_only_set_parameters_of_their_notebook():
    "Every configs/*.yaml names its notebook (`papermill nbs/X.ipynb` in its header) and sets only that notebook's parameters."
    import papermill as pm
    cfgs = sorted((ROOT/'configs').glob('*.yaml'))
    assert cfgs
    for f in cfgs:
        text = f.read_text()
        nb = re.search(r'papermill (nbs/\S+\.ipynb)', text).group(1)
        params = set(pm.inspect_notebook(str(ROOT/nb)))
        unknown = set(yaml.safe_load(text)) - params
        assert not unknown, f'{f.name}: not parameters of {nb}: {unknown}'

def test_sweep_files_name_their_notebooks_parameters_and_cost():
    "Every configs/sweeps/*.yaml loads (its notebook exists, base and grid are that notebook's parameters) and states GPU-hours."
    from lt_workbook.runner import load_sweep, sweep_points
    files = sorted((ROOT/'configs'/'sweeps').glob('*.yaml'))
    assert len(files) >= 6, [f.name for f in files]
    for f in files:
        sw = load_sweep(f)
        assert sw.gpu_hours and sw.gpu_hours > 0, f.name
        assert len(sweep_points(sw)) >= 2, f.name
        assert 'lt-workbook sweep configs/sweeps/' + f.name in f.read_text(), f.name

def test_no_notebook_draws_into_output_widgets_by_capture():
    "Output widgets are filled with 00's `show_in` (widget state): output capture can hang papermill (see 00's figures)."
    import nbformat
    capture = re.compile(r'\.clear_output\(|\.capture\(|\.append_display_data\(|^\s*with\s+\w*out\w*\s*:', re.M)
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for cell in nbformat.read(nb, 4).cells:
            if cell.cell_type == 'code': assert not capture.search(cell.source), f'{nb.name}: {cell.source[:200]}'

def test_every_notebook_is_executed_by_the_test_command():
    "The notebooks `make test` leaves out of nbdev_test (E2E_NBS) each have an end-to-end test that executes them with the defaults."
    pattern = re.search(r'^E2E_NBS = (\S+)$', (ROOT/'Makefile').read_text(), re.M).group(1)
    skipped = [nb.name for nb in sorted((ROOT/'nbs').glob('*.ipynb')) if re.match(pattern, nb.name)]
    assert len(skipped) == 10 and '13_recipes.ipynb' in skipped and '10_results_explorer.ipynb' in skipped, skipped
    default_run = {}
    for t in (ROOT/'tests').glob('test_*.py'):
        src = t.read_text()
        nb = re.search(r"^NB = '([^']+)'", src, re.M)
        if nb and re.search(r"run_notebook\(NB, tmp_path/'out\.ipynb'(, log_output=True)?\)", src): default_run[nb.group(1)] = t.name   # no parameters
    assert set(skipped) <= set(default_run), set(skipped) - set(default_run)

def test_papermill_reads_every_parameter():
    "papermill's reader skips a parameter line it cannot parse (e.g. a comment with '='): it must see every parameter the runner sees."
    import papermill as pm
    from lt_workbook.runner import parameter_table
    for nb in sorted((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb')):
        names = list(parameter_table(nb).name) if 'parameters' in nb.read_text() else []
        if names: assert list(pm.inspect_notebook(str(nb))) == names, nb.name


def test_every_section_notebook_opens_with_a_map():
    """Issue 24: the second cell of each section notebook (01-08) is a map whose links (the method and its equations, the
    parameters of a run, the deviations, the main figure) lead to headings of the notebook."""
    import re
    from lt_workbook.data import notebook_markdown, notebook_anchors
    for nb in sorted((ROOT/'nbs').glob('0[1-8]_*.ipynb')):
        md = notebook_markdown(nb)
        assert md[1].startswith('**Map.**'), nb.name
        links = re.findall(r'\]\(#([^)]+)\)', md[1])
        assert len(links) >= 4 and set(links) <= notebook_anchors(md), (nb.name, set(links) - notebook_anchors(md))

def test_every_section_notebook_maps_its_paper():
    """Issue 27: each section notebook (02-08) has its "Figures and tables of the paper" table, and everything it links to
    or names is there (headings of this and other notebooks, configs)."""
    from lt_workbook.data import paper_items, paper_items_problems
    for nb in sorted((ROOT/'nbs').glob('0[2-8]_*.ipynb')):
        assert paper_items_problems(nb, ROOT) == [], nb.name
        assert len(paper_items(nb)) >= 4, nb.name

def test_running_a_notebook_does_not_rewrite_the_package():
    "No cell calls nbdev_export: a run (a sweep point, a rank, a test) would rewrite lt_workbook/ under the others' imports."
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        assert not [c for c in cells if c['cell_type'] == 'code' and 'nbdev_export(' in ''.join(c['source'])], nb.name

def _code_cells(nb:Path):
    "(source, is exported) of each code cell of `nb` but its parameters cell, IPython magics blanked (they are not Python)."
    for c in json.loads(nb.read_text())['cells']:
        if c['cell_type'] == 'code' and 'parameters' not in c['metadata'].get('tags', []):
            src = ''.join(c['source'])
            yield re.sub(r'(?m)^\s*[%!].*$', '', src), bool(re.match(r'#\|\s*export', src))

def _compound_lines(tree)->list:
    "Lines holding two statements (`a; b`) or a statement and its block's first (`for x in y: f(x)`)."
    import ast
    out = []
    for n in ast.walk(tree):
        body = getattr(n, 'body', None)
        if isinstance(n, ast.stmt) and isinstance(body, list) and body and body[0].lineno == n.lineno:
            out.append(n.lineno)
        for block in (getattr(n, f, None) for f in ('body', 'orelse', 'finalbody')):
            lines = [s.lineno for s in block if isinstance(s, ast.stmt)] if isinstance(block, list) else []
            out += sorted({l for l in lines if lines.count(l) > 1})
    return out

def test_cells_hold_one_definition_and_short_simple_lines():
    """Issue 24: each exported cell defines one function or class at most; no code line is over 120 characters (the
    parameters cells excepted: their comments document the parameters); no line holds two statements."""
    import ast
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for src, exported in _code_cells(nb):
            tree = ast.parse(src)
            defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
            assert not exported or len(defs) <= 1, (nb.name, defs)
            assert [l for l in src.splitlines() if len(l) > 120] == [], nb.name
            assert _compound_lines(tree) == [], (nb.name, src[:200])

"""Stored outputs that read well untrusted and offline: no progress-bar widget (an untrusted or widget-less reader sees
`0%| | 0/3` text, as if nothing ran) nor its widget state, no absolute path of the machine that ran the notebook, no
plotly start-up script loading plotly.js from the CDN (JupyterLab offline: a console error and a blank output area);
and 00's `figure_bundle` outside a kernel, where plotly's default renderer is ''. Seconds, no notebook executed."""
import json, re, subprocess, sys
import pytest
from conftest import ROOT, NBS

# what a progress bar is: 11's definitions, the ones `clean_stored_outputs` (make site-nbs) removes by
from lt_workbook.site import WIDGET_VIEW, WIDGET_STATE, BAR_MODELS, bar_models, is_run_artefact
CDN_LOADER = re.compile(r'<script[^>]*>\s*import\s+["\']https://cdn\.plot\.ly|require\(\s*\[?["\']plotly')
NOTEBOOKS = sorted(NBS.glob('*.ipynb'))

def text(value)->str: return ''.join(value) if isinstance(value, list) else str(value)

def widget_state(nb:dict)->dict:
    "The notebook's stored widget models `{model_id: model}`."
    return nb.get('metadata', {}).get('widgets', {}).get(WIDGET_STATE, {}).get('state', {})

def output_texts(output:dict)->list:
    "Every string a reader sees of one output: stream text, each mime type's data, an error's traceback."
    if output['output_type'] == 'stream': return [text(output['text'])]
    if output['output_type'] == 'error': return [output.get('evalue', ''), *output.get('traceback', [])]
    return [text(v) if isinstance(v, (str, list)) else json.dumps(v) for v in output.get('data', {}).values()]

def stored_output_problems(path)->list:
    "What a reader of the stored notebook at `path` should not meet, one line each."
    nb, problems = json.loads(path.read_text()), []
    state = widget_state(nb)
    bars = bar_models(state)
    roots = [str(ROOT), '/tmp/']
    for i, cell in enumerate(nb['cells']):
        for o in cell.get('outputs', []):
            data = o.get('data', {})
            plain = text(data.get('text/plain', ''))
            if WIDGET_VIEW in data and is_run_artefact(o, bars, state):   # a bar's view (or tqdm's text, no state)
                problems.append(f'cell {i}: a progress-bar widget ({plain.strip()[:60]})')
            for t in output_texts(o):
                problems += [f'cell {i}: the absolute path {r}... in an output' for r in roots if r in t]
                if CDN_LOADER.search(t) and 'plotly-graph-div' not in t:
                    problems.append(f"cell {i}: plotly's start-up script loading plotly.js from the CDN")
    if bars := sum(m.get('model_name') in BAR_MODELS for m in state.values()):
        problems.append(f'metadata.widgets: the state of {bars} progress bars')
    return problems

@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_read_well_untrusted_and_offline(path):
    "No progress-bar widget or its state, no absolute path under the checkout or /tmp, no CDN start-up script."
    problems = stored_output_problems(path)
    assert not problems, (f'{path.name} (re-execute it as `make site-nbs` does, bars off):\n'
                          + '\n'.join(problems[:20]))

def test_the_checks_catch_what_they_look_for(tmp_path):
    "Each problem, planted in a small notebook, is found; a clean notebook with a figure and a dropdown passes."
    bar_state = {'h': {'model_name': 'HBoxModel', 'state': {'children': ['IPY_MODEL_p']}},
                 'p': {'model_name': 'FloatProgressModel'}, 'd': {'model_name': 'DropdownModel', 'state': {}}}
    def display(data): return {'output_type': 'display_data', 'metadata': {}, 'data': data}
    def view(mid, plain): return display({WIDGET_VIEW: {'model_id': mid}, 'text/plain': plain})
    fig = display({'text/html': '<div class="plotly-graph-div"></div>'
                                '<script src="https://cdn.plot.ly/plotly-4.1.1.min.js"></script>'})
    def write(outputs, state):
        nb = {'cells': [{'cell_type': 'code', 'source': '', 'outputs': outputs}],
              'metadata': {'widgets': {WIDGET_STATE: {'state': state}}}}
        (p := tmp_path/'nb.ipynb').write_text(json.dumps(nb))
        return stored_output_problems(p)
    assert write([fig, view('d', 'Dropdown(...)')], {'d': bar_state['d']}) == []
    assert write([view('h', ' 0%|  | 0/3 [00:00<?, ?it/s]')], bar_state) == [
        'cell 0: a progress-bar widget (0%|  | 0/3 [00:00<?, ?it/s])', 'metadata.widgets: the state of 1 progress bars']
    no_state = write([view('gone', 'x:  33%|###  | 1/3 [00:01<00:02,  1.0it/s]')], {})
    assert no_state[0].startswith('cell 0: a progress-bar widget'), no_state
    stream = {'output_type': 'stream', 'name': 'stderr', 'text': f'wrote {ROOT}/runs/x and /tmp/y\n'}
    assert write([stream], {}) == [f'cell 0: the absolute path {ROOT}... in an output',
                                   'cell 0: the absolute path /tmp/... in an output']
    loader = display({'text/html': '<script type="module">import "https://cdn.plot.ly/plotly-4.1.1.min"</script>'})
    assert write([loader], {}) == ["cell 0: plotly's start-up script loading plotly.js from the CDN"]

def test_figure_bundle_outside_a_kernel():
    "Plain python (plotly's default renderer ''; it raised KeyError: ''): `figure_bundle` gives JSON and HTML."
    code = ('from lt_workbook.plots import figure_bundle; from lt_workbook.data import plot_class_counts; '
            'b = figure_bundle(plot_class_counts([3, 1])); print(sorted(b)); '
            'assert "plotly-graph-div" in b["text/html"] and "cdn.plot.ly" in b["text/html"]')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['application/vnd.plotly.v1+json', 'text/html']"

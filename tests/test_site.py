"""The Quarto site without Quarto: `_quarto.yml` and the stored figures (`site_problems`), and a stored figure of an
executed section notebook, converted to HTML by nbconvert, drawn by headless Chromium."""
import functools, re, shutil, subprocess, threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import nbformat, numpy as np, plotly, pytest
from nbconvert import HTMLExporter
from PIL import Image
from conftest import ROOT, NBS
from lt_workbook.site import is_figure, site_problems

CHROMIUM = next(filter(None, map(shutil.which, ('chromium-headless-shell', 'chromium', 'chromium-browser', 'google-chrome'))), None)
SECTION_NB = NBS/'04_ltdarts_search.ipynb'   # the main job's notebook, as stored (executed by `make site-nbs`)
PLOTLY_CDN = re.compile(r'https://cdn\.plot\.ly/plotly-[\w.-]+?\.min\.js')

def test_site_config_pages_and_stored_figures():
    "`_quarto.yml` parses, every page it lists exists, and every notebook that draws stores its figures with HTML."
    assert site_problems(ROOT) == []

def figure_page(nb_path, first_only=False)->str:
    "nbconvert's HTML of the notebook's figure outputs alone (inputs hidden): what a site page draws."
    nb = nbformat.read(nb_path, 4)
    cells = []
    for c in nb.cells:
        if c.cell_type != 'code': continue
        figs = [o for o in c.outputs if is_figure(o)]
        if figs: cells.append(nbformat.v4.new_code_cell(outputs=figs))
    nb.cells = cells[:1] if first_only else cells
    return HTMLExporter(exclude_input=True).from_notebook_node(nb)[0]

class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@pytest.fixture
def serve(tmp_path):
    """Serve pages from `tmp_path` over HTTP with plotly.js from the plotly package in place of its CDN (this machine
    reaches no CDN; the page requests the same file from a local address, without the CDN's integrity hash)."""
    shutil.copy(Path(plotly.__file__).parent/'package_data'/'plotly.min.js', tmp_path/'plotly.min.js')
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f'http://127.0.0.1:{httpd.server_address[1]}'
    def page(name, html, plotly_js='plotly.min.js'):
        html = re.sub(r'\sintegrity="[^"]*"', '', PLOTLY_CDN.sub(f'{base}/{plotly_js}', html))
        (tmp_path/name).write_text(html)
        return f'{base}/{name}'
    yield page
    httpd.shutdown()

def chromium(*args, timeout=120)->str:
    return subprocess.run([CHROMIUM, '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--virtual-time-budget=20000',
                           *args], capture_output=True, text=True, timeout=timeout).stdout

def ink(png)->float:
    "The fraction of the screenshot's pixels that are not white."
    return float((np.asarray(Image.open(png).convert('L')) < 245).mean())

@pytest.mark.skipif(CHROMIUM is None, reason='no headless Chromium on this machine (apt-get install chromium-headless-shell; .ci/run installs it)')
def test_stored_figures_draw_in_headless_chromium(serve, tmp_path):
    "Every stored figure of the section notebook draws (plotly's svg in the DOM); the first one inks its plot area."
    html = figure_page(SECTION_NB)
    n = html.count('class="plotly-graph-div"')
    assert n >= 3 and len(PLOTLY_CDN.findall(html)) >= n, 'the stored figures should load plotly.js from its CDN'
    dom = chromium('--dump-dom', serve('all.html', html))
    drawn = len(re.findall(r'<div[^>]*class="[^"]*js-plotly-plot', dom))
    assert drawn == n and dom.count('class="main-svg"') >= n, (drawn, n)

    first = figure_page(SECTION_NB, first_only=True)
    shots = {}
    for name, js in (('drawn', 'plotly.min.js'), ('blank', 'missing.js')):   # the same page, with and without plotly.js
        chromium('--window-size=1100,700', f'--screenshot={tmp_path/name}.png', serve(f'{name}.html', first, js))
        shots[name] = ink(tmp_path/f'{name}.png')
    print(f"{n} figures drawn; ink of the first figure's page: {shots['drawn']:.3f} with plotly.js, {shots['blank']:.3f} without")
    assert shots['drawn'] > 0.01 and shots['blank'] < shots['drawn'] / 5, shots   # a cell diagram inks ~2%

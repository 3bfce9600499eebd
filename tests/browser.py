"""JupyterLab driven by a real headless Chromium (Selenium), for tests/test_browser.py: the server, the browser, and
every DOM selector the test relies on (`SEL`), in one place."""
import importlib, json, os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))), None)
CHROMEDRIVER = shutil.which('chromedriver')
WINDOW = (1400, 1000)

# The DOM of JupyterLab 4 and ipywidgets 8 that the test reads or clicks.
SEL = dict(
    notebook='.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook',
    cell='.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell',
    source='.jp-InputArea-editor',                                 # a cell's source, in its editor
    code_prompt='.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt',
    kernel_status='.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator',
    trust='.jp-StatusItem-trust',                                  # status bar: 'Notebook (not) trusted: ...' (title)
    menu_bar_item='.lm-MenuBar-item',                              # 'Run' in the main menu bar
    run_all_item='.lm-Menu-item[data-command="runmenu:run-all"]',  # the Run menu's 'Run All Cells'
    dialog_button='.jp-Dialog .jp-Dialog-button.jp-mod-accept',    # the accept button of a dialog (kernel choice)
    output='.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output',
    error='.jp-NotebookPanel:not(.lm-mod-hidden) [data-mime-type="application/vnd.jupyter.stderr"]',  # a traceback
    widget='.jp-NotebookPanel:not(.lm-mod-hidden) .jupyter-widgets',
    plot='.js-plotly-plot',                                        # a plotly figure drawn (its `data`: the traces)
    explorer_tabs='.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output .widget-tab',  # 10's explorer's tabs,
    output_area='.jp-OutputArea-output',                           # in the cell output that is the explorer
    label='.widget-label, label, .widget-html-content',            # a filter's name, in the explorer
    choices='select, input[type=checkbox]',                        # what a filter is made of
)
ALL = ('all', '(all)', 'every', 'reset')   # choices of a filter that are no value of the table

WIDGET_AS_TEXT = ('VBox(children=', 'HBox(children=', 'Tab(children=')   # a widget not rendered: its repr

# JavaScript run in the page: plotly's figures drawn (the number of traces each holds, and whether it is on screen).
PLOTS_JS = """return Array.from(arguments[1].querySelectorAll(arguments[0])).map(e => ({
  traces: (e.data || []).length, visible: e.offsetParent !== null && e.getBoundingClientRect().width > 0,
  svg: e.querySelectorAll('.main-svg').length, title: (e.layout && e.layout.title && e.layout.title.text) || ''}));"""


def missing()->list:
    "What the browser test needs and this machine lacks, with how to install it."
    out = []
    if CHROMIUM is None: out.append('chromium (apt-get install chromium; .ci/run installs it as root)')
    if CHROMEDRIVER is None:
        out.append('chromedriver (apt-get install chromium-driver; .ci/run installs it as root)')
    for module in ('selenium', 'jupyterlab'):
        try: importlib.import_module(module)
        except ImportError: out.append(f"{module} (pip install -e '.[dev]'; `make test` installs it)")
    return out


def free_port()->int:
    "A TCP port of 127.0.0.1 that is free now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _children(pid:int)->list:
    "The processes whose parent is `pid` and their descendants (read from /proc), as PIDs."
    parents = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try: fields = stat.read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError): continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []): found.append(child); todo.append(child)
    return found


def _api(base:str, token:str, path:str, method:str='GET', timeout:float=10):
    "A call to the Jupyter server's REST API, its JSON answer decoded."
    req = urllib.request.Request(f'{base}{path}', method=method, headers={'Authorization': f'token {token}'})
    with urllib.request.urlopen(req, timeout=timeout) as r: return json.loads(r.read() or b'null')


@contextmanager
def jupyter_lab(root:Path, env:dict, log:Path, timeout:float=120):
    """JupyterLab on 127.0.0.1 (a free port, a random token, no browser) serving `root`, its kernels run with `env`;
    yields `(base_url, token)`. Its settings, workspaces and runtime files go to a folder beside `log`, and no notebook
    is trusted from an earlier session (an in-memory notary). Shut down on exit, kernels included, even on failure."""
    port, token, home = free_port(), secrets.token_hex(16), log.parent/'jupyter-home'
    for d in ('config', 'runtime', 'settings', 'workspaces'): (home/d).mkdir(parents=True, exist_ok=True)
    quiet = home/'settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings'
    quiet.parent.mkdir(parents=True)   # no news or update check (no network; a pop-up over the page)
    quiet.write_text(json.dumps(dict(fetchNews='false', checkForUpdates=False)))
    env = {**env, 'JUPYTER_CONFIG_DIR': str(home/'config'), 'JUPYTER_RUNTIME_DIR': str(home/'runtime'),
           'JUPYTERLAB_SETTINGS_DIR': str(home/'settings'), 'JUPYTERLAB_WORKSPACES_DIR': str(home/'workspaces'),
           'IPYTHONDIR': str(home/'ipython')}
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1',
           f'--ServerApp.port={port}', '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}',
           f'--ServerApp.root_dir={root}', '--NotebookNotary.db_file=:memory:', '--ServerApp.allow_root=True']
    base = f'http://127.0.0.1:{port}'
    with open(log, 'w') as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f'JupyterLab exited ({proc.returncode}):\n{log.read_text()[-3000:]}')
            try: _api(base, token, '/api/status', timeout=2); break
            except OSError:
                if time.time() > deadline:
                    raise TimeoutError(f'JupyterLab did not answer in {timeout}s:\n{log.read_text()[-3000:]}')
                time.sleep(0.3)
        yield base, token
    finally: _stop(proc, base, token)


def _stop(proc, base:str, token:str):
    "Shut the server down (its kernels first, through its API), then end whatever of it is left, by process id."
    pids = _children(proc.pid)
    try:
        for k in _api(base, token, '/api/kernels'): _api(base, token, f"/api/kernels/{k['id']}", 'DELETE', timeout=30)
        _api(base, token, '/api/shutdown', 'POST')
    except OSError: pass
    try: proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(10)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    for pid in pids:   # a kernel runs in a session of its own: not in the server's process group
        try: os.kill(pid, signal.SIGKILL)
        except ProcessLookupError: pass


@contextmanager
def chromium_driver():
    "Headless Chromium through chromedriver (Selenium), 1400x1000, its console kept (`get_log('browser')`)."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
              f'--window-size={WINDOW[0]},{WINDOW[1]}', '--hide-scrollbars'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    try:
        driver.set_window_size(*WINDOW)
        yield driver
    finally: driver.quit()


def wait_for(what:str, cond, timeout:float=60, every:float=0.25):
    "Poll `cond()` until it returns something true (returned), else raise a TimeoutError naming `what`."
    from selenium.common.exceptions import WebDriverException
    deadline = time.time() + timeout
    while True:
        try: got, err = cond(), None
        except WebDriverException as e: got, err = None, e   # e.g. a DOM node replaced while read: try again
        if got: return got
        if time.time() > deadline:
            raise TimeoutError(f'{what}: not after {timeout}s' + (f' (last error: {err!r})' if err else ''))
        time.sleep(every)


def css(driver, key:str):
    "The elements of the page that `SEL[key]` selects."
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, SEL[key])


def open_notebook(driver, base:str, token:str, name:str, timeout:float=90):
    "Open JupyterLab on the notebook `name` (relative to its root); wait until its cells are drawn and its kernel idle."
    driver.get(f'{base}/lab/tree/{name}?token={token}')
    wait_for(f'{name}: cells drawn', lambda: len(css(driver, 'cell')) > 3, timeout)
    accept_dialogs(driver)
    wait_for(f'{name}: kernel idle', lambda: kernel_idle(driver), timeout)


def accept_dialogs(driver):
    "Accept a dialog JupyterLab may show (e.g. a kernel choice), if any."
    for b in css(driver, 'dialog_button'): b.click()


def kernel_idle(driver)->bool:
    "The notebook's execution indicator reads idle and no cell is waiting (`[*]`)."
    ind = css(driver, 'kernel_status')
    status = ind[0].get_attribute('data-status') if ind else None
    return status == 'idle' and not any('*' in p.text for p in css(driver, 'code_prompt'))


def run_all(driver, timeout:float=300):
    "Run All through JupyterLab's Run menu, then wait until every code cell has run and the kernel is idle."
    next(m for m in css(driver, 'menu_bar_item') if m.text.strip() == 'Run').click()
    wait_for('Run menu', lambda: css(driver, 'run_all_item'), 10)[0].click()
    wait_for('Run All started', lambda: any('*' in p.text for p in css(driver, 'code_prompt')) or all_ran(driver), 30)
    wait_for('Run All finished', lambda: kernel_idle(driver), timeout, every=0.5)   # queued cells read [*] too
    if not all_ran(driver):
        errors = [o.text for o in css(driver, 'error')]
        raise AssertionError('Run All stopped before the last cell:\n' + '\n'.join(e[-2000:] for e in errors))


def all_ran(driver)->bool:
    "Every code cell shows an execution count (`[n]:`)."
    prompts = [p.text.strip() for p in css(driver, 'code_prompt')]
    return bool(prompts) and all(p[1:-2].isdigit() for p in prompts if p)


def plots(driver, within=None)->list:
    "The plotly figures drawn in the notebook shown (or in the element `within`): `{traces, visible, svg, title}` each."
    within = within or css(driver, 'notebook')[0]
    return driver.execute_script(PLOTS_JS, SEL['plot'], within)


def plot_elements(driver)->list:
    "The plotly figures of the notebook shown, as elements (to scroll to)."
    from selenium.webdriver.common.by import By
    return css(driver, 'notebook')[0].find_elements(By.CSS_SELECTOR, SEL['plot'])


def console_errors(driver, harmless:dict)->list:
    "The SEVERE entries of the browser console since the last read, less those matching a pattern of `harmless`."
    return [e for e in driver.get_log('browser')
            if e['level'] == 'SEVERE' and not any(p in e['message'] for p in harmless)]


def explorer(driver):
    "The output of 10's cell that shows the explorer (the one output holding widget tabs), or None."
    tabs = css(driver, 'explorer_tabs')
    if not tabs: return None
    return driver.execute_script('return arguments[0].closest(arguments[1])', tabs[-1], SEL['output_area'])


def explorer_plots(driver, explorer)->list:
    "The explorer's figures on screen (the tab shown), with their trace counts."
    return [p for p in plots(driver, explorer) if p['visible'] and p['svg']]


FILTER_JS = """const [root, name, labels, choices] = arguments;
for (const l of root.querySelectorAll(labels)) {
  if (l.textContent.trim() !== name) continue;
  for (let e = l.parentElement; e && e !== root; e = e.parentElement) if (e.querySelector(choices)) return e; }
return null;"""


def change_filter(driver, explorer, name:str):
    """Change the explorer's filter `name` as a user would, to fewer values: in a multiple-choice list, a click on its
    first value (WebDriver toggles an option of a multiple select: that value leaves the selection); in a dropdown, its
    first value other than the one chosen (and other than 'all'); in a group of check boxes, a click that unticks the
    first ticked value. Raises a ValueError if no filter is labelled `name`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    box = driver.execute_script(FILTER_JS, explorer, name, SEL['label'], SEL['choices'])
    if box is None: raise ValueError(f'{name!r}: no filter of the explorer has this label')
    scroll_to(driver, box, 'center')
    is_value = lambda text: text.strip().lower() not in ALL
    for sel in box.find_elements(By.TAG_NAME, 'select'):
        if sel.get_attribute('multiple'):
            return next(o for o in sel.find_elements(By.TAG_NAME, 'option') if is_value(o.text)).click()
        pick = Select(sel)
        return pick.select_by_visible_text(next(o.text for o in pick.options if is_value(o.text)
                                                and o.text != pick.first_selected_option.text))
    for cb in box.find_elements(By.CSS_SELECTOR, 'input[type=checkbox]'):
        text = driver.execute_script("return (arguments[0].closest('label, .widget-checkbox') || {}).textContent || ''",
                                     cb)
        if cb.is_selected() and is_value(text): return cb.click()
    raise ValueError(f'{name!r}: no value of this filter to change')


CELL_JS = """for (const c of document.querySelectorAll(arguments[0])) {
  const s = c.querySelector(arguments[1]);
  if (s && s.textContent.includes(arguments[2])) return c; }
return null;"""


def cell_with(driver, text:str):
    "The first cell of the notebook shown whose source holds `text` (off screen too), or None."
    return driver.execute_script(CELL_JS, SEL['cell'], SEL['source'], text)


def scroll_to(driver, element, block:str='start', tries:int=8):
    """Scroll the notebook so that `element` is at the top (`block`: 'start', 'center', 'end') of the window. Again
    until it stays put: JupyterLab estimates the height of cells not drawn yet, and draws them as they come near."""
    where = None
    for _ in range(tries):
        driver.execute_script('arguments[0].scrollIntoView({block: arguments[1]})', element, block)
        time.sleep(0.4)   # cells and figures coming into the window draw
        if where == (where := element.rect['y']): break


def trust(driver)->str:
    "What the status bar says of the notebook shown: 'Notebook not trusted: 0 of 40 code cells trusted.' or so."
    item = css(driver, 'trust')
    return item[0].get_attribute('title') if item else ''


def output_texts(driver)->list:
    "The text of each output of the notebook shown."
    return [o.text for o in css(driver, 'output')]


def screenshot(driver, name:str):
    "Save the window as `$LT_WORKBOOK_SCREENSHOTS/<name>.png` when that variable names a folder."
    folder = os.environ.get('LT_WORKBOOK_SCREENSHOTS')
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder)/f'{name}.png'))

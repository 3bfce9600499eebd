# The two commands of the README: `make run` (the main job) and `make test` (everything CI checks).
PYTHON ?= python3
RUNS ?= runs
export LT_WORKBOOK_RUNS ?= $(abspath $(RUNS))
MAIN_NB = nbs/04_ltdarts_search.ipynb

.PHONY: install run test test-sync test-nbs test-py readme site-nbs compare-outputs ledger docs

install:
	$(PYTHON) -m pip install -q -e ".[dev]"

# The main job: execute the section notebook with its defaults on the embedded dataset (papermill), streaming what its
# cells print (text progress bars of the search and retraining, messages) to the terminal.
run: install
	mkdir -p "$(LT_WORKBOOK_RUNS)"
	LT_WORKBOOK_PROGRESS=text lt-papermill --log-output --no-progress-bar $(MAIN_NB) "$(LT_WORKBOOK_RUNS)/$(notdir $(MAIN_NB))"

# Notebooks and library in sync, notebooks clean, every notebook executed once, then the end-to-end tests.
# The section notebooks, the explorer and the recipes (E2E_NBS, a regex that also keeps nbdev's default of skipping _ and . files) are
# executed by their end-to-end tests instead of nbdev_test: papermill runs every cell with the
# defaults, as nbdev_test would, and the test then checks what the run wrote (tests/test_project.py checks each has such a test).
# Test runs go to a fresh temporary folder (shared by nbdev_test and pytest) unless LT_WORKBOOK_TEST_RUNS is set.
# Single-threaded workers: on a small CPU, two notebooks at once get more done than one on two threads; pytest takes one more
# worker than cores (PYTEST_WORKERS), since its tests wait for kernels, subprocesses and other ranks a fifth of the time.
# Tests are spread one by one (loadgroup); tests that read another test's runs share an xdist_group.
TEST_WORKERS ?= 2
PYTEST_WORKERS ?= 3
E2E_NBS = ^([_.]|(0[1-8]|10|13)_)
test: install test-sync
	@runs=$${LT_WORKBOOK_TEST_RUNS:-$$(mktemp -d)}; echo "test runs in $$runs"; \
	  export LT_WORKBOOK_RUNS=$$runs OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}; \
	  nbdev_test --n_workers $(TEST_WORKERS) --do_print --timing --skip_file_re '$(E2E_NBS)' && \
	  $(PYTHON) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=20 tests

test-sync:
	nbdev_export
	git diff --exit-code -- lt_workbook
	@test -z "$$(git status --porcelain -- lt_workbook)" || { git status --porcelain -- lt_workbook; echo "nbdev_export made files that are not committed"; exit 1; }
	nbdev_clean
	git diff --exit-code -- nbs
	jupyter nbconvert --to markdown nbs/index.ipynb --stdout 2>/dev/null | diff -u README.md - || { echo "README.md is out of date: run make readme"; exit 1; }

# README.md is generated from nbs/index.ipynb (nbdev_readme would need Quarto).
readme:
	jupyter nbconvert --to markdown nbs/index.ipynb --stdout 2>/dev/null > README.md

# The site's stored figures: execute, in place and with their small defaults, the notebook pages of _quarto.yml that
# draw, except the claims ledger's (make ledger) (about 15 min of CPU, two at a time; runs in runs/_site), then remove
# what a run leaves beside its results (progress-bar widgets and their state, plotly's CDN start-up script:
# `clean_stored_outputs`, 11). The explorer runs on an empty runs folder of its own: its page shows what a fresh
# checkout shows (its demonstration set). Commit the notebooks afterwards.
SITE_RUNS ?= $(abspath runs/_site)
EXPLORER_NB = nbs/10_results_explorer.ipynb
site-nbs: install
	rm -rf "$(SITE_RUNS)"
	$(PYTHON) -c "from lt_workbook.site import *; print(*(p for p in site_pages(site_config()) if p.endswith('.ipynb') and p not in ('$(LEDGER_NB)', '$(EXPLORER_NB)') and draws_figures(read_notebook(p))), sep='\n')" \
	  | LT_WORKBOOK_RUNS="$(SITE_RUNS)" TQDM_DISABLE=1 OMP_NUM_THREADS=1 xargs -P $(TEST_WORKERS) -I{} lt-papermill --cwd nbs --no-progress-bar {} {}
	LT_WORKBOOK_RUNS="$(SITE_RUNS)/10_results_explorer" TQDM_DISABLE=1 OMP_NUM_THREADS=1 lt-papermill --cwd nbs --no-progress-bar $(EXPLORER_NB) $(EXPLORER_NB)
	$(PYTHON) -c "import glob; from lt_workbook.site import clean_stored_outputs; [clean_stored_outputs(p) for p in sorted(glob.glob('nbs/*.ipynb'))]"
	nbdev_clean

# What `make site-nbs` changed in the stored results (printed text, tables, figures' data) against git revision REF
# (default HEAD), with a count of restyled figures apart (`output_changes`, 11); exits 1 when a result changed.
REF ?= HEAD
compare-outputs:
	$(PYTHON) -c "import sys; from lt_workbook.site import print_output_changes; sys.exit(print_output_changes('$(REF)') > 0)"

# The claims ledger (configs/claims/reduced.yaml: about an hour on 2 cores; run it again to resume) into runs/ledger/,
# then its page's stored outputs read from those runs (make site-nbs leaves the ledger page alone). Commit the notebook.
LEDGER ?= configs/claims/reduced.yaml
LEDGER_NB = nbs/12_claims_ledger.ipynb
ledger: install
	lt-workbook ledger $(LEDGER) --workers $(TEST_WORKERS)
	TQDM_DISABLE=1 OMP_NUM_THREADS=1 lt-papermill --cwd nbs --no-progress-bar $(LEDGER_NB) $(LEDGER_NB) -p ledger $(LEDGER) -p run False
	$(PYTHON) -c "from lt_workbook.ledger import keep_page_parameters; keep_page_parameters('$(LEDGER_NB)')"
	$(PYTHON) -c "from lt_workbook.site import clean_stored_outputs; clean_stored_outputs('$(LEDGER_NB)')"
	nbdev_clean --fname $(LEDGER_NB)

# The Quarto site in _docs/, on a machine with Quarto on its PATH (see README): nbdev's processing into _proc/, then Quarto.
docs: install
	$(PYTHON) -c "from lt_workbook.site import prepare_site; prepare_site()"
	cd _proc && quarto render
	rm -rf _docs && mv _proc/_docs _docs

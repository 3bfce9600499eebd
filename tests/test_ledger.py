"""The claims ledger end to end: `lt-workbook ledger` on the tiny ledger (the machinery, not the verdicts), resuming,
and a bad ledger file. The verdict rule on hand-built run directories is a test cell of nbs/12_claims_ledger.ipynb."""
import json, os, subprocess, sys
from conftest import ROOT
from lt_workbook.ledger import ledger_claims, LEDGER_LOG, LEDGER_VERDICTS

CLI = [sys.executable, '-c', 'import sys; from lt_workbook.runner import main; sys.exit(main())']

def cli(*args):
    return subprocess.run([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=900)

def test_tiny_ledger_runs_resumes_and_reads(runs_root):
    "The tiny ledger (shared with nbdev_test's run of 12 when `make test` runs both): every section completes, records its claims, re-running skips them."
    res = cli('ledger', 'configs/claims/tiny.yaml', '--workers', 2)
    assert res.returncode == 0, res.stdout[-3000:]
    root = runs_root/'ledger'/'tiny'
    for section in ('07_ccsam_landscapes', '08_imbnas_transfer'):
        d = root/section
        assert json.loads((d/'execution.json').read_text())['status'] == 'completed' and (d/'claims.json').exists(), section
        assert any(p.is_dir() and (p/'summary.json').exists() for p in d.iterdir()), section   # its run directories
    log = json.loads((root/LEDGER_LOG).read_text())
    assert log and {'command', 'started', 'machine'} <= set(log[0]) and log[0]['machine']['cores'] >= 1
    claims = ledger_claims(root)
    assert len(claims) >= 3 and set(claims.section) == {'07_ccsam_landscapes', '08_imbnas_transfer'}
    assert set(claims.verdict) <= set(LEDGER_VERDICTS) and (claims.seeds <= 1).all()
    assert (claims.verdict[claims.verdict != 'by construction'] == 'not reproduced').all()   # one seed: never a verdict
    again = cli('ledger', 'configs/claims/tiny.yaml')
    assert again.returncode == 0 and '2 completed, 0 to run' in again.stdout, again.stdout[-2000:]
    assert 'evidence' in again.stdout   # the verdict counts

def test_bad_ledger_files(tmp_path):
    bad = tmp_path/'bad.yaml'
    bad.write_text('sections: {07_ccsam: {epoch: 3}}\n')
    res = cli('ledger', bad)
    assert res.returncode == 2 and "no parameter 'epoch'" in res.stdout, res.stdout[-2000:]
    res = cli('ledger', tmp_path/'missing.yaml')
    assert res.returncode == 2 and 'no such ledger file' in res.stdout, res.stdout[-2000:]

"""Progress of the long loops of 07 and 08 as a batch run shows it (`$LT_WORKBOOK_PROGRESS=text`: tqdm text on stderr): the
evolutionary search (generations with the cells evaluated and the best fitness, each generation's cells), the rank-transfer
trainings, the 1-D and 2-D loss-landscape grids. The smallest cases the notebooks test; seconds, no notebook executed."""
import re
from types import SimpleNamespace
import pytest, torch
import lt_workbook.training as training
import lt_workbook.imbnas as imbnas
from lt_workbook.imbnas import evolution_search, rank_transfer, arch_str
from lt_workbook.ccsam import classifier_noise_landscape, loss_surface, filter_normalized_direction, head_tail_groups, features_of
from lt_workbook.training import cifar_resnet

def toy_fitness(a): return sum(o == 'nor_conv_3x3' for o in a) + 0.1 * sum(o == 'nor_conv_1x1' for o in a)   # 08's test cell's
SEARCH = dict(generations=3, population=8, crossover_num=3, mutation_num=3, top_k=4)

@pytest.fixture
def text_bars(monkeypatch):
    "Text bars on stderr, as `lt-workbook` and `make run` set them (and not switched off by a `$TQDM_DISABLE` of the caller)."
    monkeypatch.setenv('LT_WORKBOOK_PROGRESS', 'text')
    monkeypatch.delenv('TQDM_DISABLE', raising=False)

@pytest.fixture
def every_step(text_bars, monkeypatch):
    "Text bars that print a line at every update (a batch run prints one every `TEXT_PROGRESS_INTERVAL` seconds)."
    monkeypatch.setattr(training, 'TEXT_PROGRESS_INTERVAL', 0.)

def bar_line(err:str, desc:str, n:int, total:int)->str:
    "The last text line of bar `desc` at `n/total` in `err` (a failed assertion shows what was written)."
    found = re.findall(rf'{re.escape(desc)}: +\d+%\|[^|]*\| {n}/{total} \[[^\]]*\]', err)
    assert found, f'no {desc!r} at {n}/{total} in:\n{err}'
    return found[-1]

def test_search_progress(text_bars, capsys):
    "At the default interval: the generations bar ends at 3/3 with the cells evaluated and the best fitness; each generation's bar starts."
    res = evolution_search(toy_fitness, **SEARCH, desc='toy search')
    err = capsys.readouterr().err
    last = bar_line(err, 'toy search', 3, 3)
    assert f"evaluated={res['evaluations']}" in last and f"best={res['fitness']:.4g}" in last, last
    bar_line(err, 'toy search: generation 1', 0, 8)       # the first generation's 8 cells, a bar cleared when done
    assert res == evolution_search(toy_fitness, **SEARCH)  # the bars change nothing found

def test_search_progress_every_step(every_step, capsys):
    "Every generation's cells counted to the end; the postfix is the best fitness so far, never decreasing."
    res = evolution_search(toy_fitness, **SEARCH, desc='toy search')
    err = capsys.readouterr().err
    bar_line(err, 'toy search: generation 1', 8, 8)
    for g in (2, 3): assert f'toy search: generation {g}:' in err, err
    best = [float(b) for b in re.findall(r'toy search: +\d+%[^\n\r]*best=([\d.]+)', err)]
    assert len(best) >= 3 and best == sorted(best) and best[-1] == round(res['fitness'], 4), best

def test_rank_transfer_progress(every_step, capsys, monkeypatch, tmp_path):
    "One bar over the networks the rank-transfer study trains (each cell on each variant), their training stubbed out."
    trained = []
    def fake_train(data, arch, name, *a, **kw):
        trained.append(name)
        return SimpleNamespace(name=name, summary={'acc': float(len(trained))})
    monkeypatch.setattr(imbnas, 'train_subnet', fake_train)
    archs = [('nor_conv_3x3', 'none', 'none', 'skip_connect', 'none', 'none'), ('skip_connect', 'none', 'none', 'nor_conv_3x3', 'none', 'none')]
    rank_transfer({'bal': SimpleNamespace(), 'lt': SimpleNamespace()}, archs, run_dir=tmp_path)
    assert len(trained) == 4
    bar_line(capsys.readouterr().err, 'rank transfer s0', 4, 4)

def tiny_landscape_case():
    "07's test case: a tiny CIFAR ResNet, 12 images in two batches, head / tail groups."
    torch.manual_seed(4)
    net = cifar_resnet(4, blocks=1, widths=(4, 8, 8)).train()
    xb, yb = torch.randn(12, 3, 32, 32), torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 0])
    return net, [(xb[:8], yb[:8]), (xb[8:], yb[8:])], yb, head_tail_groups(yb, [5, 3, 2, 1])

def test_landscape_progress(every_step, capsys):
    "The 1-D grid counts its ratios, the 2-D grid its points (3 x 3), each under its label; the default labels say which grid."
    net, fixed, yb, grp = tiny_landscape_case()
    fe = features_of(net, [x for x, _ in fixed])
    one = classifier_noise_landscape(net.classifier, fe, yb, [0., 0.5, 1.], grp, draws=2, desc='ce s0: 1-D local')
    gen = torch.Generator().manual_seed(0)
    d1, d2 = filter_normalized_direction(net, gen), filter_normalized_direction(net, gen)
    two = loss_surface(net, fixed, d1, d2, [-1., 0., 1.], grp, desc='ce s0: 2-D')
    err = capsys.readouterr().err
    bar_line(err, 'ce s0: 1-D local', 3, 3); bar_line(err, 'ce s0: 2-D', 9, 9)
    assert len(one['all']['mean']) == 3 and all(v is not None for row in two['all'] for v in row)
    classifier_noise_landscape(net.classifier, fe, yb, [0., 0.5], grp, draws=1)
    loss_surface(net, fixed, d1, d2, [0.], grp)
    err = capsys.readouterr().err
    bar_line(err, '1-D landscape', 2, 2); bar_line(err, '2-D landscape', 1, 1)

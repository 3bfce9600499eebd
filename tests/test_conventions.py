"""Issue 26: live loggers mirror metrics.jsonl, precision per device capability (fp16 with loss scaling), deterministic
resume on CPU to the last digit, CUDA RNG restored on resume, settings renamed without renaming run folders."""
import json, sys, types
from dataclasses import replace
from pathlib import Path
import numpy as np
import pytest
import torch
from lt_workbook.data import LTDataset, load_dataset
from lt_workbook import training as T


def tiny_data():
    "3 classes of the embedded MNIST subset, long-tailed (a few seconds per run)."
    d = load_dataset('mnist5k', imbalance_ratio=10, n_max=40)
    keep = lambda s, every=1: s.subset(torch.where(s.labels < 3)[0][::every])
    return LTDataset('mnist5k', keep(d.train), keep(d.test, 5), d.classes[:3], d.mean, d.std, False, d.spec)

CFG = T.TrainConfig(epochs=3, batch_size=16, lr=0.05, device='cpu', arch='cifar_resnet', arch_kw=dict(blocks=1))


class StopAfter(T.Callback):
    "Fails the run after epoch `k`'s checkpoint (at the next epoch's start): an interruption to resume from."
    def __init__(self, k): self.k = k
    def before_epoch(self, trainer, epoch):
        if epoch == self.k + 1: raise KeyboardInterrupt('stopped')


def train(tmp_path, cfg, name, **kw):
    data = tiny_data()
    return T.train_run(data, cfg, 'conv', name, run_dir=tmp_path/'runs', **kw)


def test_tensorboard_holds_metrics_jsonl_numbers(tmp_path, monkeypatch):
    "Every number of every metrics.jsonl line is a TensorBoard scalar at its epoch, also across a resume (no duplicates)."
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    monkeypatch.setenv('LT_WORKBOOK_LOGGERS', 'tensorboard')
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, CFG, 'tb', callbacks=[StopAfter(0)])
    run = train(tmp_path, CFG, 'tb')                       # resumed at epoch 1: epoch 1 is logged once
    assert [e['epoch'] for e in run.metrics] == [0, 1, 2]
    acc = EventAccumulator(str(run.path/'tensorboard'), size_guidance={'scalars': 0}).Reload()
    for e in run.metrics:
        for key, value in T.event_values(e)['scalar'].items():
            got = [s for s in acc.Scalars(key) if s.step == e['epoch']]
            assert len(got) == 1 and got[0].value == pytest.approx(value, rel=1e-6), (key, e['epoch'], got, value)
    assert {'train_loss', 'train_acc', 'acc', 'lr', 'time'} <= set(acc.Tags()['scalars'])


def test_event_values_kinds():
    "Numbers, nested numbers, per-class lists, matrices (an alpha table) and text each go where they belong."
    ev = dict(epoch=2, acc=50.0, few=None, alphas={'normal': [[0.1, 0.9], [0.5, 0.5]]}, norms=[1.0, 2.0],
              genotype={'normal': [['sep_conv_3x3', 0]]}, best='a', long=list(range(101)))
    v = T.event_values(ev)
    assert v['scalar'] == {'epoch': 2.0, 'acc': 50.0, 'norms/0': 1.0, 'norms/1': 2.0}
    assert list(v['matrix']) == ['alphas/normal'] and list(v['vector']) == ['long']
    assert v['text'] == {'genotype/normal': '[["sep_conv_3x3", 0]]', 'best': 'a'}
    img = T.matrix_image(np.array([[0.1, 0.9], [0.5, 0.5]]), cell=2)
    assert img.shape == (1, 4, 4) and img.min() == 0 and img.max() == 255 and img[0, 2, 0] == 128   # (0.5-0.1)/0.8 = 0.5


def test_wandb_logger_offline(tmp_path, monkeypatch):
    "With `wandb` importable, the same scalars go to one offline W&B run per run directory, and the summary at the end."
    calls = []
    class FakeRun:
        summary = {}
        def log(self, d, step): calls.append((step, d))
        def finish(self): calls.append('finish')
    fake = types.SimpleNamespace(init=lambda **kw: calls.append(kw) or FakeRun(), Image=lambda a: ('image', a.shape))
    monkeypatch.setitem(sys.modules, 'wandb', fake)
    run = train(tmp_path, replace(CFG, epochs=2), 'wb', loggers='wandb')
    init = calls[0]
    assert init['mode'] == 'offline' and init['id'] == run.name and init['dir'] == str(run.path)
    logged = [c for c in calls[1:] if isinstance(c, tuple)]
    assert [s for s, _ in logged] == [0, 1] and calls[-1] == 'finish'
    for (step, d), e in zip(logged, run.metrics):
        assert d == T.event_values(e)['scalar']
    assert FakeRun.summary['acc'] == run.summary['acc']


def test_logger_names():
    assert T.logger_names(' tensorboard, wandb ') == ['tensorboard', 'wandb'] and T.logger_names('') == []
    with pytest.raises(ValueError, match=r"loggers='mlflow': expected one of \('tensorboard', 'wandb'\)"):
        T.logger_names('mlflow')


def test_precision_by_capability():
    "'auto': bf16 from compute capability 8.0 (A100/H100), fp16 below (V100, T4), fp32 off CUDA; bf16 refused below 8.0."
    cuda = torch.device('cuda')
    assert T.autocast_dtype('auto', cuda, (9, 0)) == T.autocast_dtype('auto', cuda, (8, 0)) == torch.bfloat16
    assert T.autocast_dtype('auto', cuda, (7, 0)) == T.autocast_dtype('auto', cuda, (7, 5)) == torch.float16
    assert T.autocast_dtype('auto', torch.device('cpu')) is None and T.autocast_dtype('fp32', cuda, (9, 0)) is None
    assert T.autocast_dtype('fp16', cuda, (9, 0)) == torch.float16
    with pytest.raises(ValueError, match=r"precision='bf16' on a GPU of compute capability 7.5: bf16 needs 8.0"):
        T.autocast_dtype('bf16', cuda, (7, 5))
    with pytest.raises(ValueError, match=r"precision='half': expected one of \('auto', 'bf16', 'fp16', 'fp32'\)"):
        T.TrainConfig(precision='half')


def test_fp16_scales_the_loss_and_resumes(tmp_path):
    """fp16 (autocast on the CPU here) trains through the gradient scaler: the scale is in the checkpoint and comes back on
    resume, and the resumed run ends where the uninterrupted one does."""
    cfg = replace(CFG, precision='fp16', epochs=2)   # (fp16 is slow on a CPU)
    whole = train(tmp_path, cfg, 'fp16_whole')
    assert whole.completed and all(np.isfinite(e['train_loss']) for e in whole.metrics)
    ck = T.read_checkpoint(whole.checkpoint_file)
    assert ck['scaler']['scale'] > 1 and ck['cuda_rng'] is None
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, cfg, 'fp16_cut', callbacks=[StopAfter(0)])
    cut = train(tmp_path, cfg, 'fp16_cut')
    strip = lambda ms: [{k: v for k, v in e.items() if k != 'time'} for e in ms]
    assert strip(cut.metrics) == strip(whole.metrics)


def test_deterministic_resume_matches_to_the_last_digit(tmp_path):
    "With deterministic algorithms on, a run stopped after epoch 0 and resumed records exactly the uninterrupted run's numbers."
    cfg = replace(CFG, deterministic=True)
    assert not torch.are_deterministic_algorithms_enabled()
    whole = train(tmp_path, cfg, 'det_whole')
    assert not torch.are_deterministic_algorithms_enabled()   # restored after training
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, cfg, 'det_cut', callbacks=[StopAfter(0)])
    cut = train(tmp_path, cfg, 'det_cut')
    strip = lambda ms: [{k: v for k, v in e.items() if k != 'time'} for e in ms]
    assert strip(cut.metrics) == strip(whole.metrics)
    assert {k: v for k, v in cut.summary.items() if 'time' not in k} == {k: v for k, v in whole.summary.items() if 'time' not in k}
    assert (cut.confusion == whole.confusion).all()


def test_cuda_rng_restored_on_resume(monkeypatch):
    "The checkpoint's CUDA RNG state goes back to the trainer's device (an older checkpoint's per-GPU list: its entry)."
    got = []
    monkeypatch.setattr(torch.cuda, 'set_rng_state', lambda s, d: got.append((s, d)))
    cpu = torch.get_rng_state()
    T.restore_rng_states({'torch_rng': cpu, 'cuda_rng': 'state'}, torch.device('cuda', 1))
    T.restore_rng_states({'torch_rng': cpu, 'cuda_rng': ['gpu0', 'gpu1']}, torch.device('cuda', 1))
    T.restore_rng_states({'torch_rng': cpu, 'cuda_rng': ['gpu0']}, torch.device('cuda', 1))   # fewer GPUs saved: left alone
    T.restore_rng_states({'torch_rng': cpu, 'cuda_rng': 'state'}, torch.device('cpu'))
    assert got == [('state', torch.device('cuda', 1)), ('gpu1', torch.device('cuda', 1))]


def test_renamed_setting_keeps_run_folders(tmp_path):
    "precision replaced bf16 (None / True / False = 'auto' / 'bf16' / 'fp32'): the same folder names, and old params read back."
    base = {'name': 'mnist5k', 'epochs': 3, 'sync_bn': False, 'deterministic': False}
    for old, new in [(None, 'auto'), (True, 'bf16'), (False, 'fp32')]:
        assert T.params_hash(T.hashed_params({**base, 'precision': new})) == T.params_hash({'name': 'mnist5k', 'epochs': 3, 'bf16': old})
    assert T.hashed_params({**base, 'precision': 'fp16'})['precision'] == 'fp16'
    d = tmp_path/'old-run'; d.mkdir()
    old_params = {k: v for k, v in T.jsonable(vars(T.TrainConfig(device='cpu'))).items() if k != 'precision'}
    (d/'params.json').write_text(json.dumps({**old_params, 'bf16': True}))
    assert T.run_config(T.Run(d)).precision == 'bf16'


def test_a_step_that_cannot_scale_its_loss_refuses_fp16():
    "SAM's two passes step outside the gradient scaler: fp16 asked for is an error naming both; bf16 and fp32 train."
    data = tiny_data()
    with pytest.raises(ValueError, match=r"precision='fp16' with step='sam': this step cannot scale its loss"):
        T.Trainer(T.build_model(replace(CFG, step='sam'), 3), data, replace(CFG, step='sam', precision='fp16'))
    trainer = T.Trainer(T.build_model(CFG, 3), data, replace(CFG, step='sam', precision='bf16'))
    assert trainer.dtype == torch.bfloat16 and not trainer.scaler.is_enabled()


IMPORT_ALL = ("import importlib, pkgutil, sys, lt_workbook\n"
              "for m in pkgutil.iter_modules(lt_workbook.__path__):\n"
              "    if m.name not in SKIP: importlib.import_module(f'lt_workbook.{m.name}')\n")

def fresh_python(before:str='', after:str='', timeout=300, skip:tuple=()):
    "Run `before`, every module of the package but `skip` imported, then `after` in a new interpreter: its CompletedProcess."
    import subprocess
    code = f'SKIP = {tuple(skip)!r}\n' + before + IMPORT_ALL + after
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout)


def test_every_module_imports_without_the_extras():
    "A plain `pip install -e .` (no JupyterLab, submitit, TensorBoard, W&B): every module imports, and `--executor slurm` says what to install."
    extras = ('jupyterlab', 'submitit', 'submitit.helpers', 'tensorboard', 'torch.utils.tensorboard', 'wandb')
    res = fresh_python(f"import sys\nfor m in {extras}: sys.modules[m] = None\n",
                       "from lt_workbook import runner\ntry: runner.slurm_module()\nexcept ValueError as e: print(e)\n")
    assert res.returncode == 0 and "--executor slurm needs submitit: pip install -e '.[slurm]'" in res.stdout, res.stderr[-2000:]


def test_long_epochs_show_their_batches(capsys, monkeypatch):
    "An epoch of at least `BATCH_PROGRESS_MIN` batches has its own bar (text in a batch run): batches done of all."
    monkeypatch.setenv('LT_WORKBOOK_PROGRESS', 'text')
    monkeypatch.delenv('TQDM_DISABLE', raising=False)
    monkeypatch.setattr(T, 'TEXT_PROGRESS_INTERVAL', 0)
    data = tiny_data()
    n = -(-len(data.train.labels) // CFG.batch_size)
    monkeypatch.setattr(T, 'BATCH_PROGRESS_MIN', n)
    T.Trainer(T.build_model(CFG, 3), data, replace(CFG, epochs=1)).fit()
    err = capsys.readouterr().err
    assert f'epoch 0: 100%' in err and f'{n}/{n} ' in err and 'batch/s' in err, err[-1000:]
    monkeypatch.setattr(T, 'BATCH_PROGRESS_MIN', n + 1)   # one batch fewer than the threshold: no epoch bar
    T.Trainer(T.build_model(CFG, 3), data, replace(CFG, epochs=1)).fit()
    assert 'epoch 0:' not in capsys.readouterr().err


def test_importing_the_library_leaves_plotly_renderers_unbuilt():
    """Importing every module of the library does not build plotly's renderer registry: building it imports nbformat and,
    through jsonschema, rfc3987-syntax's grammar (about 2 s of CPU), which a CLI call, a rank or a Slurm job never needs.
    The first figure a process draws registers the workbook's renderer (`figure_renderers`). Nor does it import torchvision
    (which imports torch._dynamo, about 2 s) or scipy.stats (1.4 s): the functions that need them import them. Except
    `engine`, papermill's engine: it is imported where papermill executes a notebook, and papermill imports nbformat."""
    res = fresh_python(skip=('engine',), after="heavy = [m for m in ('nbformat', 'torchvision', 'scipy.stats', 'torch._dynamo') if m in sys.modules]\n"
                             "assert not heavy, f'imported on import: {heavy}'\n"
                             "from lt_workbook.plots import figure_bundle\nimport plotly.graph_objects as go\n"
                             "assert 'text/html' in figure_bundle(go.Figure()) and 'nbformat' in sys.modules\n")
    assert res.returncode == 0, res.stderr[-2000:]


def test_no_exported_name_is_defined_in_two_modules():
    "Each name of the library's API has one home: no two modules export (`__all__`) the same name."
    import collections, importlib, pkgutil, lt_workbook
    homes = collections.defaultdict(list)
    for m in pkgutil.iter_modules(lt_workbook.__path__):
        for name in getattr(importlib.import_module(f'lt_workbook.{m.name}'), '__all__', []): homes[name].append(m.name)
    assert {n: ms for n, ms in homes.items() if len(ms) > 1} == {}


def test_no_module_registers_anything_on_import():
    """The registries (`ARCHS`, `CLASSIFIERS`, `STEPS`, `SECOND_STAGES`, `METHODS`) are complete tables in 01: importing
    every module leaves them as they were (a later module's entry is a reference, resolved on lookup to its object)."""
    res = fresh_python("import lt_workbook.training as T\n"
                       "tables = ('ARCHS', 'CLASSIFIERS', 'STEPS', 'SECOND_STAGES', 'METHODS')\n"
                       "before = {t: dict(dict.items(getattr(T, t))) for t in tables}\n",
                       "assert {t: dict(dict.items(getattr(T, t))) for t in tables} == before, 'a module changed a registry'\n"
                       "from lt_workbook.reslt import reslt_net, RESLT_STEP\n"
                       "assert T.ARCHS['reslt'] is reslt_net and T.STEPS['reslt'] is RESLT_STEP\n")
    assert res.returncode == 0, res.stderr[-2000:]

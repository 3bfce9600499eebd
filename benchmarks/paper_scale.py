"""Time to paper scale: minutes per run of each paper's recipe, projected from a few timed training steps.

Data: synthetic CIFAR-10-LT-shaped tensors (the speed of a step does not depend on the pixels): 12,406 uint8 3x32x32
training images with the ratio-100 class counts of `lt_counts(5000, 10, 100)` (5000..50) and a balanced 10,000-image
test set, both on the device; batches are the workbook's device-side `batches` (crop + flip + normalize on the device).

Methods, each built with the workbook's own config helpers and settings from the paper-scale configs in configs/:
  ce, ldam_drw  ResNet-32, `method_config` (configs/training_cifar10lt.yaml)
  reslt         `reslt_config` on ResNet-32, step 'reslt' (configs/reslt_cifar10lt.yaml)
  ccsam         CC-SAM stage 1: `method_config('ccsam')`, step 'ccsam' with mixup (configs/ccsam_cifar10lt.yaml)
  bbn           BBN + DARTS bilateral search 'hls': `bilateral_search_config` + `BilateralArchitect` (configs/bbn_darts_cifar10lt.yaml)
  search        LT-DARTS search: `search_config` + `Architect` on `search_halves` (configs/ltdarts_cifar10lt_r100.yaml)
  retrain       the genotype's network from scratch: `retrain_config` (GenotypeNet at the config's parameter budget)

Per method: `--warmup` steps, then `--steps` timed steps, both as `Trainer.train_epoch` (the real epoch loop: device-side
batches, the registered step, the per-step non-finite-loss check, the epoch's loss/accuracy sums) on an epoch cut to its
first batches; then `Trainer.evaluate` of the test set once untimed (kernels, autotuning) and once timed. The epoch time
is PROJECTED: seconds/step x steps/epoch (ceil(train images / batch), as `Sampler.epoch`) + one evaluation per epoch;
x the config's epochs = minutes per run (the column 'cfg eval' evaluates only at the config's `eval_every` instead).
Not timed: the notebooks' per-epoch analysis callbacks (search tracker, head geometry, the search's Hessian every
`hessian_every` epochs, BBN's mu sweep), checkpoint writing, and second stages (cRT, CC-SAM stage 2).

    python benchmarks/paper_scale.py [--device auto|cpu|cuda] [--methods ce ldam_drw ...] [--steps 30] [--warmup 5]
                                     [--batch-size N] [--test-size 10000] [--genotype LTDARTS_MNIST5K_R100] [--json out.json]
    OMP_NUM_THREADS=1 python benchmarks/paper_scale.py --device cpu --steps 2 --warmup 1 --batch-size 16 --test-size 256
"""
import argparse, json, math, time, traceback
from pathlib import Path
import torch, yaml
from lt_workbook.data import CIFAR, ImageSet, LTDataset, lt_counts, train_val_split
from lt_workbook.training import TrainConfig, Trainer, build_model, count_params, is_due, method_config, pick_device
from lt_workbook.darts import Architect, SEARCH_SPACES, resolve_genotype, retrain_config, search_config, search_halves
from lt_workbook.bbn_darts import BilateralArchitect, bilateral_architect_config, bilateral_search_config
from lt_workbook.reslt import ResLTSetting, reslt_config

CONFIGS = Path(__file__).resolve().parents[1]/'configs'
def config(name): return name, yaml.safe_load((CONFIGS/f'{name}.yaml').read_text())

def synthetic_cifar10lt(n_test:int, device)->LTDataset:
    "CIFAR-10-LT at ratio 100 in shape and counts (random pixels), as the `LTDataset` `load_dataset` returns, on `device`."
    counts = lt_counts(5000, 10, 100)
    assert counts[0] == 5000 and counts[-1] == 50 and sum(counts) == 12_406, counts
    g = torch.Generator().manual_seed(0)
    labels = torch.repeat_interleave(torch.arange(10), torch.tensor(counts))
    train = ImageSet(torch.randint(0, 256, (len(labels), 3, 32, 32), dtype=torch.uint8, generator=g), labels)
    test = ImageSet(torch.randint(0, 256, (n_test, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n_test) % 10)
    spec = CIFAR['cifar10']
    return LTDataset('synthetic_cifar10lt', train.to(device), test.to(device), [f'class{i}' for i in range(10)], spec['mean'],
                     spec['std'], spec=dict(dataset='synthetic_cifar10lt', imbalance_ratio=100.0))

def schedule(c, a, **over):
    "The training settings a paper-scale config names (batch overridden by --batch-size)."
    kw = {k: c[k] for k in ('epochs', 'batch_size', 'lr', 'weight_decay', 'warmup_epochs', 'schedule', 'lr_decay',
                            'drw_epoch', 'eval_every') if k in c}
    kw.update(milestones=tuple(c.get('milestones', ())), device=a.device, compile=a.compile, **over)
    return {**kw, 'batch_size': a.batch_size or kw['batch_size']}

# Each builder returns (trainer, config file it read); the trainer's cfg.epochs are the paper's epochs.
def ce(data, a, method='ce'):
    src, c = config('training_cifar10lt')
    cfg = method_config(method, **schedule(c, a))
    return Trainer(build_model(cfg, 10), data, cfg), src

def ldam_drw(data, a): return ce(data, a, 'ldam_drw')

def reslt(data, a):
    src, c = config('reslt_cifar10lt')
    base = TrainConfig(method='ce', arch=c['backbone'], arch_kw=dict(c['backbone_kw']), loss=c['loss'], group_split=c['group_split'],
                       **schedule(c, a))
    setting = ResLTSetting(num_groups=c['num_groups'], grouping=c['grouping'], group_bounds=c['group_bounds'], branch=c['branch'],
                           fusion=c['fusion'], class_sets=c['class_sets'], alpha=c['alpha'], branch_norm=c['branch_norm'],
                           log_eps=c['log_eps'])
    cfg = reslt_config(base, setting, data.counts)
    return Trainer(build_model(cfg, 10), data, cfg), src

def ccsam(data, a):
    src, c = config('ccsam_cifar10lt')
    step_kw = {k: c[k] for k in ('noise_ratio', 'flat_ratio', 'perturb', 'radius', 'weighting')}
    cfg = method_config('ccsam', arch='cifar_resnet', arch_kw=dict(blocks=c['blocks'], widths=list(c['widths'])),
                        mixup_alpha=c['mixup_alpha'], step_kw=step_kw, **schedule(c, a))
    return Trainer(build_model(cfg, 10), data, cfg), src   # stage 1 only: Trainer never runs `second_stage`

def bbn(data, a):
    src, c = config('bbn_darts_cifar10lt')
    bs = a.batch_size or c['batch_size']
    cfg = bilateral_search_config('hls', 0, SEARCH_SPACES[c['search_space']], c['init_channels'], c['layers'], c['steps'],
                                  c['stem_stride'], epochs=c['epochs'], batch_size=bs, lr=c['lr'], lr_min=c['lr_min'],
                                  weight_decay=c['weight_decay'], group_split=c['group_split'], device=a.device)
    akw = bilateral_architect_config('hls', batch_size=bs, **{k: c[k] for k in (
        'arch_lr_backbone', 'arch_lr_ins', 'arch_lr_cls', 'arch_weight_decay', 'schedule', 't_start', 'cls_sampler', 'tau')})
    tr_idx, va_idx = train_val_split(data.train.labels, val_fraction=1 - c['train_portion'], seed=0)   # as notebook 05
    model = build_model(cfg, 10)
    arch = BilateralArchitect(model, data.train.subset(va_idx), **akw)
    return Trainer(model, data.train_subset(tr_idx), cfg, step=arch.step, callbacks=[arch]), src

def search(data, a):
    src, c = config('ltdarts_cifar10lt_r100')
    bs = a.batch_size or c['batch_size']
    cfg = search_config(f"{c['search_space']}_{c['classifier']}", SEARCH_SPACES[c['search_space']], c['classifier'], 0,
                        dict(C=c['init_channels'], layers=c['layers'], stem_stride=c['stem_stride']),
                        epochs=c['search_epochs'], batch_size=bs, device=a.device)
    weights, val = search_halves(data, c.get('train_portion', 0.5), 0)    # notebook 04: half for the weights, half for the alphas
    model = build_model(cfg, 10)
    arch = Architect(model, val, order=c.get('order', 1), lr=c['arch_lr'], batch_size=bs)   # first order: notebook 04's default
    return Trainer(model, weights, cfg, step=arch.step, callbacks=[arch]), src

def retrain(data, a):
    src, c = config('ltdarts_cifar10lt_r100')
    train = dict(epochs=c['retrain_epochs'], batch_size=a.batch_size or c['retrain_batch_size'], lr=c['retrain_lr'],
                 weight_decay=c['retrain_weight_decay'], schedule='cosine', warmup_epochs=c['retrain_warmup_epochs'],
                 eval_every=max(1, c['retrain_epochs'] // 2), device=a.device)   # notebook 04's retrain_base
    cfg = retrain_config(resolve_genotype(a.genotype), c['retrain_methods'][0], 0, c['target_params'], c['retrain_layers'],
                         10, a.genotype.lower(), **train)
    return Trainer(build_model(cfg, 10), data, cfg), src

METHODS = {'ce': ('ResNet-32 CE', ce), 'ldam_drw': ('LDAM-DRW', ldam_drw), 'reslt': ('ResLT', reslt),
           'ccsam': ('CC-SAM stage 1', ccsam), 'bbn': ('BBN bilateral (hls)', bbn), 'search': ('LT-DARTS search', search),
           'retrain': ('genotype retrain', retrain)}

class FirstBatches:
    "The trainer's own sampler, its epochs cut to their first `n` batches (the draws and batches are the real ones)."
    def __init__(self, sampler, n): self.sampler, self.n = sampler, n
    def __len__(self): return len(self.sampler)
    def epoch(self, batch_size, generator): return self.sampler.epoch(batch_size, generator)[:self.n]

def measure(trainer, a, sync):
    """Seconds per step and per evaluation. The steps run inside `Trainer.train_epoch` (not a loop of our own around
    `trainer.step`): so the timed cost is the real epoch's per step, with the batch drawing and augmentation, the step
    (architect, CC-SAM, ...), the trainer's non-finite-loss check (a device sync per step on CUDA) and its running sums.
    The epoch hooks of the trainer's callbacks (the architect's batch streams) run inside the timed region too."""
    full = trainer.sampler
    def epoch(epoch, n):
        trainer.sampler = FirstBatches(full, n)
        sync(); t = time.perf_counter()
        for cb in trainer.callbacks: cb.before_epoch(trainer, epoch)
        trainer.train_epoch(epoch)
        for cb in trainer.callbacks: cb.after_epoch(trainer, epoch, {})
        sync(); return time.perf_counter() - t
    warmup_s = epoch(0, a.warmup)                         # allocator, cuDNN autotuning, oneDNN kernels (and compiling)
    step_s = epoch(1, a.steps) / a.steps
    trainer.sampler = full
    n = len(trainer.eval_set)
    trainer.evaluate(trainer.eval_set.subset(torch.arange(min(n, 512 + n % 512))))   # warm-up: the batch shapes of the full evaluation
    sync(); t = time.perf_counter(); trainer.evaluate(); sync()
    return step_s, time.perf_counter() - t, warmup_s

def run_method(key, data, a, dev, sync):
    name, build = METHODS[key]
    if dev.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    trainer, src = build(data, a)
    cfg = trainer.cfg
    full_batches = len(trainer.train_set) // cfg.batch_size
    if max(a.warmup, a.steps) > full_batches:   # each is the start of an epoch of its own: whole batches only
        raise ValueError(f"--warmup {a.warmup} / --steps {a.steps}: more than the {full_batches} full batches of an epoch")
    step_s, eval_s, warmup_s = measure(trainer, a, sync)
    steps = math.ceil(len(trainer.train_set) / cfg.batch_size)
    epoch_s = step_s * steps + eval_s
    evals = sum(is_due(e, cfg.eval_every, cfg.epochs) for e in range(cfg.epochs))
    return dict(method=key, name=name, config=f'configs/{src}.yaml', paper_epochs=cfg.epochs, batch_size=cfg.batch_size,
                train_images=len(trainer.train_set), steps_per_epoch=steps, sec_per_step=step_s, eval_images=len(trainer.eval_set),
                eval_sec=eval_s, epoch_sec=epoch_s, minutes=epoch_s * cfg.epochs / 60, eval_every=cfg.eval_every,
                minutes_config_eval=(step_s * steps * cfg.epochs + eval_s * evals) / 60, params=count_params(trainer.model),
                bf16=trainer.dtype == torch.bfloat16, channels_last=trainer.channels_last, compile=cfg.compile, warmup_sec=warmup_s, arch=cfg.arch,
                step=getattr(trainer.step, '__qualname__', cfg.step),
                peak_gb=torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else None)

def target(results, keys, limit):
    if any(k not in results for k in keys): return None, 'n/a (not measured)'
    v = sum(results[k]['minutes'] for k in keys)
    return v, f"{v:.1f} min <= {limit} min: {'met' if v <= limit else 'missed'}"

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS))
    ap.add_argument('--steps', type=int, default=None, help='timed steps per method (default: 30 on CUDA, 3 on CPU)')
    ap.add_argument('--warmup', type=int, default=5, help='untimed steps before them')
    ap.add_argument('--batch-size', type=int, default=None, help="every method's batch (default: each config's; a trial's size)")
    ap.add_argument('--test-size', type=int, default=10_000, help='images of the balanced synthetic test set')
    ap.add_argument('--genotype', default='LTDARTS_MNIST5K_R100', help='the cell retrained (a name of GENOTYPES)')
    ap.add_argument('--compile', action='store_true', help="torch.compile the network (TrainConfig.compile) of the methods built from a config's schedule (ce, ldam_drw, reslt, ccsam)")
    ap.add_argument('--json', help='write every number to this file (after each method)')
    a = ap.parse_args()
    if a.warmup < 1 or (a.steps is not None and a.steps < 1): ap.error('--warmup and --steps: expected >= 1')
    dev = pick_device(a.device); a.device = str(dev)
    a.steps = a.steps or (30 if dev.type == 'cuda' else 3)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    dname = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'cpu ({torch.get_num_threads()} threads)'
    data = synthetic_cifar10lt(a.test_size, dev)
    print(f"Time to paper scale on {dname}, torch {torch.__version__}: synthetic CIFAR-10-LT r100 ({len(data.train):,} train "
          f"{data.counts.tolist()}, {len(data.test):,} test) on the device; epoch time PROJECTED from {a.steps} timed steps "
          f"(after {a.warmup} warm-up) + one timed evaluation per epoch", flush=True)
    results = {}
    def save():
        if not a.json: return
        checks = {'resnet32_ce_200_epochs': target(results, ['ce'], 2), 'ltdarts_pipeline': target(results, ['search', 'retrain'], 60)}
        Path(a.json).write_text(json.dumps(dict(device=dname, device_type=dev.type, torch=torch.__version__, steps=a.steps,
            warmup=a.warmup, test_size=a.test_size, genotype=a.genotype, compile=a.compile, train_counts=data.counts.tolist(),
            methods=results, failed=[k for k in a.methods if k not in results],
            targets={k: dict(minutes=v, verdict=t) for k, (v, t) in checks.items()}), indent=1))
    for k in a.methods:
        t0 = time.perf_counter()
        try:
            r = results[k] = run_method(k, data, a, dev, sync)
            print(f"  {r['name']:20s} {r['sec_per_step'] * 1e3:9.1f} ms/step x {r['steps_per_epoch']} steps + eval "
                  f"{r['eval_sec']:.2f} s = {r['epoch_sec']:.1f} s/epoch x {r['paper_epochs']} epochs ({r['config']}) = "
                  f"{r['minutes']:.1f} min  [bf16 {r['bf16']}, channels_last {r['channels_last']}, {time.perf_counter() - t0:.0f} s]", flush=True)
        except Exception:
            print(f"  {METHODS[k][0]}: FAILED\n{traceback.format_exc()}", flush=True)
        save()
    print(f"\n{dname}, torch {torch.__version__}; epoch = projected from {a.steps} timed steps; 'cfg eval': evaluating only "
          f"every config's eval_every epochs")
    print(f"  {'method':20s} {'batch':>5} {'params':>9} {'ms/step':>9} {'steps':>5} {'eval s':>7} {'s/epoch':>8} {'epochs':>6} "
          f"{'min/run':>8} {'cfg eval':>8} {'bf16':>5} {'NHWC':>5} {'peak GB':>7}")
    for r in results.values():
        peak = f"{r['peak_gb']:7.2f}" if r['peak_gb'] is not None else f"{'-':>7}"
        print(f"  {r['name']:20s} {r['batch_size']:5d} {r['params']:9,d} {r['sec_per_step'] * 1e3:9.1f} {r['steps_per_epoch']:5d} "
              f"{r['eval_sec']:7.2f} {r['epoch_sec']:8.1f} {r['paper_epochs']:6d} {r['minutes']:8.1f} {r['minutes_config_eval']:8.1f} "
              f"{str(r['bf16']):>5} {str(r['channels_last']):>5} {peak}")
    checks = {'resnet32_ce_200_epochs': target(results, ['ce'], 2), 'ltdarts_pipeline': target(results, ['search', 'retrain'], 60)}
    print(f"  target ResNet-32 CE, {results['ce']['paper_epochs'] if 'ce' in results else 200} epochs: {checks['resnet32_ce_200_epochs'][1]}")
    print(f"  target LT-DARTS pipeline (search + retrain): {checks['ltdarts_pipeline'][1]}")

if __name__ == '__main__':
    main()

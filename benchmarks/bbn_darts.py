"""One bilateral (BBN + DARTS, Alg. 1) search step against one single-branch DARTS step at the same per-branch batch.

Single-branch: notebook 04's `Supernet` (stem + `--layers` search cells + linear classifier) and `Architect.step`, an
architecture step on a validation batch of B images then the weight step on a training batch of B images.
Bilateral: notebook 05's `BilateralSupernet` (the same stem and cells, plus two one-cell heads) and
`BilateralArchitect.step`: the architecture step on an instance and a class-sampling validation batch (B each), then
the weight step on an instance and a class-sampling training batch (B each), with the mixed loss. So the bilateral step moves
two batches through one backbone and each through its own one-cell head, against one batch through the backbone.

Both run in one process inside their `Trainer`s (the notebooks' own code path), on the same instance batch, with the
mixing ratio of mid-training (mu = 0.75, every loss term counted); rounds alternate the two steps and the median of the
per-round time ratios is printed (target: <= 2.3x). On CUDA a step's time is wall-clock time (synchronized); on CPU it
is the process's CPU time (`--clock wall` for wall-clock), which a machine shared with other jobs disturbs far less.

`--cells` compares instead the bilateral step with the supernet's edges batched (`BatchedSearchCell`, the default)
against the same step with one edge at a time (`batched=False`), both on the same weights: the per-round time ratio
and the leaf ATen operations of one step of each (`torch.profiler`; each is a kernel launch on a GPU).

    python benchmarks/bbn_darts.py [--device cpu|cuda] [--layers 8] [--C 16] [--steps 4] [--batch-size 32] [--rounds 5]
                                   [--order 1] [--stem-stride 1] [--clock cpu|wall] [--cells]
"""
import argparse, statistics, time
import torch
from lt_workbook.data import load_dataset
from lt_workbook.training import TrainConfig, Trainer, build_model, pick_device, count_params, epoch_generators
from lt_workbook.darts import Architect, SEARCH_SPACES
from lt_workbook.bbn_darts import BilateralArchitect

def setup(a, dev, data, bilateral:bool, clock, batched:bool=True):
    "A trainer whose step is the single-branch or the bilateral search step; returns a function that runs one step."
    kw = dict(primitives=list(SEARCH_SPACES['darts']), C=a.C, layers=a.layers, steps=a.steps, multiplier=a.steps,
              stem_stride=a.stem_stride, batched=batched)
    cfg = TrainConfig(arch='bilateral_supernet' if bilateral else 'supernet', epochs=4, batch_size=a.batch_size, lr=0.02,
                      lr_min=0.001, schedule='cosine', momentum=0.9, weight_decay=3e-4, grad_clip=5., device=str(dev),
                      channels_last=True, precision='auto', arch_kw=kw)
    model = build_model(cfg, data.num_classes)
    akw = dict(order=a.order, batch_size=a.batch_size, lr=0.02)   # Sec. V-A's architecture learning rate
    architect = (BilateralArchitect(model, data.train, schedule='parabolic', hls=True, **akw) if bilateral
                 else Architect(model, data.train, **akw))
    trainer = Trainer(model, data, cfg, step=architect.step, callbacks=[architect])
    trainer.generator, trainer.np_rng = epoch_generators(0, 1, trainer.device)
    trainer.net.train()
    g = torch.Generator(device=dev).manual_seed(0)
    x = trainer.to_input(torch.randn(a.batch_size, 3, 32, 32, device=dev, generator=g))
    y = torch.randint(0, data.num_classes, (a.batch_size,), device=dev, generator=g)
    def step():
        architect.before_epoch(trainer, 1)     # fresh batch streams (Alg. 1: t = 2, mu = 1 - (2/4)^2 = 0.75), outside the timed region
        sync(dev); t = clock()
        architect.step(trainer, x, y)
        sync(dev); return clock() - t
    return step, model

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

def leaf_ops(step)->int:
    "Leaf ATen operations (`aten::` events with no `aten::` child) of one call of `step`."
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]) as prof: step()
    return sum(e.name.startswith('aten::') and not any(c.name.startswith('aten::') for c in e.cpu_children) for e in prof.events())

def compare_cells(a, dev, data, clock):
    "The bilateral step with batched cells against per-edge cells (same seed, so the same weights): time ratio and operations."
    steps = {}
    for batched in (True, False):
        torch.manual_seed(0); steps[batched], _ = setup(a, dev, data, True, clock, batched)
    for s in steps.values(): s()          # warm-up
    times = {True: [], False: []}
    for _ in range(a.rounds):
        for b in (False, True): times[b].append(steps[b]())
    ratios = [p / b for b, p in zip(times[True], times[False])]
    ops = {b: leaf_ops(steps[b]) for b in (True, False)}
    print(f"  bilateral step, per-edge cells: {1000 * statistics.median(times[False]):9.1f} ms, {ops[False]:,} leaf ATen operations")
    print(f"  bilateral step, batched cells:  {1000 * statistics.median(times[True]):9.1f} ms, {ops[True]:,} leaf ATen operations")
    print(f"  batched: {statistics.median(ratios):.2f}x faster (median of paired rounds; per round {[round(x, 2) for x in ratios]}), "
          f"{ops[True] / ops[False]:.2f}x the operations")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--layers', type=int, default=8)
    ap.add_argument('--C', type=int, default=16); ap.add_argument('--steps', type=int, default=4)
    ap.add_argument('--batch-size', type=int, default=None, help='per branch (default: 128 on CUDA as the paper, 32 on CPU)')
    ap.add_argument('--rounds', type=int, default=5); ap.add_argument('--order', type=int, default=1, choices=(1, 2))
    ap.add_argument('--stem-stride', type=int, default=1)
    ap.add_argument('--clock', choices=('cpu', 'wall'), default=None, help='default: wall on CUDA, cpu (process time) on CPU')
    ap.add_argument('--cells', action='store_true', help='compare batched against per-edge cells in the bilateral step')
    a = ap.parse_args()
    dev = pick_device(a.device)
    a.clock = a.clock or ('wall' if dev.type == 'cuda' else 'cpu')
    clock = time.perf_counter if a.clock == 'wall' else time.process_time
    a.batch_size = a.batch_size or (128 if dev.type == 'cuda' else 32)
    data = load_dataset('mnist5k', imbalance_ratio=100)
    name = torch.cuda.get_device_name() if dev.type == 'cuda' else f'cpu ({torch.get_num_threads()} threads)'
    if a.cells:
        print(f"{name}, torch {torch.__version__}: {a.layers} cells, C={a.C}, batch {a.batch_size} per branch, order {a.order}, "
              f"stem stride {a.stem_stride}, {a.rounds} alternating rounds, {a.clock} time")
        return compare_cells(a, dev, data, clock)
    torch.manual_seed(0)
    single, m1 = setup(a, dev, data, False, clock)
    bilateral, m2 = setup(a, dev, data, True, clock)
    single(); bilateral()                 # warm-up (allocator, oneDNN / cuDNN kernels)
    times = {'single': [], 'bilateral': []}
    for _ in range(a.rounds):
        times['single'].append(single()); times['bilateral'].append(bilateral())
    ratios = [b / s for s, b in zip(times['single'], times['bilateral'])]
    print(f"{name}, torch {torch.__version__}: {a.layers} cells, C={a.C}, {a.steps} nodes per cell, batch {a.batch_size} per branch, "
          f"order {a.order}, stem stride {a.stem_stride}, {a.rounds} alternating rounds, {a.clock} time")
    print(f"  single-branch DARTS step ({count_params(m1):,} weights): {1000 * statistics.median(times['single']):9.1f} ms")
    print(f"  bilateral step        ({count_params(m2):,} weights): {1000 * statistics.median(times['bilateral']):9.1f} ms")
    r = statistics.median(ratios)
    print(f"  bilateral / single-branch: {r:.2f}x (median of paired rounds; per round {[round(x, 2) for x in ratios]}); "
          f"target <= 2.3x: {'met' if r <= 2.3 else 'NOT met'}")

if __name__ == '__main__': main()

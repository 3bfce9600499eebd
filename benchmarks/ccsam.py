"""Cost of CC-SAM's stage-1 step (nbs/07_ccsam_landscapes.ipynb) against a plain CE step, ResNet-32.

Three steps of the 01 `Trainer`, each on its own copy of the same ResNet-32 (linear head), on the same batches:
`plain` (`standard_step`: forward, CE, backward, SGD), `ccsam` (`CCSAMStep`, classifier perturbation in closed form,
vectorized over the batch's classes) and `loop` (`CCSAMStep(vectorized=False)`: the published algorithm, one autograd
call and one head evaluation per class of the batch). Labels are drawn from a long-tailed profile (ratio 100) over
`C` classes, so a batch holds many classes at C = 100 and up to `batch_size` distinct ones at C = 1000. The three are
timed alternately in one process (`--rounds` rounds of `--steps` steps each, after a warm-up); per round the ratios
to `plain` and the differences from it are formed; the medians of the ratios are printed, and the overhead ratio is
the median added time of `ccsam` over that of `loop`.

Targets (issue 8): ccsam / plain <= 1.05 at 10 and 100 classes; the vectorized overhead <= 1/3 of the loop's at 100.

On a shared CPU a step of ResNet-32 at batch 128 takes seconds and varies by several percent from one step to the
next, more than the overhead itself (about 1 ms vectorized, 25 ms for the loop at 100 classes), so the step-level
overhead ratio is noisy there. The overhead is
also measured in isolation, precisely: everything a CC-SAM step adds to a plain one happens on the head side (the
backbone's forward and backward run once either way; the perturbed loss's gradient reaches the features and joins the
plain one there), so the head-side work of each step, from the batch's features (forward of the loss or losses and
backward to the head and the features), is timed alternately over `--head-reps` repetitions. On a CPU the clock is
the process's CPU time by default (`--clock auto`): other processes on the machine then stretch neither side of a pair;
run it with one thread (OMP_NUM_THREADS=1) so that no thread's spin-waiting is counted.

    python benchmarks/ccsam.py [--device cpu|cuda] [--classes 10 100] [--rounds 15] [--steps 1] [--batch-size 128] [--clock cpu|wall]
                               [--radius per_tensor|joint]
    python benchmarks/ccsam.py --device cuda --classes 100 1000 --rounds 20 --steps 10
"""
import argparse, copy, statistics, time
import torch
import torch.nn.functional as F
from lt_workbook.data import ImageSet, LTDataset, lt_counts
from lt_workbook.training import TrainConfig, Trainer, standard_step, pick_device, resnet32
from lt_workbook.ccsam import CCSAMStep, class_conditional_loss, class_conditional_loss_loop, soft_targets, soft_cross_entropy, RADII

def trainer_for(model, C, counts, cfg):
    "A `Trainer` around `model` (one stand-in image per class: only the steps are timed), with long-tailed `counts`."
    one = ImageSet(torch.zeros(C, 3, 32, 32, dtype=torch.uint8), torch.arange(C))
    trainer = Trainer(model, LTDataset('bench', one, one, list(range(C))), cfg)
    trainer.counts = torch.as_tensor(counts)
    trainer.net.train()
    return trainer

times_plain_step = {}
clock = time.perf_counter

def measure(C, a, dev):
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    counts = lt_counts(500 if C <= 100 else 100, C, 100.)
    cfg = TrainConfig(device=str(dev), lr=0.01, batch_size=a.batch_size)
    torch.manual_seed(0)
    base = resnet32(C)
    steps = {'plain': standard_step, 'ccsam': CCSAMStep(radius=a.radius), 'loop': CCSAMStep(vectorized=False, radius=a.radius)}
    trainers = {k: trainer_for(copy.deepcopy(base), C, counts, cfg) for k in steps}
    tr0 = trainers['plain']
    g = torch.Generator().manual_seed(1)
    probs = torch.tensor(counts, dtype=torch.float)
    data = [(tr0.to_input(torch.randn(a.batch_size, 3, 32, 32, generator=g).to(dev)),
             torch.multinomial(probs, a.batch_size, replacement=True, generator=g).to(dev)) for _ in range(a.steps)]
    present = statistics.mean(len(y.unique()) for _, y in data)
    def run(k):
        sync(); t = clock()
        for x, y in data: steps[k](trainers[k], x, y)
        sync(); return (clock() - t) / a.steps
    for k in steps: run(k)   # warm-up (allocator, cuDNN autotuning)
    times = {k: [] for k in steps}
    for _ in range(a.rounds):
        for k in steps: times[k].append(run(k))
    times_plain_step[C] = times['plain']
    med = lambda v: statistics.median(v)
    ratio = {k: med([t / p for t, p in zip(times[k], times['plain'])]) for k in ('ccsam', 'loop')}
    added = {k: med([t - p for t, p in zip(times[k], times['plain'])]) for k in ('ccsam', 'loop')}   # paired differences
    over = added['ccsam'] / added['loop'] if added['loop'] > 0 else float('nan')
    print(f"  C={C:5d} ({present:5.1f} classes per batch): plain {1e3 * med(times['plain']):8.1f} ms | "
          f"ccsam {ratio['ccsam']:.3f}x (target <= 1.05) | loop {ratio['loop']:.3f}x | "
          f"overhead ccsam/loop {over:.3f} (target <= 0.333) | "
          f"overhead per class: ccsam {1e3 * added['ccsam'] / present:+.3f} ms, loop {1e3 * added['loop'] / present:+.3f} ms")
    head_side(C, a, dev, trainers['plain'], data, counts, present)

def head_side(C, a, dev, trainer, data, counts, present):
    "The head-side work of each step on fixed features: plain CE, CE + vectorized CC-SAM loss, CE + per-class loop."
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    x, y = data[0]
    with torch.no_grad(), trainer.autocast(): f0 = trainer.model.features(x).float()
    head, n = trainer.model.classifier, torch.as_tensor(counts, device=dev)
    T = soft_targets(y, y, None, C)
    def plain(f): return F.cross_entropy(F.linear(f, head.weight, head.bias), y)
    def vec(f): return 0.7 * plain(f) + 0.3 * class_conditional_loss(f, head.weight, head.bias, y, T, n, 1e-6, a.radius)[0]
    def loop(f):
        z = F.linear(f, head.weight, head.bias)
        at = lambda idx, eps: F.linear(f[idx], head.weight + eps[0], head.bias + eps[1])
        flat = class_conditional_loss_loop(soft_cross_entropy(z, T), [head.weight, head.bias], y, n, 1e-6, at, a.radius)[0]
        return 0.7 * F.cross_entropy(z, y) + 0.3 * flat
    fns = {'plain': plain, 'ccsam': vec, 'loop': loop}
    def run(fn, reps):
        sync(); t = clock()
        for _ in range(reps):
            f = f0.clone().requires_grad_(True)
            head.zero_grad(set_to_none=True); fn(f).backward()
        sync(); return (clock() - t) / reps
    for fn in fns.values(): run(fn, 2)
    times = {k: [] for k in fns}
    for _ in range(a.head_reps):
        for k, fn in fns.items(): times[k].append(run(fn, 5))
    med = {k: statistics.median(v) for k, v in times.items()}
    over = {k: med[k] - med['plain'] for k in ('ccsam', 'loop')}
    print(f"           head side alone: plain {1e3 * med['plain']:.3f} ms, added by ccsam {1e3 * over['ccsam']:.3f} ms, "
          f"by loop {1e3 * over['loop']:.3f} ms ({1e3 * over['loop'] / present:.3f} ms per class present): "
          f"overhead ccsam/loop {over['ccsam'] / over['loop']:.3f} (target <= 0.333); "
          f"step with this overhead: ccsam {1 + over['ccsam'] / statistics.median(times_plain_step[C]):.4f}x, "
          f"loop {1 + over['loop'] / statistics.median(times_plain_step[C]):.4f}x")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--classes', type=int, nargs='+', default=[10, 100])
    ap.add_argument('--rounds', type=int, default=15); ap.add_argument('--steps', type=int, default=1)
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--head-reps', type=int, default=21)
    ap.add_argument('--radius', choices=RADII, default='per_tensor', help="CC-SAM's radius: the public code's per tensor, or Eq. 8's joint")
    ap.add_argument('--clock', choices=('auto', 'cpu', 'wall'), default='auto', help='auto: CPU time on a CPU, wall time on a GPU')
    a = ap.parse_args()
    dev = pick_device(a.device)
    global clock
    cpu_clock = a.clock == 'cpu' or (a.clock == 'auto' and dev.type == 'cpu')
    clock = time.process_time if cpu_clock else time.perf_counter
    print(f"device: {dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"ResNet-32, batch {a.batch_size}, {a.rounds} alternating rounds x {a.steps} steps, medians of paired ratios, "
          f"{'process CPU' if cpu_clock else 'wall-clock'} time, radius {a.radius}")
    for C in a.classes: measure(C, a, dev)

if __name__ == '__main__':
    main()
